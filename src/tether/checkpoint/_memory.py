"""InMemorySaver: the reference Saver, held in dicts behind one lock.

It keeps bytes, exactly like the disk backends, so a test on it exercises the same encoding
and the same head compare-and-swap; it just forgets everything when the process ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from tether.checkpoint._base import CheckpointRow, Head, ThreadDump, ValueRow, WriteRow
from tether.checkpoint._chains import walk_chain
from tether.checkpoint._lease import (
    DEFAULT_LEASE_SECONDS,
    Claim,
    Fence,
    Lease,
    LeaseState,
    Owner,
    Ticket,
    check_lease_seconds,
    decide_claim,
    holds,
    lost_error,
    write_refusal,
)
from tether.checkpoint._saver import Saver
from tether.errors import CheckpointError
from tether.serde import Serializer, default_serializer


@dataclass
class _Thread:
    head: Head | None = None
    lease: Lease | None = None
    epoch: int = 0
    """The lease epoch, kept when the lease is released."""
    tickets: dict[str, Ticket] = field(default_factory=dict)
    """Runs waiting for the lease, by run id."""
    checkpoints: dict[str, CheckpointRow] = field(default_factory=dict)
    values: dict[tuple[str, int], ValueRow] = field(default_factory=dict)
    writes: dict[str, dict[tuple[str, str], WriteRow]] = field(default_factory=dict)
    """Write rows by task id, then (kind, key): a task's rows are found without a scan."""

    def put(self, rows: Sequence[WriteRow]) -> None:
        for w in rows:
            self.writes.setdefault(w.task_id, {})[(w.kind, w.key)] = w


class InMemorySaver(Saver):
    """A Saver that lives in this process only. Good for tests and notebooks."""

    blocking = False

    def __init__(
        self, *, serde: Serializer | None = None, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> None:
        self.serde: Serializer = serde if serde is not None else default_serializer()
        self.lease_seconds = check_lease_seconds(lease_seconds)
        self._lock = threading.Lock()
        self._threads: dict[str, _Thread] = {}

    def close(self) -> None:
        pass

    def _thread(self, thread_id: str) -> _Thread | None:
        return self._threads.get(thread_id)

    def get_head(self, thread_id: str) -> Head | None:
        t = self._threads.get(thread_id)
        return t.head if t is not None else None

    def get_checkpoint(self, thread_id: str, checkpoint_id: str) -> CheckpointRow | None:
        t = self._threads.get(thread_id)
        return t.checkpoints.get(checkpoint_id) if t is not None else None

    def list_checkpoints(
        self, thread_id: str, *, before_version: int | None = None, limit: int | None = None
    ) -> Iterator[CheckpointRow]:
        with self._lock:
            t = self._threads.get(thread_id)
            rows = sorted(t.checkpoints.values(), key=lambda r: -r.version) if t else []
        if before_version is not None:
            rows = [r for r in rows if r.version < before_version]
        if limit is not None:
            rows = rows[:limit]
        return iter(rows)

    def get_values(self, thread_id: str, wanted: Mapping[str, int]) -> dict[str, list[ValueRow]]:
        with self._lock:
            t = self._threads.get(thread_id)
            stored = t.values if t is not None else {}
            return {
                ch: walk_chain(thread_id, ch, v, lambda c, ver: stored.get((c, ver)))
                for ch, v in wanted.items()
            }

    def get_writes(self, thread_id: str, task_ids: Sequence[str]) -> list[WriteRow]:
        with self._lock:
            t = self._threads.get(thread_id)
            if t is None:
                return []
            wanted = set(task_ids)
            return [w for tid in wanted for w in t.writes.get(tid, {}).values()]

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
        now = time.time()
        with self._lock:
            t = self._threads.get(thread_id) or _Thread()
            current = t.head.version if t.head is not None else None
            refused = write_refusal(thread_id, t.lease, fence, now, current == expected_version)
            if refused is not None:
                raise refused
            self._threads[thread_id] = t
            t.checkpoints[checkpoint.checkpoint_id] = checkpoint
            for v in values:
                t.values[(v.channel, v.version)] = v
            t.put(writes)
            t.head = Head(checkpoint.checkpoint_id, checkpoint.version)
            if fence is not None and t.lease is not None:
                t.lease = replace(t.lease, expires_at=now + lease_seconds)

    def put_writes(
        self,
        thread_id: str,
        writes: Sequence[WriteRow],
        *,
        fence: Fence | None = None,
        durable: bool,
    ) -> None:
        now = time.time()
        with self._lock:
            t = self._threads.get(thread_id) or _Thread()
            refused = write_refusal(thread_id, t.lease, fence, now, True)
            if refused is not None:
                raise refused
            self._threads[thread_id] = t
            t.put(writes)

    def claim(
        self, thread_id: str, owner: Owner, lease_seconds: float, *, waiting: bool = False
    ) -> Claim:
        now = time.time()
        with self._lock:
            t = self._threads.get(thread_id) or _Thread()
            state = LeaseState(t.lease, t.epoch, tuple(t.tickets.values()))
            decision = decide_claim(thread_id, state, owner, now, lease_seconds, waiting=waiting)
            self._threads[thread_id] = t
            for run in decision.drop:
                t.tickets.pop(run, None)
            if decision.ticket is not None:
                t.tickets[owner.run_id] = decision.ticket
            if decision.lease is None:
                assert decision.error is not None
                raise decision.error
            t.lease, t.epoch = decision.lease, decision.lease.epoch
            return Claim(t.head, Fence(owner.run_id, t.epoch))

    def renew(self, thread_id: str, fence: Fence, lease_seconds: float) -> None:
        with self._lock:
            t = self._threads.get(thread_id)
            lease = t.lease if t is not None else None
            if t is None or lease is None or not holds(lease, fence):
                raise lost_error(thread_id, fence, lease)
            t.lease = replace(lease, expires_at=time.time() + lease_seconds)

    def release(self, thread_id: str, owner: Owner) -> None:
        with self._lock:
            t = self._threads.get(thread_id)
            if t is None:
                return
            t.tickets.pop(owner.run_id, None)
            if t.lease is not None and t.lease.owner.run_id == owner.run_id:
                t.lease = None
            if t.head is None and t.lease is None and not t.writes and not t.tickets:
                del self._threads[thread_id]

    def list_threads(self) -> list[str]:
        with self._lock:
            return sorted(k for k, t in self._threads.items() if t.head is not None)

    def delete_thread(self, thread_id: str) -> None:
        with self._lock:
            self._threads.pop(thread_id, None)

    def delete_checkpoints(
        self,
        thread_id: str,
        checkpoint_ids: Sequence[str],
        values: Sequence[tuple[str, int]],
        task_ids: Sequence[str],
    ) -> None:
        with self._lock:
            t = self._threads.get(thread_id)
            if t is None:
                return
            for cid in checkpoint_ids:
                t.checkpoints.pop(cid, None)
            for key in values:
                t.values.pop(key, None)
            gone = set(task_ids)
            for tid in gone:
                t.writes.pop(tid, None)

    def dump_thread(self, thread_id: str) -> ThreadDump:
        with self._lock:
            t = self._threads.get(thread_id)
            if t is None:
                return ThreadDump(thread_id, None, [], [], [])
            return ThreadDump(
                thread_id,
                t.head,
                sorted(t.checkpoints.values(), key=lambda r: r.version),
                sorted(t.values.values(), key=lambda v: (v.channel, v.version)),
                [w for rows in t.writes.values() for w in rows.values()],
            )

    def load_thread(self, dump: ThreadDump) -> None:
        with self._lock:
            existing = self._threads.get(dump.thread_id)
            if existing is not None and existing.head is not None:
                raise CheckpointError(
                    f"thread {dump.thread_id!r} already exists; delete it first or import "
                    "under another thread id"
                )
            t = _Thread(head=dump.head)
            for c in dump.checkpoints:
                t.checkpoints[c.checkpoint_id] = c
            for v in dump.values:
                t.values[(v.channel, v.version)] = v
            t.put(dump.writes)
            self._threads[dump.thread_id] = t
