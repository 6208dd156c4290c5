"""TypeRegistry: one-call registration, conflicts, and schema walking."""

from __future__ import annotations

import dataclasses
import datetime
import enum
from typing import Annotated, Literal, NamedTuple, NotRequired, Optional, TypedDict, Union

import pydantic
import pytest

from tether.errors import SerializationError
from tether.serde import MsgpackSerializer, TypeRegistry, default_registry, register_type


class Status(enum.Enum):
    OPEN = "open"
    DONE = "done"


class Priority(enum.IntEnum):
    LOW = 1


class Kind(enum.Enum):
    A = "a"


@dataclasses.dataclass
class Step:
    name: str
    status: Status


@dataclasses.dataclass
class Plan:
    steps: list[Step]
    parent: Optional[Plan] = None  # noqa: UP045 - exercise typing.Optional
    meta: dict[str, Meta] = dataclasses.field(default_factory=dict)


class Meta(pydantic.BaseModel):
    priority: Priority
    tags: frozenset[str] = frozenset()


class Doc(pydantic.BaseModel):
    title: str
    meta: Meta | None = None


class Coord(NamedTuple):
    lat: float
    kind: Kind


class State(TypedDict):
    plan: Annotated[Plan, "reducer"]
    docs: NotRequired[list[Union[Doc, None]]]  # noqa: UP007
    coords: tuple[Coord, ...]
    mode: Literal[Kind.A]
    when: datetime.datetime


class Plain:
    def __init__(self, v: int) -> None:
        self.v = v


class Broken(TypedDict):
    x: DoesNotExist  # type: ignore[name-defined]  # noqa: F821


def test_default_name_and_decorator_use() -> None:
    reg = TypeRegistry()
    assert reg.register(Step) is Step
    entry = reg.entry_for_type(Step)
    assert entry is not None and entry.name == f"{__name__}.Step"
    assert reg.entry_for_name(f"{__name__}.Step") is entry
    assert reg.names() == [f"{__name__}.Step"]


def test_custom_name_keeps_old_records_readable_after_rename() -> None:
    old = TypeRegistry()
    old.register(Step, name="steps.Step")
    old.register(Status)
    data = MsgpackSerializer(old).dumps(Step("a", Status.OPEN))

    @dataclasses.dataclass
    class RenamedStep:
        name: str
        status: Status

    new = TypeRegistry()
    new.register(RenamedStep, name="steps.Step")
    new.register(Status)
    out = MsgpackSerializer(new).loads(data)
    assert out == RenamedStep("a", Status.OPEN)


def test_register_is_idempotent() -> None:
    reg = TypeRegistry()
    reg.register(Step)
    reg.register(Step)
    assert reg.names() == [f"{__name__}.Step"]


def test_name_conflict() -> None:
    reg = TypeRegistry()
    reg.register(Step, name="x")
    with pytest.raises(SerializationError, match="already registered"):
        reg.register(Plan, name="x")


def test_same_class_two_names() -> None:
    reg = TypeRegistry()
    reg.register(Step, name="x")
    with pytest.raises(SerializationError, match="already registered as 'x'"):
        reg.register(Step, name="y")


def test_redefined_class_replaces_old_registration() -> None:
    reg = TypeRegistry()

    def make() -> type:
        @dataclasses.dataclass
        class Local:
            a: int

        return Local

    first, second = make(), make()
    reg.register(first)
    reg.register(second)
    entry = reg.entry_for_name(f"{__name__}.{second.__qualname__}")
    assert entry is not None and entry.cls is second
    assert not reg.is_registered(first)


def test_plain_class_needs_codec() -> None:
    reg = TypeRegistry()
    with pytest.raises(SerializationError, match="encode= and decode="):
        reg.register(Plain)
    with pytest.raises(SerializationError, match="both encode= and decode="):
        reg.register(Plain, encode=lambda p: p.v)
    reg.register(Plain, encode=lambda p: p.v, decode=Plain)
    ser = MsgpackSerializer(reg)
    out = ser.loads(ser.dumps(Plain(3)))
    assert isinstance(out, Plain) and out.v == 3


@pytest.mark.parametrize("cls", [int, str, tuple, dict, datetime.datetime])
def test_native_types_cannot_be_registered(cls: type) -> None:
    with pytest.raises(SerializationError, match="natively"):
        TypeRegistry().register(cls)


def test_not_a_class() -> None:
    with pytest.raises(SerializationError, match="expects a class"):
        TypeRegistry().register(Step("a", Status.OPEN))  # type: ignore[type-var]


def test_register_type_uses_default_registry() -> None:
    @dataclasses.dataclass
    class OnlyForDefault:
        n: int

    assert register_type(OnlyForDefault, name="tests.OnlyForDefault") is OnlyForDefault
    assert default_registry.entry_for_name("tests.OnlyForDefault") is not None


def test_register_schema_walks_everything() -> None:
    reg = TypeRegistry()
    reg.register_schema(State)
    assert reg.names() == sorted(
        f"{__name__}.{cls.__qualname__}"
        for cls in (Plan, Step, Status, Meta, Priority, Doc, Coord, Kind)
    )
    ser = MsgpackSerializer(reg)
    state: State = {
        "plan": Plan(
            [Step("s", Status.DONE)],
            parent=Plan([]),
            meta={"m": Meta(priority=Priority.LOW, tags=frozenset({"x"}))},
        ),
        "docs": [Doc(title="t", meta=Meta(priority=Priority.LOW)), None],
        "coords": (Coord(1.5, Kind.A),),
        "mode": Kind.A,
        "when": datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
    }
    assert ser.loads(ser.dumps(state)) == state


@pytest.mark.parametrize(
    "annotation",
    [
        list[Step],
        dict[str, Optional[Step]],  # noqa: UP045
        Annotated[Step | None, "x"],
        tuple[int, Step],
        set[Status],
        Literal[Status.OPEN, "x"],
    ],
)
def test_register_schema_annotations(annotation: object) -> None:
    reg = TypeRegistry()
    reg.register_schema(annotation)
    assert reg.is_registered(Status)


def test_register_schema_pydantic_and_dataclass_roots() -> None:
    reg = TypeRegistry()
    reg.register_schema(Doc)
    assert {Doc, Meta, Priority} <= {reg.entry_for_name(n).cls for n in reg.names()}  # type: ignore[union-attr]
    reg2 = TypeRegistry()
    reg2.register_schema(Plan)  # recursive through Optional["Plan"]
    assert reg2.is_registered(Plan) and reg2.is_registered(Meta)


def test_register_schema_ignores_plain_types() -> None:
    reg = TypeRegistry()
    reg.register_schema(dict[str, list[int | None]])
    reg.register_schema(int)
    reg.register_schema(None)
    assert reg.names() == []


def test_register_schema_unresolvable_forward_ref() -> None:
    with pytest.raises(SerializationError, match="Broken"):
        TypeRegistry().register_schema(Broken)
