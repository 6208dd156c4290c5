"""SqliteSaver: the Saver protocol on one SQLite file (WAL), shared by threads and processes.

Invariant: every method is one SQLite transaction; ``commit`` reads and compares the head
under ``BEGIN IMMEDIATE`` so writers on one file serialize and exactly one wins a version.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from tether.checkpoint._base import CheckpointRow, Head, ThreadDump, ValueRow, WriteRow
from tether.checkpoint._chains import chain_from_rows
from tether.checkpoint._lease import (
    DEFAULT_LEASE_SECONDS,
    Claim,
    ClaimDecision,
    Fence,
    LeaseState,
    Owner,
    Ticket,
    check_lease_seconds,
    decide_claim,
    lost_error,
    write_refusal,
)
from tether.checkpoint._saver import Saver
from tether.checkpoint._sqlite_open import open_database
from tether.checkpoint._sqlite_rows import (
    CHECKPOINT_COLS,
    HEAD_SQL,
    checkpoint_of,
    epoch_of,
    head_of,
    insert_rows,
    lease_of,
    new_thread,
    pack_id,
    write_of,
)
from tether.checkpoint._sqlite_schema import VERSION_BITS, VERSION_MASK
from tether.errors import CheckpointError
from tether.serde import Serializer, default_serializer

# SQLite allows 32766 bound parameters per statement; stay far below it.
_CHUNK = 400


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


class SqliteSaver(Saver):
    """A Saver on a SQLite file. ``with SqliteSaver("agent.db") as saver: ...``

    One connection per saver, guarded by a lock: threads of a process take turns (no
    SQLite busy-waiting between them), other processes wait up to ``busy_timeout_ms``.

    ``read_only=True`` opens the file for reading only (``mode=ro``): it needs no write
    access to the file or its directory, never creates, migrates or changes the file, and
    every write method raises CheckpointError. A file that holds another application's
    tables is refused unless ``allow_other_tables=True``, which adds tether's tables beside
    them.
    """

    blocking = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        serde: Serializer | None = None,
        busy_timeout_ms: int = 30000,
        read_only: bool = False,
        allow_other_tables: bool = False,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> None:
        self.serde: Serializer = serde if serde is not None else default_serializer()
        self.lease_seconds = check_lease_seconds(lease_seconds)
        self.path = os.fspath(path)
        self.read_only = read_only
        self._lock = threading.RLock()
        self._synchronous = "NORMAL"
        self._conn: sqlite3.Connection | None = open_database(
            self.path,
            read_only=read_only,
            busy_timeout_ms=busy_timeout_ms,
            allow_other_tables=allow_other_tables,
            synchronous=self._synchronous,
        )

    @classmethod
    @contextmanager
    def from_conn_string(cls, conn_string: str, **kwargs: Any) -> Iterator[SqliteSaver]:
        """Open ``conn_string`` (a path, ":memory:", or "sqlite:///path") for a ``with`` block."""
        path = conn_string.removeprefix("sqlite:///")
        saver = cls(path, **kwargs)
        try:
            yield saver
        finally:
            saver.close()

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            if self.read_only:
                conn.close()
                return
            try:
                # Fold the WAL back into the file so no -wal file lingers after a clean close.
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            conn.close()

    @contextmanager
    def _tx(
        self, thread_id: str, begin: str | None = None, durable: bool | None = None
    ) -> Iterator[sqlite3.Connection]:
        """Run a block on the connection, in a transaction if ``begin`` is given; any sqlite3
        error becomes a CheckpointError naming the thread and the file."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise CheckpointError(f"thread {thread_id!r}: {self.path}: the saver is closed")
            if begin == "IMMEDIATE" and self.read_only:
                raise CheckpointError(
                    f"thread {thread_id!r}: {self.path} is open read-only "
                    "(SqliteSaver(read_only=True)); open it without read_only to write"
                )
            try:
                if durable is not None:
                    # Cannot change inside a transaction; WAL + FULL fsyncs at each commit.
                    wanted = "FULL" if durable else "NORMAL"
                    if wanted != self._synchronous:
                        conn.execute(f"PRAGMA synchronous = {wanted}")
                        self._synchronous = wanted
                if begin is not None:
                    conn.execute(f"BEGIN {begin}")
                yield conn
                if conn.in_transaction:
                    conn.execute("COMMIT")
            except sqlite3.Error as e:
                self._rollback(conn)
                raise CheckpointError(
                    f"thread {thread_id!r}: checkpoint database {self.path} failed: {e}"
                ) from e
            except BaseException:
                self._rollback(conn)
                raise

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    @staticmethod
    def _tid(conn: sqlite3.Connection, thread_id: str) -> int | None:
        row = conn.execute("SELECT tid FROM heads WHERE thread_id = ?", (thread_id,)).fetchone()
        return int(row[0]) if row is not None else None

    # -- reads ---------------------------------------------------------------------------

    def get_head(self, thread_id: str) -> Head | None:
        with self._tx(thread_id) as conn:
            return head_of(conn.execute(HEAD_SQL, (thread_id,)).fetchone())

    def get_checkpoint(self, thread_id: str, checkpoint_id: str) -> CheckpointRow | None:
        with self._tx(thread_id) as conn:
            row = conn.execute(
                f"SELECT {CHECKPOINT_COLS} FROM heads h JOIN checkpoints c "
                "ON c.tid = h.tid AND c.checkpoint_id = ? WHERE h.thread_id = ?",
                (pack_id(checkpoint_id), thread_id),
            ).fetchone()
            return checkpoint_of(thread_id, row) if row is not None else None

    def list_checkpoints(
        self, thread_id: str, *, before_version: int | None = None, limit: int | None = None
    ) -> Iterator[CheckpointRow]:
        top = VERSION_MASK if before_version is None else min(before_version - 1, VERSION_MASK)
        if top < 0 or limit == 0:
            return iter([])
        with self._tx(thread_id) as conn:
            rows = conn.execute(
                f"SELECT {CHECKPOINT_COLS} FROM heads h JOIN checkpoints c "
                f"ON c.rowid BETWEEN h.tid << {VERSION_BITS} AND (h.tid << {VERSION_BITS}) + ? "
                "WHERE h.thread_id = ? ORDER BY c.rowid DESC LIMIT ?",
                (top, thread_id, limit if limit is not None else -1),
            ).fetchall()
            return iter([checkpoint_of(thread_id, r) for r in rows])

    def get_values(self, thread_id: str, wanted: Mapping[str, int]) -> dict[str, list[ValueRow]]:
        items = list(wanted.items())
        found: dict[str, list[ValueRow]] = {ch: [] for ch in wanted}
        with self._tx(thread_id, "DEFERRED" if len(items) > _CHUNK else None) as conn:
            for chunk in _chunks(items):
                # One query for all channels: find each wanted row, then its whole chain
                # (every version of the channel from the row's base up to it).
                rows = conn.execute(
                    "WITH want(channel, version) AS (VALUES "
                    + ", ".join(["(?, ?)"] * len(chunk))
                    + ") SELECT v.channel, v.version, v.prev, v.base, v.payload FROM want w "
                    "JOIN heads h ON h.thread_id = ? "
                    "JOIN vals t ON t.tid = h.tid AND t.channel = w.channel "
                    "AND t.version = w.version "
                    "JOIN vals v ON v.tid = h.tid AND v.channel = w.channel "
                    "AND v.version BETWEEN t.base AND t.version",
                    [x for pair in chunk for x in pair] + [thread_id],
                ).fetchall()
                for r in rows:
                    found[r[0]].append(ValueRow(*r))
        return {ch: chain_from_rows(thread_id, ch, v, found[ch]) for ch, v in items}

    def get_writes(self, thread_id: str, task_ids: Sequence[str]) -> list[WriteRow]:
        out: list[WriteRow] = []
        ids = [pack_id(t) for t in dict.fromkeys(task_ids)]
        with self._tx(thread_id, "DEFERRED" if len(ids) > _CHUNK else None) as conn:
            for chunk in _chunks(ids):
                rows = conn.execute(
                    "SELECT w.task_id, w.kind, w.key, w.payload FROM heads h "
                    "JOIN writes w ON w.tid = h.tid WHERE h.thread_id = ? AND w.task_id IN ("
                    + ", ".join(["?"] * len(chunk))
                    + ")",
                    [thread_id, *chunk],
                ).fetchall()
                out.extend(write_of(r) for r in rows)
        return out

    def list_threads(self) -> list[str]:
        with self._tx("*") as conn:
            rows = conn.execute(
                "SELECT thread_id FROM heads WHERE checkpoint_id IS NOT NULL ORDER BY thread_id"
            ).fetchall()
        return [r[0] for r in rows]

    def dump_thread(self, thread_id: str) -> ThreadDump:
        with self._tx(thread_id, "DEFERRED") as conn:
            head_row = conn.execute(HEAD_SQL, (thread_id,)).fetchone()
            if head_row is None:
                return ThreadDump(thread_id, None, [], [], [])
            tid = head_row[0]
            checkpoints = [
                checkpoint_of(thread_id, r)
                for r in conn.execute(
                    f"SELECT {CHECKPOINT_COLS} FROM checkpoints c WHERE c.tid = ? ORDER BY c.rowid",
                    (tid,),
                )
            ]
            values = [
                ValueRow(*r)
                for r in conn.execute(
                    "SELECT channel, version, prev, base, payload FROM vals WHERE tid = ? "
                    "ORDER BY channel, version",
                    (tid,),
                )
            ]
            writes = [
                write_of(r)
                for r in conn.execute(
                    "SELECT task_id, kind, key, payload FROM writes WHERE tid = ? ORDER BY rowid",
                    (tid,),
                )
            ]
            return ThreadDump(thread_id, head_of(head_row), checkpoints, values, writes)

    # -- writes --------------------------------------------------------------------------

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
        with self._tx(thread_id, "IMMEDIATE", durable) as conn:
            row = conn.execute(HEAD_SQL, (thread_id,)).fetchone()
            head = head_of(row)
            current = head.version if head is not None else None
            refused = write_refusal(
                thread_id, lease_of(row), fence, now, current == expected_version
            )
            if refused is not None:
                raise refused
            tid = int(row[0]) if row is not None else new_thread(conn, thread_id)
            insert_rows(conn, thread_id, tid, [checkpoint], values, writes)
            head_id = pack_id(checkpoint.checkpoint_id)
            if fence is None:
                conn.execute(
                    "UPDATE heads SET checkpoint_id = ?, version = ? WHERE thread_id = ?",
                    (head_id, checkpoint.version, thread_id),
                )
            else:
                conn.execute(
                    "UPDATE heads SET checkpoint_id = ?, version = ?, lease_expires = ? "
                    "WHERE thread_id = ?",
                    (head_id, checkpoint.version, now + lease_seconds, thread_id),
                )

    def put_writes(
        self,
        thread_id: str,
        writes: Sequence[WriteRow],
        *,
        fence: Fence | None = None,
        durable: bool,
    ) -> None:
        if not writes:
            return
        now = time.time()
        with self._tx(thread_id, "IMMEDIATE", durable) as conn:
            row = conn.execute(HEAD_SQL, (thread_id,)).fetchone()
            refused = write_refusal(thread_id, lease_of(row), fence, now, True)
            if refused is not None:
                raise refused
            tid = int(row[0]) if row is not None else new_thread(conn, thread_id)
            insert_rows(conn, thread_id, tid, [], [], writes)

    def claim(
        self, thread_id: str, owner: Owner, lease_seconds: float, *, waiting: bool = False
    ) -> Claim:
        now = time.time()
        with self._tx(thread_id, "IMMEDIATE", False) as conn:  # a lease needs no fsync
            row = conn.execute(HEAD_SQL, (thread_id,)).fetchone()
            tickets = conn.execute(
                "SELECT run_id, since, seen FROM waiters WHERE thread_id = ?", (thread_id,)
            ).fetchall()
            state = LeaseState(lease_of(row), epoch_of(row), tuple(Ticket(*t) for t in tickets))
            decision = decide_claim(thread_id, state, owner, now, lease_seconds, waiting=waiting)
            self._store_tickets(conn, thread_id, decision)
            lease = decision.lease
            if lease is not None:
                if row is None:
                    new_thread(conn, thread_id)
                conn.execute(
                    "UPDATE heads SET lease_run = ?, lease_host = ?, lease_pid = ?, "
                    "lease_proc = ?, lease_expires = ?, lease_epoch = ? WHERE thread_id = ?",
                    (
                        owner.run_id,
                        owner.host,
                        owner.pid,
                        owner.process.token,
                        lease.expires_at,
                        lease.epoch,
                        thread_id,
                    ),
                )
        if lease is None:  # raised after the commit, so that the caller's ticket is kept
            assert decision.error is not None
            raise decision.error
        return Claim(head_of(row), Fence(owner.run_id, lease.epoch))

    @staticmethod
    def _store_tickets(conn: sqlite3.Connection, thread_id: str, decision: ClaimDecision) -> None:
        conn.executemany(
            "DELETE FROM waiters WHERE thread_id = ? AND run_id = ?",
            [(thread_id, run) for run in decision.drop],
        )
        t = decision.ticket
        if t is not None:
            conn.execute(
                "INSERT OR REPLACE INTO waiters (thread_id, run_id, since, seen) "
                "VALUES (?, ?, ?, ?)",
                (thread_id, t.run_id, t.since, t.seen),
            )

    def renew(self, thread_id: str, fence: Fence, lease_seconds: float) -> None:
        with self._tx(thread_id, "IMMEDIATE", False) as conn:
            renewed = conn.execute(
                "UPDATE heads SET lease_expires = ? WHERE thread_id = ? AND lease_run = ? "
                "AND lease_epoch = ?",
                (time.time() + lease_seconds, thread_id, fence.run_id, fence.epoch),
            ).rowcount
            if not renewed:
                row = conn.execute(HEAD_SQL, (thread_id,)).fetchone()
                raise lost_error(thread_id, fence, lease_of(row))

    def release(self, thread_id: str, owner: Owner) -> None:
        with self._tx(thread_id, "IMMEDIATE", False) as conn:
            conn.execute(
                "DELETE FROM waiters WHERE thread_id = ? AND run_id = ?", (thread_id, owner.run_id)
            )
            conn.execute(
                "UPDATE heads SET lease_run = NULL, lease_host = NULL, lease_pid = NULL, "
                "lease_proc = NULL, lease_expires = NULL WHERE thread_id = ? AND lease_run = ?",
                (thread_id, owner.run_id),
            )
            # A row made only to hold a lease (claim before the first commit) goes with it.
            conn.execute(
                "DELETE FROM heads WHERE thread_id = ? AND checkpoint_id IS NULL "
                "AND lease_run IS NULL "
                "AND NOT EXISTS (SELECT 1 FROM writes w WHERE w.tid = heads.tid) "
                "AND NOT EXISTS (SELECT 1 FROM checkpoints c WHERE c.tid = heads.tid) "
                "AND NOT EXISTS (SELECT 1 FROM vals v WHERE v.tid = heads.tid)",
                (thread_id,),
            )

    @staticmethod
    def _delete_thread(conn: sqlite3.Connection, thread_id: str, tid: int) -> None:
        for table in ("checkpoints", "vals", "writes"):
            conn.execute(f"DELETE FROM {table} WHERE tid = ?", (tid,))
        conn.execute("DELETE FROM heads WHERE thread_id = ?", (thread_id,))

    def delete_thread(self, thread_id: str) -> None:
        with self._tx(thread_id, "IMMEDIATE") as conn:
            tid = self._tid(conn, thread_id)
            if tid is not None:
                self._delete_thread(conn, thread_id, tid)

    def delete_checkpoints(
        self,
        thread_id: str,
        checkpoint_ids: Sequence[str],
        values: Sequence[tuple[str, int]],
        task_ids: Sequence[str],
    ) -> None:
        with self._tx(thread_id, "IMMEDIATE") as conn:
            tid = self._tid(conn, thread_id)
            if tid is None:
                return
            conn.executemany(
                "DELETE FROM checkpoints WHERE tid = ? AND checkpoint_id = ?",
                [(tid, pack_id(cid)) for cid in checkpoint_ids],
            )
            conn.executemany(
                "DELETE FROM vals WHERE tid = ? AND channel = ? AND version = ?",
                [(tid, ch, v) for ch, v in values],
            )
            conn.executemany(
                "DELETE FROM writes WHERE tid = ? AND task_id = ?",
                [(tid, pack_id(t)) for t in dict.fromkeys(task_ids)],
            )

    def load_thread(self, dump: ThreadDump) -> None:
        thread_id = dump.thread_id
        with self._tx(thread_id, "IMMEDIATE") as conn:
            row = conn.execute(HEAD_SQL, (thread_id,)).fetchone()
            if head_of(row) is not None:
                raise CheckpointError(
                    f"thread {thread_id!r} already exists; delete it first or import under "
                    "another thread id"
                )
            if row is not None:
                # Like the in-memory saver: a thread without a head is replaced whole.
                self._delete_thread(conn, thread_id, int(row[0]))
            if dump.head is None and not (dump.checkpoints or dump.values or dump.writes):
                return
            tid = new_thread(conn, thread_id)
            if dump.head is not None:
                conn.execute(
                    "UPDATE heads SET checkpoint_id = ?, version = ? WHERE thread_id = ?",
                    (pack_id(dump.head.checkpoint_id), dump.head.version, thread_id),
                )
            insert_rows(conn, thread_id, tid, dump.checkpoints, dump.values, dump.writes)
