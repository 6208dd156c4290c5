"""tether.runtime: the Runtime a node receives (context, store, stream writer, previous,
execution info) and get_runtime(). Tests taking ``api`` run on LangGraph too."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, TypedDict

import pydantic
import pytest
from tests._parity import Api

from tether import ConfigError, StateGraph, TaskCallError
from tether.runtime import ExecutionInfo, Runtime, get_runtime


@dataclass
class Ctx:
    user: str
    lang: str = "en"


class CtxModel(pydantic.BaseModel):
    user: str


class State(TypedDict, total=False):
    out: Any


def cfg(thread: str = "t") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def one_node(api: Api, fn: Any, context_schema: Any = None, **compile_kw: Any) -> Any:
    g = api.StateGraph(State, context_schema)
    g.add_node("n", fn)
    g.add_edge(api.START, "n")
    return g.compile(**compile_kw)


# -- context ---------------------------------------------------------------------------------


def test_context_dict_becomes_the_dataclass_schema(api: Api) -> None:
    def n(state: State, runtime: Runtime[Ctx]) -> State:
        return {"out": runtime.context}

    app = one_node(api, n, Ctx)
    assert app.invoke({}, context={"user": "bob"}) == {"out": Ctx("bob")}
    assert app.invoke({}, context=Ctx("ann", "fr")) == {"out": Ctx("ann", "fr")}


def test_context_dict_becomes_the_pydantic_schema(api: Api) -> None:
    def n(state: State, runtime: Runtime[CtxModel]) -> State:
        return {"out": runtime.context.user}

    assert one_node(api, n, CtxModel).invoke({}, context={"user": "bob"}) == {"out": "bob"}


def test_context_without_schema_passes_as_is(api: Api) -> None:
    def n(state: State, runtime: Runtime[Any]) -> State:
        return {"out": runtime.context}

    app = one_node(api, n)
    assert app.invoke({}, context={"user": "bob"}) == {"out": {"user": "bob"}}
    assert app.invoke({}) == {"out": None}


def test_context_reaches_router_task_and_get_runtime(api: Api) -> None:
    seen: list[Any] = []

    @api.task
    def t(x: int) -> Any:
        return api.get_runtime().context.user

    def n(state: State) -> State:
        seen.append(api.get_runtime().context.user)
        return {"out": t(1).result()}

    def route(state: State, runtime: Runtime[Ctx]) -> str:
        seen.append(runtime.context.user)
        return api.END

    g = api.StateGraph(State, context_schema=Ctx)
    g.add_node("n", n)
    g.add_edge(api.START, "n")
    g.add_conditional_edges("n", route)
    assert g.compile().invoke({}, context={"user": "bob"}) == {"out": "bob"}
    assert seen == ["bob", "bob"]


def test_context_reaches_entrypoint_and_its_tasks(api: Api) -> None:
    @api.task
    def t(x: int) -> str:
        return f"{x}:{api.get_runtime().context.user}"

    @api.entrypoint(context_schema=Ctx)
    def wf(x: int, *, runtime: Runtime[Ctx]) -> list[str]:
        return [runtime.context.user, t(x).result()]

    assert wf.invoke(7, context={"user": "bob"}) == ["bob", "7:bob"]


def test_context_is_not_stored_a_resume_passes_it_again(api: Api) -> None:
    def n(state: State, runtime: Runtime[Ctx]) -> State:
        answer = api.interrupt("ok?")
        return {"out": [answer, getattr(runtime.context, "user", None)]}

    app = one_node(api, n, Ctx, checkpointer=api.InMemorySaver())
    app.invoke({}, cfg("a"), context={"user": "bob"})
    assert app.invoke(api.Command(resume=1), cfg("a")) == {"out": [1, None]}
    app.invoke({}, cfg("b"), context={"user": "bob"})
    out = app.invoke(api.Command(resume=1), cfg("b"), context={"user": "eve"})
    assert out == {"out": [1, "eve"]}


def test_context_reaches_async_nodes_through_ainvoke_and_astream(api: Api) -> None:
    async def n(state: State, runtime: Runtime[Ctx]) -> State:
        await asyncio.sleep(0)
        return {"out": [runtime.context.user, api.get_runtime().context.user]}

    app = one_node(api, n, Ctx)

    async def main() -> list[Any]:
        a = await app.ainvoke({}, context={"user": "bob"})
        b = [c async for c in app.astream({}, context={"user": "eve"}, stream_mode="updates")]
        return [a, b]

    assert asyncio.run(main()) == [{"out": ["bob", "bob"]}, [{"n": {"out": ["eve", "eve"]}}]]


def test_context_that_does_not_fit_its_schema_is_a_config_error() -> None:
    def n(state: State, runtime: Runtime[Ctx]) -> State:
        return {}

    g = StateGraph(State, Ctx)
    g.add_node("n", n)
    g.add_edge("__start__", "n")
    app = g.compile()
    with pytest.raises(
        ConfigError, match=r"keys \['usr'\] .*context_schema Ctx.*unexpected keyword"
    ):
        app.invoke({}, context={"usr": "typo"})


def test_a_context_error_does_not_print_the_values() -> None:
    g = StateGraph(State, CtxModel)
    g.add_node("n", lambda s: {})
    g.add_edge("__start__", "n")
    with pytest.raises(ConfigError, match=r"context_schema CtxModel: user: Field required") as e:
        g.compile().invoke({}, context={"token": "s3cret"})
    assert "s3cret" not in str(e.value)


# -- store, stream writer, previous ----------------------------------------------------------


def test_runtime_store_is_the_compiled_store(api: Api) -> None:
    store = object()

    def n(state: State, runtime: Runtime[Any]) -> State:
        return {"out": [runtime.store is store, api.get_runtime().store is store]}

    assert one_node(api, n, store=store).invoke({}) == {"out": [True, True]}
    assert one_node(api, lambda s, runtime: {"out": runtime.store}).invoke({}) == {"out": None}


def test_runtime_stream_writer_streams_custom_chunks(api: Api) -> None:
    def n(state: State, runtime: Runtime[Any]) -> State:
        runtime.stream_writer({"progress": 1})
        return {"out": 1}

    app = one_node(api, n)
    assert list(app.stream({}, stream_mode="custom")) == [{"progress": 1}]
    assert app.invoke({}) == {"out": 1}  # a no-op writer when "custom" is not streamed


def test_runtime_previous_is_none_in_graph_nodes_and_the_saved_value_in_entrypoints(
    api: Api,
) -> None:
    def n(state: State, runtime: Runtime[Any]) -> State:
        return {"out": runtime.previous}

    assert one_node(api, n).invoke({}) == {"out": None}

    @api.entrypoint(checkpointer=api.InMemorySaver())
    def wf(x: int, *, runtime: Runtime[Any]) -> Any:
        return api.entrypoint.final(value=runtime.previous, save=x * 10)

    assert wf.invoke(1, cfg()) is None
    assert wf.invoke(2, cfg()) == 10
    assert wf.invoke(3, cfg()) == 20


# -- execution info ----------------------------------------------------------------------------


def test_execution_info_names_thread_task_checkpoint_and_attempt(api: Api) -> None:
    infos: list[Any] = []

    def n(state: State, runtime: Runtime[Any]) -> State:
        infos.append(runtime.execution_info)
        if len(infos) == 1:
            raise ValueError("first attempt fails")
        return {"out": 1}

    g = api.StateGraph(State)
    policy = api.RetryPolicy(initial_interval=0.0, jitter=False, retry_on=ValueError)
    g.add_node("n", n, retry_policy=policy)
    g.add_edge(api.START, "n")
    app = g.compile(checkpointer=api.InMemorySaver())
    app.invoke({}, {"configurable": {"thread_id": "t9"}})
    first, second = infos
    assert (first.node_attempt, second.node_attempt) == (1, 2)
    assert first.thread_id == second.thread_id == "t9"
    assert first.task_id == second.task_id != ""
    assert first.checkpoint_id == second.checkpoint_id != ""
    assert first.checkpoint_ns == f"n:{first.task_id}"
    assert first.node_first_attempt_time == second.node_first_attempt_time is not None


def test_execution_info_of_a_run_without_checkpointer_has_no_thread(api: Api) -> None:
    def n(state: State, runtime: Runtime[Any]) -> State:
        info = runtime.execution_info
        return {"out": [info.thread_id, info.run_id]}

    assert one_node(api, n).invoke({}) == {"out": [None, None]}


# -- the Runtime value -----------------------------------------------------------------------


def test_runtime_override_and_merge() -> None:
    base = Runtime(context=Ctx("a"), store="s1")
    assert base.override(store="s2") == Runtime(context=Ctx("a"), store="s2")
    merged = base.merge(Runtime(previous=3))
    assert (merged.context, merged.store, merged.previous) == (Ctx("a"), "s1", 3)
    info = ExecutionInfo(checkpoint_id="c", checkpoint_ns="n:t", task_id="t")
    patched = Runtime(execution_info=info).patch_execution_info(node_attempt=4)
    assert patched.execution_info is not None and patched.execution_info.node_attempt == 4
    with pytest.raises(TaskCallError, match="no execution_info"):
        base.patch_execution_info(node_attempt=2)
    with pytest.raises(TypeError):
        Runtime(Ctx("positional"))  # type: ignore[misc]  # keyword-only, as in LangGraph
    assert Runtime[Ctx](context=Ctx("typed")).context == Ctx("typed")


def test_get_runtime_outside_a_run_names_the_call() -> None:
    with pytest.raises(TaskCallError, match=r"get_runtime\(\) was called outside"):
        get_runtime()


def test_heartbeat_and_server_info_are_inert() -> None:
    def n(state: State, runtime: Runtime[Any]) -> State:
        runtime.heartbeat()
        return {"out": runtime.server_info}

    g = StateGraph(State)
    g.add_node("n", n)
    g.add_edge("__start__", "n")
    assert g.compile().invoke({}) == {"out": None}
