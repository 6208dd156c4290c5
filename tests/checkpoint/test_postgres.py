"""PostgresSaver on real PostgreSQL servers: bad DSNs, a server that goes away and comes back,
schema versions and concurrent migrations, races between processes, PgBouncer mode, one round
trip per commit and no lock shared between threads."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from tests._servers import PrivatePostgres, free_port

import tether
from tether.checkpoint import CheckpointRow, Head, PostgresSaver, ValueRow, WriteRow
from tether.checkpoint._postgres_schema import SCHEMA_VERSION
from tether.errors import CheckpointError, StoreTimeoutError

T = "thread-1"
SRC = str(Path(tether.__file__).resolve().parents[1])


def cp(version: int, thread_id: str = T) -> CheckpointRow:
    parent = f"cp-{version - 1}" if version > 1 else None
    return CheckpointRow(thread_id, f"cp-{version}", parent, version, version, 1.0, b"body")


def advance(saver: PostgresSaver, version: int, thread_id: str = T, **kw: object) -> None:
    saver.commit(
        thread_id,
        expected_version=version - 1 if version > 1 else None,
        checkpoint=cp(version, thread_id),
        values=[ValueRow("x", version, None, version, b"v%d" % version)],
        writes=[WriteRow("task", "output", "", b"w%d" % version)],
        fence=None,
        lease_seconds=30.0,
        durable=bool(kw.get("durable", True)),
    )


def schema_name() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def saver(postgres_dsn: str) -> Iterator[PostgresSaver]:
    with PostgresSaver(postgres_dsn, schema=schema_name()) as s:
        yield s


def run_child(code: str, *args: str) -> subprocess.Popen[str]:
    """A Python child process that imports this checkout's tether."""
    path = os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env={**os.environ, "PYTHONPATH": path},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# -- bad input ------------------------------------------------------------------------------


def test_nothing_listening_is_a_checkpoint_error() -> None:
    started = time.monotonic()
    with pytest.raises(CheckpointError, match="cannot open database"):
        PostgresSaver(f"postgresql://postgres@127.0.0.1:{free_port()}/x", timeout=3)
    assert time.monotonic() - started < 5


def test_malformed_dsn_and_unknown_database(postgres_dsn: str) -> None:
    with pytest.raises(CheckpointError):
        PostgresSaver("this is = not a dsn")
    missing = psycopg.conninfo.make_conninfo(postgres_dsn, dbname="no_such_db_tether")
    with pytest.raises(CheckpointError, match="no_such_db_tether"):
        PostgresSaver(missing)


def test_password_is_not_in_the_message() -> None:
    dsn = f"postgresql://postgres:s3cret-pw@127.0.0.1:{free_port()}/x"
    with pytest.raises(CheckpointError) as info:
        PostgresSaver(dsn, timeout=2)
    assert "s3cret-pw" not in str(info.value)


def test_bad_schema_name_is_refused(postgres_dsn: str) -> None:
    with pytest.raises(CheckpointError, match="schema name"):
        PostgresSaver(postgres_dsn, schema='x"; DROP TABLE y; --')


def test_closed_saver_raises_and_close_is_idempotent(postgres_dsn: str) -> None:
    s = PostgresSaver(postgres_dsn, schema=schema_name())
    s.close()
    s.close()
    with pytest.raises(CheckpointError, match="closed"):
        s.get_head(T)


# -- the server goes away ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_server_stopped_mid_run_then_back(private_postgres: PrivatePostgres, mode: str) -> None:
    with PostgresSaver(private_postgres.dsn, schema=schema_name(), timeout=5) as s:
        advance(s, 1)
        advance(s, 2)
        private_postgres.stop(mode)
        for _ in range(2):  # a dead pooled connection, then no server at all
            started = time.monotonic()
            with pytest.raises(CheckpointError, match=T):
                advance(s, 3)
            assert time.monotonic() - started < 5
        with pytest.raises(CheckpointError):
            s.get_head(T)
        private_postgres.start()
        assert s.get_head(T) == Head("cp-2", 2)
        assert s.get_values(T, {"x": 2})["x"] == [ValueRow("x", 2, None, 2, b"v2")]
        assert s.get_writes(T, ["task"]) == [WriteRow("task", "output", "", b"w2")]
        advance(s, 3)
        assert s.get_head(T) == Head("cp-3", 3)
        assert [c.version for c in s.list_checkpoints(T)] == [3, 2, 1]


def test_user_pool_recovers_after_restart(private_postgres: PrivatePostgres) -> None:
    from psycopg_pool import ConnectionPool

    with ConnectionPool(private_postgres.dsn, min_size=1, max_size=2, open=True, timeout=5) as p:
        s = PostgresSaver(pool=p, schema=schema_name())
        advance(s, 1)
        private_postgres.stop()
        with pytest.raises(CheckpointError):
            advance(s, 2)
        private_postgres.start()
        deadline = time.monotonic() + 30
        while True:
            try:
                assert s.get_head(T) == Head("cp-1", 1)
                break
            except CheckpointError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        advance(s, 2)
        s.close()
        assert not p.closed  # a pool passed in belongs to the caller


# -- timeouts --------------------------------------------------------------------------------


def _tcp_option(conn: psycopg.Connection[object], option: int) -> int:
    sock = socket.socket(fileno=os.dup(conn.fileno()))
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, option)
    finally:
        sock.close()


def test_timeouts_map_onto_libpq_settings(postgres_dsn: str) -> None:
    """The documented defaults reach libpq and the socket; a value in the DSN wins."""
    with PostgresSaver(postgres_dsn, schema=schema_name()) as s, s._pool.connection() as conn:
        params = conn.info.get_parameters()
        assert params["connect_timeout"] == "10"
        assert (params["keepalives"], params["keepalives_idle"]) == ("1", "30")
        assert (params["keepalives_interval"], params["keepalives_count"]) == ("10", "3")
        assert params["tcp_user_timeout"] == "60000"
        assert _tcp_option(conn, socket.TCP_KEEPIDLE) == 30
        assert _tcp_option(conn, socket.TCP_USER_TIMEOUT) == 60000
    dsn = psycopg.conninfo.make_conninfo(postgres_dsn, keepalives_idle="7", connect_timeout="3")
    with (
        PostgresSaver(dsn, schema=schema_name(), connect_timeout=20, keepalive_idle=60) as s,
        s._pool.connection() as conn,
    ):
        params = conn.info.get_parameters()
        assert (params["keepalives_idle"], params["connect_timeout"]) == ("7", "3")
        assert params["keepalives_interval"] == "20"  # not in the DSN: from keepalive_idle=60
        assert _tcp_option(conn, socket.TCP_KEEPIDLE) == 7


def test_frozen_server_times_out_then_the_saver_recovers(private_postgres: PrivatePostgres) -> None:
    """Every server process SIGSTOPped: its kernel still accepts and acknowledges TCP, so only
    the client's own deadlines end the calls. (The pytest timeout guards against a hang.)"""
    secret = "s3cret-frozen"
    dsn = psycopg.conninfo.make_conninfo(private_postgres.dsn, password=secret)
    with PostgresSaver(
        dsn, schema=schema_name(), connect_timeout=2, statement_timeout=1.0, timeout=2
    ) as s:
        advance(s, 1)
        private_postgres.freeze()
        try:
            with pytest.raises(StoreTimeoutError) as on_pooled:
                s.get_head(T)  # a pooled connection: the statement deadline ends it
            with pytest.raises(StoreTimeoutError) as on_new:
                advance(s, 2)  # then a new connection: the connect deadline ends it
        finally:
            private_postgres.thaw()
        assert s.get_head(T) == Head("cp-1", 1)
        advance(s, 2)
        assert s.get_head(T) == Head("cp-2", 2)
    pooled, new = str(on_pooled.value), str(on_new.value)
    assert "reading the head on thread 'thread-1' timed out" in pooled
    assert "statement_timeout=1 s" in pooled and "PostgresSaver(statement_timeout=...)" in pooled
    assert "committing a checkpoint on thread 'thread-1' timed out" in new
    assert "connect_timeout=2 s" in new
    for message in (pooled, new):
        assert f"port={private_postgres.port}" in message
        assert secret not in message


def test_a_write_that_timed_out_may_still_be_applied(postgres_dsn: str) -> None:
    """What the StoreTimeoutError message warns about: the client gives up, the server does
    not know; here the commit waits behind a row lock past the deadline, then goes through
    once the lock is released."""
    with PostgresSaver(postgres_dsn, schema=schema_name(), statement_timeout=0.5) as s:
        advance(s, 1)
        with psycopg.connect(postgres_dsn) as blocker:
            blocker.execute(f"SELECT 1 FROM {s._s}.heads WHERE thread_id = %s FOR UPDATE", [T])
            with pytest.raises(StoreTimeoutError, match=r"statement_timeout=0\.5 s"):
                advance(s, 2)
        deadline = time.monotonic() + 30
        while s.get_head(T) != Head("cp-2", 2):
            assert time.monotonic() < deadline, "the timed-out commit never landed"
            time.sleep(0.05)


# -- schema ---------------------------------------------------------------------------------


def test_schema_from_a_newer_version_is_refused(postgres_dsn: str) -> None:
    schema = schema_name()
    with PostgresSaver(postgres_dsn, schema=schema) as s:
        advance(s, 1)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'INSERT INTO "{schema}".tether_schema_version (version) VALUES (99)')
    with pytest.raises(CheckpointError, match="version 99"):
        PostgresSaver(postgres_dsn, schema=schema)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'DELETE FROM "{schema}".tether_schema_version WHERE version = 99')
    with PostgresSaver(postgres_dsn, schema=schema) as s:
        assert s.get_head(T) == Head("cp-1", 1)


def test_concurrent_migrations_threads_and_processes(postgres_dsn: str) -> None:
    schema = schema_name()
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def open_one() -> None:
        try:
            barrier.wait()
            PostgresSaver(postgres_dsn, schema=schema).close()
        except BaseException as exc:
            errors.append(exc)

    code = """
        import sys
        from tether.checkpoint import PostgresSaver
        PostgresSaver(sys.argv[1], schema=sys.argv[2]).close()
    """
    other = schema_name()
    children = [run_child(code, postgres_dsn, other) for _ in range(4)]
    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for child in children:
        _out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
    with psycopg.connect(postgres_dsn) as conn:
        for name in (schema, other):
            rows = conn.execute(f'SELECT version FROM "{name}".tether_schema_version').fetchall()
            assert rows == [(n,) for n in range(1, SCHEMA_VERSION + 1)]


# -- races and parallelism ------------------------------------------------------------------


def test_two_processes_same_expected_version_exactly_one_wins(
    postgres_dsn: str, tmp_path: Path
) -> None:
    schema = schema_name()
    with PostgresSaver(postgres_dsn, schema=schema) as s:
        advance(s, 1)
    go = tmp_path / "go"
    code = """
        import os, sys, time
        from tether.checkpoint import CheckpointRow, PostgresSaver
        from tether.errors import ThreadBusyError
        saver = PostgresSaver(sys.argv[1], schema=sys.argv[2])
        row = CheckpointRow("thread-1", "cp-" + sys.argv[4], "cp-1", 2, 2, 1.0, b"x")
        while not os.path.exists(sys.argv[3]):
            time.sleep(0.001)
        try:
            saver.commit("thread-1", expected_version=1, checkpoint=row, values=[], writes=[],
                         fence=None, lease_seconds=30, durable=True)
            print("won")
        except ThreadBusyError:
            print("busy")
    """
    children = [run_child(code, postgres_dsn, schema, str(go), name) for name in ("a", "b")]
    time.sleep(1.0)
    go.touch()
    results = sorted(c.communicate(timeout=120)[0].strip() for c in children)
    assert results == ["busy", "won"]
    with PostgresSaver(postgres_dsn, schema=schema) as s:
        head = s.get_head(T)
        assert head is not None and head.version == 2
        assert len(list(s.list_checkpoints(T))) == 2


def test_threads_on_different_threads_run_in_parallel(postgres_dsn: str) -> None:
    """One thread's commit is stuck behind a row lock; the others still commit."""
    with PostgresSaver(postgres_dsn, schema=schema_name(), max_size=8) as s:
        for i in range(8):
            advance(s, 1, thread_id=f"t{i}")
        blocker = psycopg.connect(postgres_dsn)
        blocker.execute(f"SELECT 1 FROM {s._s}.heads WHERE thread_id = 't0' FOR UPDATE")
        stuck = threading.Thread(target=advance, args=(s, 2), kwargs={"thread_id": "t0"})
        stuck.start()
        errors: list[BaseException] = []

        def work(i: int) -> None:
            try:
                for v in range(2, 12):
                    advance(s, v, thread_id=f"t{i}", durable=v % 2 == 0)
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=work, args=(i,)) for i in range(1, 8)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
        assert errors == []
        assert stuck.is_alive()  # still waiting for the row lock, and nobody else was
        blocker.rollback()
        blocker.close()
        stuck.join(30)
        assert s.get_head("t0") == Head("cp-2", 2)
        assert all(s.get_head(f"t{i}") == Head("cp-11", 11) for i in range(1, 8))


# -- PgBouncer mode and round trips -----------------------------------------------------------


@pytest.mark.parametrize("prepare", [True, False])
def test_prepared_statements_switch(postgres_dsn: str, prepare: bool) -> None:
    with PostgresSaver(
        postgres_dsn, schema=schema_name(), prepare=prepare, min_size=1, max_size=1
    ) as s:
        for v in range(1, 12):
            advance(s, v)
            s.get_head(T)
        assert s.get_values(T, {"x": 11})["x"][0].payload == b"v11"
        with s._pool.connection() as conn:
            row = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
        assert row is not None
        assert (row[0] > 0) is prepare


def test_commit_is_one_round_trip(postgres_dsn: str, tmp_path: Path) -> None:
    """libpq's protocol trace shows one Sync (one round trip) and no other query per commit,
    durable or not. Only the commit at which psycopg prepares a statement (once per connection
    and statement) adds one Parse round trip."""
    syncs = []
    with PostgresSaver(postgres_dsn, schema=schema_name(), min_size=1, max_size=1) as s:
        advance(s, 1)
        for v in range(2, 20):
            trace = tmp_path / f"trace-{v}.txt"
            with open(trace, "w") as f:
                with s._pool.connection() as conn:
                    conn.pgconn.trace(f.fileno())
                    conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
                advance(s, v, durable=v % 2 == 0)
                with s._pool.connection() as conn:
                    conn.pgconn.untrace()
            sent = [
                line.split("\t")[2]
                for line in trace.read_text().splitlines()
                if line.startswith("F\t")
            ]
            assert "Query" not in sent, sent
            syncs.append(sent.count("Sync"))
        assert s.get_head(T) == Head("cp-19", 19)
    assert syncs.count(2) == 2  # preparing the durable and the non-durable statement
    assert syncs.count(1) == len(syncs) - 2
    assert syncs[-4:] == [1, 1, 1, 1]


@pytest.mark.parametrize(
    ("name", "driver", "extra"),
    [("PostgresSaver", "psycopg", "postgres"), ("RedisSaver", "redis", "redis")],
)
def test_missing_driver_says_what_to_install(name: str, driver: str, extra: str) -> None:
    code = f"""
        import sys
        sys.modules[{driver!r}] = None
        import tether.checkpoint as c
        try:
            getattr(c, {name!r})
        except ImportError as exc:
            print(exc)
    """
    child = run_child(code)
    out, err = child.communicate(timeout=60)
    assert f"pip install 'tether[{extra}]'" in out, err


def test_durable_false_commits_without_waiting_for_the_wal_flush(
    private_postgres: PrivatePostgres,
) -> None:
    """Right after a non-durable commit the WAL is not yet flushed; after a durable one it is.
    (On a private server: another client's async commit would blur the reading.)"""
    dsn = private_postgres.dsn
    with (
        PostgresSaver(dsn, schema=schema_name()) as s,
        psycopg.connect(dsn, autocommit=True) as monitor,
    ):
        unflushed = {True: 0, False: 0}
        for v in range(1, 41):
            durable = v % 2 == 1
            advance(s, v, durable=durable)
            row = monitor.execute(
                "SELECT pg_current_wal_insert_lsn() <> pg_current_wal_flush_lsn()"
            ).fetchone()
            assert row is not None
            unflushed[durable] += bool(row[0])
    assert unflushed[True] == 0
    assert unflushed[False] > 10
