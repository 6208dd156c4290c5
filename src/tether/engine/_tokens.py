"""``stream_mode="messages"``: LLM tokens, and the messages nodes return, streamed as
``(message, metadata)`` pairs; each message once, by id.

Three sources feed a run's message stream:

- a langchain-core chat model called in a node, router or ``@task``: the node's config (the
  injected ``config``, ``get_config()``, and langchain-core's context variable for calls that
  pass no config) carries a callback handler, as LangGraph's does, which receives each token
  (or the whole message of a model that does not stream);
- ``stream_token()``, tether's own call for models that are not langchain's;
- the messages a node or ``@task`` returns that were neither streamed nor in its input.

The metadata is the node's (``engine/_context.config_of``: ``langgraph_node``,
``langgraph_step``, ...), plus what langchain-core adds for a model call (``ls_provider``,
the config's tags, ...).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from tether._messages import MessageChunk
from tether.engine._context import config_of
from tether.engine._runtime import TaskContext, current_context
from tether.errors import TaskCallError
from tether.types import Command

NOSTREAM_TAG = "nostream"
"""A model tagged with it (``model.with_config(tags=["nostream"])``) is not streamed."""

Emit = Callable[[tuple[Any, dict[str, Any]]], None]


@functools.cache
def langchain_installed() -> bool:
    return importlib.util.find_spec("langchain_core") is not None


def _message_class() -> Any:
    module = sys.modules.get("langchain_core.messages")
    return None if module is None else module.BaseMessage


def _messages_among(value: Any, message: Any) -> Iterator[Any]:
    """The messages in ``value``: itself, or its items when it is a list or tuple."""
    if isinstance(value, message):
        yield value
    elif isinstance(value, list | tuple):
        yield from (item for item in value if isinstance(item, message))


def _fields(value: Any) -> Sequence[Any]:
    if isinstance(value, Mapping):
        return list(value.values())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [getattr(value, f.name) for f in dataclasses.fields(value)]
    model_fields = getattr(type(value), "model_fields", None)
    if isinstance(model_fields, dict):
        return [getattr(value, k) for k in model_fields]
    return ()


def messages_in(value: Any) -> Iterator[Any]:
    """The langchain messages a node returned or received: the value itself, the items of a
    list, or (in a state update, a Command's update or a state object) each key's message
    or the messages of its list. Nothing when langchain-core's messages are not loaded."""
    message = _message_class()
    if message is None:
        return
    if isinstance(value, Command):
        value = value.update
    if isinstance(value, list | tuple) and any(isinstance(v, Command) for v in value):
        for item in value:
            yield from messages_in(item)
        return
    if isinstance(value, message | list | tuple):
        yield from _messages_among(value, message)
        return
    for field_value in _fields(value):
        yield from _messages_among(field_value, message)


class MessageStream:
    """The message stream of one run: every source calls ``push``; ids already streamed are
    not streamed again when ``dedupe`` asks for it (a finished message after its tokens, a
    node returning what it streamed or what it was given)."""

    def __init__(self, emit: Emit) -> None:
        self._emit = emit
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self.handler: Any = _handler_class()(self) if langchain_installed() else None

    def push(self, message: Any, metadata: dict[str, Any], *, dedupe: bool = False) -> None:
        with self._lock:
            mid = getattr(message, "id", None)
            if dedupe and mid is not None and mid in self._seen:
                return
            base = _message_class()
            if mid is None and base is not None and isinstance(message, base):
                # as LangGraph does: the id lets a consumer tie the chunks of a message
                # together, and tether's add_messages keeps it when the node's write is folded
                mid = message.id = str(uuid.uuid4())
            if mid is not None:
                self._seen.add(mid)
        self._emit((message, metadata))

    def mark_seen(self, node_input: Any) -> None:
        """A node's input messages are not the node's to stream when it returns them."""
        ids = [m.id for m in messages_in(node_input) if m.id is not None]
        with self._lock:
            self._seen.update(ids)

    def returned(self, ctx: TaskContext, output: Any) -> None:
        found = list(messages_in(output))
        if found:
            # LangGraph's node runs carry its graph run's LangSmith marker; so does this
            metadata = {**config_of(ctx)["metadata"], "ls_integration": "langgraph"}
            for m in found:
                self.push(m, metadata, dedupe=True)

    def callbacks(self, configured: Any) -> Any:
        """The config's ``callbacks`` with this stream's handler added: a list, or a copy of
        a langchain callback manager."""
        if self.handler is None:
            return configured
        if configured is None:
            return [self.handler]
        if isinstance(configured, list | tuple):
            return [*configured, self.handler]
        manager = configured.copy()
        manager.add_handler(self.handler, inherit=True)
        return manager


def _chunk(token: str, message_id: str) -> Any:
    if langchain_installed():
        from langchain_core.messages import AIMessageChunk

        return AIMessageChunk(content=token, id=message_id)
    return MessageChunk(token, message_id)


def stream_token(token: Any, *, id: str | None = None) -> None:
    """Stream one token of an LLM answer to ``stream_mode="messages"``, for models that are
    not langchain chat models (those stream by themselves).

    ``token`` is a string, streamed as an ``AIMessageChunk`` (tether's ``MessageChunk``
    when langchain-core is not installed) with the node's metadata; anything else is
    streamed as it is. The tokens of one answer share a message id: by default one per
    node (or ``@task``) call, so a node that streams several answers gives each its own
    ``id``. A no-op when the run does not stream messages."""
    ctx = current_context()
    if ctx is None:
        raise TaskCallError(
            "stream_token() was called outside a running node, router or @task; call it "
            "from code that the graph runs"
        )
    stream = ctx.run.messages
    if stream is None:
        return
    if isinstance(token, str):
        if id is None:
            if not ctx.message_id:
                ctx.message_id = str(uuid.uuid4())
            id = ctx.message_id
        token = _chunk(token, id)
    stream.push(token, config_of(ctx)["metadata"])


@functools.cache
def _handler_class() -> type:
    """The langchain callback handler behind chat-model streaming, built on first use so
    that tether imports langchain-core only for runs that stream messages."""
    import langchain_core.runnables.config  # noqa: F401  (nodes' config reaches models through it)
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk

    streaming: type[Any] = object
    try:
        # Its presence makes a chat model stream even when the node calls invoke().
        from langchain_core.tracers._streaming import _StreamingCallbackHandler

        streaming = _StreamingCallbackHandler
    except ImportError:  # an older langchain-core: models stream only when asked to
        pass

    class TokenHandler(BaseCallbackHandler, streaming):  # type: ignore[misc]
        run_inline = True
        """Called on the model's thread, in order, never from an executor."""

        def __init__(self, stream: MessageStream) -> None:
            super().__init__()
            self._stream = stream
            self._runs: dict[uuid.UUID, dict[str, Any]] = {}

        def on_chat_model_start(
            self,
            serialized: Any,
            messages: Any,
            *,
            run_id: uuid.UUID,
            tags: list[str] | None = None,
            metadata: dict[str, Any] | None = None,
            **kwargs: Any,
        ) -> None:
            # only calls made from a node carry its metadata; others are not ours to stream
            if not metadata or "langgraph_node" not in metadata or NOSTREAM_TAG in (tags or ()):
                return
            meta = dict(metadata)
            user_tags = [t for t in tags or () if not t.startswith("seq:step")]
            if user_tags:
                meta["tags"] = user_tags
            self._runs[run_id] = meta

        def on_llm_new_token(
            self, token: Any, *, chunk: Any = None, run_id: uuid.UUID, **kwargs: Any
        ) -> None:
            meta = self._runs.get(run_id)
            if meta is not None and isinstance(chunk, ChatGenerationChunk):
                self._stream.push(chunk.message, meta)

        def on_llm_end(self, response: Any, *, run_id: uuid.UUID, **kwargs: Any) -> None:
            meta = self._runs.pop(run_id, None)
            generations = getattr(response, "generations", None)
            if meta is None or not generations or not generations[0]:
                return
            first = generations[0][0]
            if isinstance(first, ChatGeneration):  # a model that did not stream
                self._stream.push(first.message, meta, dedupe=True)

        def on_llm_error(self, error: BaseException, *, run_id: uuid.UUID, **kwargs: Any) -> None:
            self._runs.pop(run_id, None)

        def tap_output_iter(self, run_id: uuid.UUID, output: Any) -> Any:
            return output

        def tap_output_aiter(self, run_id: uuid.UUID, output: Any) -> Any:
            return output

    return TokenHandler
