"""The error tree: every class is a TetherError and appears in the module's drawn tree."""

from __future__ import annotations

import tether.errors as errors

NOT_ERRORS = {"GraphBubbleUp", "GraphInterrupt", "NodeInterrupt", "DroppedUpdateWarning"}
"""Control flow (a pause) and a warning: drawn in the tree, but no TetherError."""


def test_every_error_is_a_tether_error_and_is_drawn_in_the_tree() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.TetherError) != (name in NOT_ERRORS), name
        assert name in doc, f"{name} is missing from the tree in tether/errors.py"


def test_langgraph_error_bases_are_kept() -> None:
    # Code ported from LangGraph catches these by their standard bases.
    assert issubclass(errors.GraphRecursionError, RecursionError)
    assert issubclass(errors.InvalidUpdateError, Exception)
    assert issubclass(errors.EmptyInputError, Exception)
    assert issubclass(errors.NodeInterrupt, errors.GraphInterrupt)
    assert issubclass(errors.GraphInterrupt, errors.GraphBubbleUp)
    assert issubclass(errors.DroppedUpdateWarning, UserWarning)


def test_a_pause_is_no_exception_so_except_exception_cannot_swallow_it() -> None:
    assert not issubclass(errors.GraphBubbleUp, Exception)
    assert issubclass(errors.GraphBubbleUp, BaseException)


def test_catch_by_cause() -> None:
    assert issubclass(errors.EncryptionError, errors.CheckpointError)
    assert issubclass(errors.InvalidAnswerError, errors.InterruptError)
