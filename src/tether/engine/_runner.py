"""Running a step's tasks: threads for sync nodes, the event loop for async ones, retries.

A task ends in exactly one outcome: done (its validated output), paused (an interrupt) or
failed (the last exception after retries). Outcomes go back to the loop through a queue in
completion order; the loop, not the runner, decides what is stored and in what order.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import queue
import random
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from tether.engine import _cached
from tether.engine._context import enter_langchain
from tether.engine._inject import inject
from tether.engine._planner import (
    MISSING,
    PlannedTask,
    TaskOutput,
    fold_many,
    normalize_output,
    resolve_branch,
)
from tether.engine._runtime import (
    NodeInterrupt,
    RunContext,
    TaskContext,
    reset_context,
    set_context,
)
from tether.engine._spec import GraphSpec
from tether.engine._status import RAISED, TaskLog, output_from_plain, output_to_plain
from tether.engine._timeout import AttemptClock, run_timed
from tether.errors import GraphInterrupt, LeaseLostError, NodeTimeoutError
from tether.errors import NodeInterrupt as RaisedInterrupt
from tether.types import Command, Interrupt, RetryPolicy

T = TypeVar("T")

_NODE_POOL = ThreadPoolExecutor(max_workers=256, thread_name_prefix="tether-node")


@dataclass(slots=True)
class Outcome:
    task: PlannedTask
    kind: Literal["done", "paused", "failed"]
    output: TaskOutput | None = None
    interrupt: Interrupt | None = None
    where: str = ""
    error: BaseException | None = None
    cached: bool = False


def run_coroutine(coro: Coroutine[Any, Any, T], loop: asyncio.AbstractEventLoop | None) -> T:
    """Run a coroutine to completion from synchronous code.

    On the caller's loop when the run came from ``ainvoke``/``astream`` (we are then on a
    worker thread); else on a private loop, in a helper thread if this thread has one."""
    if loop is not None and loop.is_running():
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not loop:
            return asyncio.run_coroutine_threadsafe(coro, loop).result()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: list[Any] = []

    def target() -> None:
        try:
            box.append(("ok", asyncio.run(coro)))
        except BaseException as exc:  # handed to the caller below
            box.append(("err", exc))

    # a new thread starts with empty contextvars; the node must see the caller's
    t = threading.Thread(
        target=contextvars.copy_context().run, args=(target,), name="tether-async-node"
    )
    t.start()
    t.join()
    kind, value = box[0]
    if kind == "err":
        raise value
    return value  # type: ignore[no-any-return]


def call_user(
    fn: Callable[..., Any],
    is_async: bool,
    args: tuple[Any, ...],
    ctx: TaskContext,
    kwargs: dict[str, Any] | None = None,
    *,
    timed: bool = False,
) -> Any:
    """Call ``fn(*args, **kwargs)`` with ``ctx`` as the current task, sync or async alike;
    ``timed``: under the timeout of ``ctx.clock`` (async functions only)."""
    kw = kwargs or {}
    if is_async:
        clock = ctx.clock if timed else None

        async def with_context() -> Any:
            token = set_context(ctx)
            undo = enter_langchain(ctx)
            try:
                if clock is not None:
                    return await run_timed(fn(*args, **kw), clock, ctx.name)
                return await fn(*args, **kw)
            finally:
                if undo is not None:
                    undo()
                reset_context(token)

        return run_coroutine(with_context(), ctx.run.loop)
    token = set_context(ctx)
    undo = enter_langchain(ctx)
    try:
        return fn(*args, **kw)
    finally:
        if undo is not None:
            undo()
        reset_context(token)


def with_retries(
    policies: Sequence[RetryPolicy],
    attempt_fn: Callable[[int], T],
    on_retry: Callable[[int, BaseException], None] | None = None,
) -> T:
    """Call ``attempt_fn(attempt)`` until it succeeds or gives up: after an exception the
    first policy whose ``retry_on`` matches it decides, by its ``max_attempts`` (counting
    every attempt so far) and its waits; with none matching, the exception is raised. A run
    that lost its lease is never retried, whatever the policies say: it is fenced and must
    stop."""
    attempt = 1
    while True:
        try:
            return attempt_fn(attempt)
        except Exception as exc:
            if isinstance(exc, LeaseLostError):
                raise
            policy = next((p for p in policies if p.should_retry(exc)), None)
            if policy is None or attempt >= policy.max_attempts:
                raise
            attempt += 1
            if on_retry is not None:
                on_retry(attempt, exc)
            time.sleep(policy.wait_before(attempt, random.random()))


def _local_state(spec: GraphSpec, values: dict[str, Any], out: TaskOutput) -> dict[str, Any]:
    local = dict(values)
    grouped: dict[str, list[Any]] = {}
    for key, value in out.writes:
        grouped.setdefault(key, []).append(value)
    for key, writes in grouped.items():
        local[key] = fold_many(spec.channels[key], local.get(key, MISSING), writes)
    return local


def evaluate_branches(
    spec: GraphSpec, node: str, values: dict[str, Any], out: TaskOutput, ctx: TaskContext
) -> None:
    """Append the targets of ``node``'s conditional edges to ``out.goto``; routers see the
    state as of the step start plus this task's own writes."""
    branches = spec.branches.get(node)
    if not branches:
        return
    local = _local_state(spec, values, out)
    state = spec.schema.to_input(local)
    for br in branches:
        kwargs = inject(br.inject, ctx) if br.inject else None
        result = call_user(br.router, br.is_async, (state,), ctx, kwargs)
        out.goto.extend(resolve_branch(spec, br, result))


def run_task(
    spec: GraphSpec,
    run: RunContext,
    task: PlannedTask,
    values: dict[str, Any],
    log: TaskLog,
) -> Outcome:
    """Run one task with its retry policy; never raises for the node's own errors."""
    if run.on_node_start is not None:
        run.on_node_start()
    node = spec.nodes[task.node]
    node_input = task.arg if task.is_send else spec.schema.to_input(values)
    started = time.time()
    messages = run.messages

    def attempt(n: int) -> TaskOutput:
        run.check_lease()
        ctx = TaskContext(run, task, log, task.node, "", n, first_attempt_at=started)
        if node.timeout is not None:
            ctx.clock = AttemptClock(node.timeout)
        kwargs = inject(node.inject, ctx) if node.inject else None
        try:
            result = call_user(node.fn, node.is_async, (node_input,), ctx, kwargs, timed=True)
        except NodeTimeoutError:
            # its @task calls still running keep going and are journaled when they finish; a
            # retry that makes the same call joins it (func/_task.py), so none runs twice
            raise
        except BaseException as exc:
            _settle(ctx.futures)
            _raise_unjournaled(ctx, exc)
            raise
        _settle(ctx.futures)
        _raise_unjournaled(ctx, None)
        if messages is not None:
            messages.returned(ctx, result)
        out = normalize_output(spec, task.node, result)
        out.update = result.update if isinstance(result, Command) else result
        evaluate_branches(spec, task.node, values, out, ctx)
        return out

    try:
        key = None
        if node.cache_policy is not None and spec.cache is not None:
            key = _cached.node_key(task.node, node.fn, node.cache_policy, node_input)
            hit = _cached.lookup(spec.cache, key)
            if hit is not _cached.MISS:
                out = output_from_plain(hit)
                out.update = dict(out.writes)
                return Outcome(task, "done", output=out, cached=True)
        if messages is not None:
            messages.mark_seen(node_input)
        output = with_retries(node.retry, attempt, lambda *_: run.count("node_retries"))
        if key is not None and node.cache_policy is not None:
            _cached.store(spec.cache, key, output_to_plain(output), node.cache_policy)
    except NodeInterrupt as paused:
        return Outcome(task, "paused", interrupt=paused.interrupt, where=paused.where)
    except GraphInterrupt as raised:
        pause = _raised_interrupt(run, task, log, raised)
        return Outcome(task, "paused", interrupt=pause, where=RAISED)
    except Exception as exc:
        return Outcome(task, "failed", error=exc)
    return Outcome(task, "done", output=output)


def _settle(futures: list[Any]) -> None:
    """Wait for the @task calls a node started and did not wait for: they are journaled
    before the step ends, so a pause or a retry never repeats their side effects."""
    for fut in futures:
        try:
            fut.result()
        except BaseException:  # the node saw (or ignored) it; nothing to add here
            pass


def _raise_unjournaled(ctx: TaskContext, raised: BaseException | None) -> None:
    """A @task whose result could not be journaled fails its node, awaited or not, and
    before a pause is stored: otherwise its side effect would run again on resume."""
    if ctx.unjournaled and ctx.unjournaled[0] is not raised:
        raise ctx.unjournaled[0] from raised


def _raised_interrupt(
    run: RunContext, task: PlannedTask, log: TaskLog, raised: GraphInterrupt
) -> Interrupt:
    """The pause a node asked for by raising ``NodeInterrupt(value)`` (or a GraphInterrupt).

    Its id, unless given, is derived from the task's position and the number of answers the
    task has had: a node that raises again after an answer pauses anew instead of finding
    its old interrupt answered."""
    if isinstance(raised, RaisedInterrupt):
        value, given = raised.value, raised.id
    else:
        first = raised.interrupts[0] if raised.interrupts else None
        value, given = (first.value, first.id) if first is not None else (None, None)
    if given:
        return Interrupt(value, given)
    position = TaskContext(run, task, log, task.node).position
    raw = f"{position}|raised|{len(log.resumes)}"
    return Interrupt(value, hashlib.blake2b(raw.encode(), digest_size=16).hexdigest())


def run_step(
    spec: GraphSpec,
    run: RunContext,
    tasks: list[PlannedTask],
    values: dict[str, Any],
    logs: dict[str, TaskLog],
    events: queue.Queue[tuple[str, Any]] | None,
    *,
    live: bool = True,
) -> Iterator[tuple[str, Any]]:
    """Run ``tasks`` and yield ("done", Outcome) as each finishes, and the events tasks put
    on ``events`` (custom chunks, @task results). One task runs inline on this thread (the
    fast path) unless its events must be yielded ``live``, while it runs; then its events
    follow it. Otherwise tasks run on the node pool, each in a copy of this thread's
    contextvars."""
    if len(tasks) == 1 and (events is None or not live):
        t = tasks[0]
        outcome = run_task(spec, run, t, values, logs.setdefault(t.id, TaskLog()))
        while events is not None and not events.empty():
            yield events.get_nowait()
        yield "done", outcome
        return
    q: queue.Queue[tuple[str, Any]] = events if events is not None else queue.Queue()
    for t in tasks:
        log = logs.setdefault(t.id, TaskLog())
        _NODE_POOL.submit(
            contextvars.copy_context().run,
            lambda t=t, log=log: q.put(("done", run_task(spec, run, t, values, log))),  # type: ignore[misc]
        )
    remaining = len(tasks)
    while remaining:
        kind, item = q.get()
        if kind == "done":
            remaining -= 1
        yield kind, item
