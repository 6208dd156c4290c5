"""The pure planner: normalize_output, apply_writes, plan_next, fold/fold_many, resolve_branch
and task ids. No graph is run here; specs come from StateGraph.spec()."""

import dataclasses
import operator
from typing import Annotated, Any, TypedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether import END, START, Command, InvalidUpdateError, Send, StateGraph
from tether.engine._planner import (
    MISSING,
    PlannedTask,
    TaskOutput,
    Trigger,
    apply_writes,
    assign_ids,
    fold,
    fold_many,
    normalize_output,
    plan_next,
    resolve_branch,
    task_id,
)
from tether.engine._spec import Branch, Channel

NODES = ("a", "b", "c", "d", "e")


def _keep_pairs(left: list, right: Any) -> list:
    """A generic (non-operator.add) reducer that records what it saw."""
    return [*left, ("w", right)]


class State(TypedDict):
    log: Annotated[list, operator.add]
    pairs: Annotated[list, _keep_pairs]
    total: Annotated[int, operator.add]
    last: str
    other: int


def _noop(state: Any) -> dict:
    return {}


def _spec(edges=(), joins=(), branches=()):
    g = StateGraph(State)
    for n in NODES:
        g.add_node(n, _noop)
    g.add_edge(START, "a")
    for n in NODES[1:]:
        g.add_edge("a", n)  # make everything reachable
    for a, b in edges:
        g.add_edge(a, b)
    for sources, target in joins:
        g.add_edge(list(sources), target)
    for source, router, path_map in branches:
        g.add_conditional_edges(source, router, path_map)
    return g.spec()


SPEC = _spec()


@dataclasses.dataclass
class DCState:
    log: Annotated[list, operator.add] = dataclasses.field(default_factory=list)
    last: str = ""


def _dc_spec():
    g = StateGraph(DCState)
    for n in NODES:
        g.add_node(n, _noop)
        g.add_edge(START, n)
    return g.spec()


DC_SPEC = _dc_spec()


def _pull(node: str) -> PlannedTask:
    return PlannedTask(f"id-{node}", node, 0, False)


def _send(node: str, index: int, arg: Any = None) -> PlannedTask:
    return PlannedTask(f"id-{node}-s{index}", node, index, True, arg)


def _out(*writes: tuple[str, Any], goto: tuple = ()) -> TaskOutput:
    return TaskOutput(list(writes), list(goto))


# -- normalize_output ----------------------------------------------------------------------


def test_normalize_dict() -> None:
    out = normalize_output(SPEC, "a", {"log": [1], "last": "x"})
    assert out.writes == [("log", [1]), ("last", "x")]
    assert out.goto == []


def test_normalize_none_is_no_writes() -> None:
    out = normalize_output(SPEC, "a", None)
    assert out.writes == [] and out.goto == []


def test_normalize_pairs() -> None:
    out = normalize_output(SPEC, "a", [("log", [1]), ("log", [2])])
    assert out.writes == [("log", [1]), ("log", [2])]


def test_normalize_command() -> None:
    out = normalize_output(SPEC, "a", Command(update={"last": "y"}, goto=["b", Send("c", 5), END]))
    assert out.writes == [("last", "y")]
    assert out.goto == ["b", Send("c", 5)]  # END is dropped


def test_normalize_command_single_goto() -> None:
    assert normalize_output(SPEC, "a", Command(goto="b")).goto == ["b"]
    assert normalize_output(SPEC, "a", Command(goto=Send("b", 1))).goto == [Send("b", 1)]


def test_normalize_unknown_key_names_node_and_key() -> None:
    with pytest.raises(InvalidUpdateError) as err:
        normalize_output(SPEC, "b", {"log": [], "bogus": 1})
    assert "'b'" in str(err.value) and "'bogus'" in str(err.value)


NON_MAPPINGS = [1, "text", [1, 2], object(), ("log", [1])]


@pytest.mark.parametrize("bad", NON_MAPPINGS)
def test_normalize_non_mapping_names_node_typeddict(bad: Any) -> None:
    with pytest.raises(InvalidUpdateError, match="'c'"):
        normalize_output(SPEC, "c", bad)


@pytest.mark.parametrize("bad", NON_MAPPINGS)
def test_normalize_non_mapping_names_node_dataclass(bad: Any) -> None:
    with pytest.raises(InvalidUpdateError, match="'c'"):
        normalize_output(DC_SPEC, "c", bad)


def test_normalize_schema_instance_dataclass() -> None:
    out = normalize_output(DC_SPEC, "c", DCState(log=[1], last="z"))
    assert dict(out.writes) == {"log": [1], "last": "z"}


def test_normalize_goto_unknown_node() -> None:
    with pytest.raises(InvalidUpdateError, match="'nowhere'"):
        normalize_output(SPEC, "a", Command(goto="nowhere"))
    with pytest.raises(InvalidUpdateError, match="'nowhere'"):
        normalize_output(SPEC, "a", Command(goto=Send("nowhere", 1)))


def test_normalize_resume_from_a_node_is_rejected() -> None:
    with pytest.raises(InvalidUpdateError, match="resume"):
        normalize_output(SPEC, "a", Command(resume=1))


def test_normalize_input_with_unknown_key_mentions_input() -> None:
    with pytest.raises(InvalidUpdateError, match="input"):
        normalize_output(SPEC, START, {"zzz": 1})


# -- fold / fold_many ----------------------------------------------------------------------

ADD = Channel("log", operator.add, list)
ADD_NO_DEFAULT = Channel("log", operator.add, None)
GENERIC = Channel("pairs", _keep_pairs, list)
LAST = Channel("last", None, None)

lists = st.lists(st.integers(), max_size=4)


def test_fold_last_value() -> None:
    assert fold(LAST, "old", "new") == "new"
    assert fold(LAST, MISSING, "new") == "new"


def test_fold_reducer_from_missing_uses_default() -> None:
    assert fold(ADD, MISSING, [1]) == [1]
    assert fold(GENERIC, MISSING, 7) == [("w", 7)]
    assert fold(ADD_NO_DEFAULT, MISSING, [1]) == [1]


@given(
    current=st.one_of(st.just(MISSING), lists),
    writes=st.lists(lists, min_size=1, max_size=6),
    channel=st.sampled_from([ADD, ADD_NO_DEFAULT]),
)
def test_fold_many_equals_sequential_fold_operator_add(
    current: Any, writes: list, channel: Channel
) -> None:
    expected = current
    for w in writes:
        expected = fold(channel, expected, w)
    snapshot = None if current is MISSING else list(current)
    assert fold_many(channel, current, writes) == expected
    if snapshot is not None:
        assert current == snapshot  # the current value is never mutated


@given(
    current=st.one_of(st.just(MISSING), st.lists(st.tuples(st.just("w"), st.integers()))),
    writes=st.lists(st.integers(), max_size=6),
)
def test_fold_many_equals_sequential_fold_generic(current: Any, writes: list) -> None:
    expected = current
    for w in writes:
        expected = fold(GENERIC, expected, w)
    assert fold_many(GENERIC, current, writes) == expected


@given(current=st.integers(), writes=st.lists(st.integers(), min_size=1, max_size=6))
def test_fold_many_operator_add_on_ints(current: int, writes: list) -> None:
    channel = Channel("total", operator.add, int)
    assert fold_many(channel, current, writes) == current + sum(writes)
    assert fold_many(channel, MISSING, writes) == sum(writes)


def test_fold_many_with_no_writes_keeps_a_present_value() -> None:
    assert fold_many(ADD, [1], []) == [1]
    assert fold_many(Channel("total", operator.add, int), 5, []) == 5
    assert fold_many(GENERIC, [("w", 1)], []) == [("w", 1)]


def test_fold_many_with_no_writes_on_missing_is_missing() -> None:
    # sequential fold of zero writes leaves the value absent; fold_many invents a list,
    # even for an int channel
    assert fold_many(Channel("total", operator.add, int), MISSING, []) is MISSING


@given(writes=st.lists(st.integers(), min_size=1, max_size=6))
def test_fold_many_last_value_takes_last(writes: list) -> None:
    assert fold_many(LAST, "x", writes) == writes[-1]


# -- apply_writes --------------------------------------------------------------------------

task_keys = st.lists(
    st.tuples(st.sampled_from(NODES), st.booleans(), st.integers(0, 5)),
    unique=True,
    max_size=10,
)


@given(keys=task_keys, data=st.data())
@settings(max_examples=200)
def test_fold_order_is_node_name_then_send_order(keys: list, data: st.DataObject) -> None:
    outputs = []
    for node, is_send, index in keys:
        task = _send(node, index) if is_send else PlannedTask(f"id-{node}", node, 0, False)
        if not is_send:
            index = 0
        tag = (node, is_send, index)
        outputs.append((task, _out(("log", [tag]), ("pairs", tag), ("total", 1))))
    # pull tasks have index 0; keep one pull per node
    uniq: dict[tuple, Any] = {}
    for t, o in outputs:
        uniq[(t.node, t.is_send, t.index)] = (t, o)
    outputs = list(uniq.values())
    expected = [
        (t.node, t.is_send, t.index)
        for t, _ in sorted(outputs, key=lambda o: (o[0].node, o[0].is_send, o[0].index))
    ]
    shuffled = data.draw(st.permutations(outputs))
    values: dict[str, Any] = {"log": ["seed"]}
    deltas = apply_writes(SPEC, values, shuffled)
    assert values["log"] == ["seed", *expected]
    assert values.get("pairs", []) == [("w", k) for k in expected]
    assert values.get("total", 0) == len(expected)
    if expected:
        assert deltas["log"] == [[k] for k in expected]


def test_send_order_within_one_node() -> None:
    outputs = [(_send("b", i), _out(("log", [i]))) for i in (2, 0, 1)]
    outputs.append((_pull("b"), _out(("log", ["pull"]))))
    outputs.append((_pull("a"), _out(("log", ["a"]))))
    values: dict[str, Any] = {}
    apply_writes(SPEC, values, outputs)
    assert values["log"] == ["a", "pull", 0, 1, 2]


@given(
    pair=st.lists(st.sampled_from(NODES), min_size=2, max_size=2, unique=True),
    v1=st.integers(),
    v2=st.integers(),
    flip=st.booleans(),
)
def test_two_writes_to_last_value_key_is_an_error(pair: list, v1: int, v2: int, flip: bool) -> None:
    n1, n2 = pair
    outputs = [
        (_pull(n1), _out(("last", f"{n1}:{v1}"), ("log", [n1]))),
        (_pull(n2), _out(("last", f"{n2}:{v2}"), ("log", [n2]))),
    ]
    if flip:
        outputs.reverse()
    values: dict[str, Any] = {"last": "before", "log": ["x"], "other": 3}
    before = {k: (list(v) if isinstance(v, list) else v) for k, v in values.items()}
    with pytest.raises(InvalidUpdateError) as err:
        apply_writes(SPEC, values, outputs)
    msg = str(err.value)
    assert "'last'" in msg
    assert repr(n1) in msg and repr(n2) in msg
    assert values == before


def test_two_sends_of_one_node_writing_last_value_key_is_an_error() -> None:
    outputs = [(_send("b", 0), _out(("last", "x"))), (_send("b", 1), _out(("last", "y")))]
    values: dict[str, Any] = {}
    with pytest.raises(InvalidUpdateError, match="'last'"):
        apply_writes(SPEC, values, outputs)
    assert values == {}


def test_one_task_writing_last_value_key_twice_is_an_error() -> None:
    # LangGraph raises here too (a LastValue channel accepts one write per step).
    values: dict[str, Any] = {}
    with pytest.raises(InvalidUpdateError, match="'last'"):
        apply_writes(SPEC, values, [(_pull("a"), _out(("last", "x"), ("last", "y")))])


def test_apply_writes_leaves_unwritten_keys_alone() -> None:
    values: dict[str, Any] = {"other": 1, "log": [0]}
    deltas = apply_writes(SPEC, values, [(_pull("a"), _out(("last", "z")))])
    assert values == {"other": 1, "log": [0], "last": "z"}
    assert deltas == {"last": ["z"]}


# -- plan_next -----------------------------------------------------------------------------


def test_plan_next_dedups_and_sorts_pull_triggers() -> None:
    spec = _spec(edges=[("b", "e"), ("c", "e"), ("c", "d")])
    finished = [(_pull("c"), _out()), (_pull("b"), _out(goto=("d", "e")))]
    triggers, joins = plan_next(spec, finished, {})
    assert triggers == [Trigger("d", False, 0), Trigger("e", False, 0)]
    assert joins == {}


def test_plan_next_end_is_not_a_trigger() -> None:
    spec = _spec(edges=[("e", END)])
    triggers, _ = plan_next(spec, [(_pull("e"), _out())], {})
    assert triggers == []


@given(
    sends=st.lists(
        st.tuples(st.sampled_from(NODES), st.lists(st.integers(), max_size=3)),
        min_size=1,
        max_size=5,
        unique_by=lambda x: x[0],
    ),
    data=st.data(),
)
def test_plan_next_keeps_send_order(sends: list, data: st.DataObject) -> None:
    finished = [
        (_pull(node), _out(goto=tuple(Send("e", (node, arg)) for arg in args)))
        for node, args in sends
    ]
    shuffled = data.draw(st.permutations(finished))
    triggers, _ = plan_next(SPEC, shuffled, {})
    send_triggers = [t for t in triggers if t.is_send]
    expected = [(node, arg) for node, args in sorted(sends) for arg in args]
    assert [t.arg for t in send_triggers] == expected
    assert [t.index for t in send_triggers] == list(range(len(expected)))
    assert all(t.node == "e" for t in send_triggers)


def test_plan_next_pulls_before_sends() -> None:
    finished = [(_pull("a"), _out(goto=(Send("c", 1), "d", Send("b", 2))))]
    spec = _spec()
    triggers, _ = plan_next(spec, finished, {})
    pulls = [t for t in triggers if not t.is_send]
    sends = [t for t in triggers if t.is_send]
    assert triggers == pulls + sends
    assert [t.node for t in sends] == ["c", "b"]
    assert [t.arg for t in sends] == [1, 2]


def test_plan_next_join_in_one_call() -> None:
    spec = _spec(joins=[(("b", "c"), "e")])
    triggers, joins = plan_next(spec, [(_pull("b"), _out()), (_pull("c"), _out())], {})
    assert Trigger("e", False, 0) in triggers
    assert joins == {}


def test_plan_next_join_across_calls() -> None:
    spec = _spec(joins=[(("b", "c"), "e")])
    t1, j1 = plan_next(spec, [(_pull("b"), _out())], {})
    assert all(t.node != "e" for t in t1)
    assert len(j1) == 1 and next(iter(j1.values())) == frozenset({"b"})
    # b again does not complete the join
    t2, j2 = plan_next(spec, [(_pull("b"), _out())], j1)
    assert all(t.node != "e" for t in t2)
    assert j2 == j1
    t3, j3 = plan_next(spec, [(_pull("c"), _out())], j2)
    assert Trigger("e", False, 0) in t3
    assert j3 == {}
    # inputs are not mutated
    assert next(iter(j1.values())) == frozenset({"b"})


def test_plan_next_join_fires_once_with_other_edge_to_target() -> None:
    spec = _spec(edges=[("b", "e")], joins=[(("b", "c"), "e")])
    triggers, _ = plan_next(spec, [(_pull("b"), _out()), (_pull("c"), _out())], {})
    assert [t for t in triggers if t.node == "e"] == [Trigger("e", False, 0)]


def _branch(path_map: Any = None) -> Branch:
    return Branch("a", lambda s: None, path_map, (), False)


def test_resolve_branch_name_list_end() -> None:
    assert resolve_branch(SPEC, _branch(), "b") == ["b"]
    assert resolve_branch(SPEC, _branch(), ["c", "b"]) == ["c", "b"]
    assert resolve_branch(SPEC, _branch(), END) == []
    assert resolve_branch(SPEC, _branch(), ["b", END]) == ["b"]


def test_resolve_branch_path_map() -> None:
    br = _branch({True: "b", False: END, "x": "c"})
    assert resolve_branch(SPEC, br, True) == ["b"]
    assert resolve_branch(SPEC, br, False) == []
    assert resolve_branch(SPEC, br, ["x", True]) == ["c", "b"]
    with pytest.raises(InvalidUpdateError, match="path_map"):
        resolve_branch(SPEC, br, "missing")


def test_resolve_branch_sends() -> None:
    sends = [Send("b", 1), Send("c", 2)]
    assert resolve_branch(SPEC, _branch(), sends) == sends
    # Sends bypass the path_map
    assert resolve_branch(SPEC, _branch({"k": "b"}), [Send("c", 0), "k"]) == [Send("c", 0), "b"]
    with pytest.raises(InvalidUpdateError, match="ghost"):
        resolve_branch(SPEC, _branch(), Send("ghost", 0))


def test_resolve_branch_unknown_names_the_source() -> None:
    with pytest.raises(InvalidUpdateError) as err:
        resolve_branch(SPEC, _branch(), "ghost")
    assert "'ghost'" in str(err.value) and "'a'" in str(err.value)


# -- task ids ------------------------------------------------------------------------------

# checkpoint ids are UUIDs and node names cannot contain "|", so "|" is left out here
ids = st.text(
    alphabet=st.characters(blacklist_characters="|", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=8,
)


@given(
    thread=ids, checkpoint=ids, node=st.sampled_from(NODES), send=st.booleans(), i=st.integers(0, 9)
)
def test_task_id_is_deterministic(
    thread: str, checkpoint: str, node: str, send: bool, i: int
) -> None:
    t = Trigger(node, send, i)
    assert task_id(thread, checkpoint, t) == task_id(thread, checkpoint, Trigger(node, send, i))
    # the argument of a Send does not change its id (its position does)
    assert task_id(thread, checkpoint, t) == task_id(
        thread, checkpoint, Trigger(node, send, i, "x")
    )


@given(
    a=st.tuples(ids, ids, st.sampled_from(NODES), st.booleans(), st.integers(0, 9)),
    b=st.tuples(ids, ids, st.sampled_from(NODES), st.booleans(), st.integers(0, 9)),
)
def test_task_id_differs_when_position_differs(a: tuple, b: tuple) -> None:
    ida = task_id(a[0], a[1], Trigger(a[2], a[3], a[4]))
    idb = task_id(b[0], b[1], Trigger(b[2], b[3], b[4]))
    assert (ida == idb) == (a == b)


def test_assign_ids_keeps_order_and_fields() -> None:
    triggers = [Trigger("b", False, 0), Trigger("c", True, 0, "x"), Trigger("c", True, 1, "y")]
    planned = assign_ids("t", "cp", triggers)
    assert [(p.node, p.is_send, p.index, p.arg) for p in planned] == [
        ("b", False, 0, None),
        ("c", True, 0, "x"),
        ("c", True, 1, "y"),
    ]
    assert len({p.id for p in planned}) == 3
    assert planned == assign_ids("t", "cp", triggers)
    assert planned[0].id != assign_ids("t", "cp2", triggers)[0].id


def test_a_failing_reducer_is_an_invalid_update_naming_key_and_node() -> None:
    class R(TypedDict, total=False):
        items: Annotated[list[Any], operator.add]
        other: int

    g = StateGraph(R)
    g.add_node("bad", lambda s: {"items": "not a list", "other": 1})
    g.add_edge(START, "bad")
    spec = g.spec()
    values: dict[str, Any] = {"items": [1]}
    task = PlannedTask("t", "bad", 0, False)
    out = normalize_output(spec, "bad", {"other": 2, "items": "not a list"})
    with pytest.raises(InvalidUpdateError, match=r"key 'items'.*\['bad'\]"):
        apply_writes(spec, values, [(task, out)])
    assert values == {"items": [1]}  # nothing applied
