"""Nodes and tasks with a CachePolicy, under compile(cache=...): a finished result is reused
for the same input, within the ttl; errors and pauses are never cached."""

import operator
from typing import Annotated, Any, TypedDict

import pytest
from tests._parity import LIBS, load, thread


class State(TypedDict):
    log: Annotated[list, operator.add]
    n: int


def _graph(lib: Any, calls: list[int], **policy: Any) -> Any:
    def slow(state: State) -> dict[str, Any]:
        calls.append(state["n"])
        return {"log": [state["n"] * 10]}

    g = lib.StateGraph(State)
    g.add_node("slow", slow, cache_policy=lib.CachePolicy(**policy))
    g.add_edge(lib.START, "slow")
    return g


@pytest.mark.parametrize("name", LIBS)
def test_a_cached_node_runs_once_per_input(name: str) -> None:
    lib = load(name)
    calls: list[int] = []
    app = _graph(lib, calls).compile(cache=lib.InMemoryCache())
    assert app.invoke({"log": [], "n": 1})["log"] == [10]
    assert app.invoke({"log": [], "n": 1})["log"] == [10]
    assert app.invoke({"log": [], "n": 2})["log"] == [20]
    assert calls == [1, 2]


@pytest.mark.parametrize("name", LIBS)
def test_a_cache_hit_is_marked_in_the_updates_stream(name: str) -> None:
    lib = load(name)
    app = _graph(lib, []).compile(cache=lib.InMemoryCache())
    first = list(app.stream({"log": [], "n": 1}))
    again = list(app.stream({"log": [], "n": 1}))
    assert first == [{"slow": {"log": [10]}}]
    assert again == [{"slow": {"log": [10]}, "__metadata__": {"cached": True}}]


@pytest.mark.parametrize("name", LIBS)
def test_key_func_decides_what_counts_as_the_same_input(name: str) -> None:
    lib = load(name)
    calls: list[int] = []
    app = _graph(lib, calls, key_func=lambda state: str(state["n"] % 2)).compile(
        cache=lib.InMemoryCache()
    )
    app.invoke({"log": [], "n": 1})
    assert app.invoke({"log": [], "n": 3})["log"] == [10]  # same key: the cached result
    assert calls == [1]


def test_a_result_expires_after_the_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    import tether.cache.memory as memory

    now = [1000.0]
    monkeypatch.setattr(memory.time, "time", lambda: now[0])
    lib = load("tether")
    calls: list[int] = []
    app = _graph(lib, calls, ttl=60).compile(cache=lib.InMemoryCache())
    app.invoke({"log": [], "n": 1})
    now[0] += 59
    app.invoke({"log": [], "n": 1})
    now[0] += 2
    app.invoke({"log": [], "n": 1})
    assert calls == [1, 1]


def test_without_a_cache_the_policy_does_nothing() -> None:
    lib = load("tether")
    calls: list[int] = []
    app = _graph(lib, calls).compile()
    app.invoke({"log": [], "n": 1})
    app.invoke({"log": [], "n": 1})
    assert calls == [1, 1]


def test_errors_and_pauses_are_not_cached() -> None:
    from tether import interrupt

    lib = load("tether")
    calls: list[str] = []

    def flaky(state: State) -> dict[str, Any]:
        calls.append("run")
        if len(calls) == 1:
            raise RuntimeError("first call fails")
        if len(calls) == 2:
            interrupt("ask")
        return {"log": ["done"]}

    g = lib.StateGraph(State)
    g.add_node("flaky", flaky, cache_policy=lib.CachePolicy())
    g.add_edge(lib.START, "flaky")
    cache = lib.InMemoryCache()
    app = g.compile(checkpointer=lib.InMemorySaver(), cache=cache)
    with pytest.raises(RuntimeError):
        app.invoke({"log": [], "n": 0}, thread("a"))
    assert "__interrupt__" in app.invoke({"log": [], "n": 0}, thread("b"))
    assert app.invoke({"log": [], "n": 0}, thread("c"))["log"] == ["done"]
    assert calls == ["run", "run", "run"]


def test_a_cached_task_is_not_run_again_for_the_same_arguments() -> None:
    from tether import task

    lib = load("tether")
    calls: list[int] = []

    @task(cache_policy=lib.CachePolicy())
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    def node(state: State) -> dict[str, Any]:
        return {"log": [square(state["n"]).result(), square(state["n"]).result()]}

    g = lib.StateGraph(State)
    g.add_node("node", node)
    g.add_edge(lib.START, "node")
    app = g.compile(checkpointer=lib.InMemorySaver(), cache=lib.InMemoryCache())
    assert app.invoke({"log": [], "n": 3}, thread("a"))["log"] == [9, 9]
    assert app.invoke({"log": [], "n": 3}, thread("b"))["log"] == [9, 9]
    assert calls == [3]


def test_compile_refuses_a_cache_that_is_not_one() -> None:
    from tether import GraphError

    lib = load("tether")
    with pytest.raises(GraphError, match="InMemoryCache"):
        _graph(lib, []).compile(cache={})
