"""``MsgpackSerializer``: msgpack plus ext types for every other type tether can store.

Invariant: ``loads(dumps(v))`` equals ``v`` with the same types, or ``dumps`` raises; decoding
builds only builtins, stdlib value types and registered classes (no imports, no pickle).
"""

from __future__ import annotations

import builtins
import datetime
import decimal
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final

import msgpack

from tether.errors import EncryptionError, SerializationError, TetherError
from tether.serde import _lc, _temporal
from tether.serde._envelope import HeaderError, is_encrypted, parse_header
from tether.serde._exceptions import StoredException
from tether.serde._paths import builtin_children, find_path
from tether.serde._registry import Entry, TypeRegistry, default_registry, qualified_name

EXT_TUPLE: Final = 1
EXT_SET: Final = 2
EXT_FROZENSET: Final = 3
EXT_BIGINT: Final = 4
EXT_DATETIME: Final = 5
EXT_DATE: Final = 6
EXT_TIME: Final = 7
EXT_TIMEDELTA: Final = 8
EXT_UUID: Final = 9
EXT_DECIMAL: Final = 10
EXT_REGISTERED: Final = 11
EXT_EXCEPTION: Final = 12

_BUILTINS_PREFIX = "builtins."


class _EncodeFailure(Exception):
    """Raised inside msgpack's ``default`` hook; carries the object that could not be encoded."""

    def __init__(self, obj: object, message: str) -> None:
        super().__init__(message)
        self.obj = obj
        self.message = message


class MsgpackSerializer:
    """Encodes values with msgpack; non-native types are ext records (see module constants).

    Strict: a value of an unregistered type raises ``SerializationError`` naming the type and
    where in the value it was found. Thread-safe; packers are cached per thread.
    """

    def __init__(self, registry: TypeRegistry | None = None) -> None:
        self._registry = default_registry if registry is None else registry
        self._local = threading.local()
        ext = msgpack.ExtType
        pack = self._pack
        self._encoders: dict[type, Callable[[Any], object]] = {
            tuple: lambda v: ext(EXT_TUPLE, pack(list(v))),
            set: lambda v: ext(EXT_SET, pack(list(v))),
            frozenset: lambda v: ext(EXT_FROZENSET, pack(list(v))),
            int: lambda v: ext(
                EXT_BIGINT, v.to_bytes((v.bit_length() + 8) // 8, "big", signed=True)
            ),
            datetime.datetime: lambda v: ext(EXT_DATETIME, pack(_temporal.encode_datetime(v))),
            datetime.date: lambda v: ext(EXT_DATE, pack(_temporal.encode_date(v))),
            datetime.time: lambda v: ext(EXT_TIME, pack(_temporal.encode_time(v))),
            datetime.timedelta: lambda v: ext(EXT_TIMEDELTA, pack(_temporal.encode_timedelta(v))),
            uuid.UUID: lambda v: ext(EXT_UUID, v.bytes),
            decimal.Decimal: lambda v: ext(EXT_DECIMAL, str(v).encode("ascii")),
        }
        unpack = self._unpack
        self._decoders: dict[int, Callable[[bytes], object]] = {
            EXT_TUPLE: lambda b: tuple(_as_list(unpack(b))),
            EXT_SET: lambda b: set(_as_list(unpack(b))),
            EXT_FROZENSET: lambda b: frozenset(_as_list(unpack(b))),
            EXT_BIGINT: lambda b: int.from_bytes(b, "big", signed=True),
            EXT_DATETIME: lambda b: _temporal.decode_datetime(unpack(b)),
            EXT_DATE: lambda b: _temporal.decode_date(unpack(b)),
            EXT_TIME: lambda b: _temporal.decode_time(unpack(b)),
            EXT_TIMEDELTA: lambda b: _temporal.decode_timedelta(unpack(b)),
            EXT_UUID: lambda b: uuid.UUID(bytes=bytes(b)),
            EXT_DECIMAL: lambda b: decimal.Decimal(bytes(b).decode("ascii")),
            EXT_REGISTERED: self._decode_registered,
            EXT_EXCEPTION: self._decode_exception,
        }

    @property
    def registry(self) -> TypeRegistry:
        return self._registry

    # -- encoding -----------------------------------------------------------------------------

    def dumps(self, value: object) -> bytes:
        try:
            return self._pack(value)
        except _EncodeFailure as failure:
            path = find_path(value, failure.obj, self._children)
            where = "" if path is None else (f" at {path}" if path else " at the top level")
            raise SerializationError(failure.message.replace("{where}", where)) from None
        except RecursionError as exc:
            raise SerializationError(
                "cannot serialize value: it is nested too deeply or contains a reference cycle"
            ) from exc
        except ValueError as exc:  # msgpack: "recursion limit exceeded" and friends
            raise SerializationError(
                f"cannot serialize value ({exc}); is it nested too deeply or cyclic?"
            ) from exc

    def _pack(self, value: object) -> bytes:
        local = self._local
        try:
            packers: list[Any] = local.packers
        except AttributeError:
            packers = local.packers = []
            local.depth = 0
        depth: int = local.depth
        if depth == len(packers):
            packers.append(
                msgpack.Packer(default=self._default, use_bin_type=True, strict_types=True)
            )
        local.depth = depth + 1
        try:
            data: bytes = packers[depth].pack(value)
            return data
        finally:
            local.depth = depth

    def _default(self, obj: object) -> object:
        tp = type(obj)
        encoder = self._encoders.get(tp)
        try:
            if encoder is not None:
                return encoder(obj)
            entry = self._registry.entry_for_type(tp) or _lc.entry_for_instance_type(
                self._registry, tp
            )
            if entry is not None:
                return msgpack.ExtType(EXT_REGISTERED, self._pack([entry.name, entry.encode(obj)]))
            if isinstance(obj, BaseException):
                return self._encode_exception(obj)
        except _EncodeFailure:
            raise
        except Exception as exc:
            raise _EncodeFailure(
                obj, f"cannot serialize {qualified_name(tp)}{{where}}: {exc}"
            ) from exc
        raise _EncodeFailure(
            obj,
            f"cannot serialize {qualified_name(tp)}{{where}}: the type is not registered. "
            f"Register it with tether.serde.register_type({tp.__qualname__}) (dataclasses, "
            "pydantic models, Enums and NamedTuples need nothing else; other classes need "
            "encode= and decode=), or register your state schema with "
            "default_registry.register_schema(...).",
        )

    def _encode_exception(self, exc: BaseException) -> object:
        if type(exc) is StoredException:
            name, message = exc.type_name, exc.message
        else:
            name = qualified_name(type(exc))
            try:
                message = str(exc)
            except Exception:
                message = "<unprintable>"
        try:
            payload = self._pack([name, message, list(exc.args)])
        except Exception:  # args that cannot be stored: keep the name and message only
            payload = self._pack([name, message, None])
        return msgpack.ExtType(EXT_EXCEPTION, payload)

    def _children(self, obj: object) -> Iterator[tuple[str, object]] | None:
        kids = builtin_children(obj)
        if kids is not None:
            return kids
        entry = self._registry.entry_for_type(type(obj))
        if entry is not None:
            return iter([("", entry.encode(obj))])
        return None

    # -- decoding -----------------------------------------------------------------------------

    def loads(self, data: bytes) -> object:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise SerializationError(f"expected bytes to decode, got {type(data).__name__}")
        if is_encrypted(bytes(data[:1])):
            raise _encrypted_error(bytes(data))
        try:
            return self._unpack(data)
        except SerializationError:
            raise
        except Exception as exc:
            raise SerializationError(
                f"cannot decode stored value: corrupt or truncated data ({type(exc).__name__}: "
                f"{exc})"
            ) from exc

    def loads_many(self, records: Sequence[bytes]) -> list[object]:
        """``[loads(r) for r in records]`` in one pass over the joined bytes: one unpacker, no
        per-record call overhead. Each record must still be exactly one value (its end is
        checked against the next record's start), so a corrupt record is never misread as
        part of its neighbour."""
        if len(records) < 2 or any(is_encrypted(bytes(r[:1])) for r in records):
            return [self.loads(r) for r in records]
        joined = b"".join(records)
        unpacker = msgpack.Unpacker(
            ext_hook=self._ext_hook,
            raw=False,
            strict_map_key=False,
            use_list=True,
            max_buffer_size=max(len(joined), 1),
        )
        unpacker.feed(joined)
        out: list[object] = []
        end = 0
        try:
            for record in records:
                out.append(unpacker.unpack())
                end += len(record)
                if unpacker.tell() != end:
                    raise ValueError(f"record {len(out) - 1} does not end where it should")
        except SerializationError:
            raise
        except Exception as exc:
            raise SerializationError(
                f"cannot decode stored value: corrupt or truncated data ({type(exc).__name__}: "
                f"{exc})"
            ) from exc
        return out

    def _unpack(self, data: bytes) -> object:
        return msgpack.unpackb(
            data, ext_hook=self._ext_hook, raw=False, strict_map_key=False, use_list=True
        )

    def _ext_hook(self, code: int, data: bytes) -> object:
        decoder = self._decoders.get(code)
        if decoder is None:
            raise SerializationError(f"cannot decode stored value: unknown ext type code {code}")
        return decoder(data)

    def _decode_registered(self, payload: bytes) -> object:
        name, data = _as_list(self._unpack(payload))
        if not isinstance(name, str):
            raise SerializationError(f"invalid registered type name {name!r} in stored value")
        entry = self._registry.entry_for_name(name) or _lc.entry_for_name(self._registry, name)
        if entry is None:
            raise SerializationError(
                f"cannot decode stored value of type {name!r}: no type is registered under that "
                "name. Register the type before reading (tether.serde.register_type(...), with "
                "name= if it was stored under a custom name)."
            )
        return _rebuild(entry, data)

    def _decode_exception(self, payload: bytes) -> object:
        name, message, args = _as_list(self._unpack(payload))
        if not isinstance(name, str) or not isinstance(message, str):
            raise SerializationError("invalid stored exception record")
        if name.startswith(_BUILTINS_PREFIX):
            cls = vars(builtins).get(name[len(_BUILTINS_PREFIX) :])
            if isinstance(cls, type) and issubclass(cls, BaseException):
                try:
                    return cls(*args) if isinstance(args, list) else cls(message)
                except Exception:
                    pass
        return StoredException(name, message)


def _rebuild(entry: Entry, data: object) -> object:
    try:
        return entry.decode(data)
    except SerializationError:
        raise
    except Exception as exc:
        raise SerializationError(
            f"cannot rebuild {entry.name!r} ({qualified_name(entry.cls)}) from stored data: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _as_list(value: object) -> list[Any]:
    if type(value) is not list:
        raise SerializationError(f"malformed ext payload: expected an array, got {type(value)}")
    return value


def _encrypted_error(data: bytes) -> TetherError:
    """A missing key is an EncryptionError (a CheckpointError), not a decoding problem."""
    try:
        key_id, _ = parse_header(data)
    except HeaderError as exc:
        return SerializationError(f"cannot decode stored value: corrupt data ({exc})")
    return EncryptionError(
        f"cannot decode stored value: the record is encrypted (key id {key_id!r}); open the "
        "saver with serde=tether.serde.EncryptedSerializer(...) holding that key"
    )


_default_lock = threading.Lock()
_default: MsgpackSerializer | None = None


def default_serializer() -> MsgpackSerializer:
    """The shared ``MsgpackSerializer`` on ``default_registry``."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = MsgpackSerializer(default_registry)
    return _default
