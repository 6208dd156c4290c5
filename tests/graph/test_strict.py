"""``compile(strict=False)``: the one opt-out for porting. Unknown keys and goto targets,
errors by default, are dropped with a DroppedUpdateWarning, as LangGraph drops them."""

import operator
import warnings
from typing import Annotated, Any, TypedDict

import pytest

from tether import END, START, Command, InvalidUpdateError, Send, StateGraph
from tether.errors import DroppedUpdateWarning


class State(TypedDict):
    log: Annotated[list, operator.add]


def _graph(node: Any, router: Any = None) -> StateGraph:
    g = StateGraph(State)
    g.add_node("a", node)
    g.add_edge(START, "a")
    if router is not None:
        g.add_conditional_edges("a", router)
    return g


CASES = {
    "output key": (lambda s: {"log": ["a"], "bogus": 1}, None, "'bogus'"),
    "goto": (lambda s: Command(goto="nowhere", update={"log": ["a"]}), None, "'nowhere'"),
    "send": (lambda s: Command(goto=Send("nowhere", 1), update={"log": ["a"]}), None, "nowhere"),
    "router": (lambda s: {"log": ["a"]}, lambda s: "nowhere", "'nowhere'"),
}


@pytest.mark.parametrize("case", CASES)
def test_strict_by_default(case: str) -> None:
    node, router, named = CASES[case]
    with pytest.raises(InvalidUpdateError, match=named):
        _graph(node, router).compile().invoke({"log": []})


@pytest.mark.parametrize("case", CASES)
def test_strict_false_warns_and_drops(case: str) -> None:
    node, router, named = CASES[case]
    app = _graph(node, router).compile(strict=False)
    with pytest.warns(DroppedUpdateWarning, match=named):
        out = app.invoke({"log": []})
    assert out == {"log": ["a"]}


def test_strict_false_drops_unknown_input_keys() -> None:
    app = _graph(lambda s: {"log": ["a"]}).compile(strict=False)
    with pytest.warns(DroppedUpdateWarning, match="'junk'"):
        assert app.invoke({"log": [], "junk": 1}) == {"log": ["a"]}
    with pytest.raises(InvalidUpdateError, match="'junk'"):
        _graph(lambda s: {"log": ["a"]}).compile().invoke({"log": [], "junk": 1})


def test_strict_false_keeps_real_errors() -> None:
    g = StateGraph(State)
    g.add_node("a", lambda s: {"log": ["a"]})
    g.add_edge(START, "a")
    g.add_conditional_edges("a", lambda s: "missing-key", {"x": END})
    with pytest.raises(InvalidUpdateError, match="path_map"):
        g.compile(strict=False).invoke({"log": []})


def test_strict_false_is_silent_when_nothing_is_dropped() -> None:
    app = _graph(lambda s: {"log": ["a"]}).compile(strict=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert app.invoke({"log": []}) == {"log": ["a"]}
