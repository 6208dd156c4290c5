"""The trading agent: proposes a trade, pauses for a human, executes it at a broker once.

    python -m examples.trading            # starts a local broker, proposes, auto-approves
    python -m examples.trading --reject   # the human says no: nothing reaches the broker

The order goes to the broker (``examples/broker.py``, a local HTTP server) from a ``@task``
that sends its tether idempotency key as the ``Idempotency-Key`` header. If the process dies
after the broker filled the order but before the task's result was journaled, the resumed
run calls the broker again with the same key, and the broker answers with the stored fill
instead of trading twice; the agent's state shows the trade once.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from typing import Any, TypedDict

import tether
from tether import END, START, Command, RetryPolicy, StateGraph, interrupt, task
from tether.checkpoint import SqliteSaver
from tether.graph import CompiledGraph


class TradingState(TypedDict, total=False):
    positions: dict[str, float]
    capital: float
    approved_deals: int
    proposal: dict[str, Any]
    fill: dict[str, Any]
    status: str
    reason: str


class BrokerError(ValueError):
    """The broker refused the order (a 4xx answer): retrying the same request cannot help."""


def initial_state() -> TradingState:
    return {"positions": {"ACME": 5.0}, "capital": 10_000.0, "approved_deals": 0}


def send_order(broker_url: str, order: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    """POST the order to the broker; the broker executes at most once per key."""
    request = urllib.request.Request(
        f"{broker_url}/orders",
        data=json.dumps(order).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Idempotency-Key": idempotency_key},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        if exc.code >= 500:
            raise ConnectionError(f"broker answered {exc.code}: {detail}") from exc
        raise BrokerError(f"broker refused the order ({exc.code}): {detail}") from exc
    except urllib.error.URLError as exc:
        raise ConnectionError(f"broker at {broker_url} unreachable: {exc.reason}") from exc


@task
def propose_trade(positions: dict[str, float], capital: float) -> dict[str, Any]:
    """Stands in for the model's trade idea: journaled, so a resume proposes the same one."""
    price = 101.5
    qty = min(10.0, float(int(capital // price)))
    return {"symbol": "ACME", "side": "buy", "qty": qty, "price": price}


@task(retry_policy=RetryPolicy(max_attempts=3, retry_on=(ConnectionError, TimeoutError)))
def place_order(broker_url: str, order: dict[str, Any]) -> dict[str, Any]:
    """The side effect. The key is stable across retries, replays and processes."""
    key = tether.current_task().idempotency_key
    return send_order(broker_url, order, key)


def propose(state: TradingState) -> dict[str, Any]:
    proposal = propose_trade(state["positions"], state["capital"]).result()
    return {"proposal": proposal, "status": "proposed"}


def describe(order: dict[str, Any]) -> str:
    return f"{order['side']} {order['qty']:g} {order['symbol']} @ {order['price']:.2f}"


def trade_approval(state: TradingState) -> dict[str, Any]:
    order = state["proposal"]
    approved = interrupt(f"Approve trade? Position: {state['positions']} -> {describe(order)}")
    if approved:
        return {"status": "approved"}
    return {"status": "rejected", "reason": "human_approval"}


def route(state: TradingState) -> str:
    return "execute" if state["status"] == "approved" else END


def build(saver: Any, *, broker_url: str) -> CompiledGraph:
    """propose -> trade_approval (interrupt) -> execute (the broker call) on approval."""

    def execute(state: TradingState) -> dict[str, Any]:
        fill = place_order(broker_url, state["proposal"]).result()
        positions = dict(state["positions"])
        sign = 1.0 if fill["side"] == "buy" else -1.0
        positions[fill["symbol"]] = positions.get(fill["symbol"], 0.0) + sign * fill["qty"]
        return {
            "fill": fill,
            "positions": positions,
            "capital": round(state["capital"] - sign * fill["notional"], 2),
            "approved_deals": state.get("approved_deals", 0) + 1,
            "status": "executed",
        }

    g = StateGraph(TradingState)
    g.add_node("propose", propose)
    g.add_node("trade_approval", trade_approval)
    g.add_node("execute", execute)
    g.add_edge(START, "propose")
    g.add_edge("propose", "trade_approval")
    g.add_conditional_edges("trade_approval", route, ["execute", END])
    g.add_edge("execute", END)
    return g.compile(checkpointer=saver)


def main(argv: list[str] | None = None) -> int:
    from examples.broker import Broker

    parser = argparse.ArgumentParser(prog="python -m examples.trading")
    parser.add_argument("--db", default="trading.db")
    parser.add_argument("--thread", default="trade-1")
    parser.add_argument("--reject", action="store_true", help="the human rejects the trade")
    args = parser.parse_args(argv)
    config = {"configurable": {"thread_id": args.thread}}
    with Broker() as broker, SqliteSaver(args.db) as saver:
        print(f"broker on {broker.url}; agent thread {args.thread!r} in {args.db}")
        app = build(saver, broker_url=broker.url)
        out = app.invoke(initial_state(), config, durability="sync")
        for intr in out.get("__interrupt__", []):
            print(f"  paused: {intr.value} (interrupt id {intr.id})")
        word = "rejects" if args.reject else "approves"
        print(f"  the human {word}")
        final = app.invoke(Command(resume=not args.reject), config, durability="sync")
        shown = {k: final.get(k) for k in ("status", "reason", "positions", "capital")}
        print(f"  final: {shown} approved_deals={final.get('approved_deals')}")
        print(f"  broker executed {len(broker.orders())} order(s): {broker.orders()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
