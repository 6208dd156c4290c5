"""The SQLite file layout: its tables and the migrations that build them, applied in order in
one write transaction when a saver opens the file.

Invariant: ``tether_schema``'s "version" row counts the migrations applied; a file with a
newer version than ``MIGRATIONS`` is refused, never written.
"""

from __future__ import annotations

import functools
import re
import sqlite3

from tether.errors import CheckpointError

# Storage size is a requirement, so rows are kept lean:
# - a thread id is stored once (``heads``); other tables carry its small integer ``tid``;
# - a checkpoint's rowid is ``tid << 32 | version``, so history is a rowid range scan and no
#   version index is needed;
# - tables holding payloads keep their rowid: a rowid table keeps up to a page of payload
#   inline, where a WITHOUT ROWID table spills anything over ~1 KB into an overflow page.
_V1 = (
    """CREATE TABLE heads (
        thread_id TEXT PRIMARY KEY,
        tid INTEGER NOT NULL,
        checkpoint_id,
        version INTEGER NOT NULL,
        lease_run TEXT,
        lease_host TEXT,
        lease_pid INTEGER,
        lease_expires REAL
    ) WITHOUT ROWID""",
    """CREATE TABLE checkpoints (
        tid INTEGER NOT NULL,
        checkpoint_id NOT NULL,
        parent_id,
        step INTEGER NOT NULL,
        created_at REAL NOT NULL,
        body BLOB NOT NULL
    )""",
    "CREATE UNIQUE INDEX checkpoints_by_id ON checkpoints (tid, checkpoint_id)",
    """CREATE TABLE vals (
        tid INTEGER NOT NULL,
        channel TEXT NOT NULL,
        version INTEGER NOT NULL,
        prev INTEGER,
        base INTEGER NOT NULL,
        payload BLOB NOT NULL
    )""",
    "CREATE UNIQUE INDEX vals_by_key ON vals (tid, channel, version)",
    """CREATE TABLE writes (
        tid INTEGER NOT NULL,
        task_id NOT NULL,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        payload BLOB NOT NULL
    )""",
    "CREATE UNIQUE INDEX writes_by_key ON writes (tid, task_id, kind, key)",
    "INSERT INTO tether_schema (name, value) VALUES ('next_tid', 1)",
)

# Leases (checkpoint/_lease.py): the epoch the lease is at (kept when it is released), the
# holder's process identity (boot id / pid namespace / start time), and the runs waiting.
_V2 = (
    "ALTER TABLE heads ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE heads ADD COLUMN lease_proc TEXT",
    """CREATE TABLE waiters (
        thread_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        since REAL NOT NULL,
        seen REAL NOT NULL,
        PRIMARY KEY (thread_id, run_id)
    ) WITHOUT ROWID""",
)

# MIGRATIONS[i] takes a file from schema version i to i + 1. Append only; never edit.
MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2)
SCHEMA_VERSION = len(MIGRATIONS)

VERSION_BITS = 32
VERSION_MASK = (1 << VERSION_BITS) - 1
MAX_TID = (1 << 31) - 1


_CREATES = re.compile(r"CREATE\s+(?:UNIQUE\s+)?(?:TABLE|INDEX)\s+(\w+)", re.IGNORECASE)


@functools.cache
def schema_names() -> frozenset[str]:
    """The names of every table and index the migrations create (and ``tether_schema``)."""
    statements = [sql for migration in MIGRATIONS for sql in migration]
    found = {match.group(1) for sql in statements for match in _CREATES.finditer(sql)}
    return frozenset(found | {"tether_schema"})


def refuse_newer(path: str, current: int) -> None:
    if current > SCHEMA_VERSION:
        raise CheckpointError(
            f"{path}: the checkpoint database has schema version {current}, but this "
            f"version of tether only knows versions up to {SCHEMA_VERSION}; upgrade tether"
        )


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Bring the file to ``SCHEMA_VERSION`` (one write transaction), or refuse it."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS tether_schema "
            "(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID"
        )
        row = conn.execute("SELECT value FROM tether_schema WHERE name = 'version'").fetchone()
        current = int(row[0]) if row is not None else 0
        refuse_newer(path, current)  # again: another process may have upgraded it meanwhile
        for statements in MIGRATIONS[current:]:
            for sql in statements:
                conn.execute(sql)
        if current < SCHEMA_VERSION:
            conn.execute(
                "INSERT OR REPLACE INTO tether_schema (name, value) VALUES ('version', ?)",
                (SCHEMA_VERSION,),
            )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
