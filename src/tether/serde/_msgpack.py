"""``MsgpackSerializer``: msgpack plus ext types for every other type tether can store.

Invariant: ``loads(dumps(v))`` equals ``v`` with the same types, or ``dumps`` raises; decoding
builds only builtins, stdlib value types and registered classes (no imports, no pickle), checks
the record's checksum first, and never nests deeper than ``MAX_DEPTH`` ext records, so no stored
bytes can exhaust the stack.
"""

from __future__ import annotations

import builtins
import datetime
import decimal
import functools
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, cast

import msgpack

from tether.errors import EncryptionError, SerializationError, TetherError
from tether.serde import _lc, _temporal
from tether.serde._envelope import (
    CorruptRecordError,
    HeaderError,
    is_encrypted,
    parse_header,
    seal,
    unseal,
)
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

MAX_DEPTH: Final = 100
"""How deeply ext records may nest in one value: tuples, sets, frozensets, registered classes
(dataclasses, pydantic models, messages, ...), exceptions and datetimes inside one another,
counted along any path. Lists and dicts between them do not count toward it (msgpack allows
511 levels of them within each record; below the fourth record level, 1,000 in all: see
_NESTED_BUDGET). Each record level is decoded by a nested call, so the bound keeps any stored
value readable within a small, fixed stack. ``dumps`` refuses deeper values; ``loads`` refuses
deeper bytes (crafted, or written before the bound) instead of crashing. For reference,
LangGraph's ormsgpack refuses values nested more than 254 levels of any kind."""

_SHALLOW: Final = 2
"""Decoding levels that use ``msgpack.unpackb`` (fastest, but it keeps a ~40 KB context on the C
stack); deeper levels use a heap-allocated ``msgpack.Unpacker`` (~1 KB of stack each)."""

_UNCOUNTED_LEVELS: Final = 4
_NESTED_BUDGET: Final = 1000
"""msgpack's C packer recurses on the C stack for every list and dict (~0.5 KB a level, up to
511 levels within each ext record). In the first _UNCOUNTED_LEVELS ext levels that is left to
msgpack (at most ~1 MB); below them, the lists and dicts of each ext record are counted, and a
value with more than _NESTED_BUDGET levels of them in all is refused, so that no value can
overflow the stack on write."""

_BUILTINS_PREFIX = "builtins."


class _TooDeep(Exception):
    """Raised by ``_pack`` when an ext record's lists and dicts exceed the nesting budget."""


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
        # Each decoder gets the depth its payload sits at (see MAX_DEPTH).
        self._decoders: dict[int, Callable[[bytes, int], object]] = {
            EXT_TUPLE: lambda b, d: tuple(_as_list(unpack(b, d))),
            EXT_SET: lambda b, d: set(_as_list(unpack(b, d))),
            EXT_FROZENSET: lambda b, d: frozenset(_as_list(unpack(b, d))),
            EXT_BIGINT: lambda b, d: int.from_bytes(b, "big", signed=True),
            EXT_DATETIME: lambda b, d: _temporal.decode_datetime(unpack(b, d)),
            EXT_DATE: lambda b, d: _temporal.decode_date(unpack(b, d)),
            EXT_TIME: lambda b, d: _temporal.decode_time(unpack(b, d)),
            EXT_TIMEDELTA: lambda b, d: _temporal.decode_timedelta(unpack(b, d)),
            EXT_UUID: lambda b, d: uuid.UUID(bytes=bytes(b)),
            EXT_DECIMAL: lambda b, d: decimal.Decimal(bytes(b).decode("ascii")),
            EXT_REGISTERED: self._decode_registered,
            EXT_EXCEPTION: self._decode_exception,
        }
        # hooks[d] decodes the ext records found at depth d; their payloads sit at d + 1.
        self._hooks = [functools.partial(self._ext_hook, d + 1) for d in range(MAX_DEPTH + 1)]

    @property
    def registry(self) -> TypeRegistry:
        return self._registry

    # -- encoding -----------------------------------------------------------------------------

    def dumps(self, value: object) -> bytes:
        """The value as a checked record (see ``serde/_envelope.py``)."""
        return seal(self.dumps_payload(value))

    def dumps_payload(self, value: object) -> bytes:
        """The value as bare msgpack, without the checksum frame: for layers that check
        the bytes themselves (``EncryptedSerializer``)."""
        try:
            return self._pack(value)
        except _EncodeFailure as failure:
            path = find_path(value, failure.obj, self._children)
            where = "" if path is None else (f" at {_short(path)}" if path else " at the top level")
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
            local.nested = 0
        depth: int = local.depth
        if depth == len(packers):
            packers.append(
                msgpack.Packer(default=self._default, use_bin_type=True, strict_types=True)
            )
        nested: int = local.nested
        if depth >= _UNCOUNTED_LEVELS:
            levels = container_depth(value, _NESTED_BUDGET - nested)
            if levels is None:
                raise _TooDeep
            local.nested = nested + levels
        local.depth = depth + 1
        try:
            data: bytes = packers[depth].pack(value)
            return data
        finally:
            local.depth = depth
            local.nested = nested

    def _default(self, obj: object) -> object:
        tp = type(obj)
        if self._local.depth > MAX_DEPTH:
            raise _EncodeFailure(
                obj,
                f"cannot serialize {qualified_name(tp)}{{where}}: the value nests more than "
                f"{MAX_DEPTH} levels of tuples, sets, registered classes and exceptions "
                "(tether.serde.MAX_DEPTH), too deep to read back safely, or it contains a "
                "reference cycle; store it flatter (a list of nodes instead of a linked list, "
                "say)",
            )
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
        except _TooDeep:
            raise _EncodeFailure(
                obj,
                f"cannot serialize {qualified_name(tp)}{{where}}: the value nests lists and "
                f"dicts more than {_NESTED_BUDGET} levels deep below its "
                f"{_UNCOUNTED_LEVELS}th level of tuples, sets and registered classes, too "
                "deep to store safely, or it contains a reference cycle",
            ) from None
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
        """Decode a record; raises ``CorruptRecordError`` (a ``SerializationError``) when its
        checksum fails, ``EncryptionError`` for an encrypted record."""
        if type(data) is not bytes and not isinstance(data, bytearray | memoryview):
            raise SerializationError(f"expected bytes to decode, got {type(data).__name__}")
        if is_encrypted(data):
            raise _encrypted_error(bytes(data))
        payload = unseal(data)
        try:
            # loads_payload and depth 0 of _unpack, inlined: this runs for every row read
            return msgpack.unpackb(
                payload, ext_hook=self._hooks[0], raw=False, strict_map_key=False, use_list=True
            )
        except SerializationError:
            raise
        except Exception as exc:
            raise _undecodable(exc) from exc

    def loads_many(self, records: Sequence[bytes]) -> list[object]:
        """``[loads(r) for r in records]`` in one pass: each record's frame and checksum are
        checked, then the payloads are decoded by one unpacker, and each value must end
        exactly where its record does, so a corrupt record is never misread as part of its
        neighbour."""
        if len(records) < 2 or any(is_encrypted(r) for r in records):
            return [self.loads(r) for r in records]
        payloads = [unseal(r) for r in records]
        joined = b"".join(payloads)
        unpacker = msgpack.Unpacker(
            ext_hook=self._hooks[0],
            raw=False,
            strict_map_key=False,
            use_list=True,
            max_buffer_size=max(len(joined), 1),
        )
        unpacker.feed(joined)
        out: list[object] = []
        end = 0
        try:
            for payload in payloads:
                out.append(unpacker.unpack())
                end += len(payload)
                if unpacker.tell() != end:
                    raise ValueError(f"record {len(out) - 1} does not end where it should")
        except SerializationError:
            raise
        except Exception as exc:
            raise _undecodable(exc) from exc
        return out

    def loads_payload(self, data: bytes | memoryview) -> object:
        """Decode bare msgpack (``dumps_payload``'s output), without a checksum frame."""
        try:
            return self._unpack(data, 0)
        except SerializationError:
            raise
        except Exception as exc:
            raise _undecodable(exc) from exc

    def _unpack(self, data: bytes | memoryview, depth: int) -> object:
        if depth > MAX_DEPTH:
            raise CorruptRecordError(
                f"cannot decode stored value: it nests more than {MAX_DEPTH} levels of ext "
                "records (tether.serde.MAX_DEPTH); it was crafted, damaged, or written by a "
                "tether without that bound, and cannot be read safely"
            )
        hook = self._hooks[depth]
        if depth < _SHALLOW:
            return msgpack.unpackb(
                data, ext_hook=hook, raw=False, strict_map_key=False, use_list=True
            )
        unpacker = msgpack.Unpacker(
            ext_hook=hook, raw=False, strict_map_key=False, use_list=True, max_buffer_size=0
        )
        unpacker.feed(data)
        value = unpacker.unpack()
        if unpacker.tell() != len(data):
            raise CorruptRecordError("cannot decode stored value: extra bytes in an ext record")
        return value

    def _ext_hook(self, depth: int, code: int, data: bytes) -> object:
        decoder = self._decoders.get(code)
        if decoder is None:
            raise SerializationError(f"cannot decode stored value: unknown ext type code {code}")
        return decoder(data, depth)

    def _decode_registered(self, payload: bytes, depth: int) -> object:
        name, data = _as_list(self._unpack(payload, depth))
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

    def _decode_exception(self, payload: bytes, depth: int) -> object:
        name, message, args = _as_list(self._unpack(payload, depth))
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


def container_depth(value: object, limit: int) -> int | None:
    """How many levels of lists and dicts ``value`` nests (0 for anything else), or None
    when more than ``limit`` (a reference cycle among them is infinitely deep)."""
    depth = 0
    level = [value]
    while True:
        level = [v for v in level if type(v) is list or type(v) is dict]
        if not level:
            return depth
        depth += 1
        if depth > limit:
            return None
        items: list[object] = []
        for container in level:
            if isinstance(container, dict):
                items.extend(container.values())
            else:
                items.extend(cast(list[object], container))
        level = items


def _short(path: str, keep: int = 60) -> str:
    """A long path (a deep value) cut in the middle, so the message stays readable."""
    return path if len(path) <= 2 * keep + 5 else f"{path[:keep]} ... {path[-keep:]}"


def _as_list(value: object) -> list[Any]:
    if type(value) is not list:
        raise SerializationError(f"malformed ext payload: expected an array, got {type(value)}")
    return value


def _undecodable(exc: Exception) -> CorruptRecordError:
    return CorruptRecordError(
        f"cannot decode stored value: corrupt or truncated data ({type(exc).__name__}: {exc})"
    )


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
