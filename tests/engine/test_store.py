"""The snapshot policy of reducer channels and the checkpoint ids."""

from __future__ import annotations

import operator
import uuid
from typing import Annotated, TypedDict

import pytest

from tether import START, StateGraph, ThreadBusyError
from tether.checkpoint import InMemorySaver
from tether.engine._store import (
    MAX_CHAIN,
    SMALL_CHAIN,
    SNAPSHOT_FLOOR,
    SNAPSHOT_RATIO,
    ChainStat,
    ThreadState,
    needs_snapshot,
    new_checkpoint_id,
)


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
