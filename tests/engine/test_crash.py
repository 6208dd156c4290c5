"""Crash-exact resume: a child process runs a graph and SIGKILLs itself at a chosen point;
a fresh process resumes with invoke(None, config). Nothing finished runs again (sync, async),
the input survives (exit), and the final state equals an uncrashed run.

Graph: START -> a -> (b1 | b2) -> join c (calls @task charge) -> d -> END.
Commits of the run: 1 input, 2 after a, 3 after b1+b2, 4 after c, 5 after d.
"""

from __future__ import annotations

import collections
import json
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

CHILD = str(Path(__file__).with_name("crash_child.py"))
# "answers" is a reducer key no node writes: it reads [] from the start, as in LangGraph
FINAL = {"trail": ["a", "b1", "b2", "c", "d"], "total": 42, "answers": []}

BACKENDS = ["sqlite", "postgres", "redis"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    kind = request.param
    name = f"c_{uuid.uuid4().hex[:10]}"
    if kind == "sqlite":
        return {"kind": kind, "path": str(tmp_path / "crash.db")}
    if kind == "postgres":
        return {"kind": kind, "dsn": request.getfixturevalue("postgres_dsn"), "schema": name}
    return {"kind": kind, "url": request.getfixturevalue("redis_url"), "prefix": name}


def run_child(args: dict[str, Any], *, expect_kill: bool = False) -> Any:
    proc = subprocess.run(
        [sys.executable, CHILD, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if expect_kill:
        assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr)
        return None
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def counts(log: Path) -> collections.Counter[str]:
    return collections.Counter(log.read_text().split())


def crash_and_resume(
    backend: dict[str, Any], tmp_path: Path, mode: str, crash: str
) -> tuple[Any, collections.Counter[str]]:
    log = tmp_path / "events.log"
    args = {"backend": backend, "log": str(log), "thread": "t-1", "mode": mode}
    run_child({**args, "phase": "run", "crash": crash}, expect_kill=True)
    assert (tmp_path / "events.log.crashed").exists()
    out = run_child({**args, "phase": "resume"})
    return out, counts(log)


EVERYTHING_ONCE = {
    "node:a": 1,
    "node:b1": 1,
    "node:b2": 1,
    "node:c": 1,
    "node:d": 1,
    "task:charge": 1,
}

# What runs twice after a crash at each point, in modes sync and async: only work in flight.
# Commits of a run: 1 the input checkpoint, 2 START's step (plans a), 3 after a (plans b1,
# b2), 4 after b1 and b2 (plans c), 5 after c (plans d), 6 after d (the end).
SYNC_CASES = {
    "in_node:a": {"node:a": 2},
    "in_node:b2": {"node:b2": 2},  # b1 finished first and its writes were saved
    "in_node:c": {"node:c": 2},  # charge's result was journaled: not charged again
    "after_task:charge": {"node:c": 2, "task:charge": 2},  # effect done, result not recorded
    "before_commit:2": {},  # the input checkpoint holds the input: START's step is taken again
    "after_commit:2": {},
    "before_commit:3": {"node:a": 2},
    "after_commit:3": {},
    "before_commit:4": {},  # b1 and b2 had saved their writes as they finished
    "after_commit:4": {},
    "before_commit:5": {"node:c": 2},  # the journal still spares the task
    "after_commit:5": {},
    "before_commit:6": {"node:d": 2},
}


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("crash", sorted(SYNC_CASES))
def test_sync_and_async_never_rerun_finished_work(
    backend: dict[str, Any], tmp_path: Path, mode: str, crash: str
) -> None:
    out, seen = crash_and_resume(backend, tmp_path, mode, crash)
    assert out == FINAL
    expected = {**EVERYTHING_ONCE, **SYNC_CASES[crash]}
    assert dict(seen) == expected


@pytest.mark.parametrize("crash", ["in_node:c", "before_commit:2"])
def test_exit_mode_keeps_the_input_and_restarts_from_it(
    backend: dict[str, Any], tmp_path: Path, crash: str
) -> None:
    out, seen = crash_and_resume(backend, tmp_path, "exit", crash)
    assert out == FINAL
    # exit mode saves nothing between the input and the end (commit 2): what ran before the
    # crash runs again, but nothing is lost and resume does not fail with EmptyInputError.
    assert seen["node:a"] == 2
    assert seen["node:d"] == (2 if crash == "before_commit:2" else 1)


def test_uncrashed_run_is_the_reference(backend: dict[str, Any], tmp_path: Path) -> None:
    log = tmp_path / "events.log"
    out = run_child(
        {"backend": backend, "log": str(log), "thread": "t", "mode": "sync", "phase": "run"}
    )
    assert out == FINAL
    assert dict(counts(log)) == EVERYTHING_ONCE


def test_interrupts_raised_in_one_process_answered_in_another(
    backend: dict[str, Any], tmp_path: Path
) -> None:
    log = tmp_path / "events.log"
    base = {
        "backend": backend,
        "log": str(log),
        "thread": "t-i",
        "mode": "sync",
        "graph": "interrupts",
        "interrupts": ["interrupt-1", "interrupt-2"],
    }
    first = run_child({**base, "phase": "run"})
    assert first["__interrupt__"] == [["interrupt-1", "question interrupt-1"]]
    second = run_child({**base, "phase": "answer", "resume": {"interrupt-1": "yes"}})
    assert second["__interrupt__"] == [["interrupt-2", "question interrupt-2"]]
    third = run_child({**base, "phase": "answer", "resume": {"interrupt-2": "no"}})
    pending = {i for i, _ in third["__interrupt__"]}
    assert len(pending) == 2  # both parallel approvers are waiting
    assert third["answers"] == ["yes", "no"]
    final = run_child({**base, "phase": "answer", "resume": dict.fromkeys(pending, "ok")})
    assert "__interrupt__" not in final
    assert sorted(final["answers"]) == ["no", "ok", "ok", "yes"]
    seen = counts(log)
    assert seen["node:left"] == 1 and seen["node:right"] == 1


def test_killed_run_leaves_no_stale_lease(backend: dict[str, Any], tmp_path: Path) -> None:
    """The dead child's lease does not block the next process (same host, pid gone)."""
    out, _ = crash_and_resume(backend, tmp_path, "sync", "in_node:a")
    assert out == FINAL
