"""The guide's four durability metrics, recorded per run and summed per thread.

Each run stores one small row (task ``__metrics__``, key = run id) inside a write it makes
anyway: its last step commit, or the write that records its pause or failure. Recording
therefore never adds a commit per step.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tether.checkpoint._unreadable import SHAPE_ERRORS, unreadable
from tether.errors import TetherError

METRICS_TASK = "__metrics__"

# The guide's targets, shown beside the measured values by ``tether stats``.
TARGET_RESUME_SECONDS = 5.0
TARGET_CHECKPOINT_BYTES = 10 * 1024 * 1024
TARGET_RECOVERY_SECONDS = 30.0
TARGET_IDEMPOTENCY = 1.0


@dataclass(slots=True)
class RunMetrics:
    """What one run measured; ``kind`` says how it began: "start" (new input), "resume"
    (answers to interrupts), "recovery" (continuing a failed or crashed step) or
    "continue" (``invoke(None)`` with nothing to redo)."""

    run_id: str
    t0: float = field(default_factory=time.perf_counter)
    started_at: float = field(default_factory=time.time)
    kind: str = "start"
    first_node_at: float | None = None
    checkpoints: int = 0
    bytes_total: int = 0
    bytes_largest: int = 0
    tasks_rerun: int = 0
    tasks_reused: int = 0
    outcome: str = "running"
    written: bool = False

    def node_started(self) -> None:
        if self.first_node_at is None:
            self.first_node_at = time.perf_counter()

    def committed(self, nbytes: int) -> None:
        self.checkpoints += 1
        self.bytes_total += nbytes
        self.bytes_largest = max(self.bytes_largest, nbytes)

    def payload(self, counters: dict[str, int], pending_bytes: int | None = None) -> dict[str, Any]:
        """The row to store; ``pending_bytes``: a checkpoint being committed with it, counted
        here without changing the totals until that commit succeeds."""
        wait = None if self.first_node_at is None else self.first_node_at - self.t0
        extra = [] if pending_bytes is None else [pending_bytes]
        return {
            "run": self.run_id,
            "at": self.started_at,
            "kind": self.kind,
            "outcome": self.outcome,
            "to_first_node": wait,
            "checkpoints": self.checkpoints + len(extra),
            "bytes": self.bytes_total + sum(extra),
            "largest": max([self.bytes_largest, *extra]),
            "rerun": self.tasks_rerun,
            "reused": self.tasks_reused,
            "executed": counters.get("tasks_executed", 0),
            "replayed": counters.get("tasks_replayed", 0),
            "divergences": counters.get("divergences", 0),
        }


@dataclass(frozen=True, slots=True)
class ThreadMetrics:
    """A thread's durability metrics (times in seconds, sizes in bytes).

    - resume latency: from ``invoke(Command(resume=...))`` entering to the resumed node
      starting;
    - checkpoint size: bytes written per checkpoint (largest, mean) and in all;
    - failure recovery: from the start of a run that continues a failed or crashed step to
      its first node starting; tasks redone (they were in flight) and reused (finished
      siblings whose writes were on record); finished steps are never re-run in modes
      sync and async, because a run always continues from the last committed step;
    - idempotency: ``@task`` calls executed vs replayed from the journal, and replays that
      diverged from the journal (``NondeterminismError``).
    """

    thread_id: str
    runs: int = 0
    resumes: int = 0
    resume_latency_last: float | None = None
    resume_latency_max: float | None = None
    checkpoints: int = 0
    checkpoint_bytes_total: int = 0
    checkpoint_bytes_largest: int = 0
    recoveries: int = 0
    recovery_seconds_last: float | None = None
    recovery_seconds_max: float | None = None
    recovery_tasks_rerun: int = 0
    recovery_tasks_reused: int = 0
    tasks_executed: int = 0
    tasks_replayed: int = 0
    divergences: int = 0

    @property
    def checkpoint_bytes_mean(self) -> float:
        return self.checkpoint_bytes_total / self.checkpoints if self.checkpoints else 0.0

    @property
    def idempotency(self) -> float:
        """Share of journal replays that returned the recorded result (1.0 = 100 %)."""
        replays = self.tasks_replayed + self.divergences
        return 1.0 if replays == 0 else self.tasks_replayed / replays

    @classmethod
    def from_payloads(cls, thread_id: str, payloads: Iterable[dict[str, Any]]) -> ThreadMetrics:
        rows = sorted(payloads, key=lambda p: p.get("at", 0.0))
        resumes = [
            p["to_first_node"]
            for p in rows
            if p["kind"] == "resume" and p["to_first_node"] is not None
        ]
        recoveries = [p for p in rows if p["kind"] == "recovery"]
        recovery_times = [p["to_first_node"] for p in recoveries if p["to_first_node"] is not None]
        return cls(
            thread_id=thread_id,
            runs=len(rows),
            resumes=len(resumes),
            resume_latency_last=resumes[-1] if resumes else None,
            resume_latency_max=max(resumes) if resumes else None,
            checkpoints=sum(p["checkpoints"] for p in rows),
            checkpoint_bytes_total=sum(p["bytes"] for p in rows),
            checkpoint_bytes_largest=max((p["largest"] for p in rows), default=0),
            recoveries=len(recoveries),
            recovery_seconds_last=recovery_times[-1] if recovery_times else None,
            recovery_seconds_max=max(recovery_times) if recovery_times else None,
            recovery_tasks_rerun=sum(p["rerun"] for p in recoveries),
            recovery_tasks_reused=sum(p["reused"] for p in recoveries),
            tasks_executed=sum(p["executed"] for p in rows),
            tasks_replayed=sum(p["replayed"] for p in rows),
            divergences=sum(p["divergences"] for p in rows),
        )


def read_metrics(saver: Any, thread_id: str) -> ThreadMetrics:
    """Sum the metrics rows of every run of the thread."""
    rows = saver.get_writes(thread_id, [METRICS_TASK])
    payloads: list[dict[str, Any]] = []
    for row in rows:
        if row.kind != "metrics":
            continue
        try:
            payloads.append(dict(saver.serde.loads(row.payload)))
        except (TetherError, *SHAPE_ERRORS) as exc:
            raise unreadable(exc, thread_id, f"the metrics of run {row.key!r}") from exc
    return ThreadMetrics.from_payloads(thread_id, payloads)
