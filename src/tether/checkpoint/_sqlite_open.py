"""Opening a SQLite file as a tether checkpoint database, for writing or read-only.

Invariant: the file is inspected before anything in it changes. A newer schema, another
application's tables or a read-only open leave the file exactly as it was: no journal-mode
switch, no table, no migration.
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from typing import NamedTuple

from tether.checkpoint._sqlite_schema import SCHEMA_VERSION, migrate, refuse_newer, schema_names
from tether.errors import CheckpointError


class FileContents(NamedTuple):
    """What a file holds before tether touches it."""

    version: int | None  # tether's schema version; None: no ``tether_schema`` table
    names: list[str]  # every table, view, index and trigger, internal ``sqlite_*`` excluded


def _uri(path: str, *options: str) -> str:
    return "file:" + urllib.parse.quote(os.path.abspath(path)) + "?" + "&".join(options)


def _inspect(conn: sqlite3.Connection) -> FileContents:
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
            "ORDER BY name"
        )
    ]
    if "tether_schema" not in names:
        return FileContents(None, names)
    row = conn.execute("SELECT value FROM tether_schema WHERE name = 'version'").fetchone()
    return FileContents(int(row[0]) if row is not None else 0, names)


def _refuse_other_tables(path: str, found: FileContents, allow_other_tables: bool) -> None:
    """A file that is not (yet) tether's and holds anything else is another application's:
    tether adds its tables to it only when told to, and never over a name it needs."""
    if found.version is not None or not found.names:
        return
    taken = sorted(set(found.names) & schema_names())
    if taken:
        raise CheckpointError(
            f"{path}: holds objects named {', '.join(taken)}, names tether's own tables and "
            "indexes need; use another file for the checkpoints"
        )
    if not allow_other_tables:
        raise CheckpointError(
            f"{path}: is not a tether checkpoint database, it holds other tables "
            f"({', '.join(found.names[:10])}{', ...' if len(found.names) > 10 else ''}); "
            "use a file of its own for the checkpoints, or pass "
            "SqliteSaver(..., allow_other_tables=True) to add tether's tables beside them"
        )


def _check_readable(path: str, found: FileContents) -> None:
    if found.version is None:
        raise CheckpointError(f"{path}: not a tether checkpoint database (read-only open)")
    refuse_newer(path, found.version)
    if found.version < SCHEMA_VERSION:
        raise CheckpointError(
            f"{path}: the checkpoint database has schema version {found.version} and this "
            f"tether reads version {SCHEMA_VERSION}; a read-only open cannot migrate it: open "
            "it once with write access (SqliteSaver(path)) to upgrade it"
        )


def _connect(target: str, timeout: float, *, uri: bool) -> sqlite3.Connection:
    return sqlite3.connect(
        target, timeout=timeout, isolation_level=None, check_same_thread=False, uri=uri
    )


# How SQLite fails to read a WAL file whose ``-shm`` it may not create.
_NO_SHARED_MEMORY = ("SQLITE_READONLY_DIRECTORY", "SQLITE_CANTOPEN")


def _readable_connection(path: str, timeout: float) -> tuple[sqlite3.Connection, FileContents]:
    """``mode=ro``. A WAL file in a directory we cannot write, with no ``-shm`` (no writer has
    it open), is read as immutable: exact while its write-ahead log is empty and no writer
    starts; with commits left in its log, it is refused."""
    conn = _connect(_uri(path, "mode=ro"), timeout, uri=True)
    try:
        return conn, _inspect(conn)
    except sqlite3.OperationalError as exc:
        conn.close()
        if getattr(exc, "sqlite_errorname", "") not in _NO_SHARED_MEMORY:
            raise
        wal = path + "-wal"
        if os.path.exists(wal) and os.path.getsize(wal) > 0:
            raise CheckpointError(
                f"{path}: cannot be read ({exc}): its directory is not writable and its "
                f"write-ahead log {wal} holds commits not yet in the file; open it once "
                "with write access to fold them in"
            ) from exc
    conn = _connect(_uri(path, "mode=ro", "immutable=1"), timeout, uri=True)
    try:
        return conn, _inspect(conn)
    except BaseException:
        conn.close()
        raise


def _read_only_error(path: str, reason: object) -> CheckpointError:
    return CheckpointError(
        f"{path}: the checkpoint database is read-only to this process ({reason}); to read "
        "it, open it with SqliteSaver(path, read_only=True)"
    )


def _checkpoint_error(path: str, e: sqlite3.Error) -> CheckpointError:
    if getattr(e, "sqlite_errorname", "").startswith("SQLITE_READONLY"):
        return _read_only_error(path, e)
    if isinstance(e, sqlite3.OperationalError):  # locked, no such directory, no space, ...
        return CheckpointError(f"{path}: cannot open the checkpoint database: {e}")
    return CheckpointError(
        f"{path}: not a usable tether checkpoint database (not SQLite, corrupted or truncated): {e}"
    )


def open_database(
    path: str,
    *,
    read_only: bool,
    busy_timeout_ms: int,
    allow_other_tables: bool,
    synchronous: str,
) -> sqlite3.Connection:
    """A connection to ``path`` at ``SCHEMA_VERSION``: created or migrated, unless
    ``read_only``. Every refusal is a CheckpointError naming the file."""
    conn: sqlite3.Connection | None = None
    try:
        if read_only:
            conn, found = _readable_connection(path, busy_timeout_ms / 1000)
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            _check_readable(path, found)
            return conn
        if os.path.isfile(path) and not os.access(path, os.W_OK):
            # SQLite would open it read-only without a word, and fail at the first write.
            raise _read_only_error(path, "the file is not writable")
        conn = _connect(path, busy_timeout_ms / 1000, uri=False)
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        found = _inspect(conn)
        if found.version is not None:
            refuse_newer(path, found.version)
        _refuse_other_tables(path, found, allow_other_tables)
        conn.execute("PRAGMA journal_mode = WAL").fetchone()
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        migrate(conn, path)
        return conn
    except BaseException as e:
        if conn is not None:
            conn.close()
        if isinstance(e, sqlite3.Error):
            raise _checkpoint_error(path, e) from e
        raise


def read_only_connection(path: str, timeout: float = 5.0) -> sqlite3.Connection:
    """A read-only connection to any SQLite file (for callers that inspect it first); a file
    in a directory this process cannot write is read as immutable, as ``open_database``
    does."""
    conn, _ = _readable_connection(path, timeout)
    return conn
