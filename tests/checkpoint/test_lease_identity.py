"""Who counts as dead (checkpoint/_lease.py, ``Process``), with real processes and real pid
namespaces (``unshare --pid --fork --mount-proc``, as root): a live holder in another pid
namespace that shares our hostname keeps its lease, even when its pid is free in ours; a
holder that died in our namespace is taken over at once, one that died in another only by
expiry; and a pid reused by another process is not mistaken for the holder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tether.checkpoint import Owner, Saver
from tether.checkpoint._lease import Process, start_time, this_process
from tether.errors import ThreadBusyError

CHILD = str(Path(__file__).with_name("lease_child.py"))
TIMEOUT = 120.0
T = "held"
UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc"]


def _can_unshare() -> str | None:
    """Why pid namespaces cannot be made here, or None when they can."""
    if shutil.which("unshare") is None:
        return "no unshare binary"
    if os.geteuid() != 0:
        return "creating a pid namespace and setting ns_last_pid need root"
    done = subprocess.run([*UNSHARE, "true"], capture_output=True, text=True)
    return None if done.returncode == 0 else f"unshare failed: {done.stderr.strip()}"


needs_namespaces = pytest.mark.skipif(
    sys.platform != "linux" or _can_unshare() is not None,
    reason=f"pid namespaces: {(sys.platform != 'linux' and 'not Linux') or _can_unshare()}",
)


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    name = f"i_{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite":
        return {"kind": "sqlite", "path": str(tmp_path / "held.db")}
    if request.param == "postgres":
        return {"kind": "postgres", "dsn": request.getfixturevalue("postgres_dsn"), "schema": name}
    return {"kind": "redis", "url": request.getfixturevalue("redis_url"), "prefix": name}


@pytest.fixture
def saver(backend: dict[str, Any]) -> Iterator[Saver]:
    if backend["kind"] == "sqlite":
        from tether.checkpoint import SqliteSaver

        s: Saver = SqliteSaver(backend["path"])
    elif backend["kind"] == "postgres":
        from tether.checkpoint import PostgresSaver

        s = PostgresSaver(backend["dsn"], schema=backend["schema"])
    else:
        from tether.checkpoint import RedisSaver

        s = RedisSaver(backend["url"], prefix=backend["prefix"])
    yield s
    s.close()


def spawn(backend: dict[str, Any], *, namespace: bool = False, **args: Any) -> Any:
    spec = json.dumps({"backend": backend, "thread": T, "lease": 300, **args})
    prefix = UNSHARE if namespace else []
    return subprocess.Popen(
        [*prefix, sys.executable, CHILD, spec],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: Any) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=TIMEOUT)
    return proc.returncode, out, err


def wait_for(path: Path, proc: Any) -> Any:
    deadline = time.monotonic() + TIMEOUT
    while not path.exists() or not path.read_text():
        if proc.poll() is not None:
            code, out, err = finish(proc)
            pytest.fail(f"child exited ({code}) before writing {path.name}:\n{out}\n{err}")
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.01)
    return json.loads(path.read_text())


def free_pid_here() -> int:
    """A pid no process of our namespace has: a holder with this pid in another namespace
    looks dead to a bare pid check from here."""
    with open("/proc/sys/kernel/pid_max") as f:
        top = int(f.read())
    return next(p for p in range(top - 1, 300, -1) if not os.path.exists(f"/proc/{p}"))


@needs_namespaces
def test_a_live_holder_in_another_pid_namespace_keeps_its_lease(
    backend: dict[str, Any], saver: Saver, tmp_path: Path
) -> None:
    entered, go = tmp_path / "entered", tmp_path / "go"
    pid = free_pid_here()
    holder = spawn(
        backend, namespace=True, role="claim", next_pid=pid, entered=str(entered), go=str(go)
    )
    try:
        info = wait_for(entered, holder)
        # Same hostname, same kernel; its pid means nothing here (no such process in ours).
        assert info["pid"] == pid and not os.path.exists(f"/proc/{pid}")
        with pytest.raises(ThreadBusyError, match=info["run"]):
            saver.claim(T, Owner("outsider"), 60)
    finally:
        go.write_text("go")
    code, out, err = finish(holder)
    assert code == 0, (out, err)
    # It has exited now, without releasing: nothing here can prove that, so its lease holds
    # until it expires.
    with pytest.raises(ThreadBusyError, match=info["run"]):
        saver.claim(T, Owner("outsider"), 60)


def test_a_holder_that_died_here_is_taken_over_at_once(
    backend: dict[str, Any], saver: Saver, tmp_path: Path
) -> None:
    entered = tmp_path / "entered"
    holder = spawn(backend, role="claim", exit=True, entered=str(entered))
    info = wait_for(entered, holder)
    code, out, err = finish(holder)  # reaped: gone from our namespace
    assert code == 0, (out, err)
    assert info["run"]
    claim = saver.claim(T, Owner("next"), 60)  # its 300 s lease does not hold
    assert claim.fence.run_id == "next"


@needs_namespaces
def test_a_reused_pid_is_not_mistaken_for_the_holder(
    backend: dict[str, Any], tmp_path: Path
) -> None:
    out = spawn(backend, namespace=True, role="reuse", entered=str(tmp_path / "entered"))
    code, stdout, err = finish(out)
    assert code == 0, (stdout, err)
    result = json.loads(stdout.splitlines()[-1])
    assert result["reused_by"] == result["holder"]  # another process now has the holder's pid
    assert result["taken"] is True, result


def test_this_process_is_identified_by_boot_namespace_and_start_time() -> None:
    me = this_process()
    assert me.pid == os.getpid()
    if sys.platform == "linux":
        with open("/proc/sys/kernel/random/boot_id") as f:
            assert me.boot_id == f.read().strip()
        assert me.pid_ns == os.stat("/proc/self/ns/pid").st_ino
        assert me.started == start_time(os.getpid()) and me.started > 0
        assert Process.from_stored(me.host, me.pid, me.token) == me
    assert not me.is_dead()


def test_a_zombie_holder_is_dead() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    started = start_time(child.pid)
    assert started is not None
    me = this_process()
    holder = Process(me.host, child.pid, me.boot_id, me.pid_ns, started)
    assert not holder.is_dead()
    assert child.stdin is not None
    child.stdin.close()
    deadline = time.monotonic() + TIMEOUT
    while start_time(child.pid) is not None:  # exited, not yet reaped: a zombie
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert os.path.exists(f"/proc/{child.pid}")  # the pid is still taken...
    assert holder.is_dead()  # ...but the holder can never write again
    assert not Process(me.host, child.pid, me.boot_id, me.pid_ns).is_dead()  # start unknown
    child.wait()
