"""SqliteSaver specifics: the schema table and migrations, refusing bad files, WAL, the
number of statements per call, and commits racing from several processes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from tests._unprivileged import run_python

from tether.checkpoint import CheckpointRow, Head, Owner, SqliteSaver, ValueRow, WriteRow
from tether.checkpoint._sqlite_schema import SCHEMA_VERSION
from tether.errors import CheckpointError, ThreadBusyError


def cp(version: int, thread_id: str = "t", cid: str | None = None) -> CheckpointRow:
    return CheckpointRow(thread_id, cid or f"cp-{version}", None, version, version, 1.0, b"b" * 40)


def commit(
    saver: SqliteSaver,
    version: int,
    thread_id: str = "t",
    *,
    values: list[ValueRow] | None = None,
    durable: bool = False,
) -> None:
    saver.commit(
        thread_id,
        expected_version=version - 1 if version > 1 else None,
        checkpoint=cp(version, thread_id),
        values=values or [],
        writes=[],
        fence=None,
        lease_seconds=60,
        durable=durable,
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "agent.db"


def test_schema_version_is_recorded_and_reopen_is_idempotent(db: Path) -> None:
    with SqliteSaver(db) as saver:
        commit(saver, 1)
    with SqliteSaver(db) as saver:
        assert saver.get_head("t") == Head("cp-1", 1)
    conn = sqlite3.connect(db)
    try:
        version = conn.execute("SELECT value FROM tether_schema WHERE name = 'version'")
        assert version.fetchall() == [(SCHEMA_VERSION,)]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"tether_schema", "heads", "checkpoints", "vals", "writes"} <= tables
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        conn.close()


def test_newer_schema_version_is_refused(db: Path) -> None:
    SqliteSaver(db).close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE tether_schema SET value = ? WHERE name = 'version'", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(CheckpointError, match=f"schema version {SCHEMA_VERSION + 1}") as info:
        SqliteSaver(db)
    assert str(db) in str(info.value)
    assert "upgrade tether" in str(info.value)


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_future_schema_file_is_refused_without_changing_it(db: Path) -> None:
    """A file from a newer tether, in rollback-journal mode: the refusal happens before the
    switch to WAL (or anything else), so not one byte of the file changes."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("CREATE TABLE tether_schema (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
    conn.execute("INSERT INTO tether_schema VALUES ('version', ?)", (SCHEMA_VERSION + 1,))
    conn.execute("CREATE TABLE heads (thread_id TEXT PRIMARY KEY, future_column BLOB)")
    conn.commit()
    conn.close()
    before = _snapshot(db.parent)
    for read_only in (False, True):
        with pytest.raises(CheckpointError, match=f"schema version {SCHEMA_VERSION + 1}"):
            SqliteSaver(db, read_only=read_only)
        assert _snapshot(db.parent) == before
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    conn.close()


def _other_application_file(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER)")
    conn.execute("INSERT INTO users VALUES (1, 'ada')")
    conn.commit()
    conn.close()


def test_file_with_other_tables_is_refused_unless_allowed(db: Path) -> None:
    _other_application_file(db)
    before = _snapshot(db.parent)
    with pytest.raises(CheckpointError) as info:
        SqliteSaver(db)
    message = str(info.value)
    assert str(db) in message
    assert "orders, users" in message
    assert "allow_other_tables=True" in message
    assert _snapshot(db.parent) == before  # nothing added, not even WAL mode
    with SqliteSaver(db, allow_other_tables=True) as saver:
        commit(saver, 1)
        assert saver.get_head("t") == Head("cp-1", 1)
    with SqliteSaver(db) as saver:  # now a tether database (that also holds other tables)
        assert saver.get_head("t") == Head("cp-1", 1)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT name FROM users").fetchall() == [("ada",)]
    conn.close()


def test_other_tables_named_like_tethers_are_refused_even_when_allowed(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE heads (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    before = _snapshot(db.parent)
    with pytest.raises(CheckpointError, match="named heads"):
        SqliteSaver(db, allow_other_tables=True)
    assert _snapshot(db.parent) == before


def test_empty_existing_file_becomes_a_checkpoint_database(db: Path) -> None:
    db.write_bytes(b"")
    with SqliteSaver(db) as saver:
        commit(saver, 1)
        assert saver.get_head("t") == Head("cp-1", 1)


def test_read_only_saver_reads_and_refuses_every_write(db: Path) -> None:
    with SqliteSaver(db) as saver:
        commit(saver, 1)
        saver.put_writes("t", [WriteRow("task", "output", "", b"w")], durable=False)
    before = db.read_bytes()
    with SqliteSaver(db, read_only=True) as reader:
        assert reader.get_head("t") == Head("cp-1", 1)
        assert reader.list_threads() == ["t"]
        assert reader.get_writes("t", ["task"]) == [WriteRow("task", "output", "", b"w")]
        assert reader.dump_thread("t").head == Head("cp-1", 1)
        writes = {
            "commit": lambda: commit(reader, 2),
            "put_writes": lambda: reader.put_writes(
                "t", [WriteRow("x", "output", "", b"")], durable=False
            ),
            "claim": lambda: reader.claim("t", Owner("run"), 10),
            "release": lambda: reader.release("t", Owner("run")),
            "delete_thread": lambda: reader.delete_thread("t"),
            "delete_checkpoints": lambda: reader.delete_checkpoints("t", ["cp-1"], [], []),
            "load_thread": lambda: reader.load_thread(reader.dump_thread("t")),
        }
        for name, write in writes.items():
            with pytest.raises(CheckpointError, match="read_only") as info:
                write()
            assert str(db) in str(info.value), name
    assert db.read_bytes() == before
    with SqliteSaver(db) as saver:
        assert saver.get_head("t") == Head("cp-1", 1)


def test_read_only_open_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(CheckpointError, match=r"missing\.db"):
        SqliteSaver(missing, read_only=True)
    assert not missing.exists()
    other = tmp_path / "other.db"
    _other_application_file(other)
    with pytest.raises(CheckpointError, match="not a tether checkpoint database"):
        SqliteSaver(other, read_only=True)


_READER = """
    import sys
    from tether.checkpoint import SqliteSaver
    from tether.errors import CheckpointError
    path = sys.argv[1]
    try:
        SqliteSaver(path)
    except CheckpointError as exc:
        print("writable open:", exc)
    with SqliteSaver(path, read_only=True) as saver:
        print("head:", saver.get_head("t"))
"""


_READ_ONLY = """
    import sys
    from tether.checkpoint import SqliteSaver
    with SqliteSaver(sys.argv[1], read_only=True) as saver:
        print("head:", saver.get_head("t"))
"""

# Commits, then dies without closing: the commit stays in the write-ahead log.
_CRASHING_WRITER = """
    import os, signal, sys
    from tether.checkpoint import CheckpointRow, SqliteSaver
    saver = SqliteSaver(sys.argv[1])
    saver.commit(
        "t",
        expected_version=None,
        checkpoint=CheckpointRow("t", "cp-1", None, 1, 1, 1.0, b"body"),
        values=[],
        writes=[],
        lease_seconds=60,
        durable=True,
    )
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("locked", ["file", "file and directory"])
def test_reading_a_database_this_user_cannot_write(db: Path, locked: str) -> None:
    """The reader is a real process that permission bits bind (see tests/_unprivileged.py)."""
    with SqliteSaver(db) as saver:
        commit(saver, 1)
    db.chmod(0o444)
    if locked == "file and directory":
        db.parent.chmod(0o555)
    try:
        before = db.read_bytes()
        done = run_python(_READER, str(db))
    finally:
        db.parent.chmod(0o755)
        db.chmod(0o644)
    assert done.returncode == 0, done.stderr
    assert "head: Head(checkpoint_id='cp-1', version=1)" in done.stdout
    assert f"writable open: {db}: the checkpoint database is read-only" in done.stdout
    assert "read_only=True" in done.stdout
    assert db.read_bytes() == before


def test_unreadable_write_ahead_log_in_a_locked_directory_is_named(db: Path) -> None:
    """A log with commits not yet in the file, no shared-memory index, and no right to make
    one: reading the file alone would miss those commits, so the open says why it cannot."""
    writer = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_CRASHING_WRITER), str(db)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert writer.returncode == -9, writer.stderr
    wal = Path(f"{db}-wal")
    assert wal.stat().st_size > 0
    Path(f"{db}-shm").unlink()
    db.parent.chmod(0o555)
    try:
        done = run_python(_READ_ONLY, str(db))
    finally:
        db.parent.chmod(0o755)
    assert done.returncode != 0
    assert f"{wal} holds commits not yet in the file" in done.stderr


def test_file_that_is_not_sqlite_is_refused(db: Path) -> None:
    db.write_bytes(os.urandom(8192))
    with pytest.raises(CheckpointError) as info:
        SqliteSaver(db)
    assert str(db) in str(info.value)
    assert not isinstance(info.value, sqlite3.Error)


def test_unopenable_path_is_a_checkpoint_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no-such-dir"):
        SqliteSaver(tmp_path / "no-such-dir" / "agent.db")


def test_truncated_file_raises_checkpoint_error(db: Path) -> None:
    with SqliteSaver(db) as saver:
        for n in range(60):
            tid = f"thread-{n:03d}"
            commit(saver, 1, tid, values=[ValueRow("msgs", 1, None, 1, os.urandom(1500))])
            saver.put_writes(tid, [WriteRow("task", "output", "", os.urandom(300))], durable=False)
    size = db.stat().st_size
    assert size > 100_000
    with db.open("r+b") as f:
        f.truncate(size // 2)
    failures = 0
    try:
        saver = SqliteSaver(db)
    except CheckpointError:
        return
    try:
        for tid in [f"thread-{n:03d}" for n in range(60)]:
            try:
                saver.dump_thread(tid)
                saver.get_values(tid, {"msgs": 1})
            except CheckpointError as e:
                assert tid in str(e)
                failures += 1
    finally:
        saver.close()
    assert failures > 0


def test_corrupted_pages_raise_checkpoint_error_on_read(db: Path) -> None:
    with SqliteSaver(db) as saver:
        for n in range(40):
            commit(saver, 1, f"thread-{n}", values=[ValueRow("msgs", 1, None, 1, b"m" * 1500)])
    size = db.stat().st_size
    with db.open("r+b") as f:  # keep the first pages (header, schema), smash the rest
        for offset in range(8 * 4096, size, 4096):
            f.seek(offset)
            f.write(b"\xff" * 4096)
    with SqliteSaver(db) as saver:
        for n in range(40):
            with pytest.raises(CheckpointError, match=f"'thread-{n}'.*malformed"):
                saver.dump_thread(f"thread-{n}")
                saver.get_values(f"thread-{n}", {"msgs": 1})


@pytest.mark.parametrize(
    "ident",
    [
        "0190f5c2-8a1b-7c3d-9e4f-a1b2c3d4e5f6",  # canonical UUID: stored as 17 bytes
        "0190F5C2-8A1B-7C3D-9E4F-A1B2C3D4E5F6",  # not canonical: kept as text
        "{0190f5c2-8a1b-7c3d-9e4f-a1b2c3d4e5f6}",
        "a1b2c3d4e5f6a7b8c9d0e1f2",  # lowercase hex (task ids): stored as bytes
        "a1b2c3d4e5f6a7b8c9d0e1f",  # odd length: text
        "00ff",
        "cp-1",
        "",
        "é-ü",
    ],
)
def test_ids_round_trip_exactly(db: Path, ident: str) -> None:
    with SqliteSaver(db) as saver:
        row = CheckpointRow("t", ident, ident, 1, 0, 2.5, b"body")
        write = WriteRow(ident, "journal", ident, b"p")
        saver.commit(
            "t",
            expected_version=None,
            checkpoint=row,
            values=[],
            writes=[write],
            fence=None,
            lease_seconds=1,
            durable=False,
        )
        assert saver.get_head("t") == Head(ident, 1)
        assert saver.get_checkpoint("t", ident) == row
        assert list(saver.list_checkpoints("t")) == [row]
        assert saver.get_writes("t", [ident]) == [write]
        dump = saver.dump_thread("t")
        assert (dump.checkpoints, dump.writes) == ([row], [write])
        saver.delete_checkpoints("t", [ident], [], [ident])
        assert saver.get_checkpoint("t", ident) is None
        assert saver.get_writes("t", [ident]) == []


def test_uuid_checkpoint_ids_are_stored_compactly(db: Path) -> None:
    ident = "0190f5c2-8a1b-7c3d-9e4f-a1b2c3d4e5f6"
    with SqliteSaver(db) as saver:
        commit(saver, 1, values=[])
        saver.commit(
            "t",
            expected_version=1,
            checkpoint=CheckpointRow("t", ident, "cp-1", 2, 1, 1.0, b""),
            values=[],
            writes=[],
            fence=None,
            lease_seconds=1,
            durable=False,
        )
    conn = sqlite3.connect(db)
    try:
        stored = conn.execute("SELECT checkpoint_id FROM heads").fetchone()[0]
        assert isinstance(stored, bytes) and len(stored) == 17
    finally:
        conn.close()


def test_version_out_of_range_is_refused_and_stores_nothing(db: Path) -> None:
    with SqliteSaver(db) as saver:
        with pytest.raises(CheckpointError, match="out of range"):
            saver.commit(
                "t",
                expected_version=None,
                checkpoint=cp(2**32),
                values=[ValueRow("x", 1, None, 1, b"v")],
                writes=[],
                fence=None,
                lease_seconds=1,
                durable=False,
            )
        assert saver.get_head("t") is None
        assert saver.dump_thread("t").values == []


def test_closed_saver_raises_checkpoint_error(db: Path) -> None:
    saver = SqliteSaver(db)
    saver.close()
    with pytest.raises(CheckpointError, match="closed"):
        saver.get_head("t")


def test_locked_file_is_a_checkpoint_error_naming_the_thread(db: Path) -> None:
    saver = SqliteSaver(db, busy_timeout_ms=50)
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(CheckpointError, match="'t-locked'"):
            commit(saver, 1, "t-locked")
        other.execute("ROLLBACK")
        commit(saver, 1, "t-locked")  # the failed transaction left nothing behind
        assert saver.get_head("t-locked") == Head("cp-1", 1)
    finally:
        other.close()
        saver.close()


def test_from_conn_string_closes_and_folds_the_wal(db: Path) -> None:
    with SqliteSaver.from_conn_string(str(db)) as saver:
        for v in range(1, 20):
            commit(saver, v)
    wal = Path(f"{db}-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    with pytest.raises(CheckpointError):
        saver.get_head("t")
    with SqliteSaver.from_conn_string(f"sqlite:///{db}") as again:
        assert again.get_head("t") == Head("cp-19", 19)


def test_durable_switches_synchronous_only_between_transactions(db: Path) -> None:
    with SqliteSaver(db) as saver:
        conn = saver._conn
        assert conn is not None
        statements: list[str] = []
        conn.set_trace_callback(statements.append)
        commit(saver, 1, durable=True)
        commit(saver, 2, durable=True)
        commit(saver, 3, durable=False)
        pragmas = [s for s in statements if s.startswith("PRAGMA synchronous")]
        assert pragmas == ["PRAGMA synchronous = FULL", "PRAGMA synchronous = NORMAL"]
        assert conn.execute("PRAGMA synchronous").fetchone() == (1,)
        # One transaction per commit.
        assert sum(s == "BEGIN IMMEDIATE" for s in statements) == 3
        assert sum(s == "COMMIT" for s in statements) == 3


def test_statements_per_call(db: Path) -> None:
    with SqliteSaver(db) as saver:
        commit(saver, 1, values=[ValueRow(f"c{i}", 1, None, 1, b"x") for i in range(5)])
        for v in range(2, 6):
            commit(saver, v, values=[ValueRow("c0", v, v - 1, 1, b"+")])
        conn = saver._conn
        assert conn is not None
        statements: list[str] = []
        conn.set_trace_callback(statements.append)
        chains = saver.get_values("t", {f"c{i}": 1 if i else 5 for i in range(5)})
        assert [len(c) for c in chains.values()] == [5, 1, 1, 1, 1]
        assert len(statements) == 1  # one query for every channel and its whole chain
        statements.clear()
        saver.get_head("t")
        saver.get_checkpoint("t", "cp-1")
        list(saver.list_checkpoints("t", limit=2))
        assert len(statements) == 3


def test_many_threads_share_one_saver(db: Path) -> None:
    errors: list[BaseException] = []
    with SqliteSaver(db) as saver:

        def work(n: int) -> None:
            try:
                for v in range(1, 31):
                    commit(saver, v, f"thread-{n}", values=[ValueRow("x", v, None, v, b"v")])
                    assert saver.get_head(f"thread-{n}") == Head(f"cp-{v}", v)
            except BaseException as e:
                errors.append(e)

        workers = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert errors == []
        assert saver.list_threads() == [f"thread-{n}" for n in range(8)]


_RACER = textwrap.dedent(
    """
    import sys
    from tether.checkpoint import CheckpointRow, SqliteSaver
    from tether.errors import ThreadBusyError

    path, name, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with SqliteSaver(path) as saver:
        print("ready", flush=True)
        for r in range(1, rounds + 1):
            sys.stdin.readline()
            row = CheckpointRow("race", f"{name}-{r}", None, r, r, 0.0, name.encode())
            try:
                saver.commit("race", expected_version=r - 1 if r > 1 else None,
                             checkpoint=row, values=[], writes=[], fence=None,
                             lease_seconds=60, durable=r % 2 == 0)
                print("won", flush=True)
            except ThreadBusyError:
                print("busy", flush=True)
    """
)


def test_two_processes_exactly_one_commit_wins(db: Path) -> None:
    SqliteSaver(db).close()
    rounds = 15
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, str(db), name, str(rounds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("p0", "p1")
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "ready"
        for _ in range(rounds):
            for p in procs:
                assert p.stdin is not None
                p.stdin.write("go\n")
                p.stdin.flush()
            results = sorted(p.stdout.readline().strip() for p in procs if p.stdout)
            assert results == ["busy", "won"]
        for p in procs:
            assert p.wait(timeout=60) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    with SqliteSaver(db) as saver:
        rows = list(saver.list_checkpoints("race"))
        assert [r.version for r in rows] == list(range(rounds, 0, -1))
        assert saver.get_head("race") == Head(rows[0].checkpoint_id, rounds)


def test_second_process_sees_lease_and_dead_holder(db: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        from tether.checkpoint import Owner, SqliteSaver
        with SqliteSaver(sys.argv[1]) as saver:
            saver.claim("leased", Owner("run-child"), 3600)
        """
    )
    subprocess.run([sys.executable, "-c", script, str(db)], check=True)
    with SqliteSaver(db) as saver, SqliteSaver(db) as other:
        # The child exited, so its lease no longer holds on this host.
        assert saver.claim("leased", Owner("run-me"), 60).head is None
        with pytest.raises(ThreadBusyError, match="run-me"):
            other.claim("leased", Owner("run-other"), 60)
