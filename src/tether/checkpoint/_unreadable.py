"""How a stored record that cannot be read is reported: by the thread and the row at fault.

Invariant: every reader of stored bytes turns a decoding failure into a ``CheckpointError``
naming the thread and the record; damaged bytes (a failed checksum, a broken frame, shapes no
tether writes) are a ``CorruptionError``, a missing key an ``EncryptionError``.
"""

from __future__ import annotations

from tether.errors import (
    CheckpointError,
    CorruptionError,
    EncryptionError,
    SerializationError,
    TetherError,
)
from tether.serde._envelope import CorruptRecordError

RESTORE_HINT = "restore the thread from an export or a backup, or delete it"


def unreadable(exc: BaseException, thread_id: str, what: str) -> CheckpointError:
    """The error to raise (``from exc``) when ``what`` of thread ``thread_id`` cannot be read.

    ``exc`` is what decoding raised: a ``TetherError`` from the serializer, or a
    ``TypeError``/``ValueError``/... from a record whose shape is not one tether writes.
    """
    where = f"thread {thread_id!r}: {what}"
    if isinstance(exc, CorruptRecordError) or not isinstance(exc, TetherError):
        detail = exc if isinstance(exc, TetherError) else f"{type(exc).__name__}: {exc}"
        return CorruptionError(f"{where} cannot be read: it is damaged ({detail}); {RESTORE_HINT}")
    if isinstance(exc, EncryptionError):
        return EncryptionError(f"{where} cannot be read: {exc}")
    if isinstance(exc, CheckpointError | SerializationError):
        return CheckpointError(f"{where} cannot be read: {exc}")
    return CheckpointError(f"{where} cannot be read: {type(exc).__name__}: {exc}")


SHAPE_ERRORS = (TypeError, ValueError, IndexError, KeyError, AttributeError)
"""What unpacking a decoded record of the wrong shape raises (``a, b = record``, ...)."""
