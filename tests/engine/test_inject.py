"""The injection rule (engine/_inject.py): parameters named config, writer, store, runtime
and previous are filled for nodes, routers, @task and @entrypoint functions; anything else a
node cannot be called with is refused when the graph is built. Tests taking ``api`` run on
LangGraph too."""

from __future__ import annotations

import functools
from typing import Any, TypedDict

import pytest
from tests._parity import Api

from tether import GraphError, StateGraph, entrypoint
from tether.engine._inject import INJECTABLE, injected_params, positional_names, unbound


class State(TypedDict, total=False):
    out: Any


def run_node(api: Api, fn: Any, **compile_kw: Any) -> Any:
    g = api.StateGraph(State)
    g.add_node("n", fn)
    g.add_edge(api.START, "n")
    return g.compile(**compile_kw).invoke({}, {"configurable": {"thread_id": "t", "k": 1}})


# -- what each name receives -------------------------------------------------------------------


def test_each_name_is_filled_in_a_node(api: Api) -> None:
    store = object()

    def n(state, config, writer, store, runtime, previous):  # type: ignore[no-untyped-def]
        writer("ignored: custom is not streamed")
        return {
            "out": [
                config["configurable"]["k"],
                store is runtime.store,
                runtime.store is not None,
                previous,
            ]
        }

    assert run_node(api, n, store=store) == {"out": [1, True, True, None]}


def test_keyword_only_and_defaulted_parameters_are_filled(api: Api) -> None:
    def n(state, *, config=None, store=None, runtime=None):  # type: ignore[no-untyped-def]
        return {"out": [config is not None, store, runtime is not None]}

    assert run_node(api, n) == {"out": [True, None, True]}


def test_other_defaulted_parameters_and_kwargs_keep_their_defaults(api: Api) -> None:
    def n(state, name="n", **kwargs):  # type: ignore[no-untyped-def]
        return {"out": [name, kwargs]}

    assert run_node(api, n) == {"out": ["n", {}]}


def test_a_callable_instance_is_filled_like_a_function(api: Api) -> None:
    class Node:
        def __call__(self, state, config):  # type: ignore[no-untyped-def]
            return {"out": config["configurable"]["k"]}

    assert run_node(api, Node()) == {"out": 1}


def test_a_partial_is_filled_for_its_remaining_parameters(api: Api) -> None:
    def n(state, config, suffix):  # type: ignore[no-untyped-def]
        return {"out": f"{config['configurable']['k']}{suffix}"}

    assert run_node(api, functools.partial(n, suffix="!")) == {"out": "1!"}


def test_routers_are_filled(api: Api) -> None:
    def route(state, config, writer, runtime):  # type: ignore[no-untyped-def]
        return "b" if config["configurable"]["k"] == 1 and runtime is not None else api.END

    g = api.StateGraph(State)
    g.add_node("a", lambda s: {"out": "a"})
    g.add_node("b", lambda s: {"out": "b"})
    g.add_edge(api.START, "a")
    g.add_conditional_edges("a", route, ["b", api.END])
    assert g.compile().invoke({}, {"configurable": {"k": 1}}) == {"out": "b"}


def test_task_parameters_the_caller_did_not_pass_are_filled(api: Api) -> None:
    @api.task
    def t(x, config=None, runtime=None):  # type: ignore[no-untyped-def]
        return [x, config if isinstance(config, str) else "filled", runtime is not None]

    def n(state):  # type: ignore[no-untyped-def]
        return {"out": [t(1).result(), t(2, config="mine").result()]}

    assert run_node(api, n) == {"out": [[1, "filled", True], [2, "mine", True]]}


def test_entrypoint_parameters_are_filled(api: Api) -> None:
    @api.entrypoint(checkpointer=api.InMemorySaver())
    def wf(x, *, previous=None, config=None, writer=None, store=None, runtime=None):  # type: ignore[no-untyped-def]
        writer(("got", x))
        return [x, previous, config["configurable"]["thread_id"], store, runtime.previous]

    c = {"configurable": {"thread_id": "e"}}
    assert wf.invoke(1, c) == [1, None, "e", None, None]
    assert list(wf.stream(2, c, stream_mode="custom")) == [("got", 2)]
    third = wf.invoke(3, c)
    assert third[0] == 3 and third[1][0] == 2 and third[4] == third[1]


# -- tether's rule: by name, whatever the annotation ----------------------------------------


def test_config_is_filled_whatever_its_annotation() -> None:
    """LangGraph skips (with a warning) a config parameter annotated with anything but
    RunnableConfig; tether users without langchain-core annotate it dict."""

    def n(state: State, config: dict[str, Any]) -> State:
        return {"out": config["configurable"]["k"]}

    g = StateGraph(State)
    g.add_node("n", n)
    g.add_edge("__start__", "n")
    assert g.compile().invoke({}, {"configurable": {"k": 5}}) == {"out": 5}


def test_a_second_parameter_with_another_name_is_refused_at_add_node() -> None:
    """Before, tether passed the config to any second positional parameter; now only the
    name decides, and an unfillable parameter is named when the graph is built."""

    def n(state: State, cfg: dict[str, Any]) -> State:
        return {}

    with pytest.raises(GraphError, match=r"node 'n': parameter 'cfg' of .*n\(\) has no default"):
        StateGraph(State).add_node("n", n)


def test_a_router_with_an_unfillable_parameter_is_refused() -> None:
    g = StateGraph(State)
    g.add_node("a", lambda s: {})
    with pytest.raises(GraphError, match=r"router of the conditional edge from 'a'.*'extra'"):
        g.add_conditional_edges("a", lambda s, extra: "a")


def test_positional_only_config_is_not_filled_and_refused() -> None:
    def n(state: State, config: Any, /) -> State:
        return {}

    with pytest.raises(GraphError, match="parameter 'config'"):
        StateGraph(State).add_node("n", n)


def test_a_node_without_an_input_parameter_is_refused() -> None:
    def n(*, config: Any) -> State:
        return {}

    with pytest.raises(GraphError, match=r"node 'n': .*no positional parameter"):
        StateGraph(State).add_node("n", n)


def test_an_entrypoint_without_an_input_parameter_is_refused() -> None:
    with pytest.raises(GraphError, match="@entrypoint 'wf'"):

        @entrypoint()
        def wf() -> int:
            return 1


def test_the_first_parameter_is_the_state_whatever_its_name() -> None:
    def n(config: State) -> State:
        return {"out": config}

    g = StateGraph(State)
    g.add_node("n", n)
    g.add_edge("__start__", "n")
    assert g.compile().invoke({"out": 1}) == {"out": {"out": 1}}


def test_lambda_default_arguments_are_not_filled() -> None:
    fns = [lambda s, name=name: {"out": name} for name in ("x",)]
    assert injected_params(fns[0], "node 'x'") == ()


# -- the helpers ---------------------------------------------------------------------------


def test_injected_params_lists_names_in_signature_order() -> None:
    def f(state, a=1, *, store, config=None, **kw):  # type: ignore[no-untyped-def]
        return None

    assert injected_params(f, "node 'f'") == ("store", "config")
    assert set(INJECTABLE) == {"config", "writer", "store", "runtime", "previous"}


def test_injected_params_of_a_task_includes_its_first_parameter() -> None:
    def t(config, x):  # type: ignore[no-untyped-def]
        return None

    assert injected_params(t) == ("config",)


def test_unbound_drops_names_the_call_binds() -> None:
    def t(x, config=None, *, runtime=None):  # type: ignore[no-untyped-def]
        return None

    names, positional = injected_params(t), positional_names(t)
    assert unbound(names, positional, (1,), {}) == ("config", "runtime")
    assert unbound(names, positional, (1, "c"), {}) == ("runtime",)
    assert unbound(names, positional, (1,), {"runtime": 2}) == ("config",)


def test_builtins_without_a_signature_take_nothing() -> None:
    assert injected_params(print) == ()
