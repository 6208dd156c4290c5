"""The SQL PostgresSaver sends, and the conversions between its rows and the protocol's.

Invariant: the commit statement's head compare-and-swap (CTE ``cas``) gates every insert in
it, so a statement whose CAS matched no row changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import psycopg

from tether.checkpoint._base import CheckpointRow, Lease, Owner, ValueRow, WriteKind, WriteRow

# Lease free, expired, ours, or held by the dead process we were told to take it from.
_LEASE_OK = (
    "({h}.lease_run IS NULL OR {h}.lease_expires <= %(now)s::float8 "
    "OR {h}.lease_run = %(run)s::text OR ({h}.lease_run = %(srun)s::text "
    "AND {h}.lease_host = %(shost)s::text AND {h}.lease_pid = %(spid)s::int))"
)
_NEW_LEASE = (
    "lease_run = COALESCE(%(run)s::text, {h}.lease_run), "
    "lease_host = COALESCE(%(host)s::text, {h}.lease_host), "
    "lease_pid = COALESCE(%(pid)s::int, {h}.lease_pid), "
    "lease_expires = COALESCE(%(exp)s::float8, {h}.lease_expires)"
)
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
_HEAD_COLS = "checkpoint_id, version, lease_run, lease_host, lease_pid, lease_expires"
_CP_COLS = "checkpoint_id, parent_id, version, step, created_at, body"


def _commit_sql(s: str, *, first: bool, durable: bool) -> str:
    if first:
        cas = (
            f"INSERT INTO {s}.heads AS h (thread_id, checkpoint_id, version, lease_run, "
            "lease_host, lease_pid, lease_expires) VALUES (%(tid)s, %(cid)s, %(ver)s, "
            "%(run)s, %(host)s, %(pid)s, %(exp)s) ON CONFLICT (thread_id) DO UPDATE SET "
            "checkpoint_id = EXCLUDED.checkpoint_id, version = EXCLUDED.version, "
            + _NEW_LEASE.format(h="h")
            + " WHERE h.version IS NULL AND "
            + _LEASE_OK.format(h="h")
        )
    else:
        cas = (
            f"UPDATE {s}.heads AS h SET checkpoint_id = %(cid)s, version = %(ver)s, "
            + _NEW_LEASE.format(h="h")
            + " WHERE h.thread_id = %(tid)s AND h.version = %(expected)s::int8 AND "
            + _LEASE_OK.format(h="h")
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


def _lease_params(owner: Owner | None, expires: float | None) -> dict[str, Any]:
    return {
        "run": owner.run_id if owner else None,
        "host": owner.host if owner else None,
        "pid": owner.pid if owner else None,
        "exp": expires if owner else None,
        "srun": None,
        "shost": None,
        "spid": None,
    }


def _lease_of(row: Sequence[Any] | None) -> Lease | None:
    """The lease in a ``_HEAD_COLS`` row, or None."""
    if row is None or row[2] is None:
        return None
    return Lease(Owner(run_id=row[2], host=row[3], pid=int(row[4])), float(row[5]))


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
