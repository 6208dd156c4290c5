"""Node, @task and @entrypoint timeouts (TimeoutPolicy), run against tether and (when
installed) LangGraph. The nodes here either never finish (a limit must fire) or report
progress far more often than their idle limit, so the outcome does not hang on timing.

No ``from __future__ import annotations``: the state class is declared here, and its
annotations must be evaluated at run time by both engines."""

import asyncio
import datetime
import threading
from collections import Counter
from typing import Any, TypedDict

import pytest
from tests._parity import LIBS, load, thread

from tether import GraphError, RetryPolicy, StateGraph, task
from tether.checkpoint import InMemorySaver
from tether.errors import ConfigError, NodeTimeoutError, TetherError
from tether.types import TimeoutPolicy, default_retry_on


class S(TypedDict, total=False):
    x: int


async def _forever(state: Any) -> dict[str, Any]:
    await asyncio.Event().wait()
    return {"x": 1}


def _one(lib: Any, fn: Any, **options: Any) -> Any:
    g = lib.StateGraph(S)
    g.add_node("slow", fn, **options)
    g.add_edge(lib.START, "slow")
    return g.compile(checkpointer=lib.InMemorySaver())


@pytest.mark.parametrize("name", LIBS)
@pytest.mark.parametrize(
    ("timeout", "kind"),
    [
        (0.05, "run"),
        (datetime.timedelta(milliseconds=50), "run"),
        ("idle", "idle"),
    ],
)
def test_an_async_node_past_its_timeout_fails_with_node_timeout_error(
    name: str, timeout: Any, kind: str
) -> None:
    lib = load(name)
    if timeout == "idle":
        timeout = lib.TimeoutPolicy(idle_timeout=0.05)
    app = _one(lib, _forever, timeout=timeout)
    with pytest.raises(lib.NodeTimeoutError) as caught:
        asyncio.run(app.ainvoke({"x": 0}, thread()))
    error = caught.value
    assert (error.node, error.kind, error.timeout) == ("slow", kind, 0.05)
    assert error.elapsed >= 0.05
    snap = app.get_state(thread())
    assert snap.next == ("slow",)  # the step did not finish; invoke(None) retries it
    assert "NodeTimeoutError" in str(snap.tasks[0].error)


@pytest.mark.parametrize("name", LIBS)
@pytest.mark.parametrize("signal", ["heartbeat", "writer", "get_stream_writer"])
@pytest.mark.parametrize("refresh_on", ["auto", "heartbeat"])
def test_progress_refreshes_the_idle_timeout(name: str, signal: str, refresh_on: str) -> None:
    lib = load(name)

    async def busy(state: Any, runtime: lib.Runtime) -> dict[str, Any]:  # type: ignore[name-defined]
        for i in range(10):
            if signal == "heartbeat":
                runtime.heartbeat()
            elif signal == "writer":
                runtime.stream_writer({"i": i})
            else:
                lib.get_stream_writer()({"i": i})
            await asyncio.sleep(0.05)  # 0.5 s in all, ten times the gap between signals
        return {"x": 1}

    policy = lib.TimeoutPolicy(idle_timeout=0.25, refresh_on=refresh_on)
    app = _one(lib, busy, timeout=policy)
    if signal == "heartbeat" or refresh_on == "auto":
        assert asyncio.run(app.ainvoke({"x": 0}, thread())) == {"x": 1}
    else:  # with refresh_on="heartbeat" a written chunk is not progress
        with pytest.raises(lib.NodeTimeoutError, match="slow"):
            asyncio.run(app.ainvoke({"x": 0}, thread()))


@pytest.mark.parametrize("name", LIBS)
def test_progress_does_not_refresh_the_run_timeout(name: str) -> None:
    lib = load(name)

    async def busy(state: Any, runtime: lib.Runtime) -> dict[str, Any]:  # type: ignore[name-defined]
        while True:
            runtime.heartbeat()
            await asyncio.sleep(0.01)

    app = _one(lib, busy, timeout=lib.TimeoutPolicy(run_timeout=0.1, idle_timeout=5))
    with pytest.raises(lib.NodeTimeoutError) as caught:
        asyncio.run(app.ainvoke({"x": 0}, thread()))
    assert caught.value.kind == "run"
    assert (caught.value.run_timeout, caught.value.idle_timeout) == (0.1, 5)


@pytest.mark.parametrize("name", LIBS)
def test_a_retry_policy_retries_a_timed_out_attempt(name: str) -> None:
    lib = load(name)
    calls: list[int] = []

    async def slow_once(state: Any) -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 1:
            await asyncio.Event().wait()
        return {"x": 2}

    retry = lib.RetryPolicy(initial_interval=0.0, jitter=False)
    app = _one(lib, slow_once, timeout=0.05, retry_policy=retry)
    assert asyncio.run(app.ainvoke({"x": 0}, thread())) == {"x": 2}
    assert len(calls) == 2


@pytest.mark.parametrize("name", LIBS)
def test_tasks_and_entrypoints_take_a_timeout(name: str) -> None:
    lib = load(name)

    @lib.task(timeout=0.05)
    async def stuck() -> int:
        await asyncio.Event().wait()
        return 1

    @lib.entrypoint(checkpointer=lib.InMemorySaver())
    async def calls_stuck(x: int) -> int:
        return await stuck()

    @lib.entrypoint(checkpointer=lib.InMemorySaver(), timeout=0.05)
    async def is_stuck(x: int) -> int:
        await asyncio.Event().wait()
        return x

    for app, who in ((calls_stuck, "stuck"), (is_stuck, "is_stuck")):
        with pytest.raises(lib.NodeTimeoutError) as caught:
            asyncio.run(app.ainvoke(1, thread()))
        assert caught.value.node == who


@pytest.mark.parametrize("name", LIBS)
def test_sync_functions_cannot_take_a_timeout(name: str) -> None:
    lib = load(name)
    with pytest.raises((ValueError, GraphError), match="sync"):
        _one(lib, lambda s: {"x": 1}, timeout=1)
    with pytest.raises((ValueError, GraphError), match="sync"):

        @lib.task(timeout=1)
        def sync_task() -> int:
            return 1


def test_the_sync_api_runs_async_nodes_under_their_timeout_too() -> None:
    # LangGraph refuses a timed async node under invoke(); tether runs it on a private loop
    app = _one(load("tether"), _forever, timeout=0.05)
    with pytest.raises(NodeTimeoutError, match="'slow' ran past its run_timeout"):
        app.invoke({"x": 0}, thread())


def test_a_timed_out_attempt_starts_no_more_tasks_and_its_running_tasks_are_joined() -> None:
    release = threading.Event()
    runs: Counter[str] = Counter()

    @task
    def send() -> str:
        runs["send"] += 1
        release.wait(timeout=30)
        return "sent"

    async def node(state: Any) -> dict[str, Any]:
        future = send()  # not awaited: still running when the attempt times out
        if runs["node"] == 0:
            runs["node"] += 1
            await asyncio.Event().wait()
        runs["node"] += 1
        release.set()
        return {"x": len(await future)}

    g = StateGraph(S)
    g.add_node("n", node, timeout=0.05, retry_policy=RetryPolicy(initial_interval=0.0))
    g.add_edge("__start__", "n")
    app = g.compile(checkpointer=InMemorySaver())
    assert app.invoke({"x": 0}, thread()) == {"x": 4}
    assert runs == Counter({"send": 1, "node": 2})  # the retry joined the running call


def test_timeout_policy_coerce() -> None:
    assert TimeoutPolicy.coerce(None) is None
    assert TimeoutPolicy.coerce(TimeoutPolicy()) is None
    assert TimeoutPolicy.coerce(2) == TimeoutPolicy(run_timeout=2.0)
    assert TimeoutPolicy.coerce(datetime.timedelta(seconds=3)) == TimeoutPolicy(run_timeout=3.0)
    policy = TimeoutPolicy(idle_timeout=datetime.timedelta(seconds=1), refresh_on="heartbeat")
    assert TimeoutPolicy.coerce(policy) == TimeoutPolicy(idle_timeout=1.0, refresh_on="heartbeat")
    for bad, field in [(0, "run_timeout"), (-1, "run_timeout"), ("5", "run_timeout")]:
        with pytest.raises(ConfigError, match=field):
            TimeoutPolicy.coerce(bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="refresh_on"):
        TimeoutPolicy.coerce(TimeoutPolicy(run_timeout=1, refresh_on="often"))  # type: ignore[arg-type]
    with pytest.raises(GraphError, match=r"node 'n': TimeoutPolicy\.idle_timeout"):
        StateGraph(S).add_node("n", _forever, timeout=TimeoutPolicy(idle_timeout=0))


def test_node_timeout_error_is_a_tether_error_that_retry_policies_retry() -> None:
    error = NodeTimeoutError("n", 1.5, kind="idle", idle_timeout=1.0)
    assert isinstance(error, TetherError) and not isinstance(error, TimeoutError)
    assert default_retry_on(error)
    assert "node 'n' went 1.000s without progress" in str(error)
    with pytest.raises(ValueError, match="run_timeout"):
        NodeTimeoutError("n", 1.0, kind="run")
