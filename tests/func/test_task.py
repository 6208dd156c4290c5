"""@task: futures, parallelism, the journal, nondeterminism, idempotency keys, retries."""

from __future__ import annotations

import asyncio
import operator
import threading
from collections import Counter
from typing import Annotated, Any, TypedDict

import pytest
from tests._parity import Api

import tether
from tether import (
    END,
    START,
    Command,
    NondeterminismError,
    RetryPolicy,
    StateGraph,
    TaskCallError,
    TaskFuture,
    interrupt,
    task,
)
from tether.checkpoint import InMemorySaver


class S(TypedDict, total=False):
    log: Annotated[list, operator.add]


def cfg(thread: str = "t1") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def one_node(fn: Any, saver: Any = None) -> Any:
    g = StateGraph(S)
    g.add_node("node", fn)
    g.add_edge(START, "node")
    g.add_edge("node", END)
    return g.compile(checkpointer=saver if saver is not None else InMemorySaver())


FAST = RetryPolicy(initial_interval=0.0, max_interval=0.0, jitter=False, max_attempts=3)


def test_task_from_node_returns_future_with_result() -> None:
    @task
    def double(x: int) -> int:
        return 2 * x

    seen: list[Any] = []

    def node(state: S) -> dict[str, Any]:
        fut = double(21)
        seen.append(fut)
        return {"log": [fut.result()]}

    assert one_node(node).invoke({"log": []}, cfg()) == {"log": [42]}
    assert isinstance(seen[0], TaskFuture)
    assert seen[0].done()


def test_task_works_without_checkpointer() -> None:
    @task
    def inc(x: int) -> int:
        return x + 1

    g = StateGraph(S)
    g.add_node("node", lambda s: {"log": [inc(1).result()]})
    g.add_edge(START, "node")
    g.add_edge("node", END)
    assert g.compile().invoke({"log": []}) == {"log": [2]}


def test_tasks_run_in_parallel() -> None:
    n = 4
    barrier = threading.Barrier(n, timeout=10)

    @task
    def meet(i: int) -> int:
        barrier.wait()  # only returns once all n calls are inside at the same time
        return i * i

    def node(state: S) -> dict[str, Any]:
        futures = [meet(i) for i in range(n)]
        return {"log": [f.result() for f in futures]}

    assert one_node(node).invoke({"log": []}, cfg()) == {"log": [0, 1, 4, 9]}
    assert not barrier.broken


def test_task_is_journaled_and_not_rerun_after_interrupt() -> None:
    calls: Counter[str] = Counter()

    @task
    def side_effect(x: int) -> str:
        calls["task"] += 1
        return f"result-{x}-call{calls['task']}"

    def node(state: S) -> dict[str, Any]:
        calls["node"] += 1
        r = side_effect(7).result()
        answer = interrupt("ok?")
        return {"log": [r, answer]}

    app = one_node(node)
    app.invoke({"log": []}, cfg())
    assert calls == Counter({"node": 1, "task": 1})
    out = app.invoke(Command(resume="yes"), cfg())
    assert out == {"log": ["result-7-call1", "yes"]}
    assert calls == Counter({"node": 2, "task": 1})


def test_several_journaled_tasks_replay_in_order() -> None:
    calls: Counter[str] = Counter()

    @task
    def t(x: int) -> int:
        calls[f"t{x}"] += 1
        return x * 10

    def node(state: S) -> dict[str, Any]:
        a, b = t(1), t(2)
        ra, rb = a.result(), b.result()
        first = interrupt("one", id="one")
        rc = t(3).result()
        second = interrupt("two", id="two")
        return {"log": [ra, rb, rc, first, second]}

    app = one_node(node)
    app.invoke({"log": []}, cfg())
    app.invoke(Command(resume="A"), cfg())
    out = app.invoke(Command(resume="B"), cfg())
    assert out == {"log": [10, 20, 30, "A", "B"]}
    assert calls == Counter({"t1": 1, "t2": 1, "t3": 1})


class ArmedSaver(InMemorySaver):
    """Sets ``loaded`` once a resume has read the task logs (after ``arm()``)."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.loaded = threading.Event()

    def get_writes(self, thread_id: str, task_ids: Any) -> Any:
        rows = super().get_writes(thread_id, task_ids)
        if self.armed:
            self.loaded.set()
        return rows


def test_task_in_flight_when_node_pauses_is_not_rerun_on_resume() -> None:
    saver = ArmedSaver()
    calls: Counter[str] = Counter()

    @task
    def side_effect(x: int) -> int:
        calls["task"] += 1
        # Fallback only: a correct engine waits for this task before returning the pause,
        # so nobody sets the event until the resume; the timeout lets that engine go on.
        saver.loaded.wait(timeout=1.0)
        return x * 10 + calls["task"]

    def node(state: S) -> dict[str, Any]:
        fut = side_effect(4)  # started, not awaited before the pause
        answer = interrupt("ok?")
        return {"log": [fut.result(), answer]}

    app = one_node(node, saver)
    app.invoke({"log": []}, cfg())
    saver.armed = True
    out = app.invoke(Command(resume="yes"), cfg())
    assert calls["task"] == 1
    assert out == {"log": [41, "yes"]}


# -- nondeterminism -------------------------------------------------------------------------

FLAG = {"variant": "a"}


@task
def task_a(x: int) -> str:
    return f"a{x}"


@task
def task_b(x: int) -> str:
    return f"b{x}"


def flaky_node(state: S) -> dict[str, Any]:
    variant = FLAG["variant"]
    if variant == "a":
        r = task_a(1).result()
    elif variant == "other-task":
        r = task_b(1).result()
    else:  # "other-args"
        r = task_a(2).result()
    return {"log": [r, interrupt("ok?")]}


@pytest.fixture
def flag() -> Any:
    FLAG["variant"] = "a"
    yield FLAG
    FLAG["variant"] = "a"


@pytest.mark.parametrize("variant", ["other-task", "other-args"])
def test_replay_with_different_task_call_raises_nondeterminism(flag: Any, variant: str) -> None:
    app = one_node(flaky_node)
    app.invoke({"log": []}, cfg())
    flag["variant"] = variant
    with pytest.raises(NondeterminismError) as ei:
        app.invoke(Command(resume="yes"), cfg())
    assert "task_a" in str(ei.value)
    assert "node" in str(ei.value)


def test_replay_with_same_task_call_returns_recorded(flag: Any) -> None:
    app = one_node(flaky_node)
    app.invoke({"log": []}, cfg())
    assert app.invoke(Command(resume="yes"), cfg()) == {"log": ["a1", "yes"]}


# -- idempotency keys ------------------------------------------------------------------------


def test_idempotency_key_stable_across_retries() -> None:
    keys: list[str] = []
    attempts: list[int] = []

    @task(retry_policy=FAST)
    def charge(amount: int) -> int:
        info = tether.current_task()
        keys.append(info.idempotency_key)
        attempts.append(info.attempt)
        if len(keys) < 3:
            raise RuntimeError("transient")
        return amount

    def node(state: S) -> dict[str, Any]:
        return {"log": [charge(5).result()]}

    assert one_node(node).invoke({"log": []}, cfg()) == {"log": [5]}
    assert attempts == [1, 2, 3]
    assert len(keys) == 3 and len(set(keys)) == 1 and keys[0]


def test_idempotency_key_stable_across_replay_after_interrupt() -> None:
    """A task that pauses itself runs again on resume (it never finished): same key."""
    keys: list[str] = []

    @task
    def guarded(x: int) -> Any:
        keys.append(tether.current_task().idempotency_key)
        return (x, interrupt("confirm charge?"))

    def node(state: S) -> dict[str, Any]:
        return {"log": [list(guarded(1).result())]}

    app = one_node(node)
    out = app.invoke({"log": []}, cfg())
    assert "__interrupt__" in out
    out = app.invoke(Command(resume="confirmed"), cfg())
    assert out == {"log": [[1, "confirmed"]]}
    assert len(keys) == 2 and keys[0] == keys[1]


def test_idempotency_key_stable_across_replay_after_failure() -> None:
    keys: list[str] = []
    fail = {"on": True}

    @task
    def call_api(x: int) -> int:
        keys.append(tether.current_task().idempotency_key)
        if fail["on"]:
            raise ValueError("api down")
        return x

    def node(state: S) -> dict[str, Any]:
        return {"log": [call_api(3).result()]}

    app = one_node(node)
    with pytest.raises(ValueError, match="api down"):
        app.invoke({"log": []}, cfg())
    fail["on"] = False
    assert app.invoke(None, cfg()) == {"log": [3]}
    assert len(keys) == 2 and keys[0] == keys[1]


def test_idempotency_key_differs_between_calls() -> None:
    keys: list[str] = []

    @task
    def call(x: int) -> str:
        key = tether.current_task().idempotency_key
        keys.append(key)
        return key

    def node(state: S) -> dict[str, Any]:
        # same arguments twice: still two different calls
        return {"log": [call(1).result(), call(1).result(), call(2).result()]}

    out = one_node(node).invoke({"log": []}, cfg())
    assert len(set(out["log"])) == 3


def test_idempotency_key_differs_between_threads() -> None:
    @task
    def call() -> str:
        return tether.current_task().idempotency_key

    app = one_node(lambda s: {"log": [call().result()]})
    a = app.invoke({"log": []}, cfg("a"))["log"][0]
    b = app.invoke({"log": []}, cfg("b"))["log"][0]
    assert a != b


def test_current_task_inside_task_names_the_task() -> None:
    @task
    def named() -> Any:
        info = tether.current_task()
        return [info.name, info.thread_id, info.attempt]

    out = one_node(lambda s: {"log": [named().result()]}).invoke({"log": []}, cfg("th"))
    assert out == {"log": [["named", "th", 1]]}


# -- errors, retries, async ----------------------------------------------------------------------


def test_task_called_outside_a_run_raises_task_call_error() -> None:
    @task
    def lonely() -> int:
        return 1

    with pytest.raises(TaskCallError):
        lonely()


def test_current_task_outside_a_run_raises_task_call_error() -> None:
    with pytest.raises(TaskCallError):
        tether.current_task()


def test_task_retry_policy_retries_runtime_error() -> None:
    calls: Counter[str] = Counter()

    @task(retry_policy=FAST)
    def flaky() -> str:
        calls["flaky"] += 1
        if calls["flaky"] < 3:
            raise RuntimeError("try again")
        return "ok"

    out = one_node(lambda s: {"log": [flaky().result()]}).invoke({"log": []}, cfg())
    assert out == {"log": ["ok"]}
    assert calls["flaky"] == 3


def test_task_retry_gives_up_after_max_attempts() -> None:
    calls: Counter[str] = Counter()

    @task(retry_policy=FAST)
    def broken() -> str:
        calls["broken"] += 1
        raise RuntimeError(f"fail {calls['broken']}")

    app = one_node(lambda s: {"log": [broken().result()]})
    with pytest.raises(RuntimeError, match="fail 3"):
        app.invoke({"log": []}, cfg())
    assert calls["broken"] == 3


def test_task_without_retry_policy_runs_once_on_error() -> None:
    calls: Counter[str] = Counter()

    @task
    def boom() -> str:
        calls["boom"] += 1
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        one_node(lambda s: {"log": [boom().result()]}).invoke({"log": []}, cfg())
    assert calls["boom"] == 1


def test_async_task_awaited_from_async_node() -> None:
    calls: Counter[str] = Counter()

    @task
    async def fetch(x: int) -> int:
        calls["fetch"] += 1
        await asyncio.sleep(0)
        return x + 100

    async def node(state: S) -> dict[str, Any]:
        a = fetch(1)
        b = fetch(2)
        return {"log": [await a, await b]}

    app = one_node(node)
    out = asyncio.run(app.ainvoke({"log": []}, cfg("async")))
    assert out == {"log": [101, 102]}
    assert calls["fetch"] == 2
    assert app.invoke({"log": []}, cfg("sync-call")) == {"log": [101, 102]}


def test_async_task_journaled_across_resume() -> None:
    calls: Counter[str] = Counter()

    @task
    async def fetch(x: int) -> int:
        calls["fetch"] += 1
        return x * 3

    async def node(state: S) -> dict[str, Any]:
        r = await fetch(2)
        return {"log": [r, interrupt("go?")]}

    app = one_node(node)

    async def main() -> Any:
        await app.ainvoke({"log": []}, cfg())
        return await app.ainvoke(Command(resume="go"), cfg())

    assert asyncio.run(main()) == {"log": [6, "go"]}
    assert calls["fetch"] == 1


# -- task results in stream_mode="updates" (same result on LangGraph) ------------------------


@pytest.mark.parametrize(
    "modes", [["updates"], ["updates", "custom"]], ids=["inline", "streaming-custom"]
)
def test_task_results_stream_as_updates_before_the_node_update(api: Api, modes: list[str]) -> None:
    @api.task
    def double(x: int) -> int:
        api.get_stream_writer()(f"doubling {x}")
        return x * 2

    def node(state: S) -> S:
        return {"log": [double(double(1).result()).result()]}

    g = api.StateGraph(S)
    g.add_node("node", node)
    g.add_edge(api.START, "node")
    chunks = list(g.compile().stream({"log": []}, stream_mode=modes))
    updates = [c[1] for c in chunks if c[0] == "updates"]
    assert updates == [{"double": 2}, {"double": 4}, {"node": {"log": [4]}}]
    custom = [c[1] for c in chunks if c[0] == "custom"]
    assert custom == (["doubling 1", "doubling 2"] if "custom" in modes else [])


def test_task_results_of_parallel_nodes_all_stream(api: Api) -> None:
    @api.task
    def label(name: str) -> str:
        return name.upper()

    g = api.StateGraph(S)
    for name in ("a", "b"):
        g.add_node(name, lambda s, name=name: {"log": [label(name).result()]})
        g.add_edge(api.START, name)
    chunks = list(g.compile().stream({"log": []}))
    assert sorted(map(str, chunks)) == sorted(
        map(str, [{"label": "A"}, {"label": "B"}, {"a": {"log": ["A"]}}, {"b": {"log": ["B"]}}])
    )
    for node, result in (("a", "A"), ("b", "B")):
        assert chunks.index({"label": result}) < chunks.index({node: {"log": [result]}})


def test_a_retried_task_streams_its_result_once(api: Api) -> None:
    calls = Counter[str]()
    policy = api.RetryPolicy(initial_interval=0.0, jitter=False, retry_on=ValueError)

    @api.task(retry_policy=policy)
    def flaky() -> str:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise ValueError("once")
        return "ok"

    g = api.StateGraph(S)
    g.add_node("node", lambda s: {"log": [flaky().result()]})
    g.add_edge(api.START, "node")
    assert list(g.compile().stream({"log": []})) == [{"flaky": "ok"}, {"node": {"log": ["ok"]}}]


# -- the journal under encryption, and results that cannot be journaled ---------------------


def test_tasks_replay_under_an_encrypting_serializer() -> None:
    # Bug 2: the argument hash was taken over ciphertext (random nonce), so every replay of
    # a @task raised NondeterminismError.
    from tether.serde import EncryptedSerializer, default_serializer

    serde = EncryptedSerializer(default_serializer(), {"k": bytes(range(32))}, "k")
    runs: Counter[str] = Counter()

    @task
    def charge(amount: int, memo: dict[str, Any]) -> int:
        runs["charge"] += 1
        return amount * 2

    def node(state: S) -> dict[str, Any]:
        paid = charge(21, {"for": "x"}).result()
        return {"log": [paid, interrupt("ok?")]}

    app = one_node(node, InMemorySaver(serde=serde))
    app.invoke({"log": []}, cfg())
    assert app.invoke(Command(resume="yes"), cfg()) == {"log": [42, "yes"]}
    assert runs["charge"] == 1


class _Unstorable:
    pass


@pytest.mark.parametrize("awaited", [False, True])
def test_a_task_result_that_cannot_be_journaled_fails_the_run_naming_the_task(
    awaited: bool,
) -> None:
    # Bug 3: an un-awaited task's journal error was swallowed, and the side effect ran again
    # on every resume.
    effects: Counter[str] = Counter()

    @task
    def side_effect() -> _Unstorable:
        effects["sent"] += 1
        return _Unstorable()

    def node(state: S) -> dict[str, Any]:
        future = side_effect()
        if awaited:
            try:
                future.result()
            except tether.SerializationError:
                pass  # the node swallows it: the run must fail all the same
        return {"log": [interrupt("continue?")]}

    app = one_node(node)
    with pytest.raises(tether.SerializationError, match=r"@task 'side_effect'.*cannot be journal"):
        app.invoke({"log": []}, cfg())
    assert effects["sent"] == 1
    assert app.get_state(cfg()).interrupts == ()  # the run did not pause as if all was well
