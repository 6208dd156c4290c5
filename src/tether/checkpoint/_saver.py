"""The saver contract: one abstract base class every checkpoint backend derives from.

It declares the primitives a backend implements (reads, the head compare-and-swap, task
writes, leases, deletion, dump/load) with the rules each must keep, and builds prune, export
and import on those primitives only. Invariant: every method is thread-safe and synchronous;
the async entry points of the engine call them from a worker thread unless ``blocking`` is
False (the in-memory saver), so one contract serves sync and async.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import IO, Self

from tether.checkpoint._base import CheckpointRow, Head, ThreadDump, ValueRow, WriteRow
from tether.checkpoint._lease import DEFAULT_LEASE_SECONDS, Claim, Fence, Owner
from tether.checkpoint._ops import export_lines, parse_lines, prune_thread, renamed
from tether.errors import CheckpointError
from tether.serde import Serializer


class Saver(ABC):
    """A checkpoint backend. Subclasses implement the abstract primitives; ``with`` support,
    ``prune``, ``export_thread`` and ``import_thread`` come with the base class."""

    serde: Serializer
    """Encodes what the engine stores; savers themselves store bytes only."""
    blocking: bool = True
    """False when calls never block on I/O, so async callers may call them inline."""
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    """How long a run keeps the thread without a commit or a heartbeat renewal; after
    that another run may take it over (and the stalled one is fenced). Every saver takes
    it as a keyword argument; runs renew it every third of it."""

    # -- reads ---------------------------------------------------------------------------

    @abstractmethod
    def get_head(self, thread_id: str) -> Head | None:
        """The thread's head, or None for a thread that has never been committed."""

    @abstractmethod
    def get_checkpoint(self, thread_id: str, checkpoint_id: str) -> CheckpointRow | None:
        """One checkpoint by id, or None."""

    @abstractmethod
    def list_checkpoints(
        self, thread_id: str, *, before_version: int | None = None, limit: int | None = None
    ) -> Iterator[CheckpointRow]:
        """The thread's checkpoints, highest version first, all branches."""

    @abstractmethod
    def get_values(self, thread_id: str, wanted: Mapping[str, int]) -> dict[str, list[ValueRow]]:
        """For each channel, the chain ending at the wanted version: a full value first,
        then the deltas after it in order. Missing rows raise CheckpointError."""

    @abstractmethod
    def get_writes(self, thread_id: str, task_ids: Sequence[str]) -> list[WriteRow]:
        """All write rows recorded for these tasks (any order)."""

    @abstractmethod
    def list_threads(self) -> list[str]:
        """Ids of all threads that have a head, sorted."""

    @abstractmethod
    def dump_thread(self, thread_id: str) -> ThreadDump:
        """Every row of the thread (for export); an empty dump if it does not exist."""

    # -- writes --------------------------------------------------------------------------

    @abstractmethod
    def commit(
        self,
        thread_id: str,
        *,
        expected_version: int | None,
        checkpoint: CheckpointRow,
        values: Sequence[ValueRow],
        writes: Sequence[WriteRow],
        fence: Fence | None = None,
        lease_seconds: float,
        durable: bool,
    ) -> None:
        """Atomically: check the head version equals ``expected_version`` (None: the thread
        has no head) and the lease (``_lease.write_refusal``: with a ``fence``, the stored
        lease must still be that run's at that epoch, else LeaseLostError; without one, no
        unexpired lease may be held), then store the checkpoint, values and writes, move
        the head to the checkpoint with ``version = checkpoint.version`` (which is
        ``expected_version + 1``, or 1), and with a fence extend the lease to now +
        ``lease_seconds``. When a check fails it raises (ThreadBusyError, or its subclass
        LeaseLostError) and stores nothing. ``durable=True`` waits for the disk (fsync);
        False only needs the commit to survive the process (not the OS)."""

    @abstractmethod
    def put_writes(
        self,
        thread_id: str,
        writes: Sequence[WriteRow],
        *,
        fence: Fence | None = None,
        durable: bool,
    ) -> None:
        """Store write rows for tasks of the thread's pending step (upsert by key), under
        the same lease check as ``commit`` (made in the same transaction as the write)."""

    # -- leases (the rules: _lease.py) ---------------------------------------------------

    @abstractmethod
    def claim(
        self, thread_id: str, owner: Owner, lease_seconds: float, *, waiting: bool = False
    ) -> Claim:
        """Take the thread's lease for ``owner`` until now + ``lease_seconds`` and return
        the head with the run's fence, as ``_lease.decide_claim`` rules from the stored
        ``LeaseState`` (lease, epoch, tickets), read and written atomically: free, expired,
        its own, or held by an owner provably gone, and no older live waiter in line;
        taking it for another run bumps the epoch. Otherwise raise ThreadBusyError naming
        the holder (or the waiters). ``waiting``: the caller will try again, so a refusal
        stores or refreshes its ticket. A thread with no head gets a lease row so that two
        first runs also exclude each other."""

    @abstractmethod
    def renew(self, thread_id: str, fence: Fence, lease_seconds: float) -> None:
        """Extend the lease to now + ``lease_seconds`` if the stored lease is still the
        one ``fence`` was issued for; otherwise raise LeaseLostError and change nothing.
        (A heartbeat must never claim: that could take back a lease another run took
        and released.)"""

    @abstractmethod
    def release(self, thread_id: str, owner: Owner) -> None:
        """Drop the lease if ``owner``'s run holds it, keeping its epoch, and the run's
        ticket if it was waiting (no error otherwise)."""

    # -- maintenance ---------------------------------------------------------------------

    @abstractmethod
    def delete_thread(self, thread_id: str) -> None:
        """Remove everything the thread holds (no error if it does not exist)."""

    @abstractmethod
    def delete_checkpoints(
        self,
        thread_id: str,
        checkpoint_ids: Sequence[str],
        values: Sequence[tuple[str, int]],
        task_ids: Sequence[str],
    ) -> None:
        """Remove the given checkpoints, value rows (channel, version) and the write rows of
        the given tasks, in one transaction. The engine decides what is safe to remove."""

    @abstractmethod
    def load_thread(self, dump: ThreadDump) -> None:
        """Store a dump as a new thread. Raises CheckpointError if the thread exists."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and files. Idempotent."""

    # -- built on the primitives ---------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def prune(self, thread_id: str, *, keep_last: int) -> int:
        """Keep the newest ``keep_last`` checkpoints (and every value they need); returns
        how many were deleted."""
        return prune_thread(self, thread_id, keep_last)

    def export_thread(self, thread_id: str, file: IO[str]) -> int:
        """Write the thread as JSON lines; returns the number of lines."""
        dump = self.dump_thread(thread_id)
        if dump.head is None:
            raise CheckpointError(f"thread {thread_id!r} does not exist; nothing to export")
        n = 0
        for line in export_lines(dump):
            file.write(line + "\n")
            n += 1
        return n

    def import_thread(self, file: IO[str], *, thread_id: str | None = None) -> str:
        """Load a thread written by ``export_thread`` (from any backend), under
        ``thread_id`` if given; returns its id."""
        dump = parse_lines(file, thread_id)
        self.load_thread(renamed(self, dump))
        return dump.thread_id
