"""The rule that tells an id map from a plain answer, and matching answers to interrupts."""

from __future__ import annotations

import pytest

from tether import Interrupt, InterruptError
from tether.engine._planner import PlannedTask
from tether.engine._resume import is_id_map, looks_derived, match_answers
from tether.engine._status import TaskLog

DERIVED = "0123456789abcdef0123456789abcdef"


def test_looks_derived() -> None:
    assert looks_derived(DERIVED)
    assert not looks_derived("interrupt-1")
    assert not looks_derived(DERIVED.upper())


@pytest.mark.parametrize(
    ("resume", "pending", "answered", "expected"),
    [
        ({"approved": True}, {DERIVED: "t"}, set(), False),  # a dict answer
        ({DERIVED: True}, {DERIVED: "t"}, set(), True),  # keyed by the pending id
        ({"interrupt-2": False}, {"interrupt-1": "t"}, set(), True),  # explicit ids: a map
        ({"interrupt-1": True}, {DERIVED: "t"}, {"interrupt-1"}, True),  # already answered
        ({"x" * 32: 1}, {DERIVED: "t"}, set(), False),  # 32 chars but not hex
        ("yes", {DERIVED: "t"}, set(), False),
        ({}, {DERIVED: "t"}, set(), False),
        ({1: "a"}, {DERIVED: "t"}, set(), False),
    ],
)
def test_is_id_map(
    resume: object, pending: dict[str, str], answered: set[str], expected: bool
) -> None:
    assert is_id_map(resume, pending, answered) is expected


def _log(*ids: str, answered: tuple[str, ...] = ()) -> TaskLog:
    log = TaskLog()
    for i in ids:
        log.interrupts[i] = Interrupt(f"q {i}", i)
    for i in answered:
        log.resumes[i] = True
    return log


def test_match_answers_single_and_map() -> None:
    tasks = [PlannedTask("t1", "a", 0, False), PlannedTask("t2", "b", 0, False)]
    logs = {"t1": _log(DERIVED)}
    answers, pending = match_answers("th", tasks, logs, {"approved": True})
    assert answers == {DERIVED: {"approved": True}} and pending == {DERIVED: "t1"}
    logs = {"t1": _log("ia"), "t2": _log("ib")}
    answers, _ = match_answers("th", tasks, logs, {"ia": 1, "ib": 2})
    assert answers == {"ia": 1, "ib": 2}


def test_match_answers_errors_name_the_pending_ids() -> None:
    tasks = [PlannedTask("t1", "a", 0, False), PlannedTask("t2", "b", 0, False)]
    logs = {"t1": _log("ia"), "t2": _log("ib", "ic", answered=("ic",))}
    with pytest.raises(InterruptError, match=r"2 pending interrupts \['ia', 'ib'\]"):
        match_answers("th", tasks, logs, "yes")
    with pytest.raises(InterruptError, match="'ic' is not pending \\(already answered\\)"):
        match_answers("th", tasks, logs, {"ic": 1})
    with pytest.raises(InterruptError, match="'zz' is not pending \\(not asked yet"):
        match_answers("th", tasks, logs, {"ia": 1, "zz": 2})
    with pytest.raises(InterruptError, match="no pending interrupt"):
        match_answers("th", tasks, {}, "yes")
