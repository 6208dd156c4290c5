"""Damaged stored bytes are caught on read and named: a flipped bit in any checkpoint body,
value row or write row makes every reader raise ``CorruptionError`` naming the thread (or,
for an encrypted store, ``EncryptionError``), on every backend; never a silently changed
state, never a raw TypeError from deep inside the engine."""

from __future__ import annotations

import operator
import random
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Annotated, Any, TypedDict

import pytest
from tests.checkpoint._raw import RawStore

from tether import END, START, StateGraph, interrupt, task
from tether.checkpoint import Saver
from tether.checkpoint._unreadable import unreadable
from tether.engine._metrics import read_metrics
from tether.errors import (
    CheckpointError,
    CorruptionError,
    EncryptionError,
    SerializationError,
)
from tether.serde import EncryptedSerializer, MsgpackSerializer
from tether.serde._envelope import CorruptRecordError

SaverFactory = Callable[..., Saver]
T = "flipped-thread"
CONFIG = {"configurable": {"thread_id": T}}
SAMPLE = 400  # flips per server backend (SQLite and memory flip every bit)


class S(TypedDict, total=False):
    items: Annotated[list, operator.add]
    note: str


@task
def lookup(what: str) -> str:
    return f"looked up {what}"


def graph(saver: Saver) -> Any:
    """Three steps of deltas and a rewritten note, then two parallel tasks: one pauses on an
    interrupt, one finishes after a @task. Every kind of row is then stored."""

    def write(state: S) -> dict[str, Any]:
        n = len(state.get("items", []))
        return {"items": [f"item {n}"], "note": f"note rewritten at step {n}, too long to inline"}

    def ask(state: S) -> dict[str, Any]:
        answer = interrupt({"question": "approve?", "items": len(state["items"])})
        return {"items": [f"answer {answer}"]}

    def side(state: S) -> dict[str, Any]:
        return {"items": [lookup("side").result()]}

    g = StateGraph(S)
    g.add_node("write", write)
    g.add_node("ask", ask)
    g.add_node("side", side)
    g.add_edge(START, "write")
    g.add_conditional_edges("write", lambda s: "write" if len(s["items"]) < 3 else ["ask", "side"])
    g.add_edge("ask", END)
    g.add_edge("side", END)
    return g.compile(checkpointer=saver)


def read_all(app: Any, saver: Saver) -> tuple[Any, ...]:
    """Everything the thread's rows decode to: each checkpoint's state, its tasks' writes,
    interrupts and journal, and the run metrics."""
    return (list(app.get_state_history(CONFIG)), read_metrics(saver, T))


Record = tuple[str, bytes, Callable[[bytes], None]]


def records(saver: Saver, raw: RawStore) -> list[Record]:
    """(name, stored bytes, how to store other bytes in its place) for every row."""
    dump = saver.dump_thread(T)
    out: list[Record] = []
    for c in dump.checkpoints:
        out.append(
            (f"body {c.checkpoint_id}", c.body, lambda b, c=c: raw.put_body(T, c.checkpoint_id, b))
        )
    for v in dump.values:
        out.append(
            (
                f"value {v.channel}@{v.version}",
                v.payload,
                lambda b, v=v: raw.put_value(T, replace(v, payload=b)),
            )
        )
    for w in dump.writes:
        out.append(
            (f"{w.kind} {w.key}", w.payload, lambda b, w=w: raw.put_write(T, replace(w, payload=b)))
        )
    return out


def flips(recs: list[Record], sample: int | None) -> Iterator[tuple[Record, int]]:
    every = [(rec, bit) for rec in recs for bit in range(len(rec[1]) * 8)]
    if sample is not None and sample < len(every):
        every = random.Random(15).sample(every, sample)
    yield from every


def flipped(data: bytes, bit: int) -> bytes:
    damaged = bytearray(data)
    damaged[bit // 8] ^= 1 << (bit % 8)
    return bytes(damaged)


def backend_of(request: pytest.FixtureRequest) -> str:
    return str(request.node.callspec.params["saver_factory"])


def damage_every_record(
    saver_factory: SaverFactory, backend: str, expected: type[CheckpointError], **kw: Any
) -> tuple[int, int]:
    """Flip bits of the stored rows one at a time (every bit on SQLite and in memory, a
    sample on the servers), read everything back after each flip, and put the row back.
    Returns (flips that raised ``expected`` naming the thread, flips made)."""
    saver = saver_factory(**kw)
    graph(saver).invoke({"items": []}, CONFIG)
    reader_saver = saver_factory(same=True, **kw)
    reader = graph(reader_saver)
    original = read_all(reader, reader_saver)
    raw = RawStore(saver, backend)
    every_bit = backend in ("sqlite", "memory") and expected is CorruptionError
    caught = made = 0
    try:
        recs = records(saver, raw)
        kinds = {name.split()[0] for name, _, _ in recs}
        assert kinds >= {"body", "value", "journal", "output", "interrupt", "metrics"}
        for (name, data, put), bit in flips(recs, None if every_bit else SAMPLE):
            put(flipped(data, bit))
            made += 1
            try:
                assert read_all(reader, reader_saver) == original, (name, bit)
            except CheckpointError as exc:
                assert isinstance(exc, expected), (name, bit, exc)
                assert repr(T) in str(exc), (name, bit, exc)
                caught += 1
            finally:
                put(data)
        assert read_all(reader, reader_saver) == original
    finally:
        raw.close()
    return caught, made


def test_every_flipped_bit_is_corruption_naming_the_thread(
    saver_factory: SaverFactory, request: pytest.FixtureRequest
) -> None:
    caught, made = damage_every_record(saver_factory, backend_of(request), CorruptionError)
    # every record is checksummed: no flip even reads back as the original
    assert caught == made >= SAMPLE


def test_flipped_bits_in_an_encrypted_store_fail_authentication(
    saver_factory: SaverFactory, request: pytest.FixtureRequest
) -> None:
    serde = EncryptedSerializer(MsgpackSerializer(), {"k1": bytes(range(32))}, "k1")
    caught, made = damage_every_record(
        saver_factory, backend_of(request), EncryptionError, serde=serde
    )
    assert caught == made == SAMPLE


# -- how an unreadable record is reported ----------------------------------------------------


def test_unreadable_names_the_thread_and_the_record() -> None:
    damaged = unreadable(CorruptRecordError("fails its checksum"), "t1", "checkpoint 'c'")
    assert type(damaged) is CorruptionError
    assert "thread 't1': checkpoint 'c' cannot be read: it is damaged" in str(damaged)
    shape = unreadable(TypeError("cannot unpack non-iterable int"), "t1", "interrupt 'i'")
    assert type(shape) is CorruptionError and "TypeError" in str(shape)
    key = unreadable(EncryptionError("key id 'k9' is not configured"), "t1", "the row")
    assert type(key) is EncryptionError and "'k9'" in str(key) and "'t1'" in str(key)
    unknown = unreadable(SerializationError("no type is registered"), "t1", "the row")
    assert type(unknown) is CheckpointError and "no type is registered" in str(unknown)
