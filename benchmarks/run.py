"""Run every scenario for both engines, alternating engines within each repetition.

``python -m benchmarks`` (quick, the default) or ``BENCH_FULL=1 python -m benchmarks``.
``BENCH_DIR`` picks the directory for SQLite files and the fsync probe (default: the system
temp dir); ``BENCH_NO_WRITE=1`` prints the table without touching ``docs/``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks import engines as eng
from benchmarks import scenarios as sc


@dataclass(frozen=True)
class Sizes:
    mode: str
    loop_steps: int
    loop_reps: int
    invokes: int
    invoke_reps: int
    message_steps: tuple[int, ...]
    message_reps: int
    resume_priors: tuple[int, ...]
    resume_reps: int
    cold_reps: int
    fsync_count: int
    get_state_sizes: tuple[int, ...] = (400, 4000)
    get_state_reps: int = 3


QUICK = Sizes("quick", 200, 3, 20, 3, (50, 100, 200, 400), 1, (10, 1000), 3, 2, 200)
FULL = Sizes(
    "full", 1000, 5, 200, 5, (50, 100, 200, 400), 3, (10, 1000), 5, 5, 1000, get_state_reps=5
)
TINY = Sizes("tiny", 5, 1, 2, 1, (3, 6), 1, (2, 4), 1, 1, 5, (4, 8), 1)

MODES = ("sync", "async", "exit")


@dataclass(frozen=True)
class Case:
    scenario: str
    backend: str
    mode: str
    size: int
    fn: Callable[..., dict[str, float]]


@dataclass
class Results:
    sizes: Sizes
    engines: list[str]
    versions: dict[str, str]
    # (scenario, backend, mode, size, metric) -> engine -> values
    data: dict[tuple[str, str, str, int, str], dict[str, list[float]]] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fsync_ms: list[float] = field(default_factory=list)
    fdatasync_ms: list[float] = field(default_factory=list)
    workdir: str = ""
    seconds: float = 0.0

    def add(self, case: Case, engine: str, metrics: dict[str, float]) -> None:
        for metric, value in metrics.items():
            key = (case.scenario, case.backend, case.mode, case.size, metric)
            self.data.setdefault(key, {}).setdefault(engine, []).append(value)

    def values(
        self, scenario: str, backend: str, mode: str, size: int, metric: str, engine: str
    ) -> list[float]:
        return self.data.get((scenario, backend, mode, size, metric), {}).get(engine, [])

    def median(
        self, scenario: str, backend: str, mode: str, size: int, metric: str, engine: str
    ) -> float | None:
        vals = self.values(scenario, backend, mode, size, metric, engine)
        return statistics.median(vals) if vals else None


def cases(sizes: Sizes) -> list[Case]:
    out: list[Case] = []
    for backend in eng.BACKENDS:
        for mode in MODES:
            out.append(Case("loop", backend, mode, sizes.loop_steps, sc.loop))
    for name, fn in (("chain", sc.chain), ("fanout", sc.fanout)):
        for backend in eng.BACKENDS:
            for mode in MODES:
                out.append(Case(name, backend, mode, sizes.invokes, fn))
    for backend in eng.BACKENDS:
        for steps in sizes.message_steps:
            out.append(Case("messages", backend, "sync", steps, sc.messages))
    for backend in eng.BACKENDS:
        for prior in sizes.resume_priors:
            out.append(Case("resume", backend, "sync", prior, sc.resume_warm))
    for backend in ("sqlite", "postgres", "redis"):
        for prior in sizes.resume_priors:
            out.append(Case("resume-cold", backend, "sync", prior, sc.resume_cold))
    for size in sizes.get_state_sizes:
        out.append(Case("get_state", "sqlite", "async", size, sc.get_state))
    return out


def reps_for(case: Case, sizes: Sizes) -> int:
    return {
        "loop": sizes.loop_reps,
        "chain": sizes.invoke_reps,
        "fanout": sizes.invoke_reps,
        "messages": sizes.message_reps,
        "resume": sizes.resume_reps,
        "resume-cold": sizes.cold_reps,
        "get_state": sizes.get_state_reps,
    }[case.scenario]


def run(
    sizes: Sizes,
    *,
    engine_names: tuple[str, ...] | None = None,
    only: tuple[str, ...] | None = None,
    backends: tuple[str, ...] | None = None,
    log: Callable[[str], None] = print,
) -> Results:
    started = time.perf_counter()
    engines, notes = eng.available()
    if engine_names is not None:
        engines = [e for e in engines if e.name in engine_names]
    res = Results(sizes, [e.name for e in engines], {e.name: e.version() for e in engines})
    res.notes.extend(notes)
    skip: dict[tuple[str, str], str] = {}  # (engine, backend) -> reason
    want_pg = backends is None or "postgres" in backends
    pg_note = eng.postgres_status(engines) if want_pg else "not selected"
    if pg_note is not None:
        for e in engines:
            skip[(e.name, "postgres")] = pg_note
        if want_pg:
            res.notes.append(f"postgres rows skipped: {pg_note}")
    elif any(e.name == "tether" for e in engines):
        tnote = eng.tether_postgres_status()
        if tnote is not None:
            skip[("tether", "postgres")] = tnote
            res.notes.append(f"tether postgres rows skipped: {tnote}")
    want_redis = backends is None or "redis" in backends
    redis_note = eng.redis_status() if want_redis else "not selected"
    if redis_note is None and any(e.name == "tether" for e in engines):
        redis_note = eng.tether_redis_status()
    for e in engines:
        if e.name != "tether":
            skip[(e.name, "redis")] = eng.LANGGRAPH_REDIS_NOTE
        elif redis_note is not None:
            skip[(e.name, "redis")] = redis_note
    if want_redis:
        if redis_note is not None:
            res.notes.append(f"redis rows skipped: {redis_note}")
        if any(e.name != "tether" for e in engines):
            res.notes.append(eng.LANGGRAPH_REDIS_NOTE)

    workdir = tempfile.mkdtemp(prefix="tether-bench-", dir=os.environ.get("BENCH_DIR"))
    res.workdir = workdir
    where = sc.Where(workdir)
    try:
        res.fsync_ms = sc.fsync_floor(workdir, sizes.fsync_count)
        res.fdatasync_ms = sc.fsync_floor(workdir, sizes.fsync_count, sync=os.fdatasync)
        log(
            f"fsync floor: {statistics.median(res.fsync_ms):.3f} ms "
            f"(fdatasync {statistics.median(res.fdatasync_ms):.3f} ms) in {workdir}"
        )
        for case in cases(sizes):
            if only is not None and case.scenario not in only:
                continue
            if backends is not None and case.backend not in backends:
                continue
            failed: set[str] = set()
            t0 = time.perf_counter()
            for _rep in range(reps_for(case, sizes)):
                for e in engines:  # A B A B ...
                    if e.name in failed or (e.name, case.backend) in skip:
                        continue
                    try:
                        metrics = case.fn(e, case.backend, case.mode, case.size, where)
                    except Exception as exc:
                        failed.add(e.name)
                        res.errors.append(
                            {
                                "engine": e.name,
                                "case": f"{case.scenario}/{case.backend}/{case.mode}/{case.size}",
                                "error": f"{type(exc).__name__}: {exc}",
                                "traceback": traceback.format_exc(limit=8),
                            }
                        )
                        log(f"  ERROR {e.name} {case}: {type(exc).__name__}: {exc}")
                        continue
                    res.add(case, e.name, metrics)
            log(
                f"{case.scenario:<11} {case.backend:<8} {case.mode:<5} {case.size:>5} "
                f"({time.perf_counter() - t0:.1f}s)"
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if pg_note is None:
            for e in engines:
                for name in ("loop", "chain", "fanout", "resume", "cold"):
                    schemas = [f"bench_{e.name}_{name}"]
                    if name in ("resume", "cold"):
                        schemas = [f"bench_{e.name}_{name}{p}" for p in sizes.resume_priors]
                    for s in schemas:
                        _drop_quietly(s)
                for steps in sizes.message_steps:
                    _drop_quietly(f"bench_{e.name}_msg{steps}")
        if redis_note is None:
            try:  # whatever a failed scenario left under this run's prefix
                eng.delete_redis_prefix(where.redis_prefix)
            except Exception:
                pass
    for (engine, backend), reason in sorted(skip.items()):
        if backend == "postgres" and pg_note is None:
            res.notes.append(f"{engine}/{backend}: skipped ({reason})")
    res.seconds = time.perf_counter() - started
    return res


def _drop_quietly(schema: str) -> None:
    try:
        eng.drop_pg_schema(schema)
    except Exception:
        pass


def summarize(values: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }
