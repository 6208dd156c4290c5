"""The SQL PostgresSaver sends, and the conversions between its rows and the protocol's.

Invariant: the commit statement's head compare-and-swap (CTE ``cas``) gates every insert in
it, so a statement whose CAS matched no row changes nothing; the same holds for the lease
gate (CTE ``ok``) of ``put_writes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import psycopg

from tether.checkpoint._base import CheckpointRow, ValueRow, WriteKind, WriteRow
from tether.checkpoint._lease import Fence, Lease, Owner, Process, Ticket

# The fence of a run's write (see checkpoint/_lease.py): the stored lease is still its own.
_FENCED = "h.lease_run = %(frun)s::text AND h.lease_epoch = %(fepoch)s::int8"
# A write without a fence: no unexpired lease is held.
_UNLEASED = "(h.lease_run IS NULL OR h.lease_expires <= %(now)s::float8)"
_VALUES_CTE = (
    "v AS (INSERT INTO {s}.vals AS t (thread_id, channel, version, prev, base, payload) "
    "SELECT cas.thread_id, u.channel, u.version, u.prev, u.base, u.payload FROM cas, "
    "unnest(%(vch)s::text[], %(vver)s::int8[], %(vprev)s::int8[], %(vbase)s::int8[], "
    "%(vpay)s::bytea[]) AS u(channel, version, prev, base, payload) "
    "ON CONFLICT (thread_id, channel, version) DO UPDATE SET prev = EXCLUDED.prev, "
    "base = EXCLUDED.base, payload = EXCLUDED.payload)"
)
_WRITES_SELECT = (
    "unnest(%(wtask)s::text[], %(wkind)s::text[], %(wkey)s::text[], %(wpay)s::bytea[]) "
    "AS u(task_id, kind, key, payload)"
)
_WRITES_UPSERT = (
    "ON CONFLICT (thread_id, task_id, kind, key) DO UPDATE SET payload = EXCLUDED.payload"
)
_HEAD_COLS = (
    "checkpoint_id, version, lease_run, lease_host, lease_pid, lease_expires, lease_epoch, "
    "lease_proc"
)
_CP_COLS = "checkpoint_id, parent_id, version, step, created_at, body"


def _commit_sql(s: str, *, fenced: bool, first: bool, durable: bool) -> str:
    if fenced:  # the claim made the head row: always an update
        cas = (
            f"UPDATE {s}.heads AS h SET checkpoint_id = %(cid)s, version = %(ver)s, "
            "lease_expires = %(exp)s WHERE h.thread_id = %(tid)s AND "
            f"h.version IS NOT DISTINCT FROM %(expected)s::int8 AND {_FENCED}"
        )
    elif first:
        cas = (
            f"INSERT INTO {s}.heads AS h (thread_id, checkpoint_id, version) "
            "VALUES (%(tid)s, %(cid)s, %(ver)s) ON CONFLICT (thread_id) DO UPDATE SET "
            "checkpoint_id = EXCLUDED.checkpoint_id, version = EXCLUDED.version "
            f"WHERE h.version IS NULL AND {_UNLEASED}"
        )
    else:
        cas = (
            f"UPDATE {s}.heads AS h SET checkpoint_id = %(cid)s, version = %(ver)s "
            f"WHERE h.thread_id = %(tid)s AND h.version = %(expected)s::int8 AND {_UNLEASED}"
        )
    sync = "" if durable else ", set_config('synchronous_commit', 'off', true)"
    return (
        f"WITH cas AS ({cas} RETURNING h.thread_id), "
        f"cp AS (INSERT INTO {s}.checkpoints (thread_id, {_CP_COLS}) "
        "SELECT cas.thread_id, %(cid)s, %(parent)s, %(ver)s, %(step)s, %(created)s, %(body)s "
        "FROM cas ON CONFLICT (thread_id, checkpoint_id) DO UPDATE SET "
        "parent_id = EXCLUDED.parent_id, version = EXCLUDED.version, step = EXCLUDED.step, "
        "created_at = EXCLUDED.created_at, body = EXCLUDED.body), "
        + _VALUES_CTE.format(s=s)
        + f", w AS (INSERT INTO {s}.writes (thread_id, task_id, kind, key, payload) "
        f"SELECT cas.thread_id, u.task_id, u.kind, u.key, u.payload FROM cas, {_WRITES_SELECT} "
        f"{_WRITES_UPSERT}) SELECT (SELECT count(*) FROM cas){sync}"
    )


def _put_writes_sql(s: str, *, fenced: bool, durable: bool) -> str:
    """Task writes gated by the lease check. A fenced write holds a share lock on the head row
    until it commits, so a claim that takes the thread over waits for it, and a write that
    comes after the takeover sees the new epoch and stores nothing."""
    if fenced:
        gate = f"SELECT 1 FROM {s}.heads AS h WHERE h.thread_id = %(tid)s AND {_FENCED} FOR SHARE"
    else:
        gate = (
            f"SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM {s}.heads AS h "
            f"WHERE h.thread_id = %(tid)s AND NOT {_UNLEASED})"
        )
    sync = "" if durable else ", set_config('synchronous_commit', 'off', true)"
    return (
        f"WITH ok AS ({gate}), w AS (INSERT INTO {s}.writes (thread_id, task_id, kind, key, "
        f"payload) SELECT %(tid)s, u.task_id, u.kind, u.key, u.payload FROM {_WRITES_SELECT} "
        f"WHERE EXISTS (SELECT 1 FROM ok) {_WRITES_UPSERT}) SELECT (SELECT count(*) FROM ok)"
        f"{sync}"
    )


def _fence_params(fence: Fence | None, now: float, expires: float) -> dict[str, Any]:
    return {
        "frun": fence.run_id if fence else None,
        "fepoch": fence.epoch if fence else None,
        "now": now,
        "exp": expires,
    }


def _lease_of(row: Sequence[Any] | None) -> Lease | None:
    """The lease held in a ``_HEAD_COLS`` row, or None when it is free."""
    if row is None or row[2] is None:
        return None
    owner = Owner(row[2], Process.from_stored(row[3], int(row[4]), row[7]))
    return Lease(owner, float(row[5]), int(row[6]))


def _epoch_of(row: Sequence[Any] | None) -> int:
    """The lease epoch of a ``_HEAD_COLS`` row, held or not (0 for a new thread)."""
    return 0 if row is None else int(row[6])


def _tickets_of(row: Sequence[Any] | None) -> tuple[Ticket, ...]:
    """The waiters aggregated after the ``_HEAD_COLS`` of a claim's row."""
    if row is None or row[8] is None:
        return ()
    return tuple(Ticket(run, float(since), float(seen)) for run, since, seen in row[8])


def _writes_params(writes: Sequence[WriteRow]) -> dict[str, Any]:
    unique = {(w.task_id, w.kind, w.key): w for w in writes}.values()
    return {
        "wtask": [w.task_id for w in unique],
        "wkind": [w.kind for w in unique],
        "wkey": [w.key for w in unique],
        "wpay": [w.payload for w in unique],
    }


def _checkpoint(thread_id: str, row: Sequence[Any]) -> CheckpointRow:
    return CheckpointRow(
        thread_id, row[0], row[1], int(row[2]), int(row[3]), float(row[4]), bytes(row[5])
    )


def _value(row: Sequence[Any]) -> ValueRow:
    prev = None if row[2] is None else int(row[2])
    return ValueRow(row[0], int(row[1]), prev, int(row[3]), bytes(row[4]))


def _write(row: Sequence[Any]) -> WriteRow:
    return WriteRow(row[0], cast(WriteKind, row[1]), row[2], bytes(row[3]))


def _safe_dsn(dsn: str) -> str:
    """The DSN without its password, for error messages."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.Error:
        return "<unparsable DSN>"
    params.pop("password", None)
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in params.items()}) or (
        "<libpq defaults>"
    )
