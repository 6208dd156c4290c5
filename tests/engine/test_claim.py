"""on_busy="wait" is fair across processes: runs that wait for a busy thread get it in the
order they started waiting, even when every handover races a newcomer that polls faster
than the old waiters (the case that let one waiter wait 13 s while others took turns).
Real processes on SQLite, PostgreSQL and Redis."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

CHILD = str(Path(__file__).parents[1] / "checkpoint" / "lease_child.py")
TIMEOUT = 120.0
T = "queue"
NEWCOMERS = 4


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    name = f"q_{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite":
        return {"kind": "sqlite", "path": str(tmp_path / "queue.db")}
    if request.param == "postgres":
        return {"kind": "postgres", "dsn": request.getfixturevalue("postgres_dsn"), "schema": name}
    return {"kind": "redis", "url": request.getfixturevalue("redis_url"), "prefix": name}


class Runner:
    """One child process running the thread: it waits for the thread if busy
    (on_busy="wait"), says when it found the thread busy (``waiting``) and when it got it
    (``entered``), then holds it until the test writes ``go``."""

    def __init__(self, backend: dict[str, Any], tmp: Path, label: str) -> None:
        self.label = label
        self.waiting, self.entered, self.go = (tmp / f"{kind}-{label}" for kind in "weg")
        spec = {
            "backend": backend,
            "thread": T,
            "role": "run",
            "label": label,
            "on_busy": "wait",
            "waiting": str(self.waiting),
            "entered": str(self.entered),
            "go": str(self.go),
        }
        self.proc = subprocess.Popen(
            [sys.executable, CHILD, json.dumps(spec)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(self) -> None:
        self.go.write_text("go")
        out, err = self.proc.communicate(timeout=TIMEOUT)
        assert self.proc.returncode == 0, (self.label, out, err)


def wait_until(what: str, ready: Any, runners: list[Runner]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not ready():
        for r in runners:
            if r.proc.poll() is not None and r.proc.returncode != 0:
                out, err = r.proc.communicate()
                pytest.fail(f"{r.label} failed before {what}:\n{out}\n{err}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def overtakes(arrivals: list[str], served: list[str]) -> dict[str, int]:
    """For each waiter, how many waiters that arrived after it got the thread before it."""
    rank = {label: i for i, label in enumerate(served)}
    return {
        a: sum(1 for b in arrivals[i + 1 :] if rank[b] < rank[a]) for i, a in enumerate(arrivals)
    }


def test_waiters_get_the_thread_in_the_order_they_arrived(
    backend: dict[str, Any], tmp_path: Path
) -> None:
    runners: list[Runner] = []
    try:
        holder = Runner(backend, tmp_path, "H")
        runners.append(holder)
        wait_until("H holds the thread", holder.entered.exists, runners)
        first = Runner(backend, tmp_path, "W0")
        runners.append(first)
        wait_until("W0 waits", first.waiting.exists, runners)
        current, served = holder, []
        waiting = [first]
        for n in range(1, NEWCOMERS + 1):
            # A newcomer arrives while the thread is busy; then the thread is handed over at
            # once, while the newcomer polls at its fastest and the old waiters slowest.
            newcomer = Runner(backend, tmp_path, f"W{n}")
            runners.append(newcomer)
            wait_until(f"W{n} waits", newcomer.waiting.exists, runners)
            waiting.append(newcomer)
            current.finish()
            wait_until(
                "the next run takes the thread",
                lambda: any(w.entered.exists() for w in waiting),
                runners,
            )
            current = next(w for w in waiting if w.entered.exists())
            waiting.remove(current)
            served.append(current.label)
        while waiting:
            current.finish()
            wait_until(
                "the next run takes the thread",
                lambda: any(w.entered.exists() for w in waiting),
                runners,
            )
            current = next(w for w in waiting if w.entered.exists())
            waiting.remove(current)
            served.append(current.label)
        current.finish()
    finally:
        for r in runners:
            if r.proc.poll() is None:
                r.go.write_text("go")
                r.proc.communicate(timeout=TIMEOUT)
    arrivals = [f"W{n}" for n in range(NEWCOMERS + 1)]
    assert overtakes(arrivals, served) == dict.fromkeys(arrivals, 0), served
