"""The clinical example: the review answer is validated before resuming; an invalid one is a
clear InterruptError and leaves the interrupt pending with nothing run; approved takes the
edited notes, rejected keeps the draft."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import examples.clinical as clinical
import pytest

from tether import Command, InterruptError
from tether.checkpoint import SqliteSaver
from tether.graph import CompiledGraph

PATIENT = {"name": "J. Doe", "age": 54, "complaint": "chest pain", "medication": ["aspirin"]}
DRAFT = ["J. Doe, 54 y: presents with chest pain", "current medication: aspirin"]
CFG: dict[str, Any] = {"configurable": {"thread_id": "patient-1"}}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[CompiledGraph]:
    with SqliteSaver(str(tmp_path / "clinical.db")) as saver:
        graph = clinical.build(saver)
        out = graph.invoke({"patient": PATIENT}, CFG, durability="sync")
        assert [i.id for i in out["__interrupt__"]] == [clinical.REVIEW_ID]
        assert out["notes"] == DRAFT
        yield graph


def fingerprint(app: CompiledGraph) -> tuple[Any, ...]:
    snap = app.get_state(CFG)
    history = [s.config["configurable"].get("checkpoint_id") for s in app.get_state_history(CFG)]
    return snap.values, snap.next, snap.interrupts, snap.tasks, history


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ({"approved": "yes", "notes": ["x"]}, "approved"),
        ({"approved": True}, "notes"),
        ({"approved": True, "notes": "one string"}, "notes"),
        ({"approved": True, "notes": [1, 2]}, "notes.0"),
        ({"approved": True, "notes": [], "signed_by": "dr x"}, "signed_by"),
        ("approve", "(answer)"),
    ],
    ids=["approved-not-bool", "notes-missing", "notes-not-list", "notes-not-str", "extra", "str"],
)
def test_invalid_answer_is_refused_and_interrupt_stays_pending(
    app: CompiledGraph, answer: Any, problem: str
) -> None:
    before = fingerprint(app)
    with pytest.raises(clinical.InvalidReviewError) as ei:
        clinical.submit_review(app, CFG, answer)
    assert isinstance(ei.value, InterruptError)
    msg = str(ei.value)
    assert clinical.REVIEW_ID in msg and problem in msg and "still pending" in msg
    assert fingerprint(app) == before  # nothing written, nothing ran
    # the same interrupt still takes a valid answer
    final = clinical.submit_review(app, CFG, {"approved": True, "notes": ["edited"]})
    assert final["notes"] == ["edited"] and final["status"] == "approved"


def test_approved_takes_the_edited_notes(app: CompiledGraph) -> None:
    edited = [*DRAFT, "ECG ordered"]
    final = clinical.submit_review(app, CFG, {"approved": True, "notes": edited})
    assert final == {"notes": edited, "patient": PATIENT, "status": "approved"}
    assert app.get_state(CFG).next == ()


def test_rejected_keeps_the_previous_notes(app: CompiledGraph) -> None:
    final = clinical.submit_review(app, CFG, {"approved": False, "notes": ["ignored"]})
    assert final["notes"] == DRAFT and final["status"] == "rejected"


def test_answer_when_nothing_is_pending_is_refused(app: CompiledGraph) -> None:
    clinical.submit_review(app, CFG, {"approved": True, "notes": ["x"]})
    with pytest.raises(InterruptError, match="not pending"):
        clinical.submit_review(app, CFG, {"approved": True, "notes": ["y"]})


def test_state_survives_a_new_process_view(app: CompiledGraph, tmp_path: Path) -> None:
    # a second saver on the same file (as another process would open it) sees the pause
    with SqliteSaver(str(tmp_path / "clinical.db")) as other:
        second = clinical.build(other)
        assert [i.id for i in second.get_state(CFG).interrupts] == [clinical.REVIEW_ID]
        final = clinical.submit_review(second, CFG, {"approved": True, "notes": ["n"]})
    assert final["notes"] == ["n"]


def test_invalid_answer_sent_straight_to_invoke_keeps_interrupt_pending(
    app: CompiledGraph,
) -> None:
    with pytest.raises(clinical.InvalidReviewError, match=clinical.REVIEW_ID):
        app.invoke(Command(resume={clinical.REVIEW_ID: {"approved": "yes"}}), CFG)
    assert [i.id for i in app.get_state(CFG).interrupts] == [clinical.REVIEW_ID]
    final = clinical.submit_review(app, CFG, {"approved": True, "notes": ["ok"]})
    assert final["notes"] == ["ok"]


def test_main_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert clinical.main(["--db", str(tmp_path / "m.db")]) == 0
    out = capsys.readouterr().out
    assert "invalid answer refused" in out and "clinician approved" in out
