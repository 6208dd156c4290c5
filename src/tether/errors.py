"""Every error a user of tether can cause, as one tree. Catch by cause, not by message.

    TetherError
    ├── GraphError                 a graph that cannot be built (unknown or unreachable node)
    ├── InvalidUpdateError         a write that cannot be applied (unknown key, two writers)
    ├── GraphRecursionError        the run took more super-steps than ``recursion_limit``
    │                              (also a ``RecursionError``, as in LangGraph)
    ├── EmptyInputError            ``invoke(None, ...)`` with nothing to continue, or ``Command()``
    ├── InterruptError             a resume that does not match the pending interrupts
    │   └── InvalidAnswerError     raised by a node to refuse an answer; the interrupt stays open
    ├── NondeterminismError        a replay called a different task than the one recorded
    ├── NodeTimeoutError           a node or task attempt ran past its ``timeout``
    ├── ThreadBusyError            another writer advanced the thread first
    │   └── LeaseLostError         this run's lease was taken over; it was fenced and wrote nothing
    ├── ConfigError                a missing or malformed config value (``thread_id``, ...)
    ├── TaskCallError              a ``@task`` used where no run is active
    ├── SerializationError         a value tether cannot store or read back safely
    └── CheckpointError            storage that cannot be read, written or trusted
        ├── EncryptionError        a record encrypted with a key that is missing or wrong
        ├── CorruptionError        stored bytes fail their checksum, a chain loops, rows are missing
        └── StoreTimeoutError      the store did not answer within its configured timeout

    GraphBubbleUp                  control flow, not an error: a BaseException, so that a node's
    └── GraphInterrupt             ``except Exception`` cannot swallow a pause
        └── NodeInterrupt          raise it in a node to pause there with a value (as in LangGraph)

    DroppedUpdateWarning           ``compile(strict=False)`` dropped an unknown key or goto target

Messages name the thing at fault (node, key, interrupt id, thread) and what to do about it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from tether.types import Interrupt


class TetherError(Exception):
    """Base class of every error tether raises on purpose."""


class GraphError(TetherError):
    """The graph definition is invalid (raised by the builder and by ``compile``)."""


class InvalidUpdateError(TetherError):
    """A node's output, the run input or ``update_state`` values cannot be applied."""


class GraphRecursionError(TetherError, RecursionError):
    """The run needed more super-steps than the configured ``recursion_limit``. Also a
    ``RecursionError``, so code written for LangGraph that catches that still does."""


class EmptyInputError(TetherError):
    """``invoke(None, config)`` was called on a thread that has nothing to resume, or the
    input was a ``Command()`` with nothing in it."""


class InterruptError(TetherError):
    """A resume value does not match what is pending, or an interrupt cannot be raised."""


class InvalidAnswerError(InterruptError):
    """Raise it in a node to refuse the answer ``interrupt()`` returned (a failed validation,
    say): the answer given by this resume is withdrawn and the interrupt stays pending, so
    the caller can answer again."""


class NondeterminismError(TetherError):
    """On replay a node made a call that differs from the recorded one."""


class NodeTimeoutError(TetherError):
    """An attempt of a node, ``@task`` or ``@entrypoint`` ran past its ``TimeoutPolicy`` and
    was cancelled. ``kind`` says which limit fired ("run" or "idle"), ``timeout`` its value;
    ``run_timeout`` and ``idle_timeout`` are the policy's. A ``RetryPolicy`` retries it by
    default, as in LangGraph."""

    node: str
    timeout: float
    run_timeout: float | None
    idle_timeout: float | None
    elapsed: float
    kind: Literal["idle", "run"]

    def __init__(
        self,
        node: str,
        elapsed: float,
        *,
        kind: Literal["idle", "run"],
        idle_timeout: float | None = None,
        run_timeout: float | None = None,
    ) -> None:
        limit = idle_timeout if kind == "idle" else run_timeout
        if kind not in ("idle", "run") or limit is None:
            raise ValueError(f"NodeTimeoutError(kind={kind!r}) needs the {kind}_timeout")
        if kind == "idle":
            what = f"went {limit:.3f}s without progress (its idle_timeout)"
            hint = "report progress with runtime.heartbeat() or raise idle_timeout"
        else:
            what = f"ran past its run_timeout of {limit:.3f}s"
            hint = "raise its timeout"
        super().__init__(
            f"node {node!r} {what} and was cancelled after {elapsed:.3f}s; {hint} "
            "(add_node/@task/@entrypoint timeout=...)"
        )
        self.node = node
        self.timeout = limit
        self.run_timeout = run_timeout
        self.idle_timeout = idle_timeout
        self.elapsed = elapsed
        self.kind = kind


class ThreadBusyError(TetherError):
    """Another writer committed to the thread since this run read its head."""


class LeaseLostError(ThreadBusyError):
    """This run's lease on the thread was taken over (it stalled past the lease, say); the
    run was fenced: it stops, and nothing it would have written was stored."""


class ConfigError(TetherError):
    """A required configuration value is missing or has the wrong shape."""


class TaskCallError(TetherError):
    """A ``@task`` was called outside a running node or entrypoint."""


class SerializationError(TetherError):
    """A value cannot be encoded for storage, or stored bytes cannot be decoded."""


class CheckpointError(TetherError):
    """The checkpoint store is unreachable, corrupted, or from an incompatible version."""


class EncryptionError(CheckpointError):
    """A stored record cannot be decrypted: its key is missing, or the key is wrong."""


class CorruptionError(CheckpointError):
    """Stored rows of a thread are damaged: a checksum mismatch, a delta chain that loops,
    or rows missing (evicted, deleted by hand). The message names the thread and the row."""


class StoreTimeoutError(CheckpointError):
    """The store did not answer within its configured timeout (a frozen, overloaded or
    unreachable server). A write that timed out may still be applied if the server wakes
    up (the client gave up, the server never knew); it is applied whole or not at all, so
    read the thread again before deciding what to redo."""


class GraphBubbleUp(BaseException):
    """Control flow that unwinds a node and is handled by the engine, never an error.

    A BaseException (LangGraph's is an Exception) so that ``except Exception`` around code
    that pauses cannot swallow the pause; ``except GraphInterrupt`` still catches it."""


class GraphInterrupt(GraphBubbleUp):
    """A node paused: ``interrupt()`` raises a subclass of it. ``args[0]`` holds the
    ``Interrupt``s."""

    def __init__(self, interrupts: Sequence[Interrupt] = ()) -> None:
        super().__init__(tuple(interrupts))

    @property
    def interrupts(self) -> tuple[Interrupt, ...]:
        found: tuple[Interrupt, ...] = self.args[0] if self.args else ()
        return found


class NodeInterrupt(GraphInterrupt):
    """Raise it in a node to pause the run there with ``value`` (LangGraph's older way to
    pause; ``interrupt()`` is the newer). The caller sees ``Interrupt(value, id)``; the node
    runs again from its start when the thread continues (``invoke(None)`` or a resume)."""

    def __init__(self, value: Any, id: str | None = None) -> None:
        super().__init__(())
        self.value = value
        self.id = id


class DroppedUpdateWarning(UserWarning):
    """A graph compiled with ``strict=False`` dropped a write to a key that is not in the
    state schema, or a goto, Send or router target that is not a node (as LangGraph does
    silently). Under the default ``strict=True`` these are errors."""


__all__ = [
    "CheckpointError",
    "ConfigError",
    "CorruptionError",
    "DroppedUpdateWarning",
    "EmptyInputError",
    "EncryptionError",
    "GraphBubbleUp",
    "GraphError",
    "GraphInterrupt",
    "GraphRecursionError",
    "InterruptError",
    "InvalidAnswerError",
    "InvalidUpdateError",
    "LeaseLostError",
    "NodeInterrupt",
    "NodeTimeoutError",
    "NondeterminismError",
    "SerializationError",
    "StoreTimeoutError",
    "TaskCallError",
    "TetherError",
    "ThreadBusyError",
]
