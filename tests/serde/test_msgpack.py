"""MsgpackSerializer: exact round trips, strict encoding errors and safe decoding."""

from __future__ import annotations

import builtins
import dataclasses
import datetime
import decimal
import enum
import subprocess
import sys
import textwrap
import threading
import types
import uuid
import zoneinfo
from typing import Any, NamedTuple

import msgpack
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.errors import EncryptionError, SerializationError
from tether.serde import (
    MAX_DEPTH,
    EncryptedSerializer,
    MsgpackSerializer,
    Serializer,
    StoredException,
    TypeRegistry,
    default_registry,
    default_serializer,
)
from tether.serde._envelope import seal
from tether.serde._msgpack import EXT_EXCEPTION, EXT_REGISTERED

# -- helpers --------------------------------------------------------------------------------------


def canon(value: object) -> object:
    """A structure equal for two values only if they have the same types all the way down."""
    tp = type(value)
    if tp is float:
        return ("float", value.hex())  # type: ignore[attr-defined]
    if tp is list or tp is tuple:
        return (tp.__name__, [canon(v) for v in value])  # type: ignore[attr-defined]
    if tp is dict:
        return ("dict", [(canon(k), canon(v)) for k, v in value.items()])  # type: ignore[attr-defined]
    if tp is set or tp is frozenset:
        return (tp.__name__, sorted(repr(canon(v)) for v in value))  # type: ignore[attr-defined]
    if tp is decimal.Decimal:
        return ("Decimal", str(value))
    if isinstance(value, datetime.datetime | datetime.time):
        return (tp.__name__, repr(value), value.fold)
    return (tp.__name__, value)


@pytest.fixture
def registry() -> TypeRegistry:
    return TypeRegistry()


@pytest.fixture
def ser(registry: TypeRegistry) -> MsgpackSerializer:
    return MsgpackSerializer(registry)


def roundtrip(ser: MsgpackSerializer, value: object) -> object:
    data = ser.dumps(value)
    assert isinstance(data, bytes)
    return ser.loads(data)


def assert_exact(ser: MsgpackSerializer, value: object) -> None:
    assert canon(roundtrip(ser, value)) == canon(value)


# -- types used by the tests ----------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    GREEN = (1, 2)


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mode(enum.StrEnum):
    FAST = "fast"


class Perm(enum.Flag):
    R = 1
    W = 2


@dataclasses.dataclass
class Point:
    x: int
    y: float
    tags: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Frozen:
    name: str
    computed: int = dataclasses.field(init=False, default=0)


@dataclasses.dataclass
class Holder:
    point: Point
    color: Color
    when: datetime.datetime


class Address(pydantic.BaseModel):
    city: str
    zip: str | None = None


class User(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")
    name: str
    address: Address
    ids: tuple[int, ...] = ()


class Pair(NamedTuple):
    left: int
    right: str


class MyError(Exception):
    pass


class Unregistered:
    pass


# -- round trips ----------------------------------------------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.binary()
)
_hashables = st.recursive(
    _scalars,
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
    max_leaves=6,
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(_hashables, inner, max_size=4)
        | st.sets(_hashables, max_size=4)
        | st.frozensets(_hashables, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_roundtrip_nested_builtins(value: object) -> None:
    ser = MsgpackSerializer(TypeRegistry())
    assert canon(ser.loads(ser.dumps(value))) == canon(value)


def test_is_a_serializer(ser: MsgpackSerializer) -> None:
    assert isinstance(ser, Serializer)


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -1,
        2**63 - 1,
        2**63,
        2**64 - 1,
        2**64,
        -(2**63),
        -(2**63) - 1,
        10**100,
        -(10**100),
        1.5,
        float("inf"),
        -0.0,
        "",
        "héllo ✓",
        b"",
        b"\x00\xff",
        [],
        (),
        (1,),
        ((1, 2), [3, (4,)]),
        [(1, 2), {"a": (3,)}],
        {},
        set(),
        frozenset(),
        {1, "a", (2, 3)},
        frozenset({frozenset({1})}),
        {"a": 1, 2: "b", (1, 2): [3], None: 0, 1.5: 1, b"k": 2, frozenset({1}): 3},
        {True: 1},
    ],
)
def test_roundtrip_builtins_exact(ser: MsgpackSerializer, value: object) -> None:
    assert_exact(ser, value)


def test_dict_preserves_insertion_order(ser: MsgpackSerializer) -> None:
    value = {"z": 1, 3: 2, "a": 3, (0,): 4, -1: 5}
    assert list(roundtrip(ser, value)) == list(value)  # type: ignore[call-overload]


def test_nan_roundtrips(ser: MsgpackSerializer) -> None:
    out = roundtrip(ser, [float("nan")])
    assert isinstance(out, list) and out[0] != out[0]


# -- datetime family ------------------------------------------------------------------------------

_PARIS = zoneinfo.ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(
    "value",
    [
        datetime.datetime(2024, 5, 17, 12, 30, 1, 123456),
        datetime.datetime(2024, 5, 17, 12, 30, tzinfo=datetime.UTC),
        datetime.datetime(2024, 5, 17, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))),
        datetime.datetime(
            2024, 5, 17, tzinfo=datetime.timezone(datetime.timedelta(hours=5, minutes=30), "IST")
        ),
        datetime.datetime(
            2024, 5, 17, tzinfo=datetime.timezone(datetime.timedelta(seconds=1, microseconds=7))
        ),
        datetime.datetime(2024, 7, 1, 9, tzinfo=_PARIS),
        datetime.datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=_PARIS),
        datetime.datetime.min,
        datetime.datetime.max,
        datetime.date(1999, 12, 31),
        datetime.time(23, 59, 59, 999999),
        datetime.time(8, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
        datetime.timedelta(days=-3, seconds=5, microseconds=1),
        datetime.timedelta.max,
    ],
)
def test_roundtrip_temporal(ser: MsgpackSerializer, value: object) -> None:
    out = roundtrip(ser, value)
    assert type(out) is type(value)
    assert out == value
    assert repr(out) == repr(value)


def test_tzinfo_is_kept(ser: MsgpackSerializer) -> None:
    value = datetime.datetime(2024, 1, 1, tzinfo=_PARIS)
    out = roundtrip(ser, value)
    assert isinstance(out, datetime.datetime)
    assert isinstance(out.tzinfo, zoneinfo.ZoneInfo) and out.tzinfo.key == "Europe/Paris"
    utc = roundtrip(ser, datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC))
    assert isinstance(utc, datetime.datetime) and utc.tzinfo is datetime.UTC


def test_unsupported_tzinfo_is_refused(ser: MsgpackSerializer) -> None:
    class Odd(datetime.tzinfo):
        def utcoffset(self, dt: datetime.datetime | None) -> datetime.timedelta:
            return datetime.timedelta(0)

    with pytest.raises(SerializationError, match=r'datetime at \["when"\].*Odd'):
        ser.dumps({"when": datetime.datetime(2024, 1, 1, tzinfo=Odd())})


def test_datetime_subclass_is_not_silently_accepted(ser: MsgpackSerializer) -> None:
    class MyDT(datetime.datetime):
        pass

    with pytest.raises(SerializationError, match="not registered"):
        ser.dumps(MyDT(2024, 1, 1))


# -- uuid, decimal --------------------------------------------------------------------------------


def test_uuid(ser: MsgpackSerializer) -> None:
    value = uuid.uuid4()
    out = roundtrip(ser, {"id": value})
    assert out == {"id": value} and type(out["id"]) is uuid.UUID  # type: ignore[index]


@pytest.mark.parametrize(
    "text", ["1.10", "-0", "1E+3", "NaN", "-Infinity", "sNaN", "3." + "14159" * 20]
)
def test_decimal(ser: MsgpackSerializer, text: str) -> None:
    out = roundtrip(ser, decimal.Decimal(text))
    assert type(out) is decimal.Decimal and str(out) == text


# -- registered types -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "member", [Color.RED, Color.GREEN, Level.HIGH, Mode.FAST, Perm.R, Perm.R | Perm.W]
)
def test_enums(registry: TypeRegistry, ser: MsgpackSerializer, member: enum.Enum) -> None:
    registry.register(type(member))
    out = roundtrip(ser, [member])
    assert out == [member] and type(out[0]) is type(member)  # type: ignore[index]


def test_dataclasses(registry: TypeRegistry, ser: MsgpackSerializer) -> None:
    for cls in (Point, Frozen, Holder, Color):
        registry.register(cls)
    frozen = Frozen("n")
    object.__setattr__(frozen, "computed", 42)
    value = {
        "p": Point(1, 2.5, ("a", "b")),
        "f": frozen,
        "h": Holder(Point(0, 0.0), Color.GREEN, datetime.datetime(2024, 1, 1, tzinfo=_PARIS)),
    }
    out = roundtrip(ser, value)
    assert out == value
    assert out["f"].computed == 42  # type: ignore[index]
    assert type(out["p"].tags) is tuple  # type: ignore[index]


def test_pydantic_models(registry: TypeRegistry, ser: MsgpackSerializer) -> None:
    registry.register(User)
    registry.register(Address)
    value = User(name="ann", address=Address(city="Oslo"), ids=(1, 2), nickname="a")
    out = roundtrip(ser, value)
    assert isinstance(out, User)
    assert out == value
    assert out.model_fields_set == value.model_fields_set
    assert out.model_extra == {"nickname": "a"}
    assert type(out.address) is Address and type(out.ids) is tuple


def test_namedtuple(registry: TypeRegistry, ser: MsgpackSerializer) -> None:
    registry.register(Pair)
    out = roundtrip(ser, Pair(1, "x"))
    assert out == Pair(1, "x") and type(out) is Pair


def test_typeddict_is_a_plain_dict(ser: MsgpackSerializer) -> None:
    from typing import TypedDict

    class State(TypedDict):
        a: int
        b: list[str]

    value: State = {"a": 1, "b": ["x"]}
    assert roundtrip(ser, value) == value


def test_custom_codec(registry: TypeRegistry, ser: MsgpackSerializer) -> None:
    class Money:
        def __init__(self, cents: int, currency: str) -> None:
            self.cents, self.currency = cents, currency

    registry.register(
        Money,
        name="money",
        encode=lambda m: [m.cents, m.currency],
        decode=lambda d: Money(*d),
    )
    out = roundtrip(ser, {"price": Money(199, "EUR")})
    assert isinstance(out["price"], Money)  # type: ignore[index]
    assert (out["price"].cents, out["price"].currency) == (199, "EUR")  # type: ignore[index]


def test_failing_custom_encoder_is_reported(registry: TypeRegistry, ser: MsgpackSerializer) -> None:
    class Boom:
        pass

    def encode(obj: Boom) -> object:
        raise RuntimeError("kaput")

    registry.register(Boom, encode=encode, decode=lambda d: Boom())
    with pytest.raises(SerializationError, match=r'Boom at \["x"\]: kaput'):
        ser.dumps({"x": Boom()})


# -- exceptions -----------------------------------------------------------------------------------


def test_builtin_exceptions(ser: MsgpackSerializer) -> None:
    for exc in (ValueError("bad", 2), KeyError("k"), RuntimeError(), TimeoutError("slow")):
        out = roundtrip(ser, exc)
        assert type(out) is type(exc)
        assert out.args == exc.args  # type: ignore[attr-defined]


def test_unicode_decode_error(ser: MsgpackSerializer) -> None:
    exc = UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
    out = roundtrip(ser, exc)
    assert type(out) is UnicodeDecodeError and str(out) == str(exc)


def test_registered_exception(registry: TypeRegistry, ser: MsgpackSerializer) -> None:
    registry.register(MyError, name="my-error")
    out = roundtrip(ser, MyError("oops", 3))
    assert type(out) is MyError and out.args == ("oops", 3)


def test_unregistered_exception_becomes_stored_exception(ser: MsgpackSerializer) -> None:
    out = roundtrip(ser, {"error": MyError("went wrong")})
    err = out["error"]  # type: ignore[index]
    assert type(err) is StoredException
    assert err.type_name == f"{__name__}.MyError"
    assert err.message == "went wrong"
    assert isinstance(err, Exception)
    again = roundtrip(ser, err)
    assert again == err


def test_exception_with_unstorable_args(ser: MsgpackSerializer) -> None:
    out = roundtrip(ser, ValueError(Unregistered()))
    assert type(out) is ValueError and len(out.args) == 1  # type: ignore[arg-type]


# -- langchain-core (faked; never required) -------------------------------------------------------


def test_langchain_messages(monkeypatch: pytest.MonkeyPatch, registry: TypeRegistry) -> None:
    class BaseMessage(pydantic.BaseModel):
        content: str
        type: str = "base"

    class HumanMessage(BaseMessage):
        type: str = "human"

    HumanMessage.__module__ = "langchain_core.messages.human"
    package = types.ModuleType("langchain_core")
    messages = types.ModuleType("langchain_core.messages")
    messages.BaseMessage = BaseMessage  # type: ignore[attr-defined]
    messages.HumanMessage = HumanMessage  # type: ignore[attr-defined]
    package.messages = messages  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "langchain_core", package)
    monkeypatch.setitem(sys.modules, "langchain_core.messages", messages)

    writer = MsgpackSerializer(registry)
    data = writer.dumps([HumanMessage(content="hi")])
    assert registry.entry_for_name("lc:HumanMessage") is not None
    reader = MsgpackSerializer(TypeRegistry())  # resolves "lc:HumanMessage" lazily
    out = reader.loads(data)
    assert out == [HumanMessage(content="hi")] and type(out[0]) is HumanMessage  # type: ignore[index]


def test_langchain_name_without_langchain_installed(ser: MsgpackSerializer) -> None:
    data = msgpack.packb(
        msgpack.ExtType(EXT_REGISTERED, msgpack.packb(["lc:HumanMessage", {}])), use_bin_type=True
    )
    if "langchain_core" in sys.modules:
        pytest.skip("langchain_core is installed")
    with pytest.raises(SerializationError, match="lc:HumanMessage"):
        ser.loads(data)


# -- strictness on write --------------------------------------------------------------------------


def test_unregistered_type_names_type_path_and_fix(ser: MsgpackSerializer) -> None:
    with pytest.raises(SerializationError) as info:
        ser.dumps({"positions": [1, 2, Unregistered()]})
    message = str(info.value)
    assert f"{__name__}.Unregistered" in message
    assert 'at ["positions"][2]' in message
    assert "tether.serde.register_type(" in message


@pytest.mark.parametrize(
    ("value", "path"),
    [
        (Unregistered(), "at the top level"),
        ([(0, Unregistered())], "at [0][1]"),
        ({"a": {5: Unregistered()}}, 'at ["a"][5]'),
        ({"s": {Unregistered()}}, 'at ["s"][<set item>]'),
    ],
)
def test_unregistered_path(ser: MsgpackSerializer, value: object, path: str) -> None:
    with pytest.raises(SerializationError, match=r"Unregistered " + __import__("re").escape(path)):
        ser.dumps(value)


def test_unregistered_inside_registered_dataclass(
    registry: TypeRegistry, ser: MsgpackSerializer
) -> None:
    registry.register(Point)
    with pytest.raises(SerializationError, match=r'at \["p"\]\.tags\[1\]'):
        ser.dumps({"p": Point(1, 2.0, ("a", Unregistered()))})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        type("S", (str,), {})("x"),
        type("I", (int,), {})(1),
        type("D", (dict,), {})(),
        type("L", (list,), {})(),
        Color.RED,
        Point(1, 2.0),
        object(),
        len,
    ],
)
def test_no_fallback_for_unregistered(ser: MsgpackSerializer, value: object) -> None:
    with pytest.raises(SerializationError, match="not registered"):
        ser.dumps(value)


def test_cycle_is_an_error(ser: MsgpackSerializer) -> None:
    value: list[object] = []
    value.append(value)
    with pytest.raises(SerializationError):
        ser.dumps(value)


# -- safety on read -------------------------------------------------------------------------------


def test_unknown_registered_name(registry: TypeRegistry) -> None:
    registry.register(Point)
    data = MsgpackSerializer(registry).dumps(Point(1, 2.0))
    with pytest.raises(SerializationError) as info:
        MsgpackSerializer(TypeRegistry()).loads(data)
    assert f"{__name__}.Point" in str(info.value)
    assert "register the type before reading" in str(info.value).lower()


def _ext(code: int, payload: object) -> bytes:
    return msgpack.packb(msgpack.ExtType(code, msgpack.packb(payload)), use_bin_type=True)


@pytest.mark.parametrize(
    "data",
    [
        _ext(EXT_REGISTERED, ["os.system", "echo pwned"]),
        _ext(EXT_REGISTERED, ["this.x", None]),
        _ext(EXT_REGISTERED, ["lc:os.system", {}]),
        _ext(EXT_EXCEPTION, ["os.system", "echo", ["echo"]]),
        _ext(EXT_EXCEPTION, ["this.Error", "x", None]),
        _ext(EXT_EXCEPTION, ["builtins.__import__", "this", ["this"]]),
        _ext(EXT_EXCEPTION, ["builtins.eval", "1", ["1"]]),
    ],
)
def test_decoding_never_imports(
    monkeypatch: pytest.MonkeyPatch, ser: MsgpackSerializer, data: bytes
) -> None:
    before = set(sys.modules)
    real_import = builtins.__import__

    def no_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name not in sys.modules:
            raise AssertionError(f"decode tried to import {name}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_import)
    try:
        out = ser.loads(data)
    except SerializationError:
        pass
    else:  # exception records of unknown classes come back inert
        assert type(out) is StoredException
    finally:
        monkeypatch.undo()
    assert set(sys.modules) == before
    assert "this" not in sys.modules


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_garbage_raises_serialization_error_only(data: bytes) -> None:
    ser = MsgpackSerializer(TypeRegistry())
    try:
        ser.loads(data)
    except SerializationError:
        pass


@pytest.mark.parametrize(
    "data",
    [b"\xc1", b"\x92\x01", b"\x91\x01\x01", b"\xa3ab\xff", b"\x81\x90\x01", b"\xd4\x63\x00"],
)
def test_garbage_examples(ser: MsgpackSerializer, data: bytes) -> None:
    with pytest.raises(SerializationError):
        ser.loads(data)


def test_malformed_ext_payloads(ser: MsgpackSerializer) -> None:
    for data in (
        _ext(1, 5),
        _ext(5, [2024, 13, 1, 0, 0, 0, 0, 0, None]),
        _ext(5, [2024, 1, 1, 0, 0, 0, 0, 0, [1, "../../etc/passwd"]]),
        _ext(9, "x"),
        _ext(2, [[1]]),
        msgpack.packb(msgpack.ExtType(10, b"not a number")),
        _ext(EXT_REGISTERED, "x"),
    ):
        with pytest.raises(SerializationError):
            ser.loads(data)


def test_truncated(registry: TypeRegistry, ser: MsgpackSerializer) -> None:
    registry.register(Point)
    data = ser.dumps({"a": [1, (2, 3)], "p": Point(1, 2.0), "t": "x" * 40})
    for cut in range(len(data)):
        with pytest.raises(SerializationError):
            ser.loads(data[:cut])


def test_not_bytes(ser: MsgpackSerializer) -> None:
    with pytest.raises(SerializationError):
        ser.loads("abc")  # type: ignore[arg-type]


def test_encrypted_record_through_plain_serializer(ser: MsgpackSerializer) -> None:
    enc = EncryptedSerializer(ser, {"k-2024": b"\x01" * 32}, "k-2024")
    with pytest.raises(EncryptionError, match=r"encrypted.*'k-2024'"):
        ser.loads(enc.dumps({"a": 1}))


# -- misc -----------------------------------------------------------------------------------------


def test_default_serializer_is_shared() -> None:
    assert default_serializer() is default_serializer()
    assert default_serializer().registry is default_registry


def test_threads_share_a_serializer(registry: TypeRegistry) -> None:
    registry.register(Point)
    ser = MsgpackSerializer(registry)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(300):
                value = {"i": (i, j), "p": [Point(i, float(j))], "s": {i, j}}
                assert ser.loads(ser.dumps(value)) == value
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_plain_values_are_plain_msgpack(ser: MsgpackSerializer) -> None:
    value = {"a": [1, 2.5, None, True, "x", b"y"], 3: {"n": -(2**63)}}
    plain = msgpack.packb(value, use_bin_type=True)
    assert ser.dumps_payload(value) == plain
    assert ser.dumps(value) == seal(plain)  # framed: 2 bytes + CRC-32 + the msgpack


# -- depth ----------------------------------------------------------------------------------------


@dataclasses.dataclass
class Link:
    value: int
    next: Link | None = None


def nested(kind: str, depth: int) -> object:
    """A value with ``depth`` ext records inside one another."""
    value: object = 0
    for i in range(depth):
        if kind == "tuple":
            value = (value,)
        elif kind == "frozenset":
            value = frozenset([value])
        elif kind == "mixed":
            value = frozenset([value]) if i % 2 else (value, i)
        else:
            value = Link(i, value)  # type: ignore[arg-type]
    return value


KINDS = ["tuple", "frozenset", "mixed", "linked-list"]


@pytest.mark.parametrize("kind", KINDS)
def test_values_up_to_max_depth_round_trip(
    registry: TypeRegistry, ser: MsgpackSerializer, kind: str
) -> None:
    registry.register(Link)
    value = nested(kind, MAX_DEPTH)
    assert ser.loads(ser.dumps(value)) == value


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 250, 3000])
def test_deeper_values_are_refused_on_write(
    registry: TypeRegistry, ser: MsgpackSerializer, kind: str, depth: int
) -> None:
    registry.register(Link)
    with pytest.raises(SerializationError, match=r"MAX_DEPTH") as info:
        ser.dumps(nested(kind, depth))
    assert f"more than {MAX_DEPTH} levels" in str(info.value)
    assert len(str(info.value)) < 1000  # the path to the culprit is cut, not 250 levels long


def test_lists_and_dicts_between_ext_records_do_not_count(ser: MsgpackSerializer) -> None:
    value: object = 0
    for _ in range(MAX_DEPTH):
        value = ([{"k": [value]}],)
    assert ser.loads(ser.dumps(value)) == value


def _child(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter: a stack overflow there is a signal, not a hang."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_crafted_deep_bytes_are_refused_not_crashing() -> None:
    # Bytes no tether writes: 5,000 tuples inside one another, bare (from before checksums)
    # and framed with a valid checksum. Reading them used to overflow the C stack.
    result = _child(
        """
        import msgpack
        from tether.serde import default_serializer
        from tether.serde._envelope import seal
        data = msgpack.packb(0)
        for _ in range(5000):
            data = msgpack.packb(msgpack.ExtType(1, data))
        for record in (data, seal(data)):
            try:
                default_serializer().loads(record)
            except Exception as exc:
                print(type(exc).__name__, exc)
        """
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert all(ln.startswith("CorruptRecordError") and "MAX_DEPTH" in ln for ln in lines)


def test_max_depth_values_read_back_on_a_small_thread_stack() -> None:
    # Each ext level used to cost one msgpack.unpackb context (~40 KB of C stack): a 100-level
    # value could not be read on a 512 KB thread stack.
    result = _child(
        """
        import threading
        from tether.serde import MAX_DEPTH, default_serializer
        ser = default_serializer()
        value = 0
        for _ in range(MAX_DEPTH):
            value = (value,)
        data = ser.dumps(value)
        out = []
        threading.stack_size(512 * 1024)
        worker = threading.Thread(target=lambda: out.append(ser.loads(data) == value))
        worker.start()
        worker.join()
        print(out)
        """
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert result.stdout.strip() == "[True]"


def test_deep_lists_inside_many_ext_records_are_refused_not_crashing() -> None:
    # 100 tuples each wrapping 500 lists: msgpack's C packer recursed 50,000 levels deep.
    result = _child(
        """
        from tether.serde import default_serializer
        value = 0
        for _ in range(100):
            for _ in range(500):
                value = [value]
            value = (value,)
        try:
            default_serializer().dumps(value)
        except Exception as exc:
            print(type(exc).__name__, exc)
        """
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert result.stdout.startswith("SerializationError")
    assert "too deep to store safely" in result.stdout


# -- loads_many ------------------------------------------------------------------------------------


MANY: list[object] = [
    [1, [{"role": "ai", "content": "hi"}]],
    ("tuple", {1, 2}),
    datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
    2**80,
    "",
    None,
    b"\x00bytes",
]


def test_loads_many_equals_loads_one_by_one() -> None:
    serde = default_serializer()
    records = [serde.dumps(v) for v in MANY]
    got = serde.loads_many(records)
    assert got == [serde.loads(r) for r in records] == MANY
    assert [canon(v) for v in got] == [canon(v) for v in MANY]
    assert serde.loads_many([]) == []
    assert serde.loads_many(records[:1]) == MANY[:1]


@pytest.mark.parametrize("cut", ["short", "long"])
def test_loads_many_never_reads_across_a_record_boundary(cut: str) -> None:
    """A record one byte short (or long) must fail, even when the joined bytes would still
    decode to the right number of values."""
    serde = default_serializer()
    records = [serde.dumps([1, 2, 3]), serde.dumps(7), serde.dumps("abc")]
    if cut == "short":
        records[0] = records[0][:-1]  # the array now ends on the next record's first byte
    else:
        records[1] = records[1] + b"\x05"
    with pytest.raises(SerializationError, match=r"corrupt|truncated|checksum"):
        serde.loads_many(records)


def test_loads_many_of_an_encrypted_record_names_the_problem() -> None:
    serde = default_serializer()
    enc = EncryptedSerializer(serde, {"k1": bytes(32)}, "k1")
    with pytest.raises(EncryptionError):
        serde.loads_many([serde.dumps(1), enc.dumps(2)])
