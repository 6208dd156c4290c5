"""What a running node can reach: ``interrupt()``, the task journal, the stream writer.

The current task lives in a context variable set by the runner around each node call, so
nothing is threaded through config under magic keys.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tether.checkpoint._base import WriteRow
from tether.engine._planner import PlannedTask
from tether.engine._status import TaskLog
from tether.engine._timeout import AttemptClock
from tether.errors import GraphInterrupt, InterruptError, LeaseLostError, TaskCallError
from tether.serde import Serializer
from tether.types import Interrupt

if TYPE_CHECKING:
    from tether.engine._tokens import MessageStream


class NodeInterrupt(GraphInterrupt):
    """Raised by ``interrupt()`` to unwind the node; a BaseException so that a user's
    ``except Exception`` cannot swallow a pause (``except GraphInterrupt`` catches it)."""

    def __init__(self, interrupt: Interrupt, where: str) -> None:
        super().__init__((interrupt,))
        self.interrupt = interrupt
        self.where = where


@dataclass(slots=True)
class RunContext:
    """Shared by every task of one run."""

    thread_id: str
    serde: Serializer | None
    config: dict[str, Any]
    record: Callable[[list[WriteRow]], None]
    stream: Callable[[Any], None] | None
    loop: Any = None
    step: int = 0
    on_node_start: Callable[[], None] | None = None
    cache: Any = None
    """The graph's result cache (``compile(cache=...)``), for ``@task``s with a policy."""
    metrics: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    context: Any = None
    """The run's ``context=`` (see engine/_context.py); not stored."""
    store: Any = None
    """The graph's ``store=``; not stored by tether."""
    checkpoint_id: str = ""
    """The checkpoint that planned the step running now."""
    on_task_result: Callable[[str, Any], None] | None = None
    """Receives (task name, result) of each ``@task`` call that ran (not replayed)."""
    on_task_event: Callable[[dict[str, Any]], None] | None = None
    """Receives the start and result events of ``@task`` calls (stream modes "tasks" and
    "debug"; see engine/_events.py)."""
    messages: MessageStream | None = None
    """The run's message stream (``stream_mode="messages"``; engine/_tokens.py)."""
    callbacks: Any = None
    """The config's ``callbacks`` plus the message stream's handler: what nodes' configs
    carry while messages are streamed (None: the config's own, untouched)."""
    node_triggers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Per node, the triggers LangGraph names for it (``GraphSpec.triggers``)."""
    node_metadata: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Per node, its ``add_node(metadata=...)`` (``GraphSpec.node_metadata``)."""
    lost: LeaseLostError | None = None
    """Set once the run's lease is found taken over (by a fenced write or the heartbeat):
    from then on the run starts no node or ``@task`` attempt, writes nothing, and ends with
    this error."""

    def lose(self, exc: LeaseLostError) -> None:
        if self.lost is None:
            self.lost = exc

    def check_lease(self) -> None:
        """Raise the run's LeaseLostError once it has lost its lease."""
        if self.lost is not None:
            raise self.lost

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.metrics[name] = self.metrics.get(name, 0) + n


@dataclass(slots=True)
class TaskContext:
    """One execution attempt of a node, or one ``@task`` call inside it."""

    run: RunContext
    task: PlannedTask
    log: TaskLog
    name: str
    path: str = ""
    attempt: int = 1
    interrupt_calls: int = 0
    task_calls: int = 0
    raised_ids: set[str] = field(default_factory=set)

    futures: list[Any] = field(default_factory=list)
    previous: Any = None
    """The functional API's saved value (set by ``@entrypoint``); ``@task`` calls inherit it."""
    first_attempt_at: float | None = None
    message_id: str = ""
    """The id ``stream_token()`` gives this call's tokens by default (set on first use)."""
    clock: AttemptClock | None = None
    """The timeout clock of this attempt, when it has a ``TimeoutPolicy``."""
    unjournaled: list[BaseException] = field(default_factory=list)
    """Errors of ``@task`` calls whose result could not be journaled (shared with the
    calls' contexts): they fail the node even if it never waited for them."""

    def stream_writer(self) -> Callable[[Any], None] | None:
        """The run's writer for ``stream_mode="custom"`` (None when that is not streamed); a
        timed attempt's writes count as its progress and stop once it has timed out."""
        write, clock = self.run.stream, self.clock
        if clock is None:
            return write

        def timed(chunk: Any) -> None:
            if clock.closed:
                return
            clock.progress()
            if write is not None:
                write(chunk)

        return timed

    @property
    def position(self) -> str:
        """Where this call sits, independent of any random id: thread, step, node, kind,
        Send index and the call path inside the node."""
        t = self.task
        return (
            f"{self.run.thread_id}|{self.run.step}|{t.node}|{int(t.is_send)}|{t.index}|{self.path}"
        )

    @property
    def idempotency_key(self) -> str:
        return hashlib.blake2b(self.position.encode(), digest_size=16).hexdigest()

    def next_call_key(self) -> str:
        key = f"{self.path}.{self.task_calls}" if self.path else str(self.task_calls)
        self.task_calls += 1
        return key

    def child(self, key: str, name: str) -> TaskContext:
        return TaskContext(
            self.run,
            self.task,
            self.log,
            name,
            key,
            1,
            futures=self.futures,
            previous=self.previous,
            unjournaled=self.unjournaled,
        )


_CURRENT: ContextVar[TaskContext | None] = ContextVar("tether_task", default=None)


def current_context() -> TaskContext | None:
    return _CURRENT.get()


def set_context(ctx: TaskContext | None) -> Any:
    return _CURRENT.set(ctx)


def reset_context(token: Any) -> None:
    _CURRENT.reset(token)


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """What ``current_task()`` tells user code about the call it runs in."""

    name: str
    thread_id: str
    task_id: str
    path: str
    attempt: int
    idempotency_key: str


def current_task() -> TaskInfo:
    """The node or ``@task`` call running in this context; its ``idempotency_key`` is stable
    across retries, replays and processes, and differs between calls."""
    ctx = _CURRENT.get()
    if ctx is None:
        raise TaskCallError("current_task() was called outside a running node or @task")
    return TaskInfo(
        ctx.name, ctx.run.thread_id, ctx.task.id, ctx.path, ctx.attempt, ctx.idempotency_key
    )


def interrupt(value: Any, *, id: str | None = None) -> Any:
    """Pause the node and surface ``value``; on resume, return the answer.

    The node replays from its first line on resume, so code before ``interrupt()`` runs
    again: keep side effects in ``@task``s. ``id`` fixes the interrupt's id; without it the id
    is derived from the thread, the task and the call position.
    """
    ctx = _CURRENT.get()
    if ctx is None:
        raise InterruptError("interrupt() was called outside a running node")
    if ctx.run.serde is None:
        raise InterruptError(
            f"interrupt() in node {ctx.task.node!r} needs a checkpointer to remember the "
            "pause: compile the graph with compile(checkpointer=InMemorySaver()) or another "
            "saver"
        )
    position = ctx.interrupt_calls
    ctx.interrupt_calls += 1
    where = f"{ctx.path}#{position}" if id is None else ""
    if id is None:
        # An id recorded for this call position wins over a fresh derivation, so a pending
        # interrupt keeps its id even if the thread was renamed on import.
        iid = (
            ctx.log.positions.get(where)
            or hashlib.blake2b(
                f"{ctx.position}|interrupt|{position}".encode(), digest_size=16
            ).hexdigest()
        )
    else:
        if not isinstance(id, str) or not id:
            raise InterruptError(f"interrupt id must be a non-empty string, got {id!r}")
        iid = id
    if iid in ctx.raised_ids:
        raise InterruptError(
            f"node {ctx.task.node!r} raised interrupt id {iid!r} twice in one run; "
            "give each interrupt() call its own id"
        )
    ctx.raised_ids.add(iid)
    if iid in ctx.log.resumes:
        return ctx.log.resumes[iid]
    raise NodeInterrupt(Interrupt(value, iid), where)


def _no_writer(_chunk: Any) -> None:
    return None


def get_stream_writer() -> Callable[[Any], None]:
    """A function that emits a chunk to ``stream_mode="custom"`` (a no-op otherwise)."""
    ctx = _CURRENT.get()
    if ctx is None:
        raise TaskCallError("get_stream_writer() was called outside a running node")
    return ctx.stream_writer() or _no_writer
