"""The clinical documentation agent: drafts notes, pauses for a clinician's review.

    python -m examples.clinical               # the clinician approves an edited version
    python -m examples.clinical --reject      # the clinician rejects: the draft notes stay

The review answer is ``{"approved": bool, "notes": [str, ...]}``, validated by a pydantic
model. ``submit_review`` validates it *before* resuming: an invalid answer raises
``InvalidReviewError`` (an ``InvalidAnswerError``) naming the interrupt id and the problem,
nothing is written and nothing runs, and the interrupt stays pending for a valid answer. An
invalid answer sent straight to ``invoke`` is refused by the node the same way: the engine
withdraws it and the interrupt stays pending.
Approved takes the clinician's edited notes; rejected keeps the previous notes.
"""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tether import (
    END,
    START,
    Command,
    InterruptError,
    InvalidAnswerError,
    StateGraph,
    interrupt,
    task,
)
from tether.checkpoint import SqliteSaver
from tether.graph import CompiledGraph

REVIEW_ID = "clinician-review"


class PatientState(BaseModel):
    notes: list[str] = Field(default_factory=list)
    patient: dict[str, Any] = Field(default_factory=dict)
    status: str = ""


class ReviewAnswer(BaseModel):
    """What the clinician sends back."""

    model_config = ConfigDict(extra="forbid", strict=True)

    approved: bool
    notes: list[str]


class InvalidReviewError(InvalidAnswerError):
    """A review answer that does not match ``ReviewAnswer``; the interrupt stays pending."""


def validate_review(interrupt_id: str, answer: Any, *, still_pending: bool = False) -> ReviewAnswer:
    """Parse ``answer`` or raise InvalidReviewError naming the interrupt and each problem."""
    try:
        return ReviewAnswer.model_validate(answer)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(answer)'}: {err['msg']}"
            for err in exc.errors()
        )
        after = " Nothing was resumed; the interrupt is still pending." if still_pending else ""
        raise InvalidReviewError(
            f"invalid answer to interrupt {interrupt_id!r}: {problems}. Expected "
            f'{{"approved": bool, "notes": [str, ...]}}.{after}'
        ) from None


@task
def draft_notes(patient: dict[str, Any]) -> list[str]:
    """Stands in for a model drafting the notes: journaled, so a resume never redrafts."""
    name = patient.get("name", "patient")
    notes = [f"{name}, {patient.get('age', '?')} y: presents with {patient.get('complaint')}"]
    notes += [f"current medication: {med}" for med in patient.get("medication", [])]
    return notes


def draft(state: PatientState) -> dict[str, Any]:
    return {"notes": draft_notes(state.patient).result(), "status": "drafted"}


def clinician_review(state: PatientState) -> dict[str, Any]:
    answer = interrupt(
        {"question": "Review patient notes", "patient": state.patient, "notes": state.notes},
        id=REVIEW_ID,
    )
    # submit_review validated the answer before resuming; parsing again gives the types. An
    # invalid answer sent straight to invoke() is refused here: InvalidReviewError is an
    # InvalidAnswerError, so tether withdraws the answer and the review stays pending.
    review = validate_review(REVIEW_ID, answer)
    if review.approved:
        return {"notes": review.notes, "status": "approved"}
    return {"notes": state.notes, "status": "rejected"}  # keep the previous notes


def build(saver: Any) -> CompiledGraph:
    """draft -> clinician_review (interrupt) -> END."""
    g = StateGraph(PatientState)
    g.add_node("draft", draft)
    g.add_node("clinician_review", clinician_review)
    g.add_edge(START, "draft")
    g.add_edge("draft", "clinician_review")
    g.add_edge("clinician_review", END)
    return g.compile(checkpointer=saver)


def submit_review(app: CompiledGraph, config: dict[str, Any], answer: Any) -> dict[str, Any]:
    """Answer the pending clinician review. Validates first: an invalid answer raises
    InvalidReviewError before anything is written, so the interrupt stays pending."""
    pending = [i.id for i in app.get_state(config).interrupts]
    if REVIEW_ID not in pending:
        raise InterruptError(
            f"interrupt {REVIEW_ID!r} is not pending on this thread (pending ids: {pending}); "
            "nothing was resumed"
        )
    review = validate_review(REVIEW_ID, answer, still_pending=True)
    # Answer by id: a bare dict could be read as a map of interrupt ids.
    out: dict[str, Any] = app.invoke(
        Command(resume={REVIEW_ID: review.model_dump()}), config, durability="sync"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.clinical")
    parser.add_argument("--db", default="clinical.db")
    parser.add_argument("--thread", default="patient-1")
    parser.add_argument("--reject", action="store_true", help="the clinician rejects")
    args = parser.parse_args(argv)
    config = {"configurable": {"thread_id": args.thread}}
    patient = {"name": "J. Doe", "age": 54, "complaint": "chest pain", "medication": ["aspirin"]}
    with SqliteSaver(args.db) as saver:
        app = build(saver)
        out = app.invoke({"patient": patient}, config, durability="sync")
        print(f"draft notes: {out['notes']}")
        print(f"paused at {[i.id for i in app.get_state(config).interrupts]}")
        try:
            submit_review(app, config, {"approved": "yes", "notes": "fine"})
        except InvalidReviewError as exc:
            print(f"invalid answer refused: {exc}")
        edited = [*out["notes"], "ECG ordered; troponin pending"]
        final = submit_review(app, config, {"approved": not args.reject, "notes": edited})
        print(f"clinician {final['status']}; notes now: {final['notes']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
