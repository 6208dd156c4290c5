"""The chat agent: model call -> optional tool calls -> model, until the model answers.

    python -m examples.chat "What is 6 * 7?"                 # offline deterministic model
    OPENAI_BASE_URL=https://api.openai.com/v1 OPENAI_API_KEY=sk-... \\
        python -m examples.chat "What is 6 * 7?"             # any OpenAI-compatible server

State is the guide's ``MessagesState``: ``messages`` (OpenAI-style dicts, appended by the
``operator.add`` reducer) and ``llm_calls``. The model sits behind the small ``ChatModel``
protocol. The model call is a ``@task`` with a ``RetryPolicy`` (exponential backoff on
503s, 429s and connection errors), so a transient outage costs a retry, not the run, and a
finished model call is journaled and never paid for twice. Tool calls are ``@task``s too.
"""

from __future__ import annotations

import argparse
import ast
import json
import operator
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Protocol, TypedDict

from tether import END, START, RetryPolicy, StateGraph, task
from tether.checkpoint import SqliteSaver
from tether.graph import CompiledGraph

Message = dict[str, Any]


class MessagesState(TypedDict, total=False):
    messages: Annotated[list[Message], operator.add]
    llm_calls: int


# -- the model interface ------------------------------------------------------------------


class ChatModel(Protocol):
    """Anything that turns a conversation into the next assistant message."""

    def complete(self, messages: list[Message], tools: list[dict[str, Any]]) -> Message:
        """Return ``{"role": "assistant", "content": ..., "tool_calls": [...]?}``."""
        ...


class ModelUnavailableError(ConnectionError):
    """The model endpoint is down or overloaded (5xx, 429, no connection): worth a retry."""


class ModelRequestError(ValueError):
    """The model endpoint refused the request (4xx): retrying the same request cannot help."""


_ARITHMETIC = re.compile(r"[\d(][\d\s.()+\-*/%]*[\d)]")


def _find_arithmetic(text: str) -> str | None:
    for match in _ARITHMETIC.finditer(text):
        if any(op in match.group(0) for op in "+-*/%"):
            return match.group(0).strip()
    return None


class OfflineModel:
    """A deterministic stand-in for an LLM, so the example runs anywhere.

    Arithmetic in the user's message becomes a ``calculator`` tool call; a tool result
    becomes the answer; anything else is echoed back.
    """

    def complete(self, messages: list[Message], tools: list[dict[str, Any]]) -> Message:
        last = messages[-1]
        if last["role"] == "tool":
            return {"role": "assistant", "content": f"The answer is {last['content']}."}
        text = str(last.get("content") or "")
        expression = _find_arithmetic(text)
        if expression and any(t["function"]["name"] == "calculator" for t in tools):
            call = {
                "id": f"call_{len(messages)}",
                "type": "function",
                "function": {
                    "name": "calculator",
                    "arguments": json.dumps({"expression": expression}),
                },
            }
            return {"role": "assistant", "content": None, "tool_calls": [call]}
        return {"role": "assistant", "content": f"You said: {text}"}


class HttpModel:
    """An OpenAI-compatible chat completions endpoint: ``POST {base_url}/chat/completions``."""

    def __init__(
        self, base_url: str, api_key: str, *, model: str = "gpt-4o-mini", timeout: float = 60.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.model = model
        self.timeout = timeout

    def complete(self, messages: list[Message], tools: list[dict[str, Any]]) -> Message:
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        if tools:
            body["tools"] = tools
        request = urllib.request.Request(
            f"{self.base_url}/chat/completions",
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.api_key}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload: dict[str, Any] = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            if exc.code >= 500 or exc.code == 429:
                raise ModelUnavailableError(
                    f"model endpoint answered {exc.code}: {detail}"
                ) from exc
            raise ModelRequestError(f"model endpoint refused ({exc.code}): {detail}") from exc
        except urllib.error.URLError as exc:
            raise ModelUnavailableError(f"model endpoint {self.base_url}: {exc.reason}") from exc
        try:
            message = payload["choices"][0]["message"]
        except (KeyError, IndexError, TypeError) as exc:
            raise ModelRequestError(f"unexpected completion shape: {payload!r:.300}") from exc
        out: Message = {"role": "assistant", "content": message.get("content")}
        if message.get("tool_calls"):
            out["tool_calls"] = message["tool_calls"]
        return out


def model_from_env(env: Mapping[str, str] | None = None) -> ChatModel:
    """``HttpModel`` when ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY`` are set, else offline."""
    env = os.environ if env is None else env
    base, key = env.get("OPENAI_BASE_URL"), env.get("OPENAI_API_KEY")
    if base and key:
        return HttpModel(base, key, model=env.get("OPENAI_MODEL", "gpt-4o-mini"))
    return OfflineModel()


# -- tools: each one a durable @task ------------------------------------------------------

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


def _evaluate(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return float(_BINARY[type(node.op)](_evaluate(node.left), _evaluate(node.right)))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return float(_UNARY[type(node.op)](_evaluate(node.operand)))
    raise ValueError(f"unsupported expression element {ast.dump(node)[:60]}")


@task
def calculator(expression: str) -> str:
    """Evaluate + - * / % over numbers (no names, no calls)."""
    try:
        value = _evaluate(ast.parse(expression, mode="eval"))
    except (SyntaxError, ValueError, ZeroDivisionError) as exc:
        return f"error: {exc}"
    return str(int(value)) if float(value).is_integer() else f"{value:.10g}"


@task
def word_count(text: str) -> str:
    return str(len(text.split()))


TOOLS: dict[str, Any] = {"calculator": calculator, "word_count": word_count}
TOOL_SPECS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "calculator",
            "description": "Evaluate an arithmetic expression with + - * / % and parentheses.",
            "parameters": {
                "type": "object",
                "properties": {"expression": {"type": "string"}},
                "required": ["expression"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "word_count",
            "description": "Count the words of a text.",
            "parameters": {
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
            },
        },
    },
]

MODEL_RETRY = RetryPolicy(
    initial_interval=0.5,
    backoff_factor=2.0,
    max_interval=10.0,
    max_attempts=3,
    retry_on=(ConnectionError, TimeoutError),
)


# -- the graph ----------------------------------------------------------------------------


def route(state: MessagesState) -> str:
    return "tools" if state["messages"][-1].get("tool_calls") else END


def run_tools(state: MessagesState) -> dict[str, Any]:
    calls = state["messages"][-1].get("tool_calls") or []
    futures = []
    for call in calls:
        name = call["function"]["name"]
        try:
            args = json.loads(call["function"].get("arguments") or "{}")
        except json.JSONDecodeError:
            args = None
        tool = TOOLS.get(name)
        futures.append(tool(**args) if tool is not None and isinstance(args, dict) else None)
    replies: list[Message] = []
    for call, future in zip(calls, futures, strict=True):
        content = future.result() if future is not None else f"error: cannot call {call!r:.120}"
        replies.append({"role": "tool", "tool_call_id": call["id"], "content": content})
    return {"messages": replies}


def build(
    model: ChatModel | None = None,
    *,
    checkpointer: Any = None,
    retry_policy: RetryPolicy = MODEL_RETRY,
) -> CompiledGraph:
    """llm -> (tools -> llm)* -> END. ``retry_policy`` wraps each model call."""
    chat_model: ChatModel = model if model is not None else OfflineModel()

    def complete(messages: list[Message]) -> Message:
        return chat_model.complete(messages, TOOL_SPECS)

    call_model = task(name="call_model", retry_policy=retry_policy)(complete)

    def llm(state: MessagesState) -> dict[str, Any]:
        reply = call_model(state["messages"]).result()
        return {"messages": [reply], "llm_calls": state.get("llm_calls", 0) + 1}

    g = StateGraph(MessagesState)
    g.add_node("llm", llm)
    g.add_node("tools", run_tools)
    g.add_edge(START, "llm")
    g.add_conditional_edges("llm", route, ["tools", END])
    g.add_edge("tools", "llm")
    return g.compile(checkpointer=checkpointer)


def user(text: str) -> Message:
    return {"role": "user", "content": text}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.chat")
    parser.add_argument("prompt", nargs="*", default=["What is 6 * 7?"])
    parser.add_argument("--db", default="chat.db")
    parser.add_argument("--thread", default="chat-1")
    args = parser.parse_args(argv)
    model = model_from_env()
    config = {"configurable": {"thread_id": args.thread}}
    with SqliteSaver(args.db) as saver:
        app = build(model, checkpointer=saver)
        before = len(app.get_state(config).values.get("messages", []))
        out = app.invoke({"messages": [user(" ".join(args.prompt))]}, config, durability="sync")
    print(f"model: {type(model).__name__}; thread {args.thread!r} in {args.db}")
    for message in out["messages"][before:]:
        shown = message.get("content")
        if message.get("tool_calls"):
            shown = [
                (c["function"]["name"], c["function"]["arguments"]) for c in message["tool_calls"]
            ]
        print(f"  {message['role']:>9}: {shown}")
    print(f"llm_calls: {out['llm_calls']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
