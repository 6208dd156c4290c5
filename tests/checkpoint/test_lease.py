"""The lease rules (checkpoint/_lease.py) as a run meets them, on every backend: a run whose
lease was taken over while it stalled ends with LeaseLostError and writes nothing, even when
the fenced write is a @task's journal record in a parallel branch whose node swallows the
error; its heartbeat never takes back a lease; the lease length is a saver setting."""

from __future__ import annotations

import operator
import threading
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict

import pytest
from tests.checkpoint.conftest import SaverFactory

from tether import START, LeaseLostError, StateGraph, ThreadBusyError, task
from tether.checkpoint import InMemorySaver, Owner, Saver, SqliteSaver, ThreadDump
from tether.checkpoint._lease import DEFAULT_LEASE_SECONDS
from tether.engine import _loop
from tether.engine._heartbeat import Heartbeat
from tether.errors import ConfigError

WAIT = 30.0
LEASE = 0.2
CFG: dict[str, Any] = {"configurable": {"thread_id": "t"}}


class Log(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


class StalledHeartbeat(Heartbeat):
    """A heartbeat that renews only when the test calls ``renew_now``: the runs of this test
    stand for processes that stall (a VM pause) and wake up later."""

    def _run(self) -> None:
        return


@pytest.fixture
def beat(monkeypatch: pytest.MonkeyPatch) -> Iterator[StalledHeartbeat]:
    heartbeat = StalledHeartbeat()
    monkeypatch.setattr(_loop, "HEARTBEAT", heartbeat)
    yield heartbeat


def rows(dump: ThreadDump) -> Any:
    return (
        dump.head,
        sorted((c.checkpoint_id, c.version) for c in dump.checkpoints),
        sorted((v.channel, v.version, v.payload) for v in dump.values),
        sorted((w.task_id, w.kind, w.key, w.payload) for w in dump.writes),
    )


class Stall:
    """The first call blocks (the stalled run) until ``go``; later calls (the run that took
    over) do not."""

    def __init__(self) -> None:
        self.inside, self.go = threading.Event(), threading.Event()
        self.calls = 0

    def __call__(self, label: str) -> str:
        self.calls += 1
        if self.calls == 1:
            self.inside.set()
            assert self.go.wait(WAIT), "the test never let the stalled run go"
            return f"{label}-stale"
        return f"{label}-fresh"


def start(fn: Any) -> tuple[threading.Thread, list[BaseException | Any]]:
    result: list[BaseException | Any] = []

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, result


def test_a_fenced_task_write_in_a_parallel_branch_ends_the_run(
    saver_factory: SaverFactory, beat: StalledHeartbeat
) -> None:
    saver = saver_factory(lease_seconds=LEASE)
    stall = Stall()

    @task
    def effect(label: str) -> str:
        return stall(label)

    def slow(state: Log) -> dict[str, Any]:
        try:
            got = effect("charge").result()
        except Exception as exc:  # a node that swallows everything cannot hide a lost lease
            got = f"swallowed {type(exc).__name__}"
        return {"log": [got]}

    g = StateGraph(Log)
    g.add_node("slow", slow)
    g.add_node("fast", lambda s: {"log": ["fast"]})
    g.add_edge(START, "slow")
    g.add_edge(START, "fast")
    app = g.compile(checkpointer=saver)

    a, a_result = start(lambda: app.invoke({"log": ["in"]}, CFG))
    assert stall.inside.wait(WAIT)
    # A stalls past its lease; B takes the thread over and finishes the step.
    b = app.invoke(None, CFG, on_busy="wait")
    assert b == {"log": ["in", "fast", "charge-fresh"]}
    before = rows(saver.dump_thread("t"))
    stall.go.set()
    a.join(WAIT)
    assert len(a_result) == 1 and isinstance(a_result[0], LeaseLostError), a_result
    assert "'t'" in str(a_result[0])
    assert rows(saver.dump_thread("t")) == before
    assert app.get_state(CFG).values == b


def test_a_stalled_heartbeat_marks_the_run_lost_and_takes_nothing_back(
    saver_factory: SaverFactory, beat: StalledHeartbeat
) -> None:
    saver = saver_factory(lease_seconds=LEASE)
    stall = Stall()

    def work(state: Log) -> dict[str, Any]:
        return {"log": [stall("work")]}

    g = StateGraph(Log)
    g.add_node("work", work)
    g.add_edge(START, "work")
    app = g.compile(checkpointer=saver)

    a, a_result = start(lambda: app.invoke({"log": ["in"]}, CFG))
    assert stall.inside.wait(WAIT)
    b = app.invoke(None, CFG, on_busy="wait")
    assert b == {"log": ["in", "work-fresh"]}
    before = rows(saver.dump_thread("t"))
    renewals = beat.renewals
    beat.renew_now()  # A's heartbeat wakes: B took the thread over and released it
    assert beat.renewals == renewals
    probe = Owner("probe")
    saver.claim("t", probe, 60)  # still free: the heartbeat did not claim it back
    saver.release("t", probe)
    stall.go.set()
    a.join(WAIT)
    assert len(a_result) == 1 and isinstance(a_result[0], LeaseLostError), a_result
    assert rows(saver.dump_thread("t")) == before


def test_update_state_is_fenced_like_a_run(saver_factory: SaverFactory) -> None:
    """An update is a write: it holds the lease for its commit and so waits its turn."""
    saver = saver_factory()
    g = StateGraph(Log)
    g.add_node("work", lambda s: {"log": ["work"]})
    g.add_edge(START, "work")
    app = g.compile(checkpointer=saver)
    app.invoke({"log": ["in"]}, CFG)
    holder = Owner("holder")
    saver.claim("t", holder, 60)
    with pytest.raises(ThreadBusyError, match="run holder"):
        app.update_state(CFG, {"log": ["edit"]})
    saver.release("t", holder)
    app.update_state(CFG, {"log": ["edit"]})
    assert app.get_state(CFG).values == {"log": ["in", "work", "edit"]}
    saver.claim("t", Owner("next"), 60)  # the update released its lease


def test_lease_seconds_is_a_saver_setting(tmp_path: Any) -> None:
    assert InMemorySaver().lease_seconds == DEFAULT_LEASE_SECONDS
    assert InMemorySaver(lease_seconds=2).lease_seconds == 2.0
    with SqliteSaver(tmp_path / "x.db", lease_seconds=0.5) as saver:
        assert saver.lease_seconds == 0.5
    for bad in (0, -1, float("nan"), float("inf"), "5"):
        with pytest.raises(ConfigError, match="lease_seconds"):
            InMemorySaver(lease_seconds=bad)  # type: ignore[arg-type]


def test_every_backend_takes_the_lease_setting(saver_factory: SaverFactory) -> None:
    saver: Saver = saver_factory(lease_seconds=7)
    assert saver.lease_seconds == 7.0
    with pytest.raises(ConfigError):
        saver_factory(lease_seconds=-3)
