"""PostgresSaver: the Saver protocol on PostgreSQL through psycopg 3 and a connection pool.

Invariant: ``commit`` is one statement (one round trip, one transaction) whose head
compare-and-swap gates every insert, so a lost race stores nothing and raises ThreadBusyError.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from tether.checkpoint._base import CheckpointRow, Head, ThreadDump, ValueRow, WriteRow
from tether.checkpoint._chains import chain_from_rows
from tether.checkpoint._lease import (
    DEFAULT_LEASE_SECONDS,
    Claim,
    ClaimDecision,
    Fence,
    LeaseState,
    Owner,
    advanced_error,
    check_lease_seconds,
    decide_claim,
    lost_error,
    write_refusal,
)
from tether.checkpoint._postgres_schema import migrate, quote_schema
from tether.checkpoint._postgres_sql import (
    _CP_COLS,
    _FENCED,
    _HEAD_COLS,
    _WRITES_UPSERT,
    _checkpoint,
    _commit_sql,
    _epoch_of,
    _fence_params,
    _lease_of,
    _put_writes_sql,
    _safe_dsn,
    _tickets_of,
    _value,
    _write,
    _writes_params,
)
from tether.checkpoint._postgres_timeouts import WATCHDOG, Alarm, Timeouts, store_error
from tether.checkpoint._saver import Saver
from tether.errors import CheckpointError, StoreTimeoutError
from tether.serde import Serializer

Conn = psycopg.Connection[Any]


class PostgresSaver(Saver):
    """A Saver on PostgreSQL. ``with PostgresSaver("postgresql://...") as saver: ...``

    Tables live in ``schema`` (created and migrated on open). Every method takes its own
    pooled connection, so threads run in parallel up to ``max_size`` connections.
    ``prepare=False`` turns prepared statements off (PgBouncer in transaction mode).
    ``durable=False`` commits with ``synchronous_commit = off``: the commit survives a crash of
    this process, and may be lost (never half-applied) if the database server crashes (its
    process or its OS) within about three times ``wal_writer_delay`` (600 ms by default) of it.
    With ``dsn=None`` and no pool, libpq's defaults (``PGHOST``, ``PGDATABASE``, ...) apply.

    Timeouts (every one ends in StoreTimeoutError naming the server, the call and the setting):

    - ``connect_timeout=10``: seconds to open a connection (libpq ``connect_timeout``; at
      least 2).
    - ``statement_timeout=30.0``: seconds one saver call may wait on the server, enforced by
      this process (a watchdog shuts the connection down), because a frozen server can
      enforce nothing; None waits forever. It is not the server's ``statement_timeout``,
      which PgBouncer's transaction mode could not carry: set that per role to make the
      server stop work too. A write that timed out may still be applied if the server wakes.
    - ``keepalive_idle=30``: seconds of silence before TCP keepalive probes start (libpq
      ``keepalives=1``, ``keepalives_idle``, ``keepalives_interval`` = a third of it,
      ``keepalives_count=3``, ``tcp_user_timeout`` = twice it), so a dead host or network is
      noticed on idle pooled connections within about a minute; None keeps the OS defaults.
    - ``timeout=10.0``: seconds a call waits for a free pooled connection.

    Parameters written in the DSN win over these. With ``pool=``, the pool's own connection
    settings apply and only ``statement_timeout`` is added.
    """

    blocking = True

    def __init__(
        self,
        dsn: str | None = None,
        *,
        pool: ConnectionPool[Any] | None = None,
        schema: str = "tether",
        serde: Serializer | None = None,
        prepare: bool = True,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 10.0,
        connect_timeout: int = 10,
        statement_timeout: float | None = 30.0,
        keepalive_idle: int | None = 30,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> None:
        if serde is None:
            from tether.serde import default_serializer  # type: ignore[attr-defined]

            serde = cast(Serializer, default_serializer())
        self.serde: Serializer = serde
        self.lease_seconds = check_lease_seconds(lease_seconds)
        self._schema = schema
        self._s = s = quote_schema(schema)
        self._prepare = prepare
        self._closed = False
        self._sql = {
            (fenced, first, durable): _commit_sql(s, fenced=fenced, first=first, durable=durable)
            for fenced in (True, False)
            for first in (True, False)
            for durable in (True, False)
        }
        self._timeouts = Timeouts(connect_timeout, statement_timeout, keepalive_idle, timeout)
        self._put_sql = {
            (fenced, durable): _put_writes_sql(s, fenced=fenced, durable=durable)
            for fenced in (True, False)
            for durable in (True, False)
        }
        self._conninfo = dsn if dsn is not None else ""
        self._libpq = self._timeouts.libpq(self._conninfo)
        self._pool_args: dict[str, Any] = {
            "min_size": min_size,
            "max_size": max_size,
            "timeout": timeout,
            "kwargs": {
                "autocommit": True,
                "prepare_threshold": 5 if prepare else None,
                **self._libpq,
            },
            "name": f"tether-{schema}",
        }
        # Taken only after a connection failure, to replace the pool once (never per call).
        self._repair_lock = threading.Lock()
        self._broken = False
        if pool is not None:
            self._pool: ConnectionPool[Any] = pool
            self._own_pool = False
            with self._conn("opening the schema", None) as conn:
                self._migrate(conn)
            return
        self._own_pool = True
        alarm: Alarm | None = None
        try:
            with self._connect_direct() as conn, self._deadline(conn) as alarm:
                self._migrate(conn)
            self._pool = ConnectionPool(self._conninfo, open=True, **self._pool_args)
        except psycopg.Error as exc:
            error = self._store_error(exc, "opening the database", None, alarm)
            if not isinstance(error, StoreTimeoutError):
                error = CheckpointError(
                    f"PostgresSaver: cannot open database {self._server()!r}: {exc}"
                )
            raise error from exc

    def _connect_direct(self) -> Conn:
        return psycopg.connect(
            self._conninfo, autocommit=True, prepare_threshold=None, **self._libpq
        )

    def _migrate(self, conn: Conn) -> None:
        migrate(conn, self._schema)

    def _server(self) -> str:
        """Which server, for messages (never with the password)."""
        conninfo: object = self._conninfo
        if not self._own_pool:
            conninfo = getattr(self._pool, "conninfo", None)
        return _safe_dsn(conninfo) if isinstance(conninfo, str) else "<the pool's server>"

    @contextmanager
    def _deadline(self, conn: Conn) -> Iterator[Alarm | None]:
        """``statement_timeout`` for the block: past it, the watchdog shuts the connection
        down under the call. A connection whose alarm went off is closed here, so the pool
        never hands out a socket that was shut down, even when the call won the race."""
        seconds = self._timeouts.statement
        if seconds is None:
            yield None
            return
        alarm = WATCHDOG.arm(conn, seconds)
        try:
            yield alarm
        finally:
            WATCHDOG.disarm(alarm)
            if alarm.fired:
                conn.close()

    def _store_error(
        self, exc: psycopg.Error, what: str, thread_id: str | None, alarm: Alarm | None
    ) -> CheckpointError:
        return store_error(
            exc,
            what=what,
            thread_id=thread_id,
            server=self._server(),
            timeouts=self._timeouts,
            fired=alarm is not None and alarm.fired,
            connect_seconds=self._timeouts.connect_seconds(self._conninfo),
        )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._own_pool:
            self._pool.close()

    @contextmanager
    def _conn(self, what: str, thread_id: str | None) -> Iterator[Conn]:
        """A pooled connection in autocommit mode, under ``statement_timeout``; psycopg errors
        become CheckpointError (StoreTimeoutError when a timeout ran out)."""
        if self._closed:
            raise CheckpointError(f"PostgresSaver: {what}: the saver is closed")
        pool = self._pool
        alarm: Alarm | None = None
        try:
            pool = self._usable_pool()
            with pool.connection() as conn, self._deadline(conn) as alarm:
                autocommit, threshold = conn.autocommit, conn.prepare_threshold
                if not autocommit:
                    conn.autocommit = True
                if not self._prepare:
                    conn.prepare_threshold = None
                try:
                    yield conn
                except psycopg.Error:
                    if conn.broken or conn.closed:
                        self._lost_connection(pool, timed_out=alarm is not None and alarm.fired)
                    raise
                finally:
                    if not conn.closed and not conn.broken:
                        conn.autocommit, conn.prepare_threshold = autocommit, threshold
        except psycopg.Error as exc:
            if isinstance(exc, PoolTimeout):
                self._lost_connection(pool, timed_out=True)
            raise self._store_error(exc, what, thread_id, alarm) from exc

    def _lost_connection(self, pool: ConnectionPool[Any], *, timed_out: bool = False) -> None:
        """The server went away. Our own pool is replaced on next use (after a direct connect
        shows the server is back), so calls fail fast while it is down and work as soon as it
        returns, instead of waiting out the pool's reconnection backoff. A caller's pool is
        checked instead, unless the server stopped answering: ``check`` has no deadline."""
        if not self._own_pool:
            if timed_out:
                return
            try:
                pool.check()
            except Exception:
                pass
        elif pool is self._pool:
            self._broken = True

    def _usable_pool(self) -> ConnectionPool[Any]:
        if not self._broken:
            return self._pool
        with self._repair_lock:
            if self._broken:
                self._connect_direct().close()  # raises while the server is still away
                old, self._pool = (
                    self._pool,
                    ConnectionPool(self._conninfo, open=True, **self._pool_args),
                )
                self._broken = False
                old.close(timeout=1.0)
        return self._pool

    def _read_head_row(self, conn: Conn, thread_id: str) -> tuple[Any, ...] | None:
        return conn.execute(
            f"SELECT {_HEAD_COLS} FROM {self._s}.heads WHERE thread_id = %s", [thread_id]
        ).fetchone()

    # reads

    def get_head(self, thread_id: str) -> Head | None:
        with self._conn("reading the head", thread_id) as conn:
            row = self._read_head_row(conn, thread_id)
        if row is None or row[0] is None:
            return None
        return Head(row[0], int(row[1]))

    def get_checkpoint(self, thread_id: str, checkpoint_id: str) -> CheckpointRow | None:
        with self._conn("reading a checkpoint", thread_id) as conn:
            row = conn.execute(
                f"SELECT {_CP_COLS} FROM {self._s}.checkpoints "
                "WHERE thread_id = %s AND checkpoint_id = %s",
                [thread_id, checkpoint_id],
            ).fetchone()
        return None if row is None else _checkpoint(thread_id, row)

    def list_checkpoints(
        self, thread_id: str, *, before_version: int | None = None, limit: int | None = None
    ) -> Iterator[CheckpointRow]:
        with self._conn("listing checkpoints", thread_id) as conn:
            rows = conn.execute(
                f"SELECT {_CP_COLS} FROM {self._s}.checkpoints WHERE thread_id = %s "
                "AND (%s::int8 IS NULL OR version < %s::int8) "
                "ORDER BY version DESC LIMIT %s::int8",
                [thread_id, before_version, before_version, limit],
            ).fetchall()
        return iter([_checkpoint(thread_id, r) for r in rows])

    def get_values(self, thread_id: str, wanted: Mapping[str, int]) -> dict[str, list[ValueRow]]:
        if not wanted:
            return {}
        channels = list(wanted)
        with self._conn("reading channel values", thread_id) as conn:
            rows = conn.execute(
                # LATERAL: find each chain's base by key, then one index range scan per
                # channel (a plain join lets the planner pick a quadratic nested loop; OFFSET 0
                # keeps it from flattening the subqueries back into one).
                "SELECT w.channel, v.version, v.prev, v.base, v.payload "
                "FROM unnest(%(ch)s::text[], %(ver)s::int8[]) AS w(channel, version) "
                "CROSS JOIN LATERAL (SELECT t.base FROM "
                f"{self._s}.vals t WHERE t.thread_id = %(tid)s AND t.channel = w.channel "
                "AND t.version = w.version OFFSET 0) tip "
                "CROSS JOIN LATERAL (SELECT x.version, x.prev, x.base, x.payload FROM "
                f"{self._s}.vals x WHERE x.thread_id = %(tid)s AND x.channel = w.channel "
                "AND x.version BETWEEN tip.base AND w.version OFFSET 0) v",
                {"ch": channels, "ver": [wanted[c] for c in channels], "tid": thread_id},
            ).fetchall()
        by_channel: dict[str, list[ValueRow]] = {c: [] for c in channels}
        for r in rows:
            by_channel[r[0]].append(_value(r))
        return {c: chain_from_rows(thread_id, c, v, by_channel[c]) for c, v in wanted.items()}

    def get_writes(self, thread_id: str, task_ids: Sequence[str]) -> list[WriteRow]:
        if not task_ids:
            return []
        with self._conn("reading task writes", thread_id) as conn:
            rows = conn.execute(
                f"SELECT task_id, kind, key, payload FROM {self._s}.writes "
                "WHERE thread_id = %s AND task_id = ANY(%s::text[])",
                [thread_id, list(task_ids)],
            ).fetchall()
        return [_write(r) for r in rows]

    # writes

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
        vals = {(v.channel, v.version): v for v in values}.values()
        params: dict[str, Any] = {
            "tid": thread_id,
            "expected": expected_version,
            "cid": checkpoint.checkpoint_id,
            "parent": checkpoint.parent_id,
            "ver": checkpoint.version,
            "step": checkpoint.step,
            "created": checkpoint.created_at,
            "body": checkpoint.body,
            "vch": [v.channel for v in vals],
            "vver": [v.version for v in vals],
            "vprev": [v.prev for v in vals],
            "vbase": [v.base for v in vals],
            "vpay": [v.payload for v in vals],
            **_fence_params(fence, now, now + lease_seconds),
            **_writes_params(writes),
        }
        query = self._sql[(fence is not None, expected_version is None, durable)]
        with self._conn("committing a checkpoint", thread_id) as conn:
            row = conn.execute(query, params).fetchone()
            if row is not None and row[0] == 1:
                return
            stored = self._read_head_row(conn, thread_id)
        current = None if stored is None or stored[1] is None else int(stored[1])
        refused = write_refusal(
            thread_id, _lease_of(stored), fence, now, current == expected_version
        )
        raise refused or advanced_error(thread_id)

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
        query = self._put_sql[(fence is not None, durable)]
        params = {"tid": thread_id, **_fence_params(fence, now, now), **_writes_params(writes)}
        with self._conn("storing task writes", thread_id) as conn:
            row = conn.execute(query, params).fetchone()
            if row is not None and row[0] == 1:
                return
            stored = self._read_head_row(conn, thread_id)
        raise write_refusal(thread_id, _lease_of(stored), fence, now, True) or advanced_error(
            thread_id
        )

    def claim(
        self, thread_id: str, owner: Owner, lease_seconds: float, *, waiting: bool = False
    ) -> Claim:
        """Decided in Python (checkpoint/_lease.py) under the head row's lock."""
        s, now = self._s, time.time()
        with self._conn("claiming the thread", thread_id) as conn, conn.transaction():
            conn.execute(
                f"INSERT INTO {s}.heads (thread_id) VALUES (%s) ON CONFLICT DO NOTHING",
                [thread_id],
            )
            row = conn.execute(
                f"SELECT {_HEAD_COLS}, (SELECT array_agg(ARRAY[run_id, since::text, seen::text]) "
                f"FROM {s}.waiters WHERE thread_id = %(tid)s) FROM {s}.heads "
                "WHERE thread_id = %(tid)s FOR UPDATE",
                {"tid": thread_id},
            ).fetchone()
            state = LeaseState(_lease_of(row), _epoch_of(row), _tickets_of(row))
            decision = decide_claim(thread_id, state, owner, now, lease_seconds, waiting=waiting)
            self._store_tickets(conn, thread_id, decision)
            lease = decision.lease
            if lease is not None:
                conn.execute(
                    f"UPDATE {s}.heads SET lease_run = %s, lease_host = %s, lease_pid = %s, "
                    "lease_proc = %s, lease_expires = %s, lease_epoch = %s WHERE thread_id = %s",
                    [
                        owner.run_id,
                        owner.host,
                        owner.pid,
                        owner.process.token,
                        lease.expires_at,
                        lease.epoch,
                        thread_id,
                    ],
                )
        if lease is None:  # raised after the commit, so that the caller's ticket is kept
            assert decision.error is not None
            raise decision.error
        head = None if row is None or row[0] is None else Head(row[0], int(row[1]))
        return Claim(head, Fence(owner.run_id, lease.epoch))

    def _store_tickets(self, conn: Conn, thread_id: str, decision: ClaimDecision) -> None:
        s, ticket = self._s, decision.ticket
        if decision.drop:
            conn.execute(
                f"DELETE FROM {s}.waiters WHERE thread_id = %s AND run_id = ANY(%s::text[])",
                [thread_id, list(decision.drop)],
            )
        if ticket is not None:
            conn.execute(
                f"INSERT INTO {s}.waiters (thread_id, run_id, since, seen) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (thread_id, run_id) "
                "DO UPDATE SET since = EXCLUDED.since, seen = EXCLUDED.seen",
                [thread_id, ticket.run_id, ticket.since, ticket.seen],
            )

    def renew(self, thread_id: str, fence: Fence, lease_seconds: float) -> None:
        with self._conn("renewing the lease", thread_id) as conn:
            renewed = conn.execute(
                f"UPDATE {self._s}.heads AS h SET lease_expires = %(exp)s "
                f"WHERE h.thread_id = %(tid)s AND {_FENCED} RETURNING 1",
                {"tid": thread_id, **_fence_params(fence, 0.0, time.time() + lease_seconds)},
            ).fetchone()
            if renewed is not None:
                return
            stored = self._read_head_row(conn, thread_id)
        raise lost_error(thread_id, fence, _lease_of(stored))

    def release(self, thread_id: str, owner: Owner) -> None:
        s = self._s
        with self._conn("releasing the thread", thread_id) as conn:
            conn.execute(
                f"WITH ticket AS (DELETE FROM {s}.waiters WHERE thread_id = %(tid)s "
                "AND run_id = %(run)s), "
                f"gone AS (DELETE FROM {s}.heads WHERE thread_id = %(tid)s "
                "AND lease_run = %(run)s AND version IS NULL "
                f"AND NOT EXISTS (SELECT 1 FROM {s}.writes WHERE thread_id = %(tid)s)) "
                f"UPDATE {s}.heads SET lease_run = NULL, lease_host = NULL, lease_pid = NULL, "
                "lease_proc = NULL, lease_expires = NULL "
                "WHERE thread_id = %(tid)s AND lease_run = %(run)s",
                {"tid": thread_id, "run": owner.run_id},
            )

    def list_threads(self) -> list[str]:
        with self._conn("listing threads", None) as conn:
            rows = conn.execute(
                f"SELECT thread_id FROM {self._s}.heads WHERE version IS NOT NULL"
            ).fetchall()
        return sorted(r[0] for r in rows)

    def delete_thread(self, thread_id: str) -> None:
        s = self._s
        with self._conn("deleting the thread", thread_id) as conn:
            conn.execute(
                f"WITH a AS (DELETE FROM {s}.checkpoints WHERE thread_id = %(tid)s), "
                f"b AS (DELETE FROM {s}.vals WHERE thread_id = %(tid)s), "
                f"c AS (DELETE FROM {s}.writes WHERE thread_id = %(tid)s) "
                f"DELETE FROM {s}.heads WHERE thread_id = %(tid)s",
                {"tid": thread_id},
            )

    def delete_checkpoints(
        self,
        thread_id: str,
        checkpoint_ids: Sequence[str],
        values: Sequence[tuple[str, int]],
        task_ids: Sequence[str],
    ) -> None:
        s = self._s
        with self._conn("deleting checkpoints", thread_id) as conn:
            conn.execute(
                f"WITH a AS (DELETE FROM {s}.checkpoints WHERE thread_id = %(tid)s "
                "AND checkpoint_id = ANY(%(cids)s::text[])), "
                f"b AS (DELETE FROM {s}.vals AS v USING unnest(%(ch)s::text[], %(ver)s::int8[]) "
                "AS u(channel, version) WHERE v.thread_id = %(tid)s AND v.channel = u.channel "
                "AND v.version = u.version) "
                f"DELETE FROM {s}.writes WHERE thread_id = %(tid)s "
                "AND task_id = ANY(%(tasks)s::text[])",
                {
                    "tid": thread_id,
                    "cids": list(checkpoint_ids),
                    "ch": [c for c, _ in values],
                    "ver": [v for _, v in values],
                    "tasks": list(task_ids),
                },
            )

    def dump_thread(self, thread_id: str) -> ThreadDump:
        s = self._s
        with self._conn("exporting the thread", thread_id) as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            head = self._read_head_row(conn, thread_id)
            cps = conn.execute(
                f"SELECT {_CP_COLS} FROM {s}.checkpoints WHERE thread_id = %s ORDER BY version",
                [thread_id],
            ).fetchall()
            vals = conn.execute(
                f"SELECT channel, version, prev, base, payload FROM {s}.vals "
                "WHERE thread_id = %s ORDER BY channel, version",
                [thread_id],
            ).fetchall()
            writes = conn.execute(
                f"SELECT task_id, kind, key, payload FROM {s}.writes WHERE thread_id = %s",
                [thread_id],
            ).fetchall()
        return ThreadDump(
            thread_id,
            None if head is None or head[0] is None else Head(head[0], int(head[1])),
            [_checkpoint(thread_id, r) for r in cps],
            sorted((_value(r) for r in vals), key=lambda v: (v.channel, v.version)),
            [_write(r) for r in writes],
        )

    def load_thread(self, dump: ThreadDump) -> None:
        s, tid = self._s, dump.thread_id
        exists = CheckpointError(
            f"thread {tid!r} already exists; delete it first or import under another thread id"
        )
        with self._conn("importing the thread", tid) as conn, conn.transaction():
            if dump.head is not None:
                row = conn.execute(
                    f"INSERT INTO {s}.heads AS h (thread_id, checkpoint_id, version) "
                    "VALUES (%s, %s, %s) ON CONFLICT (thread_id) DO UPDATE SET "
                    "checkpoint_id = EXCLUDED.checkpoint_id, version = EXCLUDED.version, "
                    "lease_run = NULL, lease_host = NULL, lease_pid = NULL, lease_proc = NULL, "
                    "lease_expires = NULL "
                    "WHERE h.version IS NULL RETURNING 1",
                    [tid, dump.head.checkpoint_id, dump.head.version],
                ).fetchone()
                if row is None:
                    raise exists
            else:
                row = conn.execute(
                    f"SELECT 1 FROM {s}.heads WHERE thread_id = %s AND version IS NOT NULL",
                    [tid],
                ).fetchone()
                if row is not None:
                    raise exists
            with conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {s}.checkpoints (thread_id, {_CP_COLS}) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (thread_id, checkpoint_id) "
                    "DO UPDATE SET parent_id = EXCLUDED.parent_id, version = EXCLUDED.version, "
                    "step = EXCLUDED.step, created_at = EXCLUDED.created_at, body = EXCLUDED.body",
                    [
                        (tid, c.checkpoint_id, c.parent_id, c.version, c.step, c.created_at, c.body)
                        for c in dump.checkpoints
                    ],
                )
                cur.executemany(
                    f"INSERT INTO {s}.vals (thread_id, channel, version, prev, base, payload) "
                    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (thread_id, channel, version) "
                    "DO UPDATE SET prev = EXCLUDED.prev, base = EXCLUDED.base, "
                    "payload = EXCLUDED.payload",
                    [(tid, v.channel, v.version, v.prev, v.base, v.payload) for v in dump.values],
                )
                cur.executemany(
                    f"INSERT INTO {s}.writes (thread_id, task_id, kind, key, payload) "
                    f"VALUES (%s, %s, %s, %s, %s) {_WRITES_UPSERT}",
                    [(tid, w.task_id, w.kind, w.key, w.payload) for w in dump.writes],
                )
