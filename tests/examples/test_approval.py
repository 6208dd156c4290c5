"""The approval example: the demo's two-process pause/resume, two sequential interrupts with
explicit ids resumed one map at a time, two parallel approvers answered by one two-key map,
and maps naming ids that are not pending refused before anything runs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import examples.approval as approval
import pytest

from tether import Command, InterruptError
from tether.checkpoint import SqliteSaver
from tether.graph import CompiledGraph

ROOT = Path(__file__).resolve().parents[2]
CFG: dict[str, Any] = {"configurable": {"thread_id": "t1"}}
REQUEST = {"request": "parcel arrived broken", "log": []}
ACTION = "refund 42.00 EUR for: parcel arrived broken"


@pytest.fixture
def saver(tmp_path: Path) -> Iterator[SqliteSaver]:
    with SqliteSaver(str(tmp_path / "approval.db")) as s:
        yield s


def pending(app: CompiledGraph) -> list[str]:
    return sorted(i.id for i in app.get_state(CFG).interrupts)


def fingerprint(app: CompiledGraph) -> tuple[Any, ...]:
    snap = app.get_state(CFG)
    history = [s.config["configurable"].get("checkpoint_id") for s in app.get_state_history(CFG)]
    return snap.values, snap.next, snap.interrupts, snap.tasks, history


def cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "examples.approval", *args, "--db", str(db)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


# -- the demo flow ---------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["--approve", "--reject"])
def test_demo_pauses_in_one_process_and_resumes_in_another(tmp_path: Path, word: str) -> None:
    db = tmp_path / "demo.db"
    start = cli(db, "start", "--thread", "demo-1")
    assert start.returncode == 0, start.stderr
    assert "paused: 'Approve this action?" in start.stdout
    resume = cli(db, "resume", "--thread", "demo-1", word)
    assert resume.returncode == 0, resume.stderr
    status = "approved" if word == "--approve" else "rejected"
    assert f"final status: {status}" in resume.stdout
    assert ("step execute" in resume.stdout) is (status == "approved")
    again = cli(db, "resume", "--thread", "demo-1")
    assert again.returncode == 1 and "no pending interrupt" in again.stderr


# -- two sequential interrupts in one node -----------------------------------------------------


def test_two_step_resumed_one_map_at_a_time(saver: SqliteSaver) -> None:
    app = approval.build_two_step(saver)
    out = app.invoke(REQUEST, CFG, durability="sync")
    assert [(i.value, i.id) for i in out["__interrupt__"]] == [("approval1", "interrupt-1")]
    out = approval.answer(app, CFG, {"interrupt-1": True})
    assert [(i.value, i.id) for i in out["__interrupt__"]] == [("approval2", "interrupt-2")]
    out = approval.answer(app, CFG, {"interrupt-2": False})
    assert "__interrupt__" not in out
    assert out["votes"] == {"interrupt-1": True, "interrupt-2": False}
    assert out["status"] == "rejected"
    assert out["log"] == [f"drafted: {ACTION}", "two-step review: rejected"]
    assert pending(app) == [] and app.get_state(CFG).next == ()


def test_two_step_both_approved_executes(saver: SqliteSaver) -> None:
    app = approval.build_two_step(saver)
    app.invoke(REQUEST, CFG, durability="sync")
    approval.answer(app, CFG, {"interrupt-1": True})
    out = approval.answer(app, CFG, {"interrupt-2": True})
    assert out["status"] == "approved" and out["log"][-1] == f"executed: {ACTION}"


def test_two_step_survives_a_process_boundary(tmp_path: Path) -> None:
    db = tmp_path / "two.db"
    flow = ("--flow", "two-step", "--thread", "t2")
    assert "interrupt id interrupt-1" in cli(db, "start", *flow).stdout
    first = cli(db, "resume", *flow, "--answer", "interrupt-1=yes")
    assert first.returncode == 0, first.stderr
    assert "still waiting for ['interrupt-2']" in first.stdout
    stale = cli(db, "resume", *flow, "--answer", "interrupt-1=yes")
    assert stale.returncode == 2 and "'interrupt-1' is not pending" in stale.stderr
    assert "['interrupt-2']" in stale.stderr
    second = cli(db, "resume", *flow, "--answer", "interrupt-2=no")
    assert second.returncode == 0, second.stderr
    assert "final status: rejected" in second.stdout


# -- two approvers in parallel branches --------------------------------------------------------


@pytest.mark.parametrize(("legal", "finance"), [(True, True), (True, False), (False, False)])
def test_parallel_approvers_answered_by_one_two_key_map(
    saver: SqliteSaver, legal: bool, finance: bool
) -> None:
    app = approval.build_parallel(saver)
    out = app.invoke(REQUEST, CFG, durability="sync")
    assert sorted(i.id for i in out["__interrupt__"]) == ["approve-finance", "approve-legal"]
    out = approval.answer(app, CFG, {"approve-legal": legal, "approve-finance": finance})
    assert "__interrupt__" not in out
    assert out["votes"] == {"legal": legal, "finance": finance}
    status = "approved" if legal and finance else "rejected"
    assert out["status"] == status
    assert (out["log"][-1] == f"executed: {ACTION}") is (status == "approved")


def test_parallel_single_value_is_ambiguous_and_refused(saver: SqliteSaver) -> None:
    app = approval.build_parallel(saver)
    app.invoke(REQUEST, CFG, durability="sync")
    before = fingerprint(app)
    with pytest.raises(InterruptError, match="approve-finance") as ei:
        app.invoke(Command(resume=True), CFG)
    assert "approve-legal" in str(ei.value)
    assert fingerprint(app) == before


def test_parallel_answered_one_at_a_time(saver: SqliteSaver) -> None:
    app = approval.build_parallel(saver)
    app.invoke(REQUEST, CFG, durability="sync")
    out = approval.answer(app, CFG, {"approve-finance": True})
    assert [i.id for i in out["__interrupt__"]] == ["approve-legal"]
    out = approval.answer(app, CFG, {"approve-legal": True})
    assert out["status"] == "approved"


# -- only pending interrupts can be answered -----------------------------------------------------


Setup = Callable[[SqliteSaver], CompiledGraph]


def two_step_fresh(saver: SqliteSaver) -> CompiledGraph:
    app = approval.build_two_step(saver)
    app.invoke(REQUEST, CFG, durability="sync")
    return app


def two_step_after_first(saver: SqliteSaver) -> CompiledGraph:
    app = two_step_fresh(saver)
    approval.answer(app, CFG, {"interrupt-1": True})
    return app


def parallel_fresh(saver: SqliteSaver) -> CompiledGraph:
    app = approval.build_parallel(saver)
    app.invoke(REQUEST, CFG, durability="sync")
    return app


def parallel_after_legal(saver: SqliteSaver) -> CompiledGraph:
    app = parallel_fresh(saver)
    approval.answer(app, CFG, {"approve-legal": True})
    return app


STALE_CASES = {
    "one-pending-not-yet-asked": (two_step_fresh, {"interrupt-2": False}, ["interrupt-1"]),
    "one-pending-unknown": (two_step_fresh, {"nope": True}, ["interrupt-1"]),
    "one-pending-already-answered": (two_step_after_first, {"interrupt-1": True}, ["interrupt-2"]),
    "answered-plus-pending": (
        two_step_after_first,
        {"interrupt-1": True, "interrupt-2": True},
        ["interrupt-2"],
    ),
    "two-pending-one-unknown": (
        parallel_fresh,
        {"approve-legal": True, "approve-ceo": True},
        ["approve-finance", "approve-legal"],
    ),
    "parallel-already-answered": (
        parallel_after_legal,
        {"approve-legal": False},
        ["approve-finance"],
    ),
}


@pytest.mark.parametrize(
    ("setup", "answers", "ids"), list(STALE_CASES.values()), ids=list(STALE_CASES)
)
def test_map_naming_an_id_that_is_not_pending_is_refused_before_anything_runs(
    saver: SqliteSaver, setup: Setup, answers: dict[str, Any], ids: list[str]
) -> None:
    app = setup(saver)
    before = fingerprint(app)
    with pytest.raises(InterruptError, match="is not pending") as ei:
        approval.answer(app, CFG, answers)
    assert all(i in str(ei.value) for i in ids)  # names the pending ids
    assert fingerprint(app) == before and pending(app) == ids  # nothing written, nothing ran
    # nothing consumed: the pending interrupts still take their answers
    out = approval.answer(app, CFG, dict.fromkeys(ids, True))
    assert "__interrupt__" in out or out["status"] in ("approved", "rejected")
