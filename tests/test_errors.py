"""The error tree: every class is a TetherError and appears in the module's drawn tree."""

from __future__ import annotations

import tether.errors as errors


def test_every_error_is_a_tether_error_and_is_drawn_in_the_tree() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.TetherError), name
        assert name in doc, f"{name} is missing from the tree in tether/errors.py"


def test_catch_by_cause() -> None:
    assert issubclass(errors.EncryptionError, errors.CheckpointError)
    assert issubclass(errors.InvalidAnswerError, errors.InterruptError)
