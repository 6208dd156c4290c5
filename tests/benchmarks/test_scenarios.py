"""The benchmark scenarios run and check their results, at tiny sizes. No timing thresholds:
timings are reported by ``make bench``, never asserted here."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from benchmarks.run import TINY, run

from benchmarks import engines as eng
from benchmarks import report
from benchmarks import scenarios as sc

SCENARIOS = {
    "loop": (sc.loop, 5),
    "chain": (sc.chain, 2),
    "fanout": (sc.fanout, 2),
    "messages": (sc.messages, 4),
    "resume": (sc.resume_warm, 3),
}


@pytest.fixture
def where(tmp_path: Path) -> sc.Where:
    return sc.Where(tmp_path)


@pytest.fixture
def bench_pg(postgres_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the benchmark's Postgres settings at the test database (child processes too)."""
    from psycopg.conninfo import conninfo_to_dict

    db = str(conninfo_to_dict(postgres_dsn)["dbname"])
    monkeypatch.setattr(eng, "PG_ADMIN_DSN", postgres_dsn)
    monkeypatch.setattr(eng, "PG_DB", db)
    monkeypatch.setenv("BENCH_PG_ADMIN_DSN", postgres_dsn)
    monkeypatch.setenv("BENCH_PG_DB", db)
    yield db


@pytest.fixture
def bench_redis(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the benchmark's Redis URL at this run's test database (child processes too)."""
    pytest.importorskip("redis")
    monkeypatch.setattr(eng, "REDIS_URL", redis_url)
    monkeypatch.setenv("BENCH_REDIS_URL", redis_url)
    yield redis_url


def _redis_keys(prefix: str) -> list[bytes]:
    client = eng._redis_client()
    try:
        return list(client.scan_iter(match=f"{prefix}:*"))
    finally:
        client.close()


def _tether() -> eng.Engine:
    return eng.load("tether")


def _langgraph() -> eng.Engine:
    pytest.importorskip("langgraph")
    pytest.importorskip("langgraph.checkpoint.sqlite")
    return eng.load("langgraph")


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
@pytest.mark.parametrize("mode", ["sync", "async", "exit"])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_tether_scenario_runs(name: str, mode: str, backend: str, where: sc.Where) -> None:
    fn, size = SCENARIOS[name]
    metrics = fn(_tether(), backend, mode, size, where)
    assert metrics
    assert all(v >= 0 for v in metrics.values())
    if name == "loop":
        assert metrics["commits/step"] > 0 or mode == "exit"
    if name == "messages" and backend == "sqlite":
        assert metrics["bytes stored"] > 0


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_tether_scenario_runs_on_postgres(name: str, where: sc.Where, bench_pg: str) -> None:
    pytest.importorskip("psycopg")
    fn, size = SCENARIOS[name]
    metrics = fn(_tether(), "postgres", "sync", size, where)
    assert metrics
    if name == "messages":
        assert metrics["bytes stored"] > 0


def test_bench_creates_its_postgres_database_when_absent(
    postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make bench` on a fresh server: the benchmark database does not exist yet."""
    psycopg = pytest.importorskip("psycopg")
    name = f"tether_bench_{uuid.uuid4().hex[:12]}"
    monkeypatch.setattr(eng, "PG_ADMIN_DSN", postgres_dsn)
    monkeypatch.setattr(eng, "PG_DB", name)
    try:
        assert eng.postgres_status([]) is None
        with psycopg.connect(eng.pg_dsn(), connect_timeout=5) as conn:
            row = conn.execute("SELECT current_database()").fetchone()
        assert row is not None and row[0] == name
        assert eng.postgres_status([]) is None  # and finds it the second time
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("mode", ["sync", "async", "exit"])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_tether_scenario_runs_on_redis(
    name: str, mode: str, where: sc.Where, bench_redis: str
) -> None:
    fn, size = SCENARIOS[name]
    metrics = fn(_tether(), "redis", mode, size, where)
    assert metrics
    assert all(v >= 0 for v in metrics.values())
    if name == "loop":
        assert metrics["commits/step"] > 0 or mode == "exit"
    if name == "messages":
        assert metrics["bytes stored"] > 0
    assert not _redis_keys(where.redis_prefix), "the scenario left keys behind"


def test_tether_resume_in_fresh_process_on_redis(where: sc.Where, bench_redis: str) -> None:
    metrics = sc.resume_cold(_tether(), "redis", "sync", 2, where)
    assert metrics["resume fresh process (ms)"] > 0
    assert not _redis_keys(where.redis_prefix)


def test_redis_cleanup_touches_only_its_prefix(where: sc.Where, bench_redis: str) -> None:
    client = eng._redis_client()
    other = f"not-{where.redis_prefix}:keep"
    try:
        client.set(other, b"1")
        client.set(f"{where.redis_prefix}:x:head", b"1")
        assert eng.delete_redis_prefix(where.redis_prefix) == 1
        assert client.get(other) == b"1"
    finally:
        client.delete(other)
        client.close()
    with pytest.raises(ValueError):
        eng.delete_redis_prefix("*")


def test_langgraph_has_no_redis_rows() -> None:
    e = _langgraph()
    with pytest.raises(NotImplementedError, match="RediSearch"):
        e.open("redis", "unused", fresh=False)


def test_runner_and_report_with_redis(tmp_path: Path, bench_redis: str) -> None:
    res = run(TINY, engine_names=("tether",), backends=("memory", "redis"), log=lambda s: None)
    assert not res.errors, res.errors
    md = report.table(res)
    assert "| loop | redis | sync |" in md
    across = report.backends_md(res)
    redis_row = next(line for line in across.splitlines() if line.startswith("| redis |"))
    assert "not measured" not in redis_row
    assert "| sqlite | — | not measured |" in across
    report.write(res, tmp_path)
    assert "## tether across backends" in (tmp_path / "benchmarks.md").read_text()


def test_tether_resume_in_fresh_process(where: sc.Where) -> None:
    metrics = sc.resume_cold(_tether(), "sqlite", "sync", 2, where)
    assert metrics["resume fresh process (ms)"] > 0
    assert metrics["fresh process wall (ms)"] >= metrics["resume fresh process (ms)"]


def test_fsync_floor(tmp_path: Path) -> None:
    times = sc.fsync_floor(tmp_path, 3)
    assert len(times) == 3
    assert not list(tmp_path.iterdir())


def test_runner_and_report_tether_only(tmp_path: Path) -> None:
    res = run(TINY, engine_names=("tether",), backends=("memory", "sqlite"), log=lambda s: None)
    assert not res.errors, res.errors
    assert res.data
    md = report.table(res)
    assert "| loop | memory | sync |" in md
    assert report.targets(res)
    report.write(res, tmp_path)
    assert (tmp_path / "benchmarks.md").read_text().startswith("# Benchmarks")
    assert (tmp_path / "bench_storage.png").stat().st_size > 0
    assert (tmp_path / "bench_step_time.png").stat().st_size > 0


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_langgraph_scenario_runs(name: str, backend: str, where: sc.Where) -> None:
    fn, size = SCENARIOS[name]
    metrics = fn(_langgraph(), backend, "sync", size, where)
    assert metrics


@pytest.mark.parametrize("engine", ["tether", "langgraph"])
def test_get_state_scenario_runs(engine: str, where: sc.Where) -> None:
    e = _tether() if engine == "tether" else _langgraph()
    for size in TINY.get_state_sizes:
        metrics = sc.get_state(e, "sqlite", "async", size, where, calls=3)
        assert set(metrics) == {"get_state cold (ms)", "get_state warm (ms)"}
        assert all(v > 0 for v in metrics.values())
    assert not list(where.workdir.iterdir()), "the scenario left files behind"


def test_get_state_rows_and_targets_in_the_report(tmp_path: Path) -> None:
    _langgraph()
    res = run(TINY, only=("get_state",), backends=("sqlite",), log=lambda s: None)
    assert not res.errors, res.errors
    md = report.table(res)
    assert "| get_state | sqlite | async | 8 | get_state warm (ms) |" in md
    rows = [t for t in report.targets(res) if t[0].startswith("get_state")]
    assert len(rows) == 6 and all(verdict != "n/a" for _, _, verdict in rows)
