"""``@task``: a durable step whose result is journaled per (task path, call index).

On replay a recorded result is returned without running the function again; a call whose
name or arguments differ from the record raises NondeterminismError instead of returning it.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, ParamSpec, TypeVar, overload

from tether.checkpoint._base import WriteRow
from tether.engine._runner import call_user, with_retries
from tether.engine._runtime import TaskContext, current_context
from tether.engine._spec import is_async_callable
from tether.errors import NondeterminismError, SerializationError, TaskCallError
from tether.types import RetryPolicy

P = ParamSpec("P")
T = TypeVar("T")

_TASK_POOL = ThreadPoolExecutor(max_workers=256, thread_name_prefix="tether-task")


class TaskFuture(Generic[T]):
    """The pending result of a ``@task`` call: ``.result()`` blocks, ``await`` suspends."""

    __slots__ = ("_future",)

    def __init__(self, future: Future[T]) -> None:
        self._future = future

    @classmethod
    def completed(cls, value: T) -> TaskFuture[T]:
        fut: Future[T] = Future()
        fut.set_result(value)
        return cls(fut)

    def result(self, timeout: float | None = None) -> T:
        return self._future.result(timeout)

    def done(self) -> bool:
        return self._future.done()

    def __await__(self) -> Generator[Any, None, T]:
        return asyncio.wrap_future(self._future).__await__()


def _arg_hash(ctx: TaskContext, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    serde = ctx.run.serde
    if serde is None:
        return ""
    try:
        encoded = serde.dumps([list(args), kwargs])
    except SerializationError as exc:
        raise SerializationError(
            f"arguments of @task {name!r} (called from node {ctx.task.node!r}) cannot be "
            f"journaled: {exc}"
        ) from exc
    return hashlib.blake2b(encoded, digest_size=16).hexdigest()


class TaskFunction(Generic[P, T]):
    """A function wrapped by ``@task``. Calling it inside a node returns a TaskFuture."""

    def __init__(
        self, fn: Callable[P, T], *, name: str | None = None, retry_policy: RetryPolicy | None
    ) -> None:
        self.fn = fn
        self.name: str = name or str(getattr(fn, "__name__", "task"))
        self.retry_policy = retry_policy
        self.is_async = is_async_callable(fn)
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> TaskFuture[T]:
        ctx = current_context()
        if ctx is None:
            raise TaskCallError(
                f"@task {self.name!r} was called outside a running node or entrypoint; call it "
                "from inside a graph node or an @entrypoint function"
            )
        key = ctx.next_call_key()
        arg_hash = _arg_hash(ctx, self.name, args, kwargs)
        recorded = ctx.log.journal.get(key)
        if recorded is not None:
            name, stored_hash, result = recorded
            if name != self.name or stored_hash != arg_hash:
                ctx.run.count("divergences")
                what = "another task" if name != self.name else "other arguments"
                raise NondeterminismError(
                    f"node {ctx.task.node!r}, task call #{key}: the journal recorded "
                    f"{name!r} but this replay called {self.name!r} with {what}; nodes must "
                    "make the same @task calls in the same order on replay (move "
                    "non-deterministic choices into a @task)"
                )
            ctx.run.count("tasks_replayed")
            return TaskFuture.completed(result)
        child = ctx.child(key, self.name)
        call = functools.partial(self.fn, *args, **kwargs)
        future = _TASK_POOL.submit(self._execute, child, call, key, arg_hash)
        ctx.futures.append(future)
        return TaskFuture(future)

    def _execute(self, ctx: TaskContext, call: Callable[[], T], key: str, arg_hash: str) -> T:
        def attempt(n: int) -> T:
            ctx.run.check_lease()  # a fenced run starts no new side effect
            ctx.attempt = n
            return call_user(call, self.is_async, (), ctx)  # type: ignore[no-any-return]

        result = with_retries(self.retry_policy, attempt, lambda *_: ctx.run.count("task_retries"))
        serde = ctx.run.serde
        if serde is not None:
            try:
                payload = serde.dumps([self.name, arg_hash, result])
            except SerializationError as exc:
                raise SerializationError(
                    f"result of @task {self.name!r} (node {ctx.task.node!r}) cannot be "
                    f"journaled: {exc}"
                ) from exc
            ctx.run.record([WriteRow(ctx.task.id, "journal", key, payload)])
        with ctx.run.lock:
            ctx.log.journal[key] = (self.name, arg_hash, result)
        ctx.run.count("tasks_executed")
        return result


@overload
def task(fn: Callable[P, T], /) -> TaskFunction[P, T]: ...


@overload
def task(
    *, name: str | None = None, retry_policy: RetryPolicy | None = None
) -> Callable[[Callable[P, T]], TaskFunction[P, T]]: ...


def task(
    fn: Callable[P, T] | None = None,
    /,
    *,
    name: str | None = None,
    retry_policy: RetryPolicy | None = None,
) -> TaskFunction[P, T] | Callable[[Callable[P, T]], TaskFunction[P, T]]:
    """Make ``fn`` a durable step: ``@task`` or ``@task(retry_policy=RetryPolicy(...))``."""
    if fn is not None:
        return TaskFunction(fn, name=name, retry_policy=retry_policy)

    def wrap(f: Callable[P, T]) -> TaskFunction[P, T]:
        return TaskFunction(f, name=name, retry_policy=retry_policy)

    return wrap
