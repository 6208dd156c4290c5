"""langchain-core messages (optional dependency): add_messages and storage on real objects."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from tether import START, Command, StateGraph, add_messages, interrupt
from tether.checkpoint import SqliteSaver

messages = pytest.importorskip("langchain_core.messages")
AIMessage, HumanMessage, ToolMessage = (
    messages.AIMessage,
    messages.HumanMessage,
    messages.ToolMessage,
)


def test_add_messages_replaces_by_id_on_langchain_objects() -> None:
    first = AIMessage(content="draft", id="m1")
    merged = add_messages(
        [HumanMessage(content="hi", id="h1"), first], [AIMessage(content="final", id="m1")]
    )
    assert [m.content for m in merged] == ["hi", "final"]
    assert all(m.id for m in add_messages([], [HumanMessage(content="no id")]))


class Chat(TypedDict, total=False):
    messages: Annotated[list[Any], add_messages]


def test_messages_survive_a_pause_in_sqlite_and_come_back_as_objects(tmp_path: Path) -> None:
    def model(state: Chat) -> dict[str, Any]:
        call = {"name": "lookup", "args": {"q": "order 42"}, "id": "call-1"}
        return {"messages": [AIMessage(content="", tool_calls=[call], id="a1")]}

    def tool(state: Chat) -> dict[str, Any]:
        ok = interrupt("run lookup?")
        return {"messages": [ToolMessage(content=f"ok={ok}", tool_call_id="call-1", id="t1")]}

    g = StateGraph(Chat)
    g.add_node("model", model)
    g.add_node("tool", tool)
    g.add_edge(START, "model")
    g.add_edge("model", "tool")
    cfg = {"configurable": {"thread_id": "lc"}}
    with SqliteSaver(tmp_path / "lc.db") as saver:
        g.compile(checkpointer=saver).invoke(
            {"messages": [HumanMessage(content="hi", id="h")]}, cfg
        )
    with SqliteSaver(tmp_path / "lc.db") as saver:
        out = g.compile(checkpointer=saver).invoke(Command(resume=True), cfg)
    msgs = out["messages"]
    assert [type(m).__name__ for m in msgs] == ["HumanMessage", "AIMessage", "ToolMessage"]
    assert msgs[1].tool_calls[0]["args"] == {"q": "order 42"}
    assert msgs[2].content == "ok=True"


def test_langchain_message_ids_are_stored_once(tmp_path: Path) -> None:
    class Msgs(TypedDict):
        messages: Annotated[list[Any], add_messages]

    def reply(state: Msgs) -> dict[str, Any]:
        return {"messages": [AIMessage(content=f"n={len(state['messages'])}")]}

    g = StateGraph(Msgs)
    g.add_node("reply", reply)
    g.add_edge(START, "reply")
    app = g.compile(checkpointer=SqliteSaver(str(tmp_path / "lc.db")))
    cfg = {"configurable": {"thread_id": "t"}}
    for turn in range(5):
        app.invoke({"messages": [HumanMessage(content=f"q{turn}")]}, cfg)
    first = [m.id for m in app.get_state(cfg).values["messages"]]
    assert len(set(first)) == 10 and None not in first
    assert [m.id for m in app.get_state(cfg).values["messages"]] == first
