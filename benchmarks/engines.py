"""One adapter per engine: the same names (StateGraph, START, END, interrupt, Command) and the
same saver factories, so every scenario is written once.

A ``Store`` wraps an open saver of one backend and counts what the engine asks it to persist:

- tether: calls of ``commit`` and ``put_writes`` on the saver instance (plus ``claim`` and
  ``release``, which are per invoke, not per step);
- LangGraph: calls of ``put`` and ``put_writes`` on the saver instance;
- SQLite (both engines): real transactions, counted as ``COMMIT`` statements seen by the
  connection's ``set_trace_callback`` (an fsync each in ``synchronous=FULL``).

Redis is tether only: LangGraph's Redis checkpointer (``langgraph-checkpoint-redis``) needs the
RedisJSON and RediSearch modules (Redis Stack or Redis 8), which plain Redis 7 lacks. Each
tether Redis store gets a fresh key prefix in a dedicated database (``BENCH_REDIS_URL``,
default db 14); only keys under the benchmark's prefixes are ever deleted.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.metadata
import os
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

BACKENDS = ("memory", "sqlite", "postgres", "redis")

# The admin DSN names a database every stock server has; the benchmark's own database (PG_DB)
# is created through it when absent (``postgres_status``).
PG_ADMIN_DSN = os.environ.get("BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DB = os.environ.get("BENCH_PG_DB", "tether_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")

LANGGRAPH_REDIS_NOTE = (
    "LangGraph has no Redis rows: its Redis checkpointer (langgraph-checkpoint-redis) needs the "
    "RedisJSON and RediSearch modules (Redis Stack or Redis 8), which plain Redis 7 lacks; "
    "tether's RedisSaver runs on plain Redis 7"
)


def pg_dsn(db: str | None = None) -> str:
    """The benchmark database's DSN (same server and user as the admin DSN). ``PG_DB`` and
    ``PG_ADMIN_DSN`` are read at each call, so a test that points them elsewhere is obeyed."""
    from psycopg.conninfo import make_conninfo

    return make_conninfo(PG_ADMIN_DSN, dbname=db if db is not None else PG_DB)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


@dataclass
class Store:
    """An open saver plus the counters a scenario reads."""

    engine: str
    backend: str
    saver: Any
    location: str  # sqlite path, postgres schema, redis key prefix, "" for memory
    calls: Counter[str] = field(default_factory=Counter)
    sql_commits: int = 0
    closers: list[Callable[[], None]] = field(default_factory=list)
    closed: bool = False

    def reset_counts(self) -> None:
        self.calls.clear()
        self.sql_commits = 0

    def persist_calls(self) -> int:
        """Calls that persist something per step: commit+put_writes / put+put_writes."""
        return sum(self.calls[k] for k in ("commit", "put", "put_writes"))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for fn in reversed(self.closers):
            fn()


def _count_calls(store: Store, names: tuple[str, ...]) -> None:
    """Wrap bound methods on the saver *instance* with call counters."""
    saver = store.saver
    for name in names:
        method = getattr(saver, name, None)
        if method is None:
            continue

        def make(fn: Callable[..., Any], key: str) -> Callable[..., Any]:
            @functools.wraps(fn)
            def counted(*args: Any, **kwargs: Any) -> Any:
                store.calls[key] += 1
                return fn(*args, **kwargs)

            return counted

        setattr(saver, name, make(method, name))


def _trace_commits(store: Store, conn: sqlite3.Connection | None) -> None:
    if conn is None:
        return

    def trace(stmt: str) -> None:
        if stmt.lstrip()[:6].upper() == "COMMIT":
            store.sql_commits += 1

    conn.set_trace_callback(trace)


def reset_pg_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(pg_dsn(), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{schema}"')


def drop_pg_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(pg_dsn(), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def pg_schema_bytes(schema: str, exclude: tuple[str, ...]) -> int:
    """Sum of pg_total_relation_size (heap + indexes + TOAST) of the schema's tables."""
    import psycopg

    with psycopg.connect(pg_dsn(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = 'r'",
            [schema],
        ).fetchall()
    return sum(int(size) for name, size in rows if name not in exclude)


def _redis_client() -> Any:
    import redis

    return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3, socket_timeout=30)


def delete_redis_prefix(prefix: str) -> int:
    """Delete the keys under ``prefix:`` (and nothing else); returns how many."""
    if not prefix or any(c in prefix for c in "*?[]\\"):
        raise ValueError(f"refusing to delete keys for prefix {prefix!r}")
    client = _redis_client()
    try:
        deleted = 0
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += client.delete(*batch)
                batch.clear()
        if batch:
            deleted += client.delete(*batch)
        return int(deleted)
    finally:
        client.close()


def redis_prefix_bytes(prefix: str) -> int:
    """Sum of ``MEMORY USAGE key SAMPLES 0`` (all elements) over the keys under ``prefix:``."""
    client = _redis_client()
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        return sum(int(client.memory_usage(k, samples=0) or 0) for k in keys)
    finally:
        client.close()


def sqlite_bytes(path: str) -> int:
    """Database file plus any WAL left behind (both engines checkpoint it before this)."""
    total = 0
    for suffix in ("", "-wal"):
        with contextlib.suppress(FileNotFoundError):
            total += os.path.getsize(path + suffix)
    return total


class Engine:
    """What a scenario may use. Subclasses fill in the names and ``_open``."""

    name: str
    label: str
    StateGraph: Any
    START: Any
    END: Any
    interrupt: Any
    Command: Any
    pg_meta_tables: tuple[str, ...] = ()
    stores_whole_state = False
    """True when every checkpoint holds the whole state (LangGraph), not what changed."""

    def version(self) -> str:
        raise NotImplementedError

    def open(self, backend: str, location: str = "", *, fresh: bool = True) -> Store:
        """Open a saver. ``location``: a SQLite path, a Postgres schema name or a Redis key
        prefix. ``fresh`` recreates the Postgres schema and empties the Redis prefix (SQLite
        callers pass a new path)."""
        if backend == "postgres" and fresh:
            reset_pg_schema(location)
        if backend == "redis" and fresh:
            delete_redis_prefix(location)
        return self._open(backend, location)

    def _open(self, backend: str, location: str) -> Store:
        raise NotImplementedError

    @contextlib.contextmanager
    def store(self, backend: str, location: str = "", *, fresh: bool = True) -> Iterator[Store]:
        s = self.open(backend, location, fresh=fresh)
        try:
            yield s
        finally:
            s.close()

    def bytes_stored(self, store: Store) -> int:
        """Bytes the store holds; call after ``store.close()``."""
        if store.backend == "sqlite":
            return sqlite_bytes(store.location)
        if store.backend == "postgres":
            return pg_schema_bytes(store.location, self.pg_meta_tables)
        if store.backend == "redis":
            return redis_prefix_bytes(store.location)
        raise ValueError("bytes stored is measured for sqlite, postgres and redis only")

    def compile(self, builder: Any, store: Store | None) -> Any:
        return builder.compile(checkpointer=store.saver if store is not None else None)


class TetherEngine(Engine):
    name = "tether"
    label = "tether"
    pg_meta_tables = ("tether_schema_version",)

    def __init__(self) -> None:
        import tether

        self.StateGraph = tether.StateGraph
        self.START = tether.START
        self.END = tether.END
        self.interrupt = tether.interrupt
        self.Command = tether.Command

    def version(self) -> str:
        return _version("tether")

    def _open(self, backend: str, location: str) -> Store:
        from tether import checkpoint as cp

        if backend == "memory":
            store = Store(self.name, backend, cp.InMemorySaver(), location)
        elif backend == "sqlite":
            store = Store(self.name, backend, cp.SqliteSaver(location), location)
            # A private attribute, read only to count real transactions.
            _trace_commits(store, getattr(store.saver, "_conn", None))
        elif backend == "postgres":
            pg_cls = cp.PostgresSaver  # lazy: raises ImportError/AttributeError if missing
            store = Store(self.name, backend, pg_cls(pg_dsn(), schema=location), location)
        elif backend == "redis":
            redis_cls = cp.RedisSaver  # lazy: raises ImportError/AttributeError if missing
            store = Store(self.name, backend, redis_cls(REDIS_URL, prefix=location), location)
        else:
            raise ValueError(backend)
        store.closers.append(store.saver.close)
        _count_calls(store, ("commit", "put_writes", "claim", "release"))
        return store


class LangGraphEngine(Engine):
    name = "langgraph"
    label = "LangGraph"
    pg_meta_tables = ("checkpoint_migrations",)
    stores_whole_state = True

    def __init__(self) -> None:
        from langgraph.graph import END, START, StateGraph
        from langgraph.types import Command, interrupt

        self.StateGraph = StateGraph
        self.START = START
        self.END = END
        self.interrupt = interrupt
        self.Command = Command

    def version(self) -> str:
        return _version("langgraph")

    def _open(self, backend: str, location: str) -> Store:
        if backend == "memory":
            from langgraph.checkpoint.memory import InMemorySaver

            store = Store(self.name, backend, InMemorySaver(), location)
        elif backend == "sqlite":
            from langgraph.checkpoint.sqlite import SqliteSaver

            conn = sqlite3.connect(location, check_same_thread=False)
            saver = SqliteSaver(conn)
            saver.setup()
            store = Store(self.name, backend, saver, location)
            _trace_commits(store, conn)

            def close_sqlite() -> None:
                # Fold the WAL into the file, as tether's SqliteSaver.close() does.
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.close()

            store.closers.append(close_sqlite)
        elif backend == "postgres":
            import psycopg
            from langgraph.checkpoint.postgres import PostgresSaver
            from psycopg.rows import dict_row

            # Same settings as PostgresSaver.from_conn_string, tables in our own schema.
            pconn = psycopg.connect(
                pg_dsn(),
                autocommit=True,
                prepare_threshold=0,
                row_factory=dict_row,
                options=f"-c search_path={location}",
            )
            saver = PostgresSaver(pconn)
            saver.setup()
            store = Store(self.name, backend, saver, location)
            store.closers.append(pconn.close)
        elif backend == "redis":
            raise NotImplementedError(LANGGRAPH_REDIS_NOTE)
        else:
            raise ValueError(backend)
        _count_calls(store, ("put", "put_writes"))
        return store


_ENGINES: dict[str, Callable[[], Engine]] = {
    "tether": TetherEngine,
    "langgraph": LangGraphEngine,
}


def load(name: str) -> Engine:
    return _ENGINES[name]()


def available() -> tuple[list[Engine], list[str]]:
    """The engines that import, and notes for those that do not."""
    engines: list[Engine] = []
    notes: list[str] = []
    for name, make in _ENGINES.items():
        try:
            engines.append(make())
        except ImportError as exc:
            notes.append(f"{name}: not importable ({exc}); its rows are skipped")
    return engines, notes


def postgres_status(engines: list[Engine]) -> str | None:
    """None when Postgres is usable for the benchmark, else a note saying why not. Creates the
    benchmark database if needed."""
    try:
        import psycopg
    except ImportError as exc:
        return f"psycopg is not installed ({exc})"
    try:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=3) as conn:
            sql = "SELECT 1 FROM pg_database WHERE datname = %s"
            exists = conn.execute(sql, [PG_DB]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{PG_DB}"')
    except Exception as exc:
        return f"PostgreSQL is not reachable at {PG_ADMIN_DSN} ({exc})"
    return None


def tether_postgres_status() -> str | None:
    try:
        importlib.import_module("tether.checkpoint").PostgresSaver  # noqa: B018
    except Exception as exc:
        return f"tether PostgresSaver is not available ({type(exc).__name__}: {exc})"
    return None


def redis_status() -> str | None:
    """None when the benchmark's Redis database answers, else a note saying why not."""
    try:
        import redis
    except ImportError as exc:
        return f"redis-py is not installed ({exc})"
    try:
        client = _redis_client()
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, OSError) as exc:
        return f"Redis is not reachable at {REDIS_URL} ({exc})"
    return None


def tether_redis_status() -> str | None:
    try:
        importlib.import_module("tether.checkpoint").RedisSaver  # noqa: B018
    except Exception as exc:
        return f"tether RedisSaver is not available ({type(exc).__name__}: {exc})"
    return None
