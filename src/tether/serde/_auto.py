"""Automatic encode/decode pairs for dataclasses, pydantic models, Enums, NamedTuples, exceptions.

Invariant: an encoder returns only plain data (dict/list of field values) and its decoder rebuilds
the same class from it; pydantic is looked up in ``sys.modules`` only, never imported here.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
from collections.abc import Callable
from typing import Any

Encoder = Callable[[Any], object]
Decoder = Callable[[Any], object]


def pydantic_base() -> type | None:
    """``pydantic.BaseModel`` if pydantic was imported by someone, else None (no import)."""
    module = sys.modules.get("pydantic")
    base = getattr(module, "BaseModel", None) if module is not None else None
    return base if isinstance(base, type) else None


def is_pydantic_model(cls: type) -> bool:
    base = pydantic_base()
    return base is not None and issubclass(cls, base)


def is_namedtuple(cls: type) -> bool:
    return issubclass(cls, tuple) and isinstance(getattr(cls, "_fields", None), tuple)


def auto_codec(cls: type) -> tuple[Encoder, Decoder] | None:
    """The automatic codec for ``cls``, or None if ``cls`` needs an explicit encode/decode."""
    if issubclass(cls, enum.Enum):
        return _enum_codec(cls)
    if dataclasses.is_dataclass(cls):
        return _dataclass_codec(cls)
    if is_pydantic_model(cls):
        return _pydantic_codec(cls)
    if is_namedtuple(cls):
        return (list, lambda data: cls(*data))
    if issubclass(cls, BaseException):
        return (lambda exc: list(exc.args), lambda data: cls(*data))
    return None


def _enum_codec(cls: type[enum.Enum]) -> tuple[Encoder, Decoder]:
    def encode(member: enum.Enum) -> object:
        return member.value

    def decode(value: object) -> object:
        return cls(value)

    return encode, decode


def _dataclass_codec(cls: type) -> tuple[Encoder, Decoder]:
    fields = dataclasses.fields(cls)
    names = tuple(f.name for f in fields)
    init_names = frozenset(f.name for f in fields if f.init)

    def encode(obj: object) -> object:
        return {name: getattr(obj, name) for name in names}

    def decode(data: dict[str, object]) -> object:
        obj = cls(**{k: v for k, v in data.items() if k in init_names})
        for key, value in data.items():
            if key not in init_names and key in names:
                object.__setattr__(obj, key, value)
        return obj

    return encode, decode


def _pydantic_codec(cls: type) -> tuple[Encoder, Decoder]:
    model: Any = cls

    def encode(obj: Any) -> object:
        names = type(obj).model_fields
        fields = {name: getattr(obj, name) for name in names}
        fields_set = sorted(obj.model_fields_set)
        extra = obj.__pydantic_extra__
        return [fields, fields_set, dict(extra) if extra else None]

    def decode(data: list[Any]) -> object:
        fields, fields_set, extra = data
        return model.model_construct(_fields_set=set(fields_set), **fields, **(extra or {}))

    return encode, decode
