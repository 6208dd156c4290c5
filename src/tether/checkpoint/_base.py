"""The Saver protocol: what every checkpoint backend stores, and the rules it must keep.

Invariant: a thread has one head (checkpoint id + version). ``commit`` is a compare-and-swap
on that version, atomic with the checkpoint row, its value rows and its write rows. Savers
store bytes only; the engine encodes (``saver.serde``) and decides what to store.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from tether.serde import Serializer

WriteKind = Literal["output", "journal", "interrupt", "resume", "error", "metrics"]

HOSTNAME = socket.gethostname()

ENDED_RUNS: set[str] = set()
"""Run ids of this process that ended without releasing their lease (the release failed,
say while the server was down); their leases are free for this process to take."""


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
class Owner:
    """Who holds a thread's lease: a run, on a host, in a process."""

    run_id: str
    host: str = HOSTNAME
    pid: int = field(default_factory=os.getpid)

    def is_dead_here(self) -> bool:
        """True when the owner was a process on this host that no longer exists, or a run of
        this very process that has ended (its release may have failed, say while the
        server was down)."""
        if self.host != HOSTNAME:
            return False
        if self.pid == os.getpid():
            return self.run_id in ENDED_RUNS
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


@dataclass(frozen=True, slots=True)
class Lease:
    """A thread's lease as stored: the owner and the wall-clock time it expires."""

    owner: Owner
    expires_at: float


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


@runtime_checkable
class Saver(Protocol):
    """A checkpoint backend. All methods are thread-safe and synchronous.

    The async entry points of the engine call them from a worker thread unless
    ``blocking`` is False (the in-memory saver), so one protocol serves sync and async.
    """

    serde: Serializer
    blocking: bool

    def get_head(self, thread_id: str) -> Head | None:
        """The thread's head, or None for a thread that has never been committed."""
        ...

    def get_checkpoint(self, thread_id: str, checkpoint_id: str) -> CheckpointRow | None:
        """One checkpoint by id, or None."""
        ...

    def list_checkpoints(
        self, thread_id: str, *, before_version: int | None = None, limit: int | None = None
    ) -> Iterator[CheckpointRow]:
        """The thread's checkpoints, highest version first, all branches."""
        ...

    def get_values(self, thread_id: str, wanted: Mapping[str, int]) -> dict[str, list[ValueRow]]:
        """For each channel, the chain ending at the wanted version: a full value first,
        then the deltas after it in order. Missing rows raise CheckpointError."""
        ...

    def get_writes(self, thread_id: str, task_ids: Sequence[str]) -> list[WriteRow]:
        """All write rows recorded for these tasks (any order)."""
        ...

    def commit(
        self,
        thread_id: str,
        *,
        expected_version: int | None,
        checkpoint: CheckpointRow,
        values: Sequence[ValueRow],
        writes: Sequence[WriteRow],
        owner: Owner | None,
        lease_seconds: float,
        durable: bool,
    ) -> None:
        """Atomically: check the head version equals ``expected_version`` (None: the thread
        has no head) and that no other live owner holds the lease, then store the checkpoint,
        values and writes, move the head to the checkpoint with ``version =
        checkpoint.version`` (which is ``expected_version + 1``, or 1), and renew the lease
        for ``owner`` (if given). Raises ThreadBusyError when the check fails, storing
        nothing. ``durable=True`` waits for the disk (fsync); False only needs the commit to
        survive the process (not the OS)."""
        ...

    def put_writes(self, thread_id: str, writes: Sequence[WriteRow], *, durable: bool) -> None:
        """Store write rows for tasks of the thread's pending step (upsert by key)."""
        ...

    def claim(self, thread_id: str, owner: Owner, lease_seconds: float) -> Head | None:
        """Take the thread's lease for ``owner`` and return the head. Succeeds when the lease
        is free, expired, held by the same run, or held by a dead process on this host;
        otherwise raises ThreadBusyError naming the holder. A thread with no head gets a
        lease row so that two first runs also exclude each other."""
        ...

    def release(self, thread_id: str, owner: Owner) -> None:
        """Drop the lease if ``owner`` holds it (no error otherwise)."""
        ...

    def list_threads(self) -> list[str]:
        """Ids of all threads that have a head, sorted."""
        ...

    def delete_thread(self, thread_id: str) -> None:
        """Remove everything the thread holds (no error if it does not exist)."""
        ...

    def delete_checkpoints(
        self,
        thread_id: str,
        checkpoint_ids: Sequence[str],
        values: Sequence[tuple[str, int]],
        task_ids: Sequence[str],
    ) -> None:
        """Remove the given checkpoints, value rows (channel, version) and the write rows of
        the given tasks, in one transaction. The engine decides what is safe to remove."""
        ...

    def dump_thread(self, thread_id: str) -> ThreadDump:
        """Every row of the thread (for export); an empty dump if it does not exist."""
        ...

    def load_thread(self, dump: ThreadDump) -> None:
        """Store a dump as a new thread. Raises CheckpointError if the thread exists."""
        ...

    def close(self) -> None:
        """Release connections and files. Idempotent."""
        ...
