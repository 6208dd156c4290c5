"""The public surface of ``tether``: pinned so that a change to it is a deliberate one."""

import importlib

import tether
import tether.checkpoint

EXPECTED_ALL = [
    "CachePolicy",
    "CheckpointError",
    "Command",
    "CompiledGraph",
    "ConfigError",
    "CorruptionError",
    "END",
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
    "START",
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


def test_all_is_pinned() -> None:
    assert sorted(tether.__all__) == EXPECTED_ALL


def test_all_is_sorted_and_unique() -> None:
    # The issue asks for a sorted __all__ (ruff's isort-style order: constants, classes, funcs).
    assert len(set(tether.__all__)) == len(tether.__all__)
    assert tether.__all__ == sorted(tether.__all__, key=lambda n: (not n.isupper(), n))


def test_every_name_is_importable() -> None:
    for name in tether.__all__:
        assert getattr(tether, name) is not None, name
        module = importlib.import_module("tether")
        exec(f"from tether import {name}", {})  # the `from tether import X` form users write
        assert hasattr(module, name)


def test_constants() -> None:
    assert tether.START == "__start__"
    assert tether.END == "__end__"


def test_errors_derive_from_tether_error() -> None:
    for name in tether.__all__:
        obj = getattr(tether, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, tether.TetherError), name
    assert issubclass(tether.EncryptionError, tether.CheckpointError)


def test_checkpoint_exports_in_memory_saver() -> None:
    assert "InMemorySaver" in tether.checkpoint.__all__
    from tether.checkpoint import InMemorySaver

    assert InMemorySaver is tether.checkpoint.InMemorySaver
    InMemorySaver()  # constructible with no arguments
