"""Walks a state schema (annotation, TypedDict, dataclass, pydantic model) and registers types.

Invariant: every dataclass, pydantic model, Enum and NamedTuple reachable from the annotation is
registered exactly once; each class is visited once, so recursive schemas terminate.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from typing import TYPE_CHECKING, Any

from typing_extensions import is_typeddict

from tether.errors import SerializationError
from tether.serde._auto import is_namedtuple, is_pydantic_model

if TYPE_CHECKING:
    from tether.serde._registry import TypeRegistry


def walk_schema(registry: TypeRegistry, tp: object) -> None:
    _Walker(registry).visit(tp)


class _Walker:
    def __init__(self, registry: TypeRegistry) -> None:
        self._registry = registry
        self._seen: set[int] = set()
        self._alive: list[object] = []  # keeps visited objects alive so their ids stay unique

    def visit(self, tp: object) -> None:
        if id(tp) in self._seen:
            return
        self._seen.add(id(tp))
        self._alive.append(tp)
        origin = typing.get_origin(tp)
        if origin is typing.Literal:
            for value in typing.get_args(tp):
                if isinstance(value, enum.Enum):
                    self.visit(type(value))
            return
        if origin is typing.Annotated:
            self.visit(typing.get_args(tp)[0])
            return
        if origin is not None:
            self.visit(origin)
            for arg in typing.get_args(tp):
                if isinstance(arg, list):  # Callable[[A, B], R]
                    for item in arg:
                        self.visit(item)
                elif arg is not Ellipsis:
                    self.visit(arg)
            return
        if isinstance(tp, typing.TypeVar):
            for constraint in tp.__constraints__:
                self.visit(constraint)
            if tp.__bound__ is not None:
                self.visit(tp.__bound__)
            return
        if not isinstance(tp, type):
            return
        self._visit_class(tp)

    def _visit_class(self, cls: type) -> None:
        if is_typeddict(cls):
            self._visit_hints(cls)
        elif isinstance(cls, enum.EnumMeta):
            self._register(cls)
        elif dataclasses.is_dataclass(cls):
            self._register(cls)
            self._visit_hints(cls)
        elif is_pydantic_model(cls):
            self._register(cls)
            fields: dict[str, Any] = getattr(cls, "model_fields", {})
            for info in fields.values():
                self.visit(info.annotation)
        elif is_namedtuple(cls):
            self._register(cls)
            self._visit_hints(cls)

    def _register(self, cls: type) -> None:
        if not self._registry.is_registered(cls):
            self._registry.register(cls)

    def _visit_hints(self, cls: type) -> None:
        try:
            hints = typing.get_type_hints(cls, include_extras=True)
        except Exception as exc:
            raise SerializationError(
                f"cannot read the type hints of {cls.__module__}.{cls.__qualname__} to register "
                f"its field types ({type(exc).__name__}: {exc}); make forward references "
                "importable or register the field types with tether.serde.register_type(...)"
            ) from exc
        for hint in hints.values():
            self.visit(hint)
