"""tether.config: get_config(), get_store() and get_stream_writer() inside a running node,
router, @task or @entrypoint. Tests taking ``api`` run on LangGraph too."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest
from tests._parity import Api

from tether import TaskCallError
from tether.config import get_config, get_store, get_stream_writer


class State(TypedDict, total=False):
    out: Any


def one_node(api: Api, fn: Any, **compile_kw: Any) -> Any:
    g = api.StateGraph(State)
    g.add_node("n", fn)
    g.add_edge(api.START, "n")
    return g.compile(**compile_kw)


def test_get_config_is_the_run_config_with_node_metadata(api: Api) -> None:
    def n(state: State) -> State:
        c = api.get_config()
        meta = c["metadata"]
        return {
            "out": [
                c["configurable"]["thread_id"],
                c["configurable"]["user_id"],
                c["tags"],
                meta["m"],
                meta["thread_id"],
                meta["langgraph_node"],
                meta["langgraph_path"],
                meta["langgraph_checkpoint_ns"].startswith("n:"),
                "user_id" in meta,
            ]
        }

    config = {
        "configurable": {"thread_id": "t1", "user_id": "u7"},
        "metadata": {"m": 1},
        "tags": ["x"],
    }
    out = one_node(api, n, checkpointer=api.InMemorySaver()).invoke({}, config)
    assert out == {"out": ["t1", "u7", ["x"], 1, "t1", "n", ("__pregel_pull", "n"), True, False]}


def test_injected_config_equals_get_config(api: Api) -> None:
    def n(state: State, config) -> State:  # type: ignore[no-untyped-def]
        return {"out": config == api.get_config()}

    assert one_node(api, n).invoke({}, {"configurable": {"k": 1}}) == {"out": True}


def test_task_config_names_the_task(api: Api) -> None:
    @api.task
    def lookup(x: int) -> str:
        return str(api.get_config()["metadata"]["langgraph_node"])

    def n(state: State) -> State:
        return {"out": [api.get_config()["metadata"]["langgraph_node"], lookup(1).result()]}

    assert one_node(api, n).invoke({}) == {"out": ["n", "lookup"]}


def test_get_store_is_the_compiled_store_or_none(api: Api) -> None:
    store = object()

    @api.task
    def t() -> bool:
        return api.get_store() is store

    def n(state: State) -> State:
        return {"out": [api.get_store() is store, t().result()]}

    assert one_node(api, n, store=store).invoke({}) == {"out": [True, True]}
    assert one_node(api, lambda s: {"out": api.get_store()}).invoke({}) == {"out": None}


def test_entrypoint_store_reaches_get_store(api: Api) -> None:
    store = object()

    @api.entrypoint(store=store)
    def wf(x: int, *, store) -> list[bool]:  # type: ignore[no-untyped-def]
        return [store is api.get_store(), api.get_store() is not None]

    assert wf.invoke(1) == [True, True]


def test_get_stream_writer_emits_custom_chunks(api: Api) -> None:
    def n(state: State) -> State:
        api.get_stream_writer()("hello")
        return {"out": 1}

    app = one_node(api, n)
    assert list(app.stream({}, stream_mode=["custom", "updates"])) == [
        ("custom", "hello"),
        ("updates", {"n": {"out": 1}}),
    ]


@pytest.mark.parametrize("fn", [get_config, get_store, get_stream_writer])
def test_outside_a_run_is_a_task_call_error(fn: Any) -> None:
    with pytest.raises(TaskCallError, match="outside a running node"):
        fn()
