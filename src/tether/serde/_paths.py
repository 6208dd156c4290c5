"""Locates the object an encode failed on, as a path like ``["positions"][2].owner``.

Invariant: only runs after an encode already failed (never on the hot path); it walks containers
in the same order msgpack does, so the first occurrence found is the one that failed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from typing import Any

from tether.serde._auto import is_pydantic_model

Children = Callable[[object], Iterator[tuple[str, object]] | None]
_MAX_DEPTH = 520


def format_key(key: object) -> str:
    if isinstance(key, str):
        return f"[{json.dumps(key)}]"
    return f"[{key!r}]"


def builtin_children(obj: object) -> Iterator[tuple[str, object]] | None:
    """Children of containers and of auto-encoded classes (fields as ``.name``)."""
    tp = type(obj)
    if tp is list or tp is tuple:
        seq: list[object] | tuple[object, ...] = obj  # type: ignore[assignment]
        return ((f"[{i}]", item) for i, item in enumerate(seq))
    if tp is dict:
        return _dict_children(obj)  # type: ignore[arg-type]
    if tp is set or tp is frozenset:
        members: set[object] | frozenset[object] = obj  # type: ignore[assignment]
        return (("[<set item>]", item) for item in members)
    if isinstance(obj, BaseException):
        return ((f".args[{i}]", arg) for i, arg in enumerate(obj.args))
    if dataclasses.is_dataclass(tp):
        return ((f".{f.name}", getattr(obj, f.name)) for f in dataclasses.fields(tp))
    if is_pydantic_model(tp):
        names: dict[str, Any] = getattr(tp, "model_fields", {})
        extra: dict[str, object] = getattr(obj, "__pydantic_extra__", None) or {}
        items = [(f".{name}", getattr(obj, name)) for name in names]
        items.extend((f".{name}", value) for name, value in extra.items())
        return iter(items)
    return None


def _dict_children(obj: dict[object, object]) -> Iterator[tuple[str, object]]:
    for key, value in obj.items():
        yield f"[<key {key!r}>]", key
        yield format_key(key), value


def find_path(root: object, target: object, children: Children) -> str | None:
    """The path from ``root`` to ``target`` (by identity), ``""`` for the root, None if absent."""
    seen: set[int] = set()

    def walk(obj: object, depth: int) -> list[str] | None:
        if obj is target:
            return []
        if depth > _MAX_DEPTH or id(obj) in seen:
            return None
        seen.add(id(obj))
        try:
            kids = children(obj)
        except Exception:
            return None
        if kids is None:
            return None
        for segment, child in kids:
            found = walk(child, depth + 1)
            if found is not None:
                found.append(segment)
                return found
        return None

    try:
        found = walk(root, 0)
    except RecursionError:
        return None
    return None if found is None else "".join(reversed(found))
