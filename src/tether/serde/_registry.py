"""The explicit list of user types tether may store, each under a stable name.

Invariant: a name maps to exactly one class and a class to exactly one name; decoding looks names
up here and nowhere else (no imports), so only registered classes can ever be constructed.
"""

from __future__ import annotations

import datetime
import decimal
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tether.errors import SerializationError
from tether.serde._auto import Decoder, Encoder, auto_codec

T = TypeVar("T", bound=type)

# Types the serializer handles itself; registering them would shadow the built-in codec.
_NATIVE: frozenset[type] = frozenset(
    {
        type(None),
        bool,
        int,
        float,
        str,
        bytes,
        list,
        tuple,
        dict,
        set,
        frozenset,
        datetime.datetime,
        datetime.date,
        datetime.time,
        datetime.timedelta,
        uuid.UUID,
        decimal.Decimal,
    }
)


@dataclass(frozen=True, slots=True)
class Entry:
    """One registered type: its class, stable name and codec."""

    cls: type
    name: str
    encode: Encoder
    decode: Decoder


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class TypeRegistry:
    """Maps classes to stable names and codecs. Reads are lock-free; writes take a lock."""

    def __init__(self) -> None:
        self._by_type: dict[type, Entry] = {}
        self._by_name: dict[str, Entry] = {}
        self._lock = threading.Lock()

    def register(
        self,
        cls: T,
        *,
        name: str | None = None,
        encode: Callable[[Any], object] | None = None,
        decode: Callable[[Any], object] | None = None,
    ) -> T:
        """Allow instances of ``cls`` to be stored; returns ``cls`` (usable as a decorator).

        Dataclasses, pydantic models, Enums, NamedTuples and exceptions get a codec
        automatically; any other class needs both ``encode`` (instance -> storable data) and
        ``decode`` (data -> instance). ``name`` defaults to ``module.qualname``; set it to keep
        old records readable after moving or renaming the class.
        """
        if not isinstance(cls, type):
            raise SerializationError(f"register() expects a class, got {cls!r}")
        if cls in _NATIVE:
            raise SerializationError(
                f"{qualified_name(cls)} is supported natively; do not register it"
            )
        type_name = qualified_name(cls) if name is None else name
        if not type_name:
            raise SerializationError("a registered type name must not be empty")
        if (encode is None) != (decode is None):
            raise SerializationError(
                f"register({qualified_name(cls)}): pass both encode= and decode=, or neither"
            )
        if encode is None or decode is None:
            codec = auto_codec(cls)
            if codec is None:
                raise SerializationError(
                    f"cannot register {qualified_name(cls)} without encode= and decode=: only "
                    "dataclasses, pydantic models, Enums, NamedTuples and exceptions have an "
                    "automatic codec"
                )
            encode, decode = codec
        entry = Entry(cls, type_name, encode, decode)
        with self._lock:
            self._check_conflicts(entry)
            old = self._by_type.get(cls)
            if old is not None:
                self._by_name.pop(old.name, None)
            replaced = self._by_name.get(type_name)
            if replaced is not None:
                self._by_type.pop(replaced.cls, None)
            self._by_type[cls] = entry
            self._by_name[type_name] = entry
        return cls

    def _check_conflicts(self, entry: Entry) -> None:
        same_name = self._by_name.get(entry.name)
        # A class re-defined under the same module.qualname (module reload) replaces the old one.
        if (
            same_name is not None
            and same_name.cls is not entry.cls
            and qualified_name(same_name.cls) != qualified_name(entry.cls)
        ):
            raise SerializationError(
                f"type name {entry.name!r} is already registered for "
                f"{qualified_name(same_name.cls)}; pick another name= for "
                f"{qualified_name(entry.cls)}"
            )
        same_type = self._by_type.get(entry.cls)
        if same_type is not None and same_type.name != entry.name:
            raise SerializationError(
                f"{qualified_name(entry.cls)} is already registered as {same_type.name!r}; "
                f"it cannot also be registered as {entry.name!r}"
            )

    def register_schema(self, tp: object) -> None:
        """Register every dataclass, pydantic model and Enum reachable from a type annotation.

        Walks TypedDicts, dataclass fields, pydantic fields, ``Annotated``, ``Optional``/unions
        and generic containers (``list[...]``, ``dict[...]``, ...) recursively.
        """
        from tether.serde._schema import walk_schema

        walk_schema(self, tp)

    def entry_for_type(self, cls: type) -> Entry | None:
        return self._by_type.get(cls)

    def entry_for_name(self, name: str) -> Entry | None:
        return self._by_name.get(name)

    def is_registered(self, cls: type) -> bool:
        return cls in self._by_type

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._by_name)


default_registry = TypeRegistry()


def register_type(
    cls: T,
    *,
    name: str | None = None,
    encode: Callable[[Any], object] | None = None,
    decode: Callable[[Any], object] | None = None,
) -> T:
    """Register ``cls`` on the default registry (see ``TypeRegistry.register``); returns ``cls``."""
    return default_registry.register(cls, name=name, encode=encode, decode=decode)
