"""Fencing with real processes: a child that stalls (SIGSTOP) past its lease while another
process takes the thread over must, once resumed (SIGCONT), stop with LeaseLostError and write
nothing, whether its next write is a @task's journal record or a commit, and its heartbeat
must not take back the lease the other writer released. SQLite, PostgreSQL and Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tether.checkpoint import Owner, Saver, ThreadDump
from tether.errors import ThreadBusyError

CHILD = str(Path(__file__).with_name("lease_child.py"))
LOST_EXIT = 4
LEASE = 1.0
TIMEOUT = 120.0
T = "fenced"


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    name = f"f_{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite":
        return {"kind": "sqlite", "path": str(tmp_path / "fence.db")}
    if request.param == "postgres":
        return {"kind": "postgres", "dsn": request.getfixturevalue("postgres_dsn"), "schema": name}
    return {"kind": "redis", "url": request.getfixturevalue("redis_url"), "prefix": name}


def open_saver(backend: dict[str, Any]) -> Saver:
    if backend["kind"] == "sqlite":
        from tether.checkpoint import SqliteSaver

        return SqliteSaver(backend["path"], lease_seconds=LEASE)
    if backend["kind"] == "postgres":
        from tether.checkpoint import PostgresSaver

        return PostgresSaver(  # type: ignore[no-any-return]
            backend["dsn"], schema=backend["schema"], lease_seconds=LEASE
        )
    from tether.checkpoint import RedisSaver

    return RedisSaver(  # type: ignore[no-any-return]
        backend["url"], prefix=backend["prefix"], lease_seconds=LEASE
    )


@pytest.fixture
def saver(backend: dict[str, Any]) -> Iterator[Saver]:
    s = open_saver(backend)
    yield s
    s.close()


def spawn(backend: dict[str, Any], **args: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            CHILD,
            json.dumps({"backend": backend, "thread": T, "lease": LEASE, **args}),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=TIMEOUT)
    return proc.returncode, out, err


def wait_until(what: str, ready: Any, proc: subprocess.Popen[str] | None = None) -> None:
    """Poll ``ready()`` with a deadline; fail at once if ``proc`` exits first."""
    deadline = time.monotonic() + TIMEOUT
    while not ready():
        if proc is not None and proc.poll() is not None:
            code, out, err = finish(proc)
            pytest.fail(f"child exited ({code}) before {what}:\n{out}\n{err}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def done(proc: subprocess.Popen[str]) -> Any:
    code, out, err = finish(proc)
    assert code == 0, (code, out, err)
    return json.loads(out.splitlines()[-1])


def rows(dump: ThreadDump) -> Any:
    """A dump's content, comparable across two reads (order-insensitive)."""
    return (
        dump.head,
        sorted((c.checkpoint_id, c.version) for c in dump.checkpoints),
        sorted((v.channel, v.version, v.payload) for v in dump.values),
        sorted((w.task_id, w.kind, w.key, w.payload) for w in dump.writes),
    )


def stall_and_take_over(
    backend: dict[str, Any], tmp_path: Path, **stalled: Any
) -> tuple[subprocess.Popen[str], Any]:
    """Run A until it is inside its @task, SIGSTOP it, and let B (started after A's lease
    has expired) continue the thread with ``invoke(None)``: B re-runs and records the task,
    then pauses at the interrupt. Returns the stopped A and B's result."""
    entered, go = tmp_path / "entered-A", tmp_path / "go-A"
    a = spawn(
        backend,
        role="run",
        label="A",
        ask=True,
        entered=str(entered),
        go=str(go),
        effects=str(tmp_path / "effects"),
        **stalled,
    )
    wait_until("A enters its task", entered.exists, a)
    os.kill(a.pid, signal.SIGSTOP)
    b = spawn(
        backend,
        role="run",
        label="B",
        ask=True,
        resume_none=True,
        on_busy="wait",
        effects=str(tmp_path / "effects"),
    )
    return a, done(b)


def resume(a: subprocess.Popen[str], go: Path) -> tuple[int, str, str]:
    go.write_text("go")
    os.kill(a.pid, signal.SIGCONT)
    return finish(a)


def test_a_stalled_writer_is_fenced_and_the_thread_keeps_the_new_result(
    backend: dict[str, Any], saver: Saver, tmp_path: Path
) -> None:
    a, b_out = stall_and_take_over(backend, tmp_path)
    try:
        assert b_out["__interrupt__"]  # B paused after recording its task
        before = rows(saver.dump_thread(T))
    finally:
        code, out, err = resume(a, tmp_path / "go-A")
    assert code == LOST_EXIT, (code, out, err)
    assert out.startswith("LOST") and repr(T) in out and "lost its lease" in out
    assert rows(saver.dump_thread(T)) == before  # A stored nothing at all
    # Both ran the task body (A before it stalled), but the journal keeps B's result, and the
    # thread goes on with it.
    assert sorted((tmp_path / "effects").read_text().split()) == ["A", "B"]
    final = done(spawn(backend, role="run", label="C", ask=True, answer="yes"))
    assert final == {"log": ["A:in", "B-result:yes"]}


def test_a_stalled_heartbeat_does_not_take_back_a_released_lease(
    backend: dict[str, Any], saver: Saver, tmp_path: Path
) -> None:
    beats = tmp_path / "beats"
    a, _ = stall_and_take_over(backend, tmp_path, beats=str(beats))
    try:
        # B paused and released the thread. A's heartbeat wakes first: it must not claim.
        seen = beats.read_text() if beats.exists() else ""
        os.kill(a.pid, signal.SIGCONT)
        wait_until(
            "A's heartbeat runs",
            lambda: beats.exists() and len(beats.read_text()) > len(seen),
            a,
        )
        assert beats.read_text()[len(seen) :].split() == ["lost"]
        probe = Owner("probe")
        claim = saver.claim(T, probe, 60)  # the lease is free, not A's again
        saver.release(T, probe)
        before = rows(saver.dump_thread(T))
    finally:
        code, out, err = resume(a, tmp_path / "go-A")
    assert code == LOST_EXIT, (code, out, err)
    assert claim.head is not None
    assert rows(saver.dump_thread(T)) == before
    final = done(spawn(backend, role="run", label="C", ask=True, answer="yes"))
    assert final == {"log": ["A:in", "B-result:yes"]}


def test_a_live_writer_keeps_its_thread_past_the_lease(
    backend: dict[str, Any], saver: Saver, tmp_path: Path
) -> None:
    """The other side of fencing: a writer that is slow, not stalled, renews its lease and
    keeps the thread for several lease lengths."""
    beats, entered, go = tmp_path / "beats", tmp_path / "entered", tmp_path / "go"
    a = spawn(backend, role="run", label="A", entered=str(entered), go=str(go), beats=str(beats))
    try:
        wait_until("A enters its task", entered.exists, a)
        wait_until(
            "four renewals", lambda: beats.exists() and beats.read_text().count("ok") >= 4, a
        )
        with pytest.raises(ThreadBusyError):
            saver.claim(T, Owner("intruder"), 60)
    finally:
        go.write_text("go")
    assert done(a) == {"log": ["A:in", "A-result"]}
