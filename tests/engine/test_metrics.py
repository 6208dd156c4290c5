"""Per-thread durability metrics: recorded by every run, summed per thread, never an extra
commit per step; exported to OpenTelemetry when it is installed."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest

from tether import (
    START,
    Command,
    NondeterminismError,
    RetryPolicy,
    StateGraph,
    ThreadMetrics,
    interrupt,
    task,
)
from tether.checkpoint import InMemorySaver
from tether.engine._metrics import METRICS_TASK


class S(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


FLAKY = {"fail": 0}
CHOICE = {"name": "a"}


@task
def side(x: str) -> str:
    return x.upper()


@task
def other(x: str) -> str:
    return x


def work(state: S) -> dict[str, Any]:
    first = (side if CHOICE["name"] == "a" else other)("x").result()
    answer = interrupt("ok?")
    if FLAKY["fail"]:
        FLAKY["fail"] -= 1
        raise ConnectionError("model endpoint down")
    return {"log": [first, str(answer)]}


def build() -> Any:
    g = StateGraph(S)
    g.add_node("work", work, retry_policy=RetryPolicy(max_attempts=1))
    g.add_edge(START, "work")
    return g.compile(checkpointer=InMemorySaver())


def cfg(tid: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": tid}}


def test_resume_latency_sizes_and_journal_counts() -> None:
    app = build()
    app.invoke({"log": []}, cfg("m"))
    app.invoke(Command(resume=True), cfg("m"))
    m = app.get_metrics(cfg("m"))
    assert isinstance(m, ThreadMetrics)
    assert m.runs == 2 and m.resumes == 1
    assert m.resume_latency_last is not None and m.resume_latency_last >= 0
    # input, after start... the checkpoints this thread committed, and their sizes
    history = list(app.get_state_history(cfg("m")))
    assert m.checkpoints == len(history)
    assert m.checkpoint_bytes_largest > 0
    assert m.checkpoint_bytes_total >= m.checkpoint_bytes_largest
    assert m.checkpoint_bytes_mean == pytest.approx(m.checkpoint_bytes_total / m.checkpoints)
    # the @task ran once and was replayed from the journal on resume
    assert (m.tasks_executed, m.tasks_replayed, m.divergences) == (1, 1, 0)
    assert m.idempotency == 1.0


def test_recovery_after_failure_is_measured() -> None:
    app = build()
    FLAKY["fail"] = 1
    app.invoke({"log": []}, cfg("r"))
    with pytest.raises(ConnectionError):
        app.invoke(Command(resume=True), cfg("r"))
    app.invoke(None, cfg("r"))
    m = app.get_metrics(cfg("r"))
    assert m.recoveries == 1
    assert m.recovery_seconds_last is not None
    assert m.recovery_tasks_rerun == 1 and m.recovery_tasks_reused == 0


def test_divergence_is_counted() -> None:
    app = build()
    app.invoke({"log": []}, cfg("d"))
    CHOICE["name"] = "b"
    try:
        with pytest.raises(NondeterminismError):
            app.invoke(Command(resume=True), cfg("d"))
    finally:
        CHOICE["name"] = "a"
    m = app.get_metrics(cfg("d"))
    assert m.divergences == 1
    assert m.idempotency < 1.0


def test_recording_adds_no_commit_per_step() -> None:
    saver = InMemorySaver()
    commits: list[int] = []
    puts: list[int] = []
    original_commit, original_put = saver.commit, saver.put_writes

    def commit(*a: Any, **k: Any) -> None:
        commits.append(1)
        original_commit(*a, **k)

    def put(*a: Any, **k: Any) -> None:
        puts.append(1)
        original_put(*a, **k)

    saver.commit = commit  # type: ignore[method-assign]
    saver.put_writes = put  # type: ignore[method-assign]

    class C(TypedDict, total=False):
        n: int

    g = StateGraph(C)
    g.add_node("inc", lambda s: {"n": s.get("n", 0) + 1})
    g.add_edge(START, "inc")
    g.add_conditional_edges("inc", lambda s: "inc" if s["n"] < 10 else "__end__")
    app = g.compile(checkpointer=saver)
    app.invoke({"n": 0}, cfg("c"), durability="sync")
    assert len(commits) == 12  # the input, START's step and one per step
    assert puts == []  # the metrics row rode along with the last commit
    rows = saver.get_writes("c", [METRICS_TASK])
    assert len(rows) == 1
    assert app.get_metrics(cfg("c")).checkpoints == 12


def test_spans_and_metrics_reach_opentelemetry() -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    if trace.get_tracer_provider() is not provider:
        pytest.skip("another test installed a global tracer provider first")
    app = build()
    app.invoke({"log": []}, cfg("o"))
    app.invoke(Command(resume=True), cfg("o"))
    spans = [s for s in exporter.get_finished_spans() if s.name == "tether.run"]
    assert [s.attributes["tether.run.kind"] for s in spans] == ["start", "resume"]
    assert spans[1].attributes["tether.thread_id"] == "o"
    names = {
        m.name
        for rm in reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert "tether.resume.latency" in names


def test_without_opentelemetry_recording_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    from tether.engine import _otel

    monkeypatch.setattr(_otel, "_otel_trace", None)
    monkeypatch.setattr(_otel, "_otel_metrics", None)
    assert not _otel.enabled()
    app = build()
    app.invoke({"log": []}, cfg("no-otel"))
    app.invoke(Command(resume=True), cfg("no-otel"))
    assert app.get_metrics(cfg("no-otel")).runs == 2
