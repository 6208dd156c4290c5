"""OpenTelemetry export of run metrics: one span per run and four histograms.

Active only when ``opentelemetry-api`` is installed (the ``otel`` extra); otherwise every
call here is a no-op. Nothing is sent anywhere unless the application configures an SDK.
"""

from __future__ import annotations

import time
from typing import Any

try:
    from opentelemetry import metrics as _otel_metrics
    from opentelemetry import trace as _otel_trace
except ImportError:  # the otel extra is not installed
    _otel_metrics = None  # type: ignore[assignment]
    _otel_trace = None  # type: ignore[assignment]

_instruments: dict[str, Any] = {}


def enabled() -> bool:
    return _otel_trace is not None


def _histogram(name: str, unit: str, description: str) -> Any:
    inst = _instruments.get(name)
    if inst is None:
        assert _otel_metrics is not None
        meter = _otel_metrics.get_meter("tether")
        inst = meter.create_histogram(name, unit=unit, description=description)
        _instruments[name] = inst
    return inst


def record_run(thread_id: str, payload: dict[str, Any]) -> None:
    """Emit the run as a span (from its start to now) and its measurements as metrics."""
    if _otel_trace is None or _otel_metrics is None:
        return
    attrs = {
        "tether.thread_id": thread_id,
        "tether.run_id": payload["run"],
        "tether.run.kind": payload["kind"],
        "tether.run.outcome": payload["outcome"],
        "tether.checkpoints": payload["checkpoints"],
        "tether.checkpoint_bytes": payload["bytes"],
        "tether.tasks.executed": payload["executed"],
        "tether.tasks.replayed": payload["replayed"],
        "tether.tasks.divergences": payload["divergences"],
    }
    tracer = _otel_trace.get_tracer("tether")
    span = tracer.start_span("tether.run", start_time=int(payload["at"] * 1e9), attributes=attrs)
    span.end(end_time=time.time_ns())
    kind = {"tether.run.kind": payload["kind"]}
    wait = payload["to_first_node"]
    if wait is not None and payload["kind"] == "resume":
        _histogram("tether.resume.latency", "s", "invoke(resume) to the resumed node").record(
            wait, kind
        )
    if wait is not None and payload["kind"] == "recovery":
        _histogram("tether.recovery.time", "s", "recovery run start to first node").record(
            wait, kind
        )
    if payload["largest"]:
        _histogram("tether.checkpoint.size", "By", "largest checkpoint of a run").record(
            payload["largest"], kind
        )
    _histogram("tether.tasks.replayed", "{call}", "@task calls replayed").record(
        payload["replayed"], kind
    )
