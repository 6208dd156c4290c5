"""``@task``: a durable step whose result is journaled per (task path, call index).

On replay a recorded result is returned without running the function again; a call whose
name or arguments differ from the record raises NondeterminismError instead of returning it.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hashlib
import time
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Any, Generic, ParamSpec, TypeVar, overload

from tether.checkpoint._base import WriteRow
from tether.engine import _cached
from tether.engine._context import config_of
from tether.engine._events import PUSH_TRIGGERS, RETURN_KEY, task_result, task_start
from tether.engine._inject import inject, injected_params, positional_names, unbound
from tether.engine._runner import call_user, with_retries
from tether.engine._runtime import TaskContext, current_context
from tether.engine._spec import is_async_callable, retry_policies, timeout_policy
from tether.engine._timeout import AttemptClock
from tether.errors import NondeterminismError, SerializationError, TaskCallError
from tether.types import CachePolicy, RetryPolicy, TimeoutPolicy

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
    """A hash of the call's arguments, equal for equal arguments: taken over their plain
    encoding, since an encrypting serializer's output differs on every call."""
    serde = ctx.run.serde
    if serde is None:
        return ""
    encode = getattr(serde, "dumps_plaintext", serde.dumps)
    try:
        encoded = encode([list(args), kwargs])
    except SerializationError as exc:
        raise SerializationError(
            f"thread {ctx.run.thread_id!r}: arguments of @task {name!r} (called from node "
            f"{ctx.task.node!r}) cannot be journaled: {exc}"
        ) from exc
    return hashlib.blake2b(encoded, digest_size=16).hexdigest()


def _call_id(ctx: TaskContext, key: str) -> str:
    """The id a ``@task`` call shows in stream events: stable for the call's position."""
    return hashlib.blake2b(f"{ctx.task.id}|{key}".encode(), digest_size=12).hexdigest()


class TaskFunction(Generic[P, T]):
    """A function wrapped by ``@task``. Calling it inside a node returns a TaskFuture."""

    def __init__(
        self,
        fn: Callable[P, T],
        *,
        name: str | None = None,
        retry_policy: RetryPolicy | Sequence[RetryPolicy] | None,
        cache_policy: CachePolicy | None = None,
        timeout: float | timedelta | TimeoutPolicy | None = None,
    ) -> None:
        self.fn = fn
        self.name: str = name or str(getattr(fn, "__name__", "task"))
        self.retry_policy = retry_policies(retry_policy, f"@task {self.name!r}")
        self.cache_policy = cache_policy
        self.is_async = is_async_callable(fn)
        self.timeout = timeout_policy(timeout, f"@task {self.name!r}", self.is_async)
        self._inject = injected_params(fn)
        self._positional = positional_names(fn) if self._inject else ()
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> TaskFuture[T]:
        ctx = current_context()
        if ctx is None:
            raise TaskCallError(
                f"@task {self.name!r} was called outside a running node or entrypoint; call it "
                "from inside a graph node or an @entrypoint function"
            )
        if ctx.clock is not None:
            if ctx.clock.closed:  # the caller timed out and was cancelled: start nothing
                raise asyncio.CancelledError
            ctx.clock.progress()
        key = ctx.next_call_key()
        arg_hash = _arg_hash(ctx, self.name, args, kwargs)
        if ctx.run.on_task_event is not None:
            event = task_start(
                ctx.run.step + 1,
                _call_id(ctx, key),
                self.name,
                (args, kwargs),
                PUSH_TRIGGERS,
                config_of(ctx),
            )
            ctx.run.on_task_event(event)
        recorded = ctx.log.journal.get(key)
        if recorded is not None:
            self._check_replay(ctx, key, recorded[0], recorded[1], arg_hash)
            ctx.run.count("tasks_replayed")
            return TaskFuture.completed(recorded[2])
        running = ctx.log.running.get(key)
        if running is not None and not running[2].done():
            # an attempt that timed out left this call running: join it rather than run
            # its side effect twice
            self._check_replay(ctx, key, running[0], running[1], arg_hash)
            ctx.futures.append(running[2])
            return TaskFuture(running[2])
        child = ctx.child(key, self.name)
        call = functools.partial(self.fn, *args, **kwargs)
        fill = unbound(self._inject, self._positional, args, kwargs)
        cache_key = None
        if self.cache_policy is not None and ctx.run.cache is not None:
            cache_key = _cached.task_key(self.name, self.fn, self.cache_policy, args, kwargs)
        future = _TASK_POOL.submit(
            contextvars.copy_context().run,
            self._execute,
            child,
            call,
            fill,
            key,
            arg_hash,
            cache_key,
        )
        ctx.futures.append(future)
        with ctx.run.lock:
            ctx.log.running[key] = (self.name, arg_hash, future)
        return TaskFuture(future)

    def _check_replay(
        self, ctx: TaskContext, key: str, name: str, stored_hash: str, arg_hash: str
    ) -> None:
        if name == self.name and stored_hash == arg_hash:
            return
        ctx.run.count("divergences")
        what = "another task" if name != self.name else "other arguments"
        raise NondeterminismError(
            f"node {ctx.task.node!r}, task call #{key}: the journal recorded {name!r} but "
            f"this replay called {self.name!r} with {what}; nodes must make the same @task "
            "calls in the same order on replay (move non-deterministic choices into a @task)"
        )

    def _execute(
        self,
        ctx: TaskContext,
        call: Callable[..., T],
        fill: tuple[str, ...],
        key: str,
        arg_hash: str,
        cache_key: _cached.FullKey | None = None,
    ) -> T:
        ctx.first_attempt_at = time.time()

        def attempt(n: int) -> T:
            ctx.run.check_lease()  # a fenced run starts no new side effect
            ctx.attempt = n
            ctx.clock = AttemptClock(self.timeout) if self.timeout is not None else None
            kwargs = inject(fill, ctx) if fill else None
            return call_user(call, self.is_async, (), ctx, kwargs, timed=True)  # type: ignore[no-any-return]

        cache, policy = ctx.run.cache, self.cache_policy
        hit = _cached.MISS if cache_key is None else _cached.lookup(cache, cache_key)
        if hit is not _cached.MISS:  # journaled below like a result, so a replay agrees
            result: T = hit
        else:
            try:
                result = with_retries(
                    self.retry_policy, attempt, lambda *_: ctx.run.count("task_retries")
                )
            except Exception as exc:
                self._report(ctx, key, error=exc)
                raise
            if ctx.run.messages is not None:
                ctx.run.messages.returned(ctx, result)
            if cache_key is not None and policy is not None:
                _cached.store(cache, cache_key, result, policy)
        serde = ctx.run.serde
        if serde is not None:
            try:
                payload = serde.dumps([self.name, arg_hash, result])
            except SerializationError as exc:
                error = SerializationError(
                    f"thread {ctx.run.thread_id!r}: result of @task {self.name!r} (node "
                    f"{ctx.task.node!r}) cannot be journaled, so a resume would run it "
                    f"again: {exc}. Return a value tether can store (register its type with "
                    "register_type)"
                )
                # fails the node even if it never waited for this call (engine/_runner.py)
                ctx.unjournaled.append(error)
                raise error from exc
            ctx.run.record([WriteRow(ctx.task.id, "journal", key, payload)])
        with ctx.run.lock:
            ctx.log.journal[key] = (self.name, arg_hash, result)
        ctx.run.count("tasks_executed")
        if ctx.run.on_task_result is not None:
            ctx.run.on_task_result(self.name, result)
        if hit is _cached.MISS:  # as LangGraph, a result from the cache is not reported
            self._report(ctx, key, result=result)
        return result

    def _report(
        self, ctx: TaskContext, key: str, *, result: Any = None, error: Exception | None = None
    ) -> None:
        if ctx.run.on_task_event is None:
            return
        writes = [] if error is not None else [(RETURN_KEY, result)]
        call_id = _call_id(ctx, key)
        event = task_result(ctx.run.step + 1, call_id, self.name, writes=writes, error=error)
        ctx.run.on_task_event(event)


@overload
def task(fn: Callable[P, T], /) -> TaskFunction[P, T]: ...


@overload
def task(
    *,
    name: str | None = None,
    retry_policy: RetryPolicy | Sequence[RetryPolicy] | None = None,
    cache_policy: CachePolicy | None = None,
    timeout: float | timedelta | TimeoutPolicy | None = None,
) -> Callable[[Callable[P, T]], TaskFunction[P, T]]: ...


def task(
    fn: Callable[P, T] | None = None,
    /,
    *,
    name: str | None = None,
    retry_policy: RetryPolicy | Sequence[RetryPolicy] | None = None,
    cache_policy: CachePolicy | None = None,
    timeout: float | timedelta | TimeoutPolicy | None = None,
) -> TaskFunction[P, T] | Callable[[Callable[P, T]], TaskFunction[P, T]]:
    """Make ``fn`` a durable step: ``@task`` or ``@task(retry_policy=RetryPolicy(...))``;
    ``cache_policy`` reuses a result for the same arguments (with ``compile(cache=...)``);
    ``timeout`` limits each attempt of an async task (see ``TimeoutPolicy``)."""
    options: dict[str, Any] = {
        "name": name,
        "retry_policy": retry_policy,
        "cache_policy": cache_policy,
        "timeout": timeout,
    }
    if fn is not None:
        return TaskFunction(fn, **options)

    def wrap(f: Callable[P, T]) -> TaskFunction[P, T]:
        return TaskFunction(f, **options)

    return wrap
