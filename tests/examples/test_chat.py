"""The chat example: the offline model's tool loop, and the OpenAI-compatible HTTP model
against a local fake endpoint that fails with 503 twice before answering (three attempts,
one journaled model call)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import examples.chat as chat
import pytest

from tether import RetryPolicy
from tether.checkpoint import SqliteSaver

FAST_RETRY = RetryPolicy(
    initial_interval=0.01, backoff_factor=2.0, max_attempts=3, retry_on=(ConnectionError,)
)


def completion(message: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return 200, {"id": "cmpl-1", "object": "chat.completion", "choices": [{"message": message}]}


UNAVAILABLE = (503, {"error": {"message": "overloaded"}})


class FakeOpenAI:
    """``POST /chat/completions`` answered from a script of (status, body); records hits."""

    def __init__(self, script: list[tuple[int, dict[str, Any]]]) -> None:
        self.script = list(script)
        self.hits: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.hits.append(
                    {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
                )
                status, reply = fake.script.pop(0) if fake.script else UNAVAILABLE
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/v1"


@pytest.fixture
def fake_openai() -> Iterator[Any]:
    servers: list[FakeOpenAI] = []

    def start(script: list[tuple[int, dict[str, Any]]]) -> FakeOpenAI:
        fake = FakeOpenAI(script)
        fake.thread.start()
        servers.append(fake)
        return fake

    yield start
    for fake in servers:
        fake.server.shutdown()
        fake.server.server_close()


def cfg(thread: str = "chat-1") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def test_offline_model_calls_a_tool_then_answers(tmp_path: Path) -> None:
    with SqliteSaver(str(tmp_path / "chat.db")) as saver:
        app = chat.build(chat.OfflineModel(), checkpointer=saver)
        out = app.invoke({"messages": [chat.user("What is (6 + 1) * 6?")]}, cfg())
        roles = [m["role"] for m in out["messages"]]
        assert roles == ["user", "assistant", "tool", "assistant"]
        call = out["messages"][1]["tool_calls"][0]
        assert call["function"]["name"] == "calculator"
        assert json.loads(call["function"]["arguments"]) == {"expression": "(6 + 1) * 6"}
        assert out["messages"][2] == {"role": "tool", "tool_call_id": call["id"], "content": "42"}
        assert out["messages"][3]["content"] == "The answer is 42."
        assert out["llm_calls"] == 2
        # a second turn on the same thread appends to the stored conversation
        out = app.invoke({"messages": [chat.user("hello")]}, cfg())
        assert len(out["messages"]) == 6 and out["llm_calls"] == 3
        assert out["messages"][-1]["content"] == "You said: hello"


def test_http_model_retried_with_backoff_after_two_503s(fake_openai: Any) -> None:
    fake = fake_openai(
        [UNAVAILABLE, UNAVAILABLE, completion({"role": "assistant", "content": "Hi there!"})]
    )
    model = chat.HttpModel(fake.url, "sk-test", model="tiny")
    app = chat.build(model, retry_policy=FAST_RETRY)
    out = app.invoke({"messages": [chat.user("hello")]})
    assert len(fake.hits) == 3  # two 503s, then the answer: three attempts
    assert out["messages"][-1] == {"role": "assistant", "content": "Hi there!"}
    assert out["llm_calls"] == 1  # one model call, however many attempts it took
    hit = fake.hits[0]
    assert hit["path"] == "/v1/chat/completions" and hit["auth"] == "Bearer sk-test"
    assert hit["body"]["model"] == "tiny"
    assert hit["body"]["messages"] == [{"role": "user", "content": "hello"}]
    assert {t["function"]["name"] for t in hit["body"]["tools"]} == {"calculator", "word_count"}


def test_http_model_tool_loop(fake_openai: Any) -> None:
    call = {
        "id": "call_a",
        "type": "function",
        "function": {"name": "word_count", "arguments": json.dumps({"text": "one two three"})},
    }
    fake = fake_openai(
        [
            completion({"role": "assistant", "content": None, "tool_calls": [call]}),
            UNAVAILABLE,
            completion({"role": "assistant", "content": "Three words."}),
        ]
    )
    app = chat.build(chat.HttpModel(fake.url, "k"), retry_policy=FAST_RETRY)
    out = app.invoke({"messages": [chat.user("count: one two three")]})
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert out["messages"][2] == {"role": "tool", "tool_call_id": "call_a", "content": "3"}
    assert out["messages"][3]["content"] == "Three words." and out["llm_calls"] == 2
    assert len(fake.hits) == 3
    assert fake.hits[-1]["body"]["messages"][-1]["role"] == "tool"


def test_outage_longer_than_the_policy_fails_then_resumes(fake_openai: Any, tmp_path: Path) -> None:
    fake = fake_openai([UNAVAILABLE] * 3)
    with SqliteSaver(str(tmp_path / "chat.db")) as saver:
        app = chat.build(chat.HttpModel(fake.url, "k"), checkpointer=saver, retry_policy=FAST_RETRY)
        with pytest.raises(chat.ModelUnavailableError, match="503"):
            app.invoke({"messages": [chat.user("hello")]}, cfg(), durability="sync")
        assert len(fake.hits) == 3  # max_attempts, then the run fails
        assert app.get_state(cfg()).next == ("llm",)
        fake.script.append(completion({"role": "assistant", "content": "back"}))
        out = app.invoke(None, cfg(), durability="sync")  # continue the failed thread
    assert len(fake.hits) == 4
    assert [m["content"] for m in out["messages"]] == ["hello", "back"]
    assert out["llm_calls"] == 1


def test_client_error_is_not_retried(fake_openai: Any) -> None:
    fake = fake_openai([(400, {"error": {"message": "bad request"}})])
    app = chat.build(chat.HttpModel(fake.url, "k"), retry_policy=FAST_RETRY)
    with pytest.raises(chat.ModelRequestError, match="400"):
        app.invoke({"messages": [chat.user("hello")]})
    assert len(fake.hits) == 1


def test_model_from_env() -> None:
    assert isinstance(chat.model_from_env({}), chat.OfflineModel)
    assert isinstance(chat.model_from_env({"OPENAI_BASE_URL": "http://x"}), chat.OfflineModel)
    model = chat.model_from_env({"OPENAI_BASE_URL": "http://x/v1/", "OPENAI_API_KEY": "k"})
    assert isinstance(model, chat.HttpModel) and model.base_url == "http://x/v1"


def test_calculator_refuses_anything_but_arithmetic() -> None:
    assert chat.calculator.fn("2 * (3 + 4)") == "14"
    assert chat.calculator.fn("7 / 2") == "3.5"
    assert chat.calculator.fn("__import__('os')").startswith("error:")
    assert chat.calculator.fn("1 / 0").startswith("error:")


def test_main_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert chat.main(["--db", str(tmp_path / "m.db"), "What is 6 * 7?"]) == 0
    out = capsys.readouterr().out
    assert "OfflineModel" in out and "The answer is 42." in out
