"""tether: durable execution for AI agents.

Graphs that pause for humans, resume days later in another process, survive crashes without
redoing finished work, and never repeat a recorded side effect.
"""

from tether.engine._metrics import ThreadMetrics
from tether.engine._runtime import TaskInfo, current_task, get_stream_writer, interrupt
from tether.errors import (
    CheckpointError,
    ConfigError,
    CorruptionError,
    EmptyInputError,
    EncryptionError,
    GraphError,
    GraphRecursionError,
    InterruptError,
    InvalidAnswerError,
    InvalidUpdateError,
    LeaseLostError,
    NondeterminismError,
    SerializationError,
    StoreTimeoutError,
    TaskCallError,
    TetherError,
    ThreadBusyError,
)
from tether.func import TaskFuture, entrypoint, task
from tether.graph import CompiledGraph, MessagesState, StateGraph, add_messages
from tether.types import (
    END,
    START,
    CachePolicy,
    Command,
    GraphOutput,
    Interrupt,
    Overwrite,
    RetryPolicy,
    RunResult,
    Send,
    StateSnapshot,
    StateTask,
    default_retry_on,
)

__version__ = "0.1.0"

__all__ = [
    "END",
    "START",
    "CachePolicy",
    "CheckpointError",
    "Command",
    "CompiledGraph",
    "ConfigError",
    "CorruptionError",
    "EmptyInputError",
    "EncryptionError",
    "GraphError",
    "GraphOutput",
    "GraphRecursionError",
    "Interrupt",
    "InterruptError",
    "InvalidAnswerError",
    "InvalidUpdateError",
    "LeaseLostError",
    "MessagesState",
    "NondeterminismError",
    "Overwrite",
    "RetryPolicy",
    "RunResult",
    "Send",
    "SerializationError",
    "StateGraph",
    "StateSnapshot",
    "StateTask",
    "StoreTimeoutError",
    "TaskCallError",
    "TaskFuture",
    "TaskInfo",
    "TetherError",
    "ThreadBusyError",
    "ThreadMetrics",
    "add_messages",
    "current_task",
    "default_retry_on",
    "entrypoint",
    "get_stream_writer",
    "interrupt",
    "task",
]
