"""The rows every checkpoint backend stores (the contract itself is ``_saver.Saver``).

Invariant: a thread has one head (checkpoint id + version). ``commit`` is a compare-and-swap
on that version, atomic with the checkpoint row, its value rows and its write rows. Savers
store bytes only; the engine encodes (``saver.serde``) and decides what to store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

WriteKind = Literal["output", "journal", "interrupt", "resume", "error", "metrics"]


@dataclass(frozen=True, slots=True)
class Head:
    """The thread's current checkpoint and the version a commit must compare against."""

    checkpoint_id: str
    version: int


@dataclass(frozen=True, slots=True)
class CheckpointRow:
    """One checkpoint. ``body`` is the encoded ``CheckpointBody`` (versions, tasks, metadata).

    ``version`` is the head version this checkpoint was committed at; it orders the
    thread's history (newest first = highest version first), across branches.
    """

    thread_id: str
    checkpoint_id: str
    parent_id: str | None
    version: int
    step: int
    created_at: float
    body: bytes


@dataclass(frozen=True, slots=True)
class ValueRow:
    """One stored version of one channel.

    ``prev is None``: ``payload`` is the full encoded value (last-value channel or snapshot).
    Otherwise ``payload`` is an encoded list of writes to fold, in order, onto the value at
    version ``prev``. ``base`` is the version of the full value this delta chain starts
    from (``base == version`` for a full value), so a chain is read with one range query.
    """

    channel: str
    version: int
    prev: int | None
    base: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class WriteRow:
    """Something a task recorded before its step committed.

    kind "output": the task's finished writes (``key`` is ""); "journal": a ``@task`` result
    (``key`` is the call index); "interrupt": a raised interrupt (``key`` is its id);
    "resume": an answer to an interrupt (``key`` is its id); "error": the task's last error.
    Rows are keyed by (thread, task_id, kind, key); writing the same key again replaces it.
    """

    task_id: str
    kind: WriteKind
    key: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class ThreadDump:
    """Everything a thread holds, for export/import between backends."""

    thread_id: str
    head: Head | None
    checkpoints: list[CheckpointRow]
    values: list[ValueRow]
    writes: list[WriteRow]
    original_thread_id: str | None = None
    """Set when the dump was read from an export under another thread id."""
