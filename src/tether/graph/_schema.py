"""State schemas to channels: one channel per key, with a reducer when the key is Annotated.

A schema is a TypedDict, a dataclass, a pydantic model or a plain class with annotations.
``Annotated[T, reducer]`` (any callable of two arguments) makes a reducer channel; every other key
keeps its last value. A reducer channel whose type has an empty value (``list`` -> ``[]``) holds
it from the start, as LangGraph's do. A key typed as a managed value (``RemainingSteps``) is no
channel: the engine computes it per step.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections import abc
from collections.abc import Callable
from typing import Any, get_args, get_origin

from tether.engine._spec import Channel, Schema
from tether.errors import GraphError
from tether.managed._values import is_managed


def _reducer_of(tp: Any, owner: str, key: str) -> Callable[[Any, Any], Any] | None:
    if get_origin(tp) is not typing.Annotated:
        return None
    for meta in reversed(tp.__metadata__):
        if callable(meta):
            try:
                params = inspect.signature(meta).parameters
            except (TypeError, ValueError):
                return typing.cast(Callable[[Any, Any], Any], meta)
            positional = [
                p
                for p in params.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
            ]
            if len(positional) < 2 and not any(p.kind == p.VAR_POSITIONAL for p in positional):
                raise GraphError(
                    f"reducer of {owner}.{key} must take two arguments (current, update); "
                    f"{getattr(meta, '__name__', meta)!r} takes {len(positional)}"
                )
            return typing.cast(Callable[[Any, Any], Any], meta)
    return None


def _managed_of(tp: Any) -> Callable[[int], Any] | None:
    if get_origin(tp) is not typing.Annotated:
        return None
    for meta in tp.__metadata__:
        if is_managed(meta):
            return typing.cast(Callable[[int], Any], meta.get)
    return None


_ABSTRACT = {
    abc.Sequence: list,
    abc.MutableSequence: list,
    abc.Mapping: dict,
    abc.MutableMapping: dict,
    abc.Set: set,
    abc.MutableSet: set,
}


def _default_factory(tp: Any) -> Callable[[], Any] | None:
    """A reducer starts from the empty value of its type (``list`` -> ``[]``) when calling the
    type without arguments gives one, as in LangGraph; otherwise (``Optional[list]``, a class
    that needs arguments) the first write is taken as is."""
    base = tp
    if get_origin(base) is typing.Annotated:
        base = get_args(base)[0]
    origin = get_origin(base) or base
    if origin in _ABSTRACT:
        return _ABSTRACT[origin]
    if origin in (list, dict, set, tuple, int, float, str, frozenset):
        return typing.cast(Callable[[], Any], origin)
    if not isinstance(origin, type) or origin.__module__ == "typing":
        return None
    try:
        origin()
    except Exception:
        return None
    return typing.cast(Callable[[], Any], origin)


def _fields(cls: Any) -> tuple[str, dict[str, Any]]:
    if dataclasses.is_dataclass(cls) and isinstance(cls, type):
        hints = typing.get_type_hints(cls, include_extras=True)
        return "dataclass", {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}
    model_fields = getattr(cls, "model_fields", None)
    if isinstance(model_fields, dict) and hasattr(cls, "model_validate"):
        hints = typing.get_type_hints(cls, include_extras=True)
        out: dict[str, Any] = {}
        for name, info in model_fields.items():
            tp = hints.get(name, Any)
            meta = list(getattr(info, "metadata", []) or [])
            if get_origin(tp) is not typing.Annotated and any(callable(m) for m in meta):
                tp = typing.Annotated[tp, *meta]
            out[name] = tp
        return "pydantic", out
    if isinstance(cls, type) and issubclass(cls, dict) and hasattr(cls, "__annotations__"):
        return "typeddict", typing.get_type_hints(cls, include_extras=True)
    if isinstance(cls, type) and cls.__module__ != "builtins":
        hints = typing.get_type_hints(cls, include_extras=True)
        plain = {k: v for k, v in hints.items() if get_origin(v) is not typing.ClassVar}
        if plain:
            # as in LangGraph: the annotations are the keys, and nodes get a dict
            return "class", plain
    raise GraphError(
        f"state schema {cls!r} is not a TypedDict, dataclass, pydantic model or a class with "
        "annotated keys; declare the state keys as one of those"
    )


def build_schema(cls: Any) -> Schema:
    """Turn a schema class into channels; reducer signatures are checked here, once."""
    kind, hints = _fields(cls)
    owner = getattr(cls, "__name__", repr(cls))
    managed = {key: get for key, tp in hints.items() if (get := _managed_of(tp)) is not None}
    channels = {
        key: Channel(key, _reducer_of(tp, owner, key), _default_factory(tp))
        for key, tp in hints.items()
        if key not in managed
    }
    return Schema(cls, channels, kind, managed)
