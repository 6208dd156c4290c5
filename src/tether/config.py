"""``tether.config``: the running node's config, stream writer and store, read from inside
a node, router, ``@task`` or ``@entrypoint`` (LangGraph's ``langgraph.config``); and
``stream_token()``, tether's own way to stream the tokens of a model that is not a langchain
chat model to ``stream_mode="messages"``."""

from tether._messages import MessageChunk
from tether.engine._context import get_config, get_store
from tether.engine._runtime import get_stream_writer
from tether.engine._tokens import stream_token

__all__ = ["MessageChunk", "get_config", "get_store", "get_stream_writer", "stream_token"]
