"""``stream_mode="messages"`` (engine/_tokens.py): tokens of langchain-core chat models called
in nodes, the messages nodes return, and tether's own ``stream_token()``. Tests taking
``api`` run the same program on LangGraph: the chunks and their metadata are LangGraph's."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.runnables import RunnableConfig
from tests._parity import Api, thread

from tether import StateGraph, TaskCallError, entrypoint, task
from tether.config import MessageChunk, get_config, stream_token
from tether.engine import _tokens
from tether.graph import START, MessagesState

WAIT = 10.0


class AnyStr(str):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str)

    __hash__ = str.__hash__


def _model(*replies: str) -> GenericFakeChatModel:
    return GenericFakeChatModel(
        messages=iter([AIMessage(content=r, id=f"m{i}") for i, r in enumerate(replies)])
    )


def _graph(api: Api, *nodes: Any, checkpointer: Any = None) -> Any:
    g = api.StateGraph(MessagesState)
    previous = api.START
    for fn in nodes:
        g.add_node(fn.__name__, fn)
        g.add_edge(previous, fn.__name__)
        previous = fn.__name__
    return g.compile(checkpointer=checkpointer)


HI = {"messages": [HumanMessage("hi", id="h1")]}


def _text(chunks: list[tuple[Any, dict[str, Any]]]) -> list[tuple[str, str, str | None]]:
    return [(type(m).__name__, m.content, m.id) for m, _ in chunks]


def test_a_chat_model_streams_its_tokens_with_the_nodes_metadata(api: Api) -> None:
    model = _model("hello world")

    def call(state: MessagesState) -> dict:
        return {"messages": [model.invoke(state["messages"])]}  # no config passed

    config = {**thread("t1"), "metadata": {"user": "u"}, "tags": ["t1"]}
    app = _graph(api, call, checkpointer=api.InMemorySaver())
    chunks = list(app.stream(HI, config, stream_mode="messages"))
    assert _text(chunks) == [
        ("AIMessageChunk", "hello", "m0"),
        ("AIMessageChunk", " ", "m0"),
        ("AIMessageChunk", "world", "m0"),
    ]  # the node's returned message has the streamed id: not streamed again
    ns = AnyStr()
    assert chunks[0][1] == {
        "user": "u",
        "thread_id": "t1",
        "tags": ["t1"],
        "langgraph_step": 1,
        "langgraph_node": "call",
        "langgraph_triggers": ("branch:to:call",),
        "langgraph_path": ("__pregel_pull", "call"),
        "langgraph_checkpoint_ns": ns,
        "checkpoint_ns": ns,
        "ls_provider": "genericfakechatmodel",
        "ls_model_type": "chat",
        "ls_integration": "langchain_chat_model",
        "lc_versions": chunks[0][1]["lc_versions"],
    }
    assert chunks[0][1]["langgraph_checkpoint_ns"].startswith("call:")


def test_a_model_given_the_nodes_config_streams_too(api: Api) -> None:
    model = FakeListChatModel(responses=["ab"])

    def call(state: MessagesState, config: RunnableConfig) -> dict:
        return {"messages": [model.invoke(state["messages"], config)]}

    def after(state: MessagesState) -> dict:
        return {"messages": [AIMessage("done", id="d1")]}

    chunks = list(_graph(api, call, after).stream(HI, stream_mode="messages"))
    assert [(m.content, meta["langgraph_node"], meta["langgraph_step"]) for m, meta in chunks] == [
        ("a", "call", 1),
        ("b", "call", 1),
        ("done", "after", 2),
    ]
    assert isinstance(chunks[0][0], AIMessageChunk) and isinstance(chunks[2][0], AIMessage)
    # a returned message that was not streamed comes with the node's metadata only
    assert chunks[2][1] == {
        "langgraph_step": 2,
        "langgraph_node": "after",
        "langgraph_triggers": ("branch:to:after",),
        "langgraph_path": ("__pregel_pull", "after"),
        "langgraph_checkpoint_ns": AnyStr(),
        "ls_integration": "langgraph",
    }


def test_returned_messages_stream_once_and_input_messages_never(api: Api) -> None:
    def echo(state: MessagesState) -> dict:
        # returns its input again, plus two new messages, one of them twice
        reply = AIMessage("r", id="r1")
        return {"messages": [*state["messages"], reply, reply, AIMessage("s")]}

    chunks = list(_graph(api, echo).stream(HI, stream_mode=["messages", "values"]))
    streamed = [c[1][0] for c in chunks if c[0] == "messages"]
    assert [m.content for m in streamed] == ["r", "s"]
    # a message without an id is given one before it streams, and the state keeps it
    final = [c for mode, c in chunks if mode == "values"][-1]
    assert streamed[1].id and final["messages"][-1].id == streamed[1].id


def test_async_nodes_stream_under_astream(api: Api) -> None:
    chat = _model("a b")
    listed = FakeListChatModel(responses=["cd"])

    async def first(state: MessagesState) -> dict:
        return {"messages": [await chat.ainvoke(state["messages"])]}

    async def second(state: MessagesState) -> dict:
        parts = [c.content async for c in listed.astream("q")]
        return {"messages": [AIMessage("".join(parts), id="x2")]}

    app = _graph(api, first, second)

    async def main() -> list[Any]:
        return [c async for c in app.astream(HI, stream_mode="messages")]

    chunks = asyncio.run(main())
    assert [(m.content, meta["langgraph_node"]) for m, meta in chunks] == [
        ("a", "first"),
        (" ", "first"),
        ("b", "first"),
        ("c", "second"),
        ("d", "second"),
        ("cd", "second"),
    ]


def test_a_nostream_model_is_not_streamed(api: Api) -> None:
    quiet = _model("secret").with_config(tags=["nostream"])

    def call(state: MessagesState) -> dict:
        quiet.invoke(state["messages"])
        return {}

    assert list(_graph(api, call).stream(HI, stream_mode="messages")) == []


def test_tokens_stream_while_the_node_runs(api: Api) -> None:
    seen = threading.Event()
    model = _model("one two")

    def call(state: MessagesState) -> dict:
        reply = model.invoke(state["messages"])
        assert seen.wait(WAIT), "the tokens were not streamed while the node ran"
        return {"messages": [reply]}

    chunks = []
    for chunk in _graph(api, call).stream(HI, stream_mode=["messages", "updates"]):
        chunks.append(chunk)
        seen.set()
    assert [m for m, _ in chunks][:3] == ["messages"] * 3


def test_a_task_streams_its_model_tokens(api: Api) -> None:
    model = _model("hi there")

    @api.task
    def ask(question: str) -> Any:
        return model.invoke(question)

    @api.entrypoint(checkpointer=api.InMemorySaver())
    def wf(question: str) -> str:
        return str(ask(question).result().content)

    chunks = list(wf.stream("q", thread(), stream_mode="messages"))
    assert [(m.content, meta["langgraph_node"]) for m, meta in chunks] == [
        ("hi", "ask"),
        (" ", "ask"),
        ("there", "ask"),
    ]
    assert chunks[0][1]["langgraph_triggers"] == ("__pregel_push",)


def test_the_configs_own_callbacks_still_see_the_model() -> None:
    class Recorder(BaseCallbackHandler):
        def __init__(self) -> None:
            self.tokens: list[str] = []

        def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
            self.tokens.append(token)

    recorder = Recorder()
    model = _model("x y")

    def call(state: MessagesState) -> dict:
        return {"messages": [model.invoke(state["messages"])]}

    g = StateGraph(MessagesState)
    g.add_node("call", call)
    g.add_edge(START, "call")
    chunks = list(g.compile().stream(HI, {"callbacks": [recorder]}, stream_mode="messages"))
    assert [m.content for m, _ in chunks] == ["x", " ", "y"]
    assert recorder.tokens == ["x", " ", "y"]


def test_the_handler_rides_in_the_config_only_while_messages_stream() -> None:
    seen: list[Any] = []

    def node(state: MessagesState) -> dict:
        seen.append(get_config().get("callbacks"))
        return {}

    g = StateGraph(MessagesState)
    g.add_node("node", node)
    g.add_edge(START, "node")
    app = g.compile()
    list(app.stream(HI, stream_mode="updates"))
    list(app.stream(HI, stream_mode="messages"))
    assert seen[0] is None
    assert [type(h).__name__ for h in seen[1]] == ["TokenHandler"]


# -- stream_token -------------------------------------------------------------------------------


def _token_graph(node: Any) -> Any:
    g = StateGraph(MessagesState)
    g.add_node("node", node)
    g.add_edge(START, "node")
    return g.compile()


def test_stream_token_streams_a_non_langchain_models_tokens() -> None:
    def node(state: MessagesState) -> dict:
        for token in ("Hel", "lo"):
            stream_token(token)
        stream_token("other", id="second-answer")
        stream_token({"role": "assistant", "content": "raw"})  # not a string: as it is
        return {}

    chunks = list(_token_graph(node).stream(HI, stream_mode="messages"))
    tokens = [m for m, _ in chunks]
    assert all(isinstance(t, AIMessageChunk) for t in tokens[:3])
    assert [t.content for t in tokens[:3]] == ["Hel", "lo", "other"]
    assert tokens[0].id == tokens[1].id != tokens[2].id == "second-answer"
    assert tokens[3] == {"role": "assistant", "content": "raw"}
    meta = chunks[0][1]
    assert (meta["langgraph_node"], meta["langgraph_step"]) == ("node", 1)


def test_stream_token_without_langchain_core_yields_message_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_tokens, "langchain_installed", lambda: False)

    def node(state: MessagesState) -> dict:
        stream_token("a")
        stream_token("b")
        return {}

    chunks = [m for m, _ in _token_graph(node).stream(HI, stream_mode="messages")]
    assert all(isinstance(c, MessageChunk) for c in chunks)
    joined = chunks[0] + chunks[1]
    assert (joined.content, joined.id, joined.type) == ("ab", chunks[0].id, "AIMessageChunk")


def test_stream_token_is_a_no_op_unless_messages_stream_and_fails_outside_a_node() -> None:
    calls: list[str] = []

    def node(state: MessagesState) -> dict:
        stream_token("ignored")
        calls.append("ran")
        return {}

    assert list(_token_graph(node).stream(HI, stream_mode="updates")) == [{"node": {}}]
    assert calls == ["ran"]
    with pytest.raises(TaskCallError, match="stream_token"):
        stream_token("x")


def test_stream_token_from_a_task_names_the_task() -> None:
    @task
    def speak(word: str) -> str:
        stream_token(word)
        return word

    @entrypoint()
    def wf(word: str) -> str:
        return speak(word).result()

    chunks = list(wf.stream("w", stream_mode="messages"))
    assert [(m.content, meta["langgraph_node"]) for m, meta in chunks] == [("w", "speak")]
