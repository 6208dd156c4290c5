"""``add_messages``: the reducer for chat histories. Appends, and a message whose id is already
present replaces the earlier one in place. Works on plain dicts and on langchain-core messages.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict

REMOVE_ALL_MESSAGES = "__remove_all__"
"""The id LangGraph gives a ``RemoveMessage`` that clears the whole history (its value)."""


def _message_id(msg: Any) -> Any:
    if isinstance(msg, dict):
        return msg.get("id")
    return getattr(msg, "id", None)


def _with_id(msg: Any) -> Any:
    """Give a message without an id a fresh one, so that later edits can target it."""
    if _message_id(msg) is not None:
        return msg
    new_id = str(uuid.uuid4())
    if isinstance(msg, dict):
        return {**msg, "id": new_id}
    if hasattr(msg, "model_copy"):
        return msg.model_copy(update={"id": new_id})
    return msg


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def with_message_ids(write: Any) -> Any:
    """A write to an ``add_messages`` key with an id given to every message that has none.

    The engine calls this once, when a node's write is received, so the ids are stored with
    the write: every later load folds the same ids, an edit by id finds its message, and a
    ``@task`` given the messages hashes the same arguments on replay."""
    if isinstance(write, list | tuple):
        return [_with_id(m) for m in write]
    return _with_id(write)


def add_messages(left: Sequence[Any] | Any, right: Sequence[Any] | Any) -> list[Any]:
    """Merge two message lists: append ``right`` to ``left``; a message in ``right`` with the
    id of a message in ``left`` replaces it where it stands."""
    merged = [_with_id(m) for m in _as_list(left)]
    index = {_message_id(m): i for i, m in enumerate(merged)}
    for msg in _as_list(right):
        msg = _with_id(msg)
        mid = _message_id(msg)
        at = index.get(mid)
        if at is None:
            index[mid] = len(merged)
            merged.append(msg)
        else:
            merged[at] = msg
    return merged


class MessagesState(TypedDict):
    """A state with one key, ``messages``, merged by ``add_messages`` (as in LangGraph)."""

    messages: Annotated[list[Any], add_messages]


@dataclass(frozen=True, slots=True)
class MessageChunk:
    """A piece of an AI message streamed with ``stream_token()`` when langchain-core is not
    installed: the fields a consumer of langchain's ``AIMessageChunk`` reads. Chunks of one
    message share its ``id``; ``a + b`` joins their content."""

    content: str
    id: str
    type: Literal["AIMessageChunk"] = "AIMessageChunk"

    def __add__(self, other: MessageChunk) -> MessageChunk:
        return MessageChunk(self.content + other.content, self.id)
