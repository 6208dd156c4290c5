"""Lazy support for langchain-core message classes, stored under names like ``"lc:HumanMessage"``.

Invariant: only the fixed allow-list below can be resolved from stored data, and only from the
``langchain_core.messages`` module; langchain-core is never required and never imported on write.
"""

from __future__ import annotations

import sys
from typing import Any

from tether.serde._registry import Entry, TypeRegistry

PREFIX = "lc:"
_MESSAGE_CLASSES = frozenset(
    {
        "AIMessage",
        "AIMessageChunk",
        "ChatMessage",
        "ChatMessageChunk",
        "FunctionMessage",
        "FunctionMessageChunk",
        "HumanMessage",
        "HumanMessageChunk",
        "RemoveMessage",
        "SystemMessage",
        "SystemMessageChunk",
        "ToolMessage",
        "ToolMessageChunk",
    }
)


def _dump(message: Any) -> object:
    return message.model_dump()


def _register(registry: TypeRegistry, cls: type) -> Entry | None:
    def decode(data: dict[str, Any]) -> object:
        return cls(**data)

    registry.register(cls, name=PREFIX + cls.__name__, encode=_dump, decode=decode)
    return registry.entry_for_type(cls)


def entry_for_instance_type(registry: TypeRegistry, cls: type) -> Entry | None:
    """Register ``cls`` if it is one of langchain-core's own message classes (already imported)."""
    module = sys.modules.get("langchain_core.messages")
    base = getattr(module, "BaseMessage", None)
    if not isinstance(base, type) or not issubclass(cls, base):
        return None
    if cls.__name__ not in _MESSAGE_CLASSES or not cls.__module__.startswith("langchain_core."):
        return None
    return _register(registry, cls)


def entry_for_name(registry: TypeRegistry, name: str) -> Entry | None:
    """Resolve a stored ``"lc:<Class>"`` name via the allow-list, if langchain-core is installed."""
    if not name.startswith(PREFIX) or name[len(PREFIX) :] not in _MESSAGE_CLASSES:
        return None
    try:
        import langchain_core.messages as module
    except ImportError:
        return None
    cls = getattr(module, name[len(PREFIX) :], None)
    base = getattr(module, "BaseMessage", None)
    if not isinstance(cls, type) or not isinstance(base, type) or not issubclass(cls, base):
        return None
    return _register(registry, cls)
