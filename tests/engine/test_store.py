"""The snapshot policy of reducer channels, the checkpoint ids, and reading a checkpoint's
values (one pass over a chain, once per checkpoint in a process)."""

from __future__ import annotations

import datetime
import operator
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from tether import END, START, CheckpointError, StateGraph, ThreadBusyError, add_messages
from tether.checkpoint import InMemorySaver, SqliteSaver, ValueRow
from tether.engine._spec import Channel, reader_spec
from tether.engine._store import (
    MAX_CHAIN,
    SMALL_CHAIN,
    SNAPSHOT_FLOOR,
    SNAPSHOT_RATIO,
    VALUE_CACHE,
    ChainStat,
    ThreadState,
    fold_writes,
    needs_snapshot,
    new_checkpoint_id,
)
from tether.engine._update import get_state
from tether.serde import default_serializer


def stat(snapshot: int, deltas_bytes: int, deltas: int) -> ChainStat:
    return ChainStat(
        base=1, last=1 + deltas, snapshot_bytes=snapshot, delta_bytes=deltas_bytes, deltas=deltas
    )


def test_big_values_snapshot_when_deltas_outweigh_the_snapshot() -> None:
    snap = 50_000
    assert not needs_snapshot(stat(snap, SNAPSHOT_RATIO * snap - 200, 100), 200)
    assert needs_snapshot(stat(snap, SNAPSHOT_RATIO * snap - 200, 100), 201)


def test_small_snapshots_are_measured_against_the_floor() -> None:
    assert not needs_snapshot(stat(1, SNAPSHOT_RATIO * SNAPSHOT_FLOOR - 10, 10), 10)
    assert needs_snapshot(stat(1, SNAPSHOT_RATIO * SNAPSHOT_FLOOR - 10, 10), 11)


def test_small_values_snapshot_every_small_chain_deltas() -> None:
    assert not needs_snapshot(stat(3, 3 * (SMALL_CHAIN - 1), SMALL_CHAIN - 1), 3)
    assert needs_snapshot(stat(3, 3 * SMALL_CHAIN, SMALL_CHAIN), 3)
    # a big snapshot is not rewritten just because many small deltas followed it
    assert not needs_snapshot(stat(50_000, 3 * SMALL_CHAIN, SMALL_CHAIN), 3)
    assert needs_snapshot(stat(50_000, 3 * MAX_CHAIN, MAX_CHAIN), 3, one_pass_fold=False)
    assert not needs_snapshot(stat(50_000, 3 * MAX_CHAIN, MAX_CHAIN), 3)


def test_snapshots_cost_at_most_one_eighth_more_than_the_final_value() -> None:
    """Appending equal messages: the sum of all snapshots stays within 1 + 1/ratio of the
    final value, so storage grows linearly."""
    msg = 200
    chain = ChainStat(1, 1, 1, 0, 0)
    snapshots = 0
    for n in range(1, 5000):
        if needs_snapshot(chain, msg):
            snapshots += n * msg
            chain = ChainStat(n, n, n * msg, 0, 0)
        else:
            chain = ChainStat(
                chain.base, n, chain.snapshot_bytes, chain.delta_bytes + msg, chain.deltas + 1
            )
    assert snapshots <= (1 + 1 / SNAPSHOT_RATIO) * 5000 * msg


def test_checkpoint_ids_are_uuid7_and_time_ordered() -> None:
    ids = [new_checkpoint_id() for _ in range(200)]
    assert all(uuid.UUID(i).version == 7 for i in ids)
    assert len(set(ids)) == 200
    assert [i[:13] for i in ids] == sorted(i[:13] for i in ids)


class _S(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    big: str


def test_a_failed_commit_changes_nothing_in_memory() -> None:
    g = StateGraph(_S)
    g.add_node("a", lambda s: {})
    g.add_edge(START, "a")
    saver = InMemorySaver()
    app = g.compile(checkpointer=saver)
    cfg = {"configurable": {"thread_id": "t"}}
    app.invoke({"log": ["x"], "big": "y" * 100}, cfg)
    state = ThreadState.load(app.spec, saver, "t", saver.get_head("t"))
    app.invoke({"log": ["other writer"]}, cfg)  # the head moves on
    before = (dict(state.versions), dict(state.chains), dict(state.metadata))
    state.values["log"] = [*state.values["log"], "mine"]
    state.record({"log": [["mine"]], "big": ["z" * 100]})
    state.values["big"] = "z" * 100
    state.checkpoint_id = new_checkpoint_id()
    with pytest.raises(ThreadBusyError):
        state.commit(source="loop", fence=None, durable=False)
    assert (dict(state.versions), dict(state.chains), dict(state.metadata)) == before
    assert state.dirty == {"log", "big"}


# -- reading values ------------------------------------------------------------------------------


def chat(saver: Any, steps: int = 120, reducer: Any = operator.add) -> Any:
    """One message a step for ``steps`` steps, folded with ``reducer``."""
    fields = {"messages": Annotated[list[Any], reducer], "i": int}
    State = TypedDict("State", fields, total=False)  # type: ignore[misc]

    def talk(s: Any) -> dict[str, Any]:
        i = s.get("i", 0) + 1
        return {"messages": [{"role": "ai", "content": f"message {i} " + "x" * 150}], "i": i}

    g = StateGraph(State)
    g.add_node("talk", talk)
    g.add_edge(START, "talk")
    g.add_conditional_edges("talk", lambda s: "talk" if s["i"] < steps else END)
    return g.compile(checkpointer=saver)


class Counting:
    """The default serializer, counting decode calls and records decoded."""

    def __init__(self) -> None:
        self.inner = default_serializer()
        self.calls = 0
        self.records = 0

    def dumps(self, value: object) -> bytes:
        return self.inner.dumps(value)

    def loads(self, data: bytes) -> object:
        self.calls += 1
        self.records += 1
        return self.inner.loads(data)

    def loads_many(self, records: Sequence[bytes]) -> list[object]:
        self.calls += 1
        self.records += len(records)
        return self.inner.loads_many(records)


def rows_read(saver: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records the number of value rows each ``get_values`` call returns."""
    counts: list[int] = []
    original = saver.get_values

    def get_values(thread_id: str, wanted: Any) -> dict[str, list[ValueRow]]:
        out: dict[str, list[ValueRow]] = original(thread_id, wanted)
        counts.append(sum(len(c) for c in out.values()))
        return out

    monkeypatch.setattr(saver, "get_values", get_values)
    return counts


def test_a_chain_is_decoded_in_one_pass(tmp_path: Path) -> None:
    serde = Counting()
    app = chat(SqliteSaver(tmp_path / "c.db", serde=serde))
    config = {"configurable": {"thread_id": "t"}, "recursion_limit": 500}
    app.invoke({"messages": []}, config)
    state = ThreadState.load(app.spec, app.checkpointer, "t", app.checkpointer.get_head("t"))
    chain = app.checkpointer.get_values("t", state.versions)["messages"]
    assert len(chain) > 10
    VALUE_CACHE.clear()
    serde.calls = serde.records = 0
    snap = app.get_state(config)
    assert len(snap.values["messages"]) == 120
    assert serde.records >= len(chain)  # a snapshot and its deltas...
    assert serde.calls <= 2  # ...in one call (plus the checkpoint body)


def test_get_state_reads_each_checkpoint_once_and_hands_out_fresh_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saver = SqliteSaver(tmp_path / "c.db")
    app = chat(saver)
    config = {"configurable": {"thread_id": "t"}, "recursion_limit": 500}
    app.invoke({"messages": []}, config)
    reads = rows_read(saver, monkeypatch)
    first = app.get_state(config)
    assert len(reads) == 1 and reads[0] > 1
    first.values["messages"].clear()
    second = app.get_state(config)
    assert len(reads) == 1  # the second read came from the cache
    assert len(second.values["messages"]) == 120
    second.values["messages"][0]["content"] = "changed by the caller"
    assert app.get_state(config).values["messages"][0]["content"].startswith("message 1 ")
    # a run loads its head from the cache too, and stores the same chain stats
    app.invoke({"messages": [{"role": "user", "content": "more"}], "i": 0}, config)
    assert len(reads) == 1
    assert len(app.get_state(config).values["messages"]) == 120 + 1 + 120
    VALUE_CACHE.clear()
    assert len(app.get_state(config).values["messages"]) == 241


def test_a_thread_made_again_is_not_served_the_old_values(tmp_path: Path) -> None:
    """Versions restart when a thread is deleted and created again; checkpoint ids do not."""
    saver = SqliteSaver(tmp_path / "c.db")
    config = {"configurable": {"thread_id": "t"}, "recursion_limit": 500}
    chat(saver, steps=30).invoke({"messages": [{"role": "user", "content": "old"}]}, config)
    assert chat(saver).get_state(config).values["messages"][0]["content"] == "old"
    saver.delete_thread("t")
    chat(saver, steps=30).invoke({"messages": [{"role": "user", "content": "new"}]}, config)
    assert chat(saver).get_state(config).values["messages"][0]["content"] == "new"


def test_a_graph_with_another_reducer_folds_for_itself(tmp_path: Path) -> None:
    def keep_last(left: list[Any], right: list[Any]) -> list[Any]:
        return right

    saver = SqliteSaver(tmp_path / "c.db")
    config = {"configurable": {"thread_id": "t"}, "recursion_limit": 500}
    chat(saver, steps=10).invoke({"messages": []}, config)
    assert len(chat(saver, steps=10).get_state(config).values["messages"]) == 10
    assert len(chat(saver, reducer=keep_last).get_state(config).values["messages"]) == 1
    # and a reader without the graph cannot fold a custom reducer's deltas, cached or not
    custom = {"configurable": {"thread_id": "custom"}, "recursion_limit": 500}
    chat(saver, steps=10, reducer=keep_last).invoke({"messages": []}, custom)
    assert len(chat(saver, reducer=keep_last).get_state(custom).values["messages"]) == 1
    with pytest.raises(CheckpointError, match="custom reducer"):
        get_state(reader_spec(), saver, custom)


def shape(value: Any) -> Any:
    """Equal for two values only if their types match all the way down."""
    if isinstance(value, dict):
        return ("dict", [(shape(k), shape(v)) for k, v in value.items()])
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return (type(value).__name__, [shape(v) for v in items])
    return (type(value).__name__, value)


@pytest.mark.parametrize("extra", [None, datetime.datetime(2024, 5, 1, tzinfo=datetime.UTC)])
def test_a_cached_value_keeps_every_type(tmp_path: Path, extra: Any) -> None:
    """Values folded from plain builtins are cached with marshal, others with the
    serializer; both must give back exactly what the stored rows decode to."""

    def talk(s: Any) -> dict[str, Any]:
        i = s.get("i", 0) + 1
        item = {"n": i, "t": (i, "x"), "s": {i}, "f": frozenset({"a"}), "big": 2**70 + i}
        item.update({"b": b"\x00", "x": 1.5, "no": None, "ok": True, 7: [[i]], "when": extra})
        return {"messages": [item], "i": i}

    g = StateGraph(TypedDict("S", {"messages": Annotated[list[Any], operator.add], "i": int}))
    g.add_node("talk", talk)
    g.add_edge(START, "talk")
    g.add_conditional_edges("talk", lambda s: "talk" if s["i"] < 40 else END)
    saver = SqliteSaver(tmp_path / "c.db")
    app = g.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "t"}, "recursion_limit": 100}
    app.invoke({"messages": []}, config)
    snap = app.get_state(config)  # read from storage, then cached
    cold = snap.values
    entry = VALUE_CACHE.get(saver, "t", snap.config["configurable"]["checkpoint_id"])
    assert entry is not None and entry["messages"].marshalled is (extra is None)
    warm = app.get_state(config).values  # decoded from the cache
    assert warm == cold and shape(warm) == shape(cold)
    assert len(warm["messages"]) == 40 and warm["messages"][-1]["when"] == extra


def test_reading_folds_messages_exactly_as_add_messages() -> None:
    channel = Channel("messages", add_messages, list)

    def m(i: int, text: str = "hi", **extra: Any) -> dict[str, Any]:
        return {"id": f"m{i}", "role": "ai", "content": text, **extra}

    left = [m(1), m(2)]
    cases: list[list[Any]] = [
        [[m(3)], [m(4), m(5)]],  # a plain append: no per-message work
        [[m(3)], m(4), (m(5), m(6))],  # single messages and tuples are writes too
        [[m(3)], [m(1, "edited")]],  # an id seen before replaces that message
        [[m(3), m(3, "again")]],  # ... also within the new writes
        [[m(3)], []],
    ]
    for writes in cases:
        assert fold_writes(channel, left, writes) == add_messages(left, fold_many_input(writes))
    without_id = fold_writes(channel, left, [[{"role": "user", "content": "no id"}]])
    assert [x["content"] for x in without_id] == ["hi", "hi", "no id"]
    assert without_id[-1]["id"]  # add_messages gave it one
    assert left == [m(1), m(2)]  # never changed in place


def fold_many_input(writes: list[Any]) -> list[Any]:
    flat: list[Any] = []
    for w in writes:
        flat.extend(w if isinstance(w, list | tuple) else [w])
    return flat
