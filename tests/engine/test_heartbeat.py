"""A long node keeps its thread: the heartbeat renews the lease of a running run."""

from __future__ import annotations

import threading
import time
from typing import Any, TypedDict

import pytest

from tether import START, LeaseLostError, StateGraph, ThreadBusyError
from tether.checkpoint import InMemorySaver, Owner
from tether.engine import _loop
from tether.engine._heartbeat import Heartbeat


class S(TypedDict, total=False):
    n: int


def lost_calls() -> tuple[list[LeaseLostError], Any]:
    seen: list[LeaseLostError] = []
    return seen, seen.append


def test_renewal_extends_the_lease_and_stops_after_unregister() -> None:
    saver = InMemorySaver(lease_seconds=1000)
    owner = Owner("run-1")
    fence = saver.claim("t", owner, 10).fence
    beat = Heartbeat()
    before = saver._threads["t"].lease
    assert before is not None
    lost, on_lost = lost_calls()
    beat.register(saver, "t", fence, on_lost)
    beat.renew_now()
    after = saver._threads["t"].lease
    assert after is not None and after.expires_at > before.expires_at
    assert after.epoch == before.epoch
    beat.unregister("run-1")
    saver.release("t", owner)
    beat.renew_now()  # a tick after the release must not take the lease back
    assert saver._threads.get("t") is None or saver._threads["t"].lease is None
    assert lost == []


def test_a_taken_lease_is_not_fought_for() -> None:
    saver = InMemorySaver(lease_seconds=1000)
    mine = saver.claim("t", Owner("mine"), -1).fence  # expired: the process stalled
    saver.claim("t", Owner("other"), 1000)
    beat = Heartbeat()
    lost, on_lost = lost_calls()
    beat.register(saver, "t", mine, on_lost)
    beat.renew_now()
    beat.renew_now()
    assert beat.renewals == 0
    assert len(lost) == 1 and "run other" in str(lost[0])  # the run is told, once
    assert beat._next_due() > time.monotonic()  # and the daemon does not spin on it
    lease = saver._threads["t"].lease
    assert lease is not None and lease.owner.run_id == "other"


def test_a_run_keeps_its_thread_while_a_node_outlasts_the_lease(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lease of 1.5 s, a node that runs until the test lets it go: other runs stay out."""
    beat = Heartbeat()
    monkeypatch.setattr(_loop, "HEARTBEAT", beat)
    inside, release = threading.Event(), threading.Event()

    def slow(state: S) -> dict[str, Any]:
        inside.set()
        assert release.wait(30)
        return {"n": state.get("n", 0) + 1}

    g = StateGraph(S)
    g.add_node("slow", slow)
    g.add_edge(START, "slow")
    app = g.compile(checkpointer=InMemorySaver(lease_seconds=1.5))
    cfg = {"configurable": {"thread_id": "long"}}
    worker = threading.Thread(target=app.invoke, args=({"n": 0}, cfg))
    worker.start()
    assert inside.wait(30)
    start = beat.renewals
    deadline = time.monotonic() + 30
    while beat.renewals < start + 4 and time.monotonic() < deadline:
        # the passage of time is the subject here: four lease renewals (> 1 lease) pass
        with pytest.raises(ThreadBusyError):
            app.invoke({"n": 100}, cfg)
        time.sleep(0.05)
    assert beat.renewals >= start + 4
    with pytest.raises(ThreadBusyError):
        app.invoke({"n": 100}, cfg)
    release.set()
    worker.join(30)
    assert app.get_state(cfg).values == {"n": 1}
