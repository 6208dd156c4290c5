"""The trading example: approve -> one broker order; reject -> none; and a SIGKILL after the
broker filled the order (before the @task's result was journaled) followed by a resume in a
fresh process still trades exactly once, with the same Idempotency-Key."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import examples.trading as trading
import pytest
from examples.broker import Broker

from tether import Command
from tether.checkpoint import SqliteSaver

ROOT = Path(__file__).resolve().parents[2]
CHILD = str(Path(__file__).with_name("trading_child.py"))


@pytest.fixture
def broker() -> Iterator[Broker]:
    with Broker() as b:
        yield b


def cfg(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def run_child(args: dict[str, Any], *, expect_kill: bool = False) -> Any:
    proc = subprocess.run(
        [sys.executable, CHILD, json.dumps(args)],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    if expect_kill:
        assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr)
        return None
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_approved_trade_executes_once(tmp_path: Path, broker: Broker) -> None:
    with SqliteSaver(str(tmp_path / "t.db")) as saver:
        app = trading.build(saver, broker_url=broker.url)
        out = app.invoke(trading.initial_state(), cfg("t"), durability="sync")
        [intr] = out["__interrupt__"]
        assert intr.value.startswith("Approve trade? Position: {'ACME': 5.0}")
        assert broker.orders() == []  # nothing is sent before the human says yes
        final = app.invoke(Command(resume=True), cfg("t"), durability="sync")
    assert final["status"] == "executed"
    assert final["approved_deals"] == 1
    assert final["positions"] == {"ACME": 15.0}
    assert final["capital"] == 10_000.0 - 1015.0
    [order] = broker.orders()
    assert order["order_id"] == final["fill"]["order_id"]
    assert [r["replayed"] for r in broker.requests()] == [False]


def test_rejected_trade_never_reaches_the_broker(tmp_path: Path, broker: Broker) -> None:
    with SqliteSaver(str(tmp_path / "t.db")) as saver:
        app = trading.build(saver, broker_url=broker.url)
        app.invoke(trading.initial_state(), cfg("t"), durability="sync")
        final = app.invoke(Command(resume=False), cfg("t"), durability="sync")
        snap = app.get_state(cfg("t"))
    assert final["status"] == "rejected"
    assert final["reason"] == "human_approval"
    assert final["approved_deals"] == 0
    assert final["positions"] == {"ACME": 5.0} and final["capital"] == 10_000.0
    assert snap.next == () and snap.interrupts == ()
    assert broker.orders() == [] and broker.requests() == []


def test_crash_after_broker_fill_then_resume_trades_once(tmp_path: Path, broker: Broker) -> None:
    base = {"db": str(tmp_path / "trading.db"), "thread": "trade-1", "broker": broker.url}
    paused = run_child({**base, "step": "start"})
    assert len(paused["__interrupt__"]) == 1 and broker.requests() == []

    # process 1: approves, the broker fills the order, the process dies before the task
    # returns (its result never reaches the journal)
    run_child({**base, "step": "approve", "crash_after_order": True}, expect_kill=True)
    assert len(broker.orders()) == 1
    [first] = broker.requests()
    assert first["replayed"] is False

    # process 2: a fresh process continues the thread
    final = run_child({**base, "step": "recover"})

    requests = broker.requests()
    assert len(requests) == 2  # the resumed run called the broker again ...
    assert requests[1]["idempotency_key"] == first["idempotency_key"]  # ... with the same key
    assert requests[1]["replayed"] is True  # ... and got the stored fill back
    [order] = broker.orders()  # exactly one execution
    assert final["fill"] == order
    assert final["status"] == "executed"
    assert final["approved_deals"] == 1
    assert final["positions"] == {"ACME": 15.0}
    assert final["capital"] == 10_000.0 - 1015.0

    # the stored thread agrees, read back by a third party (this process)
    with SqliteSaver(base["db"]) as saver:
        snap = trading.build(saver, broker_url=broker.url).get_state(cfg("trade-1"))
    assert snap.next == ()
    assert snap.values["approved_deals"] == 1
    assert snap.values["positions"] == {"ACME": 15.0}
    assert snap.values["capital"] == 10_000.0 - 1015.0


def test_broker_deduplicates_by_idempotency_key(broker: Broker) -> None:
    order = {"symbol": "ACME", "side": "buy", "qty": 1, "price": 10.0}
    a = trading.send_order(broker.url, order, "k1")
    b = trading.send_order(broker.url, order, "k1")
    c = trading.send_order(broker.url, order, "k2")
    assert a == b and a["order_id"] != c["order_id"]
    assert [o["idempotency_key"] for o in broker.orders()] == ["k1", "k2"]
    assert [r["replayed"] for r in broker.requests()] == [False, True, False]


def test_main_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert trading.main(["--db", str(tmp_path / "m.db")]) == 0
    out = capsys.readouterr().out
    assert "'status': 'executed'" in out and "broker executed 1 order(s)" in out
    assert trading.main(["--db", str(tmp_path / "m.db"), "--thread", "r", "--reject"]) == 0
    out = capsys.readouterr().out
    assert "'reason': 'human_approval'" in out and "broker executed 0 order(s)" in out
