"""The ``tether`` CLI end to end, on SQLite files written by the graphs in ``cli_graphs``."""

from __future__ import annotations

import base64
import importlib
import json
import operator
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any, TypedDict

import msgpack
import pytest
from tests._unprivileged import obeying_permissions
from typer.testing import CliRunner

from tether import END, START, StateGraph
from tether.checkpoint import SqliteSaver
from tether.cli import app
from tether.serde import EncryptedSerializer, MsgpackSerializer
from tether.serde._envelope import seal

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def graphs() -> Iterator[ModuleType]:
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(HERE))
        yield importlib.import_module("cli_graphs")


@pytest.fixture(scope="module")
def template(graphs: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "agent.db"
    graphs.make_db(str(path))
    return path


@pytest.fixture
def db(template: Path, tmp_path: Path) -> str:
    path = tmp_path / "agent.db"
    shutil.copyfile(template, path)
    return str(path)


def run(*args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    if code == 0:
        assert result.stderr == ""
    else:
        # One red line on stderr, nothing on stdout, no traceback.
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stderr.startswith("error: ")
        assert "Traceback" not in result.output
    return result


def head_state(graphs: ModuleType, db: str, thread: str, graph: str = "approval") -> Any:
    with SqliteSaver(db) as saver:
        compiled = getattr(graphs, graph)
        bound = compiled.__class__(compiled.spec, saver, name=compiled.name)
        return bound.get_state({"configurable": {"thread_id": thread}})


def history_ids(db: str, thread: str) -> list[str]:
    with SqliteSaver(db) as saver:
        return [r.checkpoint_id for r in saver.dump_thread(thread).checkpoints]


# -- reading --------------------------------------------------------------------------------


def test_threads_lists_heads_next_nodes_and_interrupt_counts(graphs: ModuleType, db: str) -> None:
    out = run("threads", db).stdout
    for tid, graph in (("t1", "approval"), ("p1", "parallel")):
        snap = head_state(graphs, db, tid, graph)
        line = next(ln for ln in out.splitlines() if f" {tid} " in ln)
        assert snap.config["configurable"]["checkpoint_id"] in line
    t1 = next(ln for ln in out.splitlines() if " t1 " in ln)
    assert "ask" in t1 and t1.rstrip(" │").endswith("1")
    p1 = next(ln for ln in out.splitlines() if " p1 " in ln)
    assert "a, b" in p1 and p1.rstrip(" │").endswith("2")
    # c1 has a custom reducer: listed, with a hint instead of failing the whole listing.
    assert " c1 " in out and "pass --graph" in out
    out = run("threads", db, "--graph", "cli_graphs:custom").stdout
    assert "pass --graph" not in out and "hold" in out


def test_show_paused_thread(graphs: ModuleType, db: str) -> None:
    snap = head_state(graphs, db, "t1")
    [pending] = snap.interrupts
    out = run("show", db, "t1").stdout
    assert "thread t1" in out
    assert snap.config["configurable"]["checkpoint_id"] in out
    assert "next: ask" in out
    assert "1 pending interrupt" in out
    assert pending.id in out and "approve the refund?" in out
    assert "'hi'" in out
    # Long values are cut unless --full.
    assert "'+388" in out and "x" * 200 not in out.replace("\n", "")
    full = run("show", db, "t1", "--full").stdout
    assert "+388" not in full and "x" * 150 in full


def test_show_with_graph_matches_show_without(db: str) -> None:
    assert run("show", db, "t1").stdout == run("show", db, "t1", "-g", "cli_graphs:approval").stdout


def test_show_custom_reducer_needs_graph(db: str) -> None:
    err = run("show", db, "c1", code=1).stderr
    assert "custom reducer" in err and "--graph" in err
    out = run("show", db, "c1", "--graph", "cli_graphs:custom").stdout
    assert "['alpha', 'beta', 'zeta']" in out and "more" in out and "next: hold" in out


def test_show_parallel_interrupts_with_ids_and_nodes(db: str) -> None:
    out = run("show", db, "p1").stdout
    assert "2 pending interrupts" in out
    ia = next(ln for ln in out.splitlines() if " ia " in ln)
    ib = next(ln for ln in out.splitlines() if " ib " in ln)
    assert " a " in ia and "'need a'" in ia
    assert " b " in ib and "'need b'" in ib


def test_history_table(db: str) -> None:
    ids = history_ids(db, "t1")
    assert len(ids) == 3  # the input checkpoint, START's step, the paused step
    out = run("history", db, "t1").stdout
    for cid in ids:
        assert cid in out
    rows = [ln for ln in out.splitlines() if any(c in ln for c in ids)]
    assert "input" in rows[2] and "__start__" in rows[2]
    assert "loop" in rows[1] and "plan" in rows[1]
    assert "loop" in rows[0] and "ask" in rows[0]
    assert rows[0].index(ids[2]) >= 0  # newest first
    limited = run("history", db, "t1", "--limit", "1").stdout
    assert ids[2] in limited and ids[0] not in limited and ids[1] not in limited


# -- resume ---------------------------------------------------------------------------------


def test_resume_single_interrupt_without_id(db: str) -> None:
    out = run("resume", db, "t1", "--graph", "cli_graphs:approval", "--value", '"yes"').stdout
    assert "resumed t1" in out
    assert "'answer: yes'" in out
    assert "no pending interrupts" in out and "finished" in out
    shown = run("show", db, "t1").stdout
    assert "'yes'" in shown and "next: - (finished)" in shown
    err = run("resume", db, "t1", "-g", "cli_graphs:approval", "--value", "1", code=1).stderr
    assert "no pending interrupts" in err


def test_resume_with_explicit_derived_id_and_json_object(graphs: ModuleType, db: str) -> None:
    [pending] = head_state(graphs, db, "t1").interrupts
    value = json.dumps({"ok": True, "by": "ann"})
    out = run(
        "resume", db, "t1", "-g", "cli_graphs:approval", "--id", pending.id, "--value", value
    ).stdout
    assert f"answered {pending.id}" in out
    assert "{'ok': True, 'by': 'ann'}" in out


def test_resume_two_pending_interrupts_one_at_a_time(db: str) -> None:
    graph = "cli_graphs:parallel"
    err = run("resume", db, "p1", "-g", graph, "--value", "1", code=1).stderr
    assert "'ia'" in err and "'ib'" in err
    out = run("resume", db, "p1", "-g", graph, "--id", "ia", "--value", "1").stdout
    assert "answered ia" in out
    assert "1 pending interrupt" in out and " ib " in out and "'need b'" in out
    assert " ia " not in out
    err = run("resume", db, "p1", "-g", graph, "--id", "nope", "--value", "1", code=1).stderr
    assert "nope" in err and "ib" in err
    out = run("resume", db, "p1", "-g", graph, "--id", "ib", "--value", '"ok"').stdout
    assert "['a=1', 'b=ok']" in out and "no pending interrupts" in out


def test_resume_accepts_an_uncompiled_state_graph(db: str) -> None:
    out = run("resume", db, "t1", "-g", "cli_graphs:approval_builder", "--value", "false").stdout
    assert "'answer: False'" in out


def test_resume_durability_choices(db: str) -> None:
    run("resume", db, "t1", "-g", "cli_graphs:approval", "--value", "2", "--durability", "exit")
    assert "'answer: 2'" in run("show", db, "t1").stdout
    result = CliRunner().invoke(
        app, ["resume", db, "p1", "-g", "cli_graphs:parallel", "--value", "1", "--durability", "x"]
    )
    assert result.exit_code == 2


@pytest.mark.parametrize(
    ("graph", "needle"),
    [
        ("no_such_module_xyz:app", "cannot import 'no_such_module_xyz'"),
        ("cli_graphs:missing", "has no attribute 'missing'"),
        ("cli_graphs:not_a_graph", "not a compiled graph"),
        ("cli_graphs", "expected module:attr"),
        ("nowhere/file.py:app", "cannot import"),
    ],
)
def test_resume_bad_graph(db: str, graph: str, needle: str) -> None:
    err = run("resume", db, "t1", "--graph", graph, "--value", "1", code=2).stderr
    assert needle in err
    assert "next: ask" in run("show", db, "t1").stdout


def test_graph_from_a_file_path(db: str) -> None:
    out = run("show", db, "c1", "-g", f"{HERE / 'cli_graphs.py'}:custom").stdout
    assert "alpha" in out


@pytest.mark.parametrize("value", ["yes", "{'a': 1}", ""])
def test_resume_bad_json(db: str, value: str) -> None:
    err = run("resume", db, "t1", "-g", "cli_graphs:approval", "--value", value, code=2).stderr
    assert "--value is not valid JSON" in err


# -- maintenance ----------------------------------------------------------------------------


def test_prune_keeps_newest_and_show_still_works(db: str) -> None:
    run("resume", db, "p1", "-g", "cli_graphs:parallel", "--id", "ia", "--value", "1")
    run("resume", db, "p1", "-g", "cli_graphs:parallel", "--id", "ib", "--value", "2")
    run("resume", db, "t1", "-g", "cli_graphs:approval", "--value", '"yes"')
    before_t1 = run("show", db, "t1").stdout
    ids = history_ids(db, "t1")
    assert len(ids) >= 3
    out = run("prune", db, "t1", "--keep-last", "2").stdout
    assert f"pruned {len(ids) - 2} checkpoint" in out
    assert set(history_ids(db, "t1")) == set(ids[-2:])
    hist = run("history", db, "t1").stdout
    assert all(cid in hist for cid in ids[-2:]) and ids[0] not in hist
    assert run("show", db, "t1").stdout == before_t1
    assert "pruned 0 checkpoints" in run("prune", db, "t1", "--keep-last", "5").stdout
    run("prune", db, "p1", "--keep-last", "1")
    assert len(history_ids(db, "p1")) == 1
    assert "['a=1', 'b=2']" in run("show", db, "p1").stdout
    result = CliRunner().invoke(app, ["prune", db, "t1", "--keep-last", "0"])
    assert result.exit_code == 2


def test_export_import_round_trip(db: str, tmp_path: Path) -> None:
    export = tmp_path / "t1.jsonl"
    out = run("export", db, "t1", "-o", str(export)).stdout
    assert f"exported t1 to {export}" in out
    other = tmp_path / "other.db"
    assert not other.exists()
    assert "imported thread t1" in run("import", str(other), str(export)).stdout
    assert run("show", str(other), "t1").stdout == run("show", db, "t1").stdout
    assert run("history", str(other), "t1").stdout == run("history", db, "t1").stdout
    # The imported thread resumes like the original.
    out = run("resume", str(other), "t1", "-g", "cli_graphs:approval", "--value", '"y"').stdout
    assert "'answer: y'" in out
    # Under a new id; and the same id twice is refused.
    run("import", str(other), str(export), "--thread", "t9")
    assert "thread t9" in run("show", str(other), "t9").stdout
    err = run("import", str(other), str(export), code=1).stderr
    assert "already exists" in err


def test_export_to_stdout_and_import_from_stdin(db: str, tmp_path: Path) -> None:
    text = run("export", db, "p1").stdout
    header = json.loads(text.splitlines()[0])
    assert header["format"] == "tether-thread" and header["thread_id"] == "p1"
    other = str(tmp_path / "other.db")
    result = CliRunner().invoke(app, ["import", other, "-"], input=text)
    assert result.exit_code == 0, result.stderr
    assert run("show", other, "p1").stdout == run("show", db, "p1").stdout


def test_import_under_new_id_keeps_pending_interrupts(db: str, tmp_path: Path) -> None:
    export = tmp_path / "p1.jsonl"
    run("export", db, "p1", "-o", str(export))
    run("import", db, str(export), "--thread", "copy")
    assert "2 pending interrupts" in run("show", db, "copy").stdout


def test_import_bad_file(db: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    assert "malformed" in run("import", db, str(bad), code=1).stderr
    assert "cannot read" in run("import", db, str(tmp_path / "none.jsonl"), code=2).stderr


def test_delete_needs_yes(db: str) -> None:
    err = run("delete", db, "t1", code=2).stderr
    assert "--yes" in err
    assert "thread t1" in run("show", db, "t1").stdout
    assert "deleted thread t1" in run("delete", db, "t1", "--yes").stdout
    assert "not found" in run("show", db, "t1", code=1).stderr
    assert " t1 " not in run("threads", db).stdout


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["threads"],
        ["show", "t1"],
        ["history", "t1"],
        ["resume", "t1", "-g", "cli_graphs:approval", "--value", "1"],
        ["prune", "t1", "--keep-last", "1"],
        ["export", "t1"],
        ["delete", "t1", "--yes"],
    ],
)
def test_missing_database_is_not_created(tmp_path: Path, args: list[str]) -> None:
    missing = tmp_path / "missing.db"
    err = run(args[0], str(missing), *args[1:], code=2).stderr
    assert "no such database file" in err
    assert not missing.exists()
    assert list(tmp_path.iterdir()) == []


def test_not_a_tether_database(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello " * 200)
    assert "not a SQLite database" in run("threads", str(text), code=2).stderr
    import sqlite3

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    assert "not a tether checkpoint database" in run("show", str(other), "t1", code=2).stderr
    with sqlite3.connect(other) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert tables == {"t"}


@pytest.mark.parametrize(
    "args",
    [
        ["show"],
        ["history"],
        ["resume", "-g", "cli_graphs:approval", "--value", "1"],
        ["prune", "--keep-last", "1"],
        ["export"],
        ["delete", "--yes"],
    ],
)
def test_unknown_thread(db: str, args: list[str]) -> None:
    err = run(args[0], db, "nope", *args[1:], code=1).stderr
    assert "thread 'nope' not found" in err and "t1" in err


def test_subprocess_entry_point(template: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "tether.cli", "threads", str(template)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert all(f" {tid} " in proc.stdout for tid in ("t1", "p1", "c1"))
    proc = subprocess.run(
        [sys.executable, "-m", "tether.cli", "show", str(tmp_path / "none.db"), "t1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'none.db'}: no such database file"
    ]
    assert proc.stdout == ""


@pytest.mark.parametrize("command", [["threads"], ["show", "{db}", "t1"], ["export", "{db}", "t1"]])
def test_read_commands_work_on_a_database_this_user_cannot_write(
    template: Path, tmp_path: Path, command: list[str]
) -> None:
    """File and directory read-only, the reader a process that permission bits bind."""
    locked = tmp_path / "locked"
    locked.mkdir()
    db = locked / "agent.db"
    shutil.copyfile(template, db)
    args = [a.format(db=db) for a in command] if len(command) > 1 else [*command, str(db)]
    before = db.read_bytes()
    db.chmod(0o444)
    locked.chmod(0o555)
    try:
        proc = subprocess.run(
            obeying_permissions([sys.executable, "-m", "tether.cli", *args]),
            capture_output=True,
            text=True,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
            },
            timeout=120,
        )
    finally:
        locked.chmod(0o755)
        db.chmod(0o644)
    assert proc.returncode == 0, proc.stderr
    assert "t1" in proc.stdout
    assert db.read_bytes() == before
    assert sorted(p.name for p in locked.iterdir()) == ["agent.db"]


def test_stats_shows_the_four_metrics_with_targets(db: str) -> None:
    run("resume", db, "t1", "--graph", "cli_graphs:approval", "--value", "true")
    out = run("stats", db, "t1").stdout
    for text in (
        "resume latency",
        "checkpoint size",
        "failure recovery",
        "idempotency",
        "< 5 s",
        "< 10 MB",
        "< 30 s",
        "100 %",
    ):
        assert text in out, text
    assert "1 resumes" in out
    assert "error" in run("stats", db, "nope", code=1).stderr


# -- damaged and encrypted stores -------------------------------------------------------------


def _rewrite_newest_value(db: str, thread: str, change: Any) -> None:
    """Replace the payload of the thread's newest value row(s), straight in the file."""
    with closing(sqlite3.connect(db)) as conn, conn:
        tid = conn.execute("SELECT tid FROM heads WHERE thread_id = ?", (thread,)).fetchone()[0]
        rows = conn.execute(
            "SELECT channel, version, payload FROM vals WHERE tid = ? AND version = "
            "(SELECT max(version) FROM vals WHERE tid = ?)",
            (tid, tid),
        ).fetchall()
        for channel, version, payload in rows:
            conn.execute(
                "UPDATE vals SET payload = ? WHERE tid = ? AND channel = ? AND version = ?",
                (change(payload), tid, channel, version),
            )


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tether.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def _deep_record() -> bytes:
    """A valid, checksummed record no tether writes: 5,000 tuples inside one another."""
    data = msgpack.packb(0)
    for _ in range(5000):
        data = msgpack.packb(msgpack.ExtType(1, data))
    return seal(data)


def test_threads_lists_every_thread_when_one_holds_bytes_nested_too_deeply(db: str) -> None:
    # written straight into the file, bypassing the encoder; reading it used to kill the
    # process with SIGSEGV, for `tether threads` on the whole database too
    _rewrite_newest_value(db, "t1", lambda _payload: _deep_record())
    proc = _cli("threads", db)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert all(f" {tid} " in proc.stdout for tid in ("t1", "p1", "c1"))
    (note,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("? t1:")]
    assert "thread 't1'" in note and "more than 100 levels" in note
    proc = _cli("show", db, "t1")
    assert proc.returncode == 1 and proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: thread 't1'") and "damaged" in line


def _flip_first_payload_bit(payload: bytes) -> bytes:
    return bytes([payload[0], payload[1], payload[2] ^ 0x01]) + payload[3:]


def test_a_damaged_row_is_one_red_line_naming_the_thread(db: str, tmp_path: Path) -> None:
    _rewrite_newest_value(db, "t1", _flip_first_payload_bit)
    for args in (["show", db, "t1"], ["history", db, "t1"], ["export", db, "t1"]):
        err = run(*args, code=1).stderr
        assert "thread 't1'" in err and "damaged" in err and "checksum" in err, args
    out = run("threads", db).stdout
    assert all(f" {tid} " in out for tid in ("t1", "p1", "c1"))
    assert any(ln.startswith("? t1: thread 't1'") for ln in out.splitlines())
    assert "thread p1" in run("show", db, "p1").stdout


def test_import_refuses_a_damaged_export(db: str, tmp_path: Path) -> None:
    out = tmp_path / "t1.jsonl"
    run("export", db, "t1", "-o", str(out))
    lines = out.read_text().splitlines()
    index, rec = next((i, json.loads(ln)) for i, ln in enumerate(lines) if '"value"' in ln)
    payload = base64.b64decode(rec["payload"])
    rec["payload"] = base64.b64encode(_flip_first_payload_bit(payload)).decode()
    lines[index] = json.dumps(rec)
    out.write_text("\n".join(lines) + "\n")
    err = run("import", db, str(out), "--thread", "copy", code=1).stderr
    assert "thread 'copy'" in err and f"channel {rec['channel']!r}" in err and "damaged" in err
    assert "not found" in run("show", db, "copy", code=1).stderr


def test_encrypted_store_shows_a_failed_task_only_with_the_key(tmp_path: Path) -> None:
    key = bytes(range(32))
    db = str(tmp_path / "secret.db")
    secret = "card 4111-1111 declined"

    def fail(state: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError(secret)

    class State(TypedDict, total=False):
        messages: Annotated[list[str], operator.add]

    g = StateGraph(State)
    g.add_node("charge", fail)
    g.add_edge(START, "charge")
    g.add_edge("charge", END)
    serde = EncryptedSerializer(MsgpackSerializer(), {"k1": key}, "k1")
    with SqliteSaver(db, serde=serde) as saver, pytest.raises(RuntimeError):
        g.compile(checkpointer=saver).invoke(
            {"messages": ["pay"]}, {"configurable": {"thread_id": "s1"}}
        )
    assert secret.encode() not in Path(db).read_bytes()

    keys = {"TETHER_ENCRYPTION_KEYS": f"k1:{base64.b64encode(key).decode()}"}
    shown = CliRunner().invoke(app, ["show", db, "s1"], env=keys)
    assert shown.exit_code == 0, shown.output
    assert f"failed: charge: RuntimeError: {secret}" in " ".join(shown.stdout.split())
    without = run("show", db, "s1", code=1).stderr
    assert "thread 's1'" in without and "encrypted" in without and secret not in without
    listed = run("threads", db).stdout
    assert " s1 " in listed and "? s1: thread 's1'" in listed


def test_threads_lists_every_redis_thread_when_one_lost_a_key(redis_url: str) -> None:
    """A Redis thread whose head lists a key that is gone (evicted) fails its own row only."""
    import redis

    from tether.checkpoint import RedisSaver

    class S(TypedDict):
        n: int

    saver = RedisSaver(redis_url)  # the CLI opens the default prefix
    g = StateGraph(S)
    g.add_node("inc", lambda s: {"n": s["n"] + 1})
    g.add_edge(START, "inc")
    app_ = g.compile(checkpointer=saver)
    try:
        for tid in ("ok", "hurt"):
            app_.invoke({"n": 1}, {"configurable": {"thread_id": tid}})
        client = redis.Redis.from_url(redis_url)
        assert client.delete("tether:{hurt}:cp") == 1
        client.close()
        out = run("threads", redis_url).stdout
        assert " ok " in out and " hurt " in out
        (note,) = [ln for ln in out.splitlines() if ln.startswith("? hurt:")]
        assert "thread 'hurt'" in note and "evicted" in note
    finally:
        for tid in ("ok", "hurt"):
            saver.delete_thread(tid)
        saver.close()
