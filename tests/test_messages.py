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


# -- ids are given once, when the write is made, and stored (issue 15, item 1) -------------


def _chat_graph(saver: Any) -> Any:
    from tether import MessagesState

    def reply(state: MessagesState) -> dict[str, Any]:
        return {"messages": [{"role": "ai", "content": f"echo {len(state['messages'])}"}]}

    g = StateGraph(MessagesState)
    g.add_node("reply", reply)
    g.add_edge(START, "reply")
    g.add_edge("reply", END)
    return g.compile(checkpointer=saver)


@pytest.fixture(params=["memory", "sqlite"])
def saver(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    from tether.checkpoint import InMemorySaver, SqliteSaver

    if request.param == "memory":
        return InMemorySaver()
    return SqliteSaver(str(tmp_path / "chat.db"))


def test_ids_are_stable_across_loads(saver: Any) -> None:
    app = _chat_graph(saver)
    cfg = {"configurable": {"thread_id": "t"}}
    for turn in range(6):  # enough turns that the list is stored as deltas
        app.invoke({"messages": [{"role": "user", "content": f"hi {turn}"}]}, cfg)
    first = [m["id"] for m in app.get_state(cfg).values["messages"]]
    second = [m["id"] for m in app.get_state(cfg).values["messages"]]
    assert len(first) == 12 and len(set(first)) == 12
    assert first == second
    # the thread's first checkpoint (the input checkpoint, as LangGraph's) is before any message
    history = [s.values.get("messages", []) for s in app.get_state_history(cfg)]
    assert len(history) == 6 * 3 and history[-1] == []
    for older in history:  # every checkpoint agrees with the head on the ids it shares
        assert [m["id"] for m in older] == first[: len(older)]


def test_an_edit_by_a_loaded_id_replaces_the_message(saver: Any) -> None:
    app = _chat_graph(saver)
    cfg = {"configurable": {"thread_id": "t"}}
    for turn in range(3):
        app.invoke({"messages": [{"role": "user", "content": f"hi {turn}"}]}, cfg)
    loaded = app.get_state(cfg).values["messages"]
    target = loaded[2]
    app.update_state(cfg, {"messages": [{**target, "content": "edited"}]})
    after = app.get_state(cfg).values["messages"]
    assert len(after) == len(loaded)
    assert after[2] == {**target, "content": "edited"}


def test_messages_passed_to_a_task_before_an_interrupt_resume_every_turn(saver: Any) -> None:
    """The chat-with-approval pattern: the node hands the history to a @task, then asks."""
    from tether import MessagesState, interrupt, task

    calls: list[int] = []

    @task
    def draft(history: list[Any]) -> str:
        calls.append(len(history))
        return f"draft after {len(history)} messages"

    def respond(state: MessagesState) -> dict[str, Any]:
        text = draft(state["messages"]).result()
        if not interrupt({"approve": text}):
            text = "rejected"
        return {"messages": [{"role": "ai", "content": text}]}

    g = StateGraph(MessagesState)
    g.add_node("respond", respond)
    g.add_edge(START, "respond")
    g.add_edge("respond", END)
    app = g.compile(checkpointer=saver)
    cfg = {"configurable": {"thread_id": "t"}}
    from tether import Command

    for turn in range(4):
        paused = app.invoke({"messages": [{"role": "user", "content": f"q{turn}"}]}, cfg)
        assert "__interrupt__" in paused
        done = app.invoke(Command(resume=True), cfg)
        assert done["messages"][-1]["content"] == f"draft after {2 * turn + 1} messages"
    assert calls == [1, 3, 5, 7]  # each draft ran once: the resume replayed the journal
