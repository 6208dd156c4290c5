"""The task runner: RetryPolicy, with_retries, node retries, and resuming a failed step
without re-running the nodes that finished."""

import asyncio
import contextvars
import operator
import threading
from typing import Annotated, Any, TypedDict

import pytest
from tests._parity import Api

from tether import (
    END,
    START,
    ConfigError,
    InvalidUpdateError,
    RetryPolicy,
    StateGraph,
    current_task,
    default_retry_on,
)
from tether.checkpoint import InMemorySaver
from tether.engine import _runner
from tether.engine._runner import with_retries

FAST = {"initial_interval": 0.0, "jitter": False}


class State(TypedDict):
    log: Annotated[list, operator.add]


def _cfg(thread: str = "t") -> dict:
    return {"configurable": {"thread_id": thread}}


class Flaky:
    """Raises ``exc`` for the first ``failures`` calls, then returns ``result``."""

    def __init__(self, failures: int, exc: BaseException, result: Any = None) -> None:
        self.failures = failures
        self.exc = exc
        self.result = result
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, *args: Any) -> Any:
        with self.lock:
            self.calls += 1
            n = self.calls
        if n <= self.failures:
            raise self.exc
        return self.result


# -- RetryPolicy ---------------------------------------------------------------------------


def test_retry_policy_defaults() -> None:
    p = RetryPolicy()
    assert p.initial_interval == 0.5
    assert p.backoff_factor == 2.0
    assert p.max_interval == 128.0
    assert p.max_attempts == 3
    assert p.jitter is True
    assert p.retry_on is default_retry_on


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("x"),
        ConnectionError("x"),
        ConnectionResetError("x"),
        TimeoutError("x"),
        OSError("x"),
    ],
)
def test_default_retry_on_retries_transient_errors(exc: Exception) -> None:
    assert default_retry_on(exc)
    assert RetryPolicy().should_retry(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("x"),
        TypeError("x"),
        KeyError("x"),
        AttributeError("x"),
        ZeroDivisionError("x"),
        InvalidUpdateError("x"),
        KeyboardInterrupt(),
    ],
)
def test_default_retry_on_does_not_retry_programming_errors(exc: BaseException) -> None:
    assert not default_retry_on(exc)
    assert not RetryPolicy().should_retry(exc)


def test_retry_on_a_class() -> None:
    p = RetryPolicy(retry_on=ValueError)
    assert p.should_retry(ValueError())
    assert p.should_retry(UnicodeError())  # a subclass
    assert not p.should_retry(RuntimeError())


@pytest.mark.parametrize("rule", [(KeyError, ValueError), [KeyError, ValueError]])
def test_retry_on_a_tuple_or_list(rule: Any) -> None:
    p = RetryPolicy(retry_on=rule)
    assert p.should_retry(KeyError())
    assert p.should_retry(ValueError())
    assert not p.should_retry(RuntimeError())


def test_retry_on_a_predicate() -> None:
    p = RetryPolicy(retry_on=lambda e: "again" in str(e))
    assert p.should_retry(ValueError("try again"))
    assert not p.should_retry(RuntimeError("fatal"))


def test_wait_before_without_jitter() -> None:
    p = RetryPolicy(jitter=False)
    assert [p.wait_before(n, 0.99) for n in (2, 3, 4)] == [0.5, 1.0, 2.0]
    capped = RetryPolicy(initial_interval=10, backoff_factor=3, max_interval=50, jitter=False)
    assert [capped.wait_before(n, 0.0) for n in (2, 3, 4)] == [10, 30, 50]


def test_wait_before_with_jitter_stays_within_bounds() -> None:
    p = RetryPolicy(initial_interval=1.0)
    assert p.wait_before(2, 0.0) == 1.0
    for rand in (0.1, 0.5, 0.999):
        assert 1.0 <= p.wait_before(2, rand) < 1.5
    assert p.wait_before(3, 0.5) == pytest.approx(2.0 * 1.25)


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"initial_interval": -1}, {"max_interval": -1}, {"backoff_factor": 0.5}],
)
def test_invalid_policies(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(**kwargs)


# -- with_retries --------------------------------------------------------------------------


def test_with_retries_no_policy_calls_once() -> None:
    attempts: list[int] = []

    def fn(n: int) -> Any:
        attempts.append(n)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        with_retries((), fn)
    assert attempts == [1]


def test_with_retries_counts_the_first_call() -> None:
    attempts: list[int] = []
    retried: list[tuple[int, str]] = []

    def fn(n: int) -> Any:
        attempts.append(n)
        raise RuntimeError(f"fail {n}")

    with pytest.raises(RuntimeError, match="fail 3"):
        with_retries(
            [RetryPolicy(max_attempts=3, **FAST)], fn, lambda a, e: retried.append((a, str(e)))
        )
    assert attempts == [1, 2, 3]
    assert retried == [(2, "fail 1"), (3, "fail 2")]


def test_with_retries_succeeds_after_failures() -> None:
    attempts: list[int] = []

    def fn(n: int) -> str:
        attempts.append(n)
        if n < 3:
            raise ConnectionError("flaky")
        return "ok"

    assert with_retries([RetryPolicy(**FAST)], fn) == "ok"
    assert attempts == [1, 2, 3]


def test_with_retries_max_attempts_one_means_no_retry() -> None:
    flaky = Flaky(1, RuntimeError("x"), "ok")
    with pytest.raises(RuntimeError):
        with_retries([RetryPolicy(max_attempts=1, **FAST)], lambda n: flaky())
    assert flaky.calls == 1


def test_with_retries_does_not_retry_excluded_errors() -> None:
    flaky = Flaky(1, ValueError("bad input"), "ok")
    with pytest.raises(ValueError):
        with_retries([RetryPolicy(**FAST)], lambda n: flaky())
    assert flaky.calls == 1


def test_with_retries_does_not_retry_base_exceptions() -> None:
    flaky = Flaky(1, KeyboardInterrupt(), "ok")
    with pytest.raises(KeyboardInterrupt):
        with_retries([RetryPolicy(retry_on=lambda e: True, **FAST)], lambda n: flaky())
    assert flaky.calls == 1


def test_with_retries_waits_follow_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(_runner.time, "sleep", waits.append)
    flaky = Flaky(3, RuntimeError("x"), "ok")
    policy = RetryPolicy(initial_interval=0.5, backoff_factor=2.0, max_attempts=4, jitter=False)
    assert with_retries([policy], lambda n: flaky()) == "ok"
    assert waits == [0.5, 1.0, 2.0]


def test_with_retries_takes_the_first_policy_that_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(_runner.time, "sleep", waits.append)
    policies = [
        RetryPolicy(retry_on=KeyError, max_attempts=2, initial_interval=1.0, jitter=False),
        RetryPolicy(retry_on=Exception, max_attempts=4, initial_interval=3.0, jitter=False),
    ]
    flaky = Flaky(3, RuntimeError("x"), "ok")  # matches only the second policy
    assert with_retries(policies, lambda n: flaky()) == "ok"
    assert flaky.calls == 4 and waits[0] == 3.0
    waits.clear()
    keys = Flaky(5, KeyError("k"), "ok")  # the first matches: it allows two attempts
    with pytest.raises(KeyError):
        with_retries(policies, lambda n: keys())
    assert keys.calls == 2 and waits == [1.0]
    nothing = Flaky(5, KeyboardInterrupt(), "ok")
    with pytest.raises(KeyboardInterrupt):
        with_retries(policies, lambda n: nothing())
    assert nothing.calls == 1


# -- node retries --------------------------------------------------------------------------


def _single(fn: Any, policy: RetryPolicy | None, checkpointer: Any = None):
    g = StateGraph(State)
    g.add_node("work", fn, retry_policy=policy)
    g.add_edge(START, "work")
    g.add_edge("work", END)
    return g.compile(checkpointer=checkpointer)


def test_node_runtime_error_twice_then_success_takes_three_attempts() -> None:
    attempts: list[int] = []
    flaky = Flaky(2, RuntimeError("transient"), {"log": ["done"]})

    def work(state: State) -> Any:
        attempts.append(current_task().attempt)
        return flaky()

    out = _single(work, RetryPolicy(**FAST)).invoke({})
    assert out == {"log": ["done"]}
    assert flaky.calls == 3
    assert attempts == [1, 2, 3]


def test_node_idempotency_key_is_stable_across_retries() -> None:
    keys: list[str] = []
    flaky = Flaky(2, RuntimeError("transient"), {"log": ["done"]})

    def work(state: State) -> Any:
        keys.append(current_task().idempotency_key)
        return flaky()

    _single(work, RetryPolicy(**FAST), InMemorySaver()).invoke({}, _cfg())
    assert len(keys) == 3 and len(set(keys)) == 1


def test_node_without_policy_is_not_retried() -> None:
    flaky = Flaky(1, RuntimeError("x"), {"log": ["done"]})
    with pytest.raises(RuntimeError):
        _single(lambda s: flaky(), None).invoke({})
    assert flaky.calls == 1


def test_node_retries_connection_error_by_default() -> None:
    flaky = Flaky(2, ConnectionError("reset"), {"log": ["done"]})
    assert _single(lambda s: flaky(), RetryPolicy(**FAST)).invoke({}) == {"log": ["done"]}
    assert flaky.calls == 3


def test_node_value_error_is_not_retried_by_default() -> None:
    flaky = Flaky(1, ValueError("bad"), {"log": ["done"]})
    with pytest.raises(ValueError, match="bad"):
        _single(lambda s: flaky(), RetryPolicy(**FAST)).invoke({})
    assert flaky.calls == 1


def test_node_retry_on_custom_class() -> None:
    class Retryable(Exception):
        pass

    flaky = Flaky(2, Retryable(), {"log": ["done"]})
    policy = RetryPolicy(retry_on=Retryable, **FAST)
    assert _single(lambda s: flaky(), policy).invoke({}) == {"log": ["done"]}
    assert flaky.calls == 3
    flaky = Flaky(1, RuntimeError(), {"log": ["done"]})
    with pytest.raises(RuntimeError):
        _single(lambda s: flaky(), policy).invoke({})
    assert flaky.calls == 1


def test_node_invalid_output_is_not_retried() -> None:
    calls: list[int] = []

    def work(state: State) -> dict:
        calls.append(1)
        return {"nope": 1}

    with pytest.raises(InvalidUpdateError, match="nope"):
        _single(work, RetryPolicy(**FAST)).invoke({})
    assert calls == [1]


def test_async_node_is_retried() -> None:
    flaky = Flaky(2, RuntimeError("x"), {"log": ["async"]})

    async def work(state: State) -> Any:
        return flaky()

    assert _single(work, RetryPolicy(**FAST)).invoke({}) == {"log": ["async"]}
    assert flaky.calls == 3


def test_exhausted_retries_raise_the_last_error() -> None:
    errors = iter([RuntimeError("first"), RuntimeError("second"), RuntimeError("third")])

    def work(state: State) -> Any:
        raise next(errors)

    with pytest.raises(RuntimeError, match="third"):
        _single(work, RetryPolicy(**FAST)).invoke({})


# -- resuming a failed step ----------------------------------------------------------------


class Counter:
    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()

    def node(self, name: str, fail: Any = None):
        def fn(state: State) -> dict:
            with self.lock:
                self.calls[name] = self.calls.get(name, 0) + 1
            if fail is not None and fail():
                raise RuntimeError(f"{name} failed")
            return {"log": [name]}

        return fn


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
def test_failed_node_resumes_without_rerunning_earlier_nodes(durability: str) -> None:
    counter = Counter()
    broken = {"on": True}
    g = StateGraph(State)
    g.add_node("first", counter.node("first"))
    g.add_node(
        "second",
        counter.node("second", lambda: broken["on"]),
        retry_policy=RetryPolicy(max_attempts=2, **FAST),
    )
    g.add_node("third", counter.node("third"))
    g.add_edge(START, "first")
    g.add_edge("first", "second")
    g.add_edge("second", "third")
    app = g.compile(checkpointer=InMemorySaver())

    with pytest.raises(RuntimeError, match="second failed"):
        app.invoke({}, _cfg(), durability=durability)
    assert counter.calls == {"first": 1, "second": 2}
    snap = app.get_state(_cfg())
    assert snap.next == ("second",)
    assert snap.values == {"log": ["first"]}

    broken["on"] = False
    out = app.invoke(None, _cfg(), durability=durability)
    assert out == {"log": ["first", "second", "third"]}
    assert counter.calls == {"first": 1, "second": 3, "third": 1}
    assert app.get_state(_cfg()).next == ()


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
def test_failed_parallel_sibling_resumes_without_rerunning_finished_siblings(
    durability: str,
) -> None:
    counter = Counter()
    broken = {"on": True}
    siblings_done = threading.Barrier(3, timeout=10)

    def gated(name: str, fail: Any = None):
        inner = counter.node(name, fail)

        def fn(state: State) -> dict:
            if broken["on"]:
                siblings_done.wait()  # all three really run in the same step
            return inner(state)

        return fn

    g = StateGraph(State)
    g.add_node("a", gated("a"))
    g.add_node("b", gated("b", lambda: broken["on"]), retry_policy=RetryPolicy(max_attempts=1))
    g.add_node("c", gated("c"))
    g.add_node("join", counter.node("join"))
    for n in ("a", "b", "c"):
        g.add_edge(START, n)
    g.add_edge(["a", "b", "c"], "join")
    app = g.compile(checkpointer=InMemorySaver())

    with pytest.raises(RuntimeError, match="b failed"):
        app.invoke({}, _cfg(), durability=durability)
    assert counter.calls == {"a": 1, "b": 1, "c": 1}
    assert app.get_state(_cfg()).next == ("b",)  # finished siblings are not "next"

    broken["on"] = False
    out = app.invoke(None, _cfg(), durability=durability)
    assert counter.calls == {"a": 1, "b": 2, "c": 1, "join": 1}
    # writes of the finished siblings and the retried one fold in node-name order
    assert out == {"log": ["a", "b", "c", "join"]}


def test_failed_step_can_fail_again_and_still_keep_finished_work() -> None:
    counter = Counter()
    failures = {"left": 2}

    def still_broken() -> bool:
        failures["left"] -= 1
        return failures["left"] >= 0

    g = StateGraph(State)
    g.add_node("ok", counter.node("ok"))
    g.add_node("bad", counter.node("bad", still_broken))
    g.add_edge(START, "ok")
    g.add_edge(START, "bad")
    app = g.compile(checkpointer=InMemorySaver())
    with pytest.raises(RuntimeError):
        app.invoke({}, _cfg())
    with pytest.raises(RuntimeError):
        app.invoke(None, _cfg())
    out = app.invoke(None, _cfg())
    assert counter.calls == {"ok": 1, "bad": 3}
    assert out == {"log": ["bad", "ok"]}


def test_new_input_after_a_failure_starts_over() -> None:
    counter = Counter()
    broken = {"on": True}
    g = StateGraph(State)
    g.add_node("first", counter.node("first"))
    g.add_node("second", counter.node("second", lambda: broken["on"]))
    g.add_edge(START, "first")
    g.add_edge("first", "second")
    app = g.compile(checkpointer=InMemorySaver())
    with pytest.raises(RuntimeError):
        app.invoke({}, _cfg())
    broken["on"] = False
    out = app.invoke({"log": ["new"]}, _cfg())
    assert counter.calls == {"first": 2, "second": 2}
    assert out == {"log": ["first", "new", "first", "second"]}


def test_failed_send_resumes_without_rerunning_finished_sends() -> None:
    from tether import Send

    calls: dict[int, int] = {}
    broken = {"on": True}
    lock = threading.Lock()

    def worker(arg: int) -> dict:
        with lock:
            calls[arg] = calls.get(arg, 0) + 1
        if arg == 1 and broken["on"]:
            raise RuntimeError("worker 1 failed")
        return {"log": [arg]}

    g = StateGraph(State)
    g.add_node("src", lambda s: None)
    g.add_node("worker", worker)
    g.add_edge(START, "src")
    g.add_conditional_edges("src", lambda s: [Send("worker", i) for i in range(4)])
    app = g.compile(checkpointer=InMemorySaver())
    with pytest.raises(RuntimeError, match="worker 1"):
        app.invoke({}, _cfg())
    broken["on"] = False
    assert app.invoke(None, _cfg()) == {"log": [0, 1, 2, 3]}
    assert calls == {0: 1, 1: 2, 2: 1, 3: 1}


# -- contextvars reach every thread a run uses -------------------------------------------------

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


def _seen_everywhere(api: Api) -> Any:
    """Two parallel branches, each calling a @task; each reports the caller's context var and
    the run's context, as seen from the node and from its task."""

    @api.task
    def probe(branch: str) -> list[str]:
        return [branch, REQUEST_ID.get(), api.get_runtime().context["user"]]

    def branch(name: str) -> Any:
        def node(state: dict) -> dict:
            here = [name, REQUEST_ID.get(), api.get_runtime().context["user"]]
            return {"log": [here, probe(name).result()]}

        return node

    g = api.StateGraph(State)
    g.add_node("a", branch("a"))
    g.add_node("b", branch("b"))
    g.add_edge(api.START, "a")
    g.add_edge(api.START, "b")
    return g.compile()


def test_contextvars_reach_parallel_branches_and_their_tasks(api: Api) -> None:
    app = _seen_everywhere(api)
    token = REQUEST_ID.set("req-1")
    try:
        out = app.invoke({"log": []}, context={"user": "bob"})
    finally:
        REQUEST_ID.reset(token)
    assert sorted(out["log"]) == [
        ["a", "req-1", "bob"],
        ["a", "req-1", "bob"],
        ["b", "req-1", "bob"],
        ["b", "req-1", "bob"],
    ]


def test_contextvars_reach_nodes_and_tasks_under_ainvoke(api: Api) -> None:
    app = _seen_everywhere(api)

    async def main() -> Any:
        REQUEST_ID.set("req-async")
        return await app.ainvoke({"log": []}, context={"user": "eve"})

    out = asyncio.run(main())
    assert {tuple(x) for x in out["log"]} == {("a", "req-async", "eve"), ("b", "req-async", "eve")}


def _async_probe(api: Api) -> Any:
    @api.task
    async def probe() -> str:
        return f"{REQUEST_ID.get()}/{api.get_runtime().context['user']}"

    async def node(state: dict) -> dict:
        return {"log": [REQUEST_ID.get(), await probe()]}

    g = api.StateGraph(State)
    g.add_node("n", node)
    g.add_edge(api.START, "n")
    return g.compile()


def test_contextvars_reach_async_nodes_and_tasks_under_ainvoke(api: Api) -> None:
    app = _async_probe(api)

    async def main() -> Any:
        REQUEST_ID.set("via-ainvoke")
        return await app.ainvoke({"log": []}, context={"user": "u1"})

    assert asyncio.run(main()) == {"log": ["via-ainvoke", "via-ainvoke/u1"]}


def test_contextvars_reach_async_nodes_run_by_sync_invoke_inside_an_event_loop() -> None:
    """tether runs async nodes under the sync API too (LangGraph refuses): inside a running
    event loop, on a helper thread, which must start from the caller's contextvars."""
    from tests._parity import tether_api

    app = _async_probe(tether_api())

    async def main() -> Any:
        REQUEST_ID.set("via-invoke")
        return app.invoke({"log": []}, context={"user": "u2"})

    assert asyncio.run(main()) == {"log": ["via-invoke", "via-invoke/u2"]}


# -- a list of retry policies, as LangGraph takes them ---------------------------------------


def _policies(api: Api) -> list[Any]:
    return [
        api.RetryPolicy(retry_on=KeyError, max_attempts=2, initial_interval=0.0, jitter=False),
        api.RetryPolicy(retry_on=RuntimeError, max_attempts=4, initial_interval=0.0, jitter=False),
    ]


def test_a_node_with_a_list_of_policies_retries_by_the_first_that_matches(api: Api) -> None:
    flaky = Flaky(3, RuntimeError("transient"), {"log": ["done"]})
    keys = Flaky(3, KeyError("gone"), {"log": ["never"]})
    for fn, expected in ((flaky, 4), (keys, 2)):
        g = api.StateGraph(State)
        g.add_node("work", lambda s, fn=fn: fn(), retry_policy=_policies(api))
        g.add_edge(api.START, "work")
        app = g.compile()
        if fn is flaky:
            assert app.invoke({"log": []}) == {"log": ["done"]}
        else:
            with pytest.raises(KeyError):
                app.invoke({"log": []})
        assert fn.calls == expected


def test_tasks_and_entrypoints_take_a_list_of_policies(api: Api) -> None:
    flaky = Flaky(3, RuntimeError("transient"), 7)
    entry = Flaky(1, RuntimeError("transient"), None)

    @api.task(retry_policy=_policies(api))
    def fetch() -> int:
        return int(flaky())

    @api.entrypoint(checkpointer=api.InMemorySaver(), retry_policy=_policies(api))
    def main(x: int) -> int:
        entry()
        return fetch().result() + x

    assert main.invoke(1, {"configurable": {"thread_id": "t"}}) == 8
    assert flaky.calls == 4 and entry.calls == 2
