"""PostgresSaver's tables and their versioned migrations, applied under an advisory lock.

Invariant: ``tether_schema_version`` holds the highest migration applied; a saver only opens a
schema at its own version (migrating older ones, one process at a time) and refuses a newer one.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import psycopg

from tether.errors import CheckpointError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def quote_schema(schema: str) -> str:
    """The schema name as a quoted SQL identifier; only plain names are accepted."""
    if not _NAME.match(schema):
        raise CheckpointError(
            f"PostgresSaver: schema name {schema!r} is not allowed; use letters, digits and "
            "underscores (at most 63, not starting with a digit)"
        )
    return f'"{schema}"'


def _migrations(s: str) -> list[list[str]]:
    """Migration n (1-based) is ``_migrations(s)[n - 1]``: statements run in one transaction."""
    return [
        [
            f"""CREATE TABLE {s}.heads (
                thread_id text PRIMARY KEY,
                checkpoint_id text,
                version bigint,
                lease_run text,
                lease_host text,
                lease_pid integer,
                lease_expires double precision)""",
            f"""CREATE TABLE {s}.checkpoints (
                thread_id text NOT NULL,
                checkpoint_id text NOT NULL,
                parent_id text,
                version bigint NOT NULL,
                step bigint NOT NULL,
                created_at double precision NOT NULL,
                body bytea NOT NULL,
                PRIMARY KEY (thread_id, checkpoint_id))""",
            f"CREATE INDEX checkpoints_by_version ON {s}.checkpoints (thread_id, version DESC)",
            f"""CREATE TABLE {s}.vals (
                thread_id text NOT NULL,
                channel text NOT NULL,
                version bigint NOT NULL,
                prev bigint,
                base bigint NOT NULL,
                payload bytea NOT NULL,
                PRIMARY KEY (thread_id, channel, version))""",
            f"""CREATE TABLE {s}.writes (
                thread_id text NOT NULL,
                task_id text NOT NULL,
                kind text NOT NULL,
                key text NOT NULL,
                payload bytea NOT NULL,
                PRIMARY KEY (thread_id, task_id, kind, key))""",
        ],
        # Leases (checkpoint/_lease.py): the epoch the lease is at (kept on release), the
        # holder's process identity (boot id / pid namespace / start time), the runs waiting.
        [
            f"ALTER TABLE {s}.heads ADD COLUMN lease_epoch bigint NOT NULL DEFAULT 0",
            f"ALTER TABLE {s}.heads ADD COLUMN lease_proc text",
            f"""CREATE TABLE {s}.waiters (
                thread_id text NOT NULL,
                run_id text NOT NULL,
                since double precision NOT NULL,
                seen double precision NOT NULL,
                PRIMARY KEY (thread_id, run_id))""",
        ],
    ]


SCHEMA_VERSION = len(_migrations('"x"'))


def _lock_key(schema: str) -> int:
    digest = hashlib.blake2b(f"tether-schema:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _current_version(conn: psycopg.Connection[Any], schema: str, s: str) -> int:
    row = conn.execute("SELECT to_regclass(%s)", [f"{s}.tether_schema_version"]).fetchone()
    if row is None or row[0] is None:
        return 0
    found = conn.execute(f"SELECT max(version) FROM {s}.tether_schema_version").fetchone()
    return int(found[0]) if found is not None and found[0] is not None else 0


def _check_not_newer(schema: str, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise CheckpointError(
            f"PostgresSaver: schema {schema!r} is at version {version}, newer than this tether "
            f"(which knows up to {SCHEMA_VERSION}); upgrade tether, or use another schema"
        )


def migrate(conn: psycopg.Connection[Any], schema: str) -> None:
    """Bring ``schema`` to ``SCHEMA_VERSION``. Safe to run from many processes at once: the
    work happens in one transaction holding an advisory lock keyed by the schema name."""
    s = quote_schema(schema)
    with conn.transaction():
        current = _current_version(conn, schema, s)
    _check_not_newer(schema, current)
    if current == SCHEMA_VERSION:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_key(schema)])
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {s}.tether_schema_version "
            "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        current = _current_version(conn, schema, s)
        _check_not_newer(schema, current)
        for number, statements in enumerate(_migrations(s), start=1):
            if number <= current:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(f"INSERT INTO {s}.tether_schema_version (version) VALUES (%s)", [number])
