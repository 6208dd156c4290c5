"""add_messages: append, replace by id in place, give ids to messages without one."""

import operator
from typing import Annotated, Any, TypedDict

import pytest

from tether import END, START, StateGraph, add_messages


def test_appends_in_order() -> None:
    left = [{"id": "1", "content": "a"}]
    right = [{"id": "2", "content": "b"}, {"id": "3", "content": "c"}]
    assert add_messages(left, right) == left + right


def test_replaces_by_id_in_place() -> None:
    left = [{"id": "1", "content": "a"}, {"id": "2", "content": "b"}, {"id": "3", "content": "c"}]
    out = add_messages(left, [{"id": "2", "content": "B"}, {"id": "4", "content": "d"}])
    assert [m["id"] for m in out] == ["1", "2", "3", "4"]
    assert out[1] == {"id": "2", "content": "B"}
    assert [m["content"] for m in out] == ["a", "B", "c", "d"]


def test_does_not_mutate_inputs() -> None:
    left = [{"id": "1", "content": "a"}]
    right = [{"id": "1", "content": "A"}]
    add_messages(left, right)
    assert left == [{"id": "1", "content": "a"}]
    assert right == [{"id": "1", "content": "A"}]


def test_assigns_ids_to_messages_without_one() -> None:
    out = add_messages([{"content": "a"}], [{"content": "b"}, {"content": "c", "id": None}])
    ids = [m["id"] for m in out]
    assert all(isinstance(i, str) and i for i in ids)
    assert len(set(ids)) == 3
    assert [m["content"] for m in out] == ["a", "b", "c"]


def test_assigned_id_can_be_targeted_later() -> None:
    first = add_messages([], [{"content": "draft"}])
    mid = first[0]["id"]
    second = add_messages(first, [{"id": mid, "content": "final"}])
    assert second == [{"id": mid, "content": "final"}]


def test_single_message_and_none() -> None:
    assert add_messages([{"id": "1", "content": "a"}], {"id": "2", "content": "b"}) == [
        {"id": "1", "content": "a"},
        {"id": "2", "content": "b"},
    ]
    assert add_messages(None, [{"id": "1", "content": "a"}]) == [{"id": "1", "content": "a"}]
    assert add_messages([{"id": "1", "content": "a"}], []) == [{"id": "1", "content": "a"}]


def test_same_id_twice_in_right_keeps_last() -> None:
    out = add_messages([], [{"id": "x", "content": "1"}, {"id": "x", "content": "2"}])
    assert out == [{"id": "x", "content": "2"}]


def test_as_a_graph_reducer() -> None:
    class State(TypedDict):
        messages: Annotated[list, add_messages]
        turns: Annotated[int, operator.add]

    def bot(state: State) -> dict:
        last = state["messages"][-1]
        return {
            "messages": [
                {"id": last["id"], "content": last["content"].upper()},
                {"role": "ai", "content": "ok"},
            ],
            "turns": 1,
        }

    g = StateGraph(State)
    g.add_node("bot", bot)
    g.add_edge(START, "bot")
    g.add_edge("bot", END)
    out = g.compile().invoke({"messages": [{"id": "u1", "content": "hi"}]})
    assert [m["content"] for m in out["messages"]] == ["HI", "ok"]
    assert out["messages"][0]["id"] == "u1"
    assert out["messages"][1]["id"]
    assert out["turns"] == 1


def test_langchain_messages() -> None:
    messages = pytest.importorskip("langchain_core.messages")
    human = messages.HumanMessage(content="hi", id="1")
    ai = messages.AIMessage(content="hello")
    out = add_messages([human], [ai])
    assert out[0] is human
    assert out[1].content == "hello" and out[1].id
    replaced = add_messages(out, [messages.HumanMessage(content="HI", id="1")])
    assert [m.content for m in replaced] == ["HI", "hello"]


def test_messages_state_merges_by_id_through_a_graph() -> None:
    from tether import START, MessagesState, StateGraph

    def reply(state: MessagesState) -> dict[str, Any]:
        return {
            "messages": [
                {"role": "ai", "content": "draft", "id": "a1"},
                {"role": "ai", "content": "final", "id": "a1"},
            ]
        }

    g = StateGraph(MessagesState)
    g.add_node("reply", reply)
    g.add_edge(START, "reply")
    out = g.compile().invoke({"messages": [{"role": "user", "content": "hi", "id": "u1"}]})
    assert [m["content"] for m in out["messages"]] == ["hi", "final"]
