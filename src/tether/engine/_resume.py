"""Matching a ``Command(resume=...)`` to the pending interrupts, before anything is written.

Anything ambiguous, stale or unknown is an InterruptError naming the pending ids; nothing
is consumed when the match fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tether.engine._planner import PlannedTask
from tether.engine._status import TaskLog
from tether.errors import InterruptError


def looks_derived(interrupt_id: str) -> bool:
    """Interrupt ids tether derives are 32 lowercase hex digits."""
    return len(interrupt_id) == 32 and all(c in "0123456789abcdef" for c in interrupt_id)


def is_id_map(resume: Any, pending: dict[str, str], answered: set[str]) -> bool:
    """Whether ``Command(resume=<dict>)`` maps interrupt ids to answers, or is itself the
    answer to the one pending interrupt.

    It is a map when any key is an interrupt id of the pending step (pending or answered),
    or has the shape of a derived id, or when a pending interrupt has an explicit id (ids
    chosen by hand mean answers are given by id). To answer such an interrupt with a dict,
    wrap it: ``Command(resume={interrupt_id: {...}})``.
    """
    if not isinstance(resume, dict) or not resume:
        return False
    if not all(isinstance(k, str) for k in resume):
        return False
    if any(k in pending or k in answered or looks_derived(k) for k in resume):
        return True
    return any(not looks_derived(i) for i in pending)


def match_answers(
    thread_id: str, tasks: Sequence[PlannedTask], logs: dict[str, TaskLog], resume: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    """``({interrupt_id: answer}, {pending interrupt_id: task_id})`` for a resume value."""
    pending: dict[str, str] = {}
    answered: set[str] = set()
    for t in tasks:
        log = logs.get(t.id, TaskLog())
        answered.update(log.resumes)
        for intr in log.pending_interrupts():
            pending[intr.id] = t.id
    ids = sorted(pending)
    if not pending:
        raise InterruptError(
            f"thread {thread_id!r} has no pending interrupt; nothing to resume "
            f"(next nodes: {[t.node for t in tasks]})"
        )
    if is_id_map(resume, pending, answered):
        unknown = [k for k in resume if k not in pending]
        if unknown:
            why = "already answered" if unknown[0] in answered else "not asked yet, or unknown"
            raise InterruptError(
                f"thread {thread_id!r}: interrupt id {unknown[0]!r} is not pending "
                f"({why}); pending ids: {ids}. Nothing was resumed."
            )
        return dict(resume), pending
    if len(pending) == 1:
        return {ids[0]: resume}, pending
    raise InterruptError(
        f"thread {thread_id!r} has {len(pending)} pending interrupts {ids}; "
        "resume with Command(resume={interrupt_id: value, ...})"
    )
