"""Delta chains that loop, skip or disagree are a CorruptionError naming the thread, the
channel and the version, on every backend; never a read that hangs with growing memory."""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

import pytest
from tests.checkpoint._raw import RawStore

from tether import END, START, StateGraph
from tether.checkpoint import Saver, ValueRow
from tether.checkpoint._chains import chain_from_rows, walk_chain
from tether.errors import CorruptionError

SaverFactory = Callable[..., Saver]
T = "looped-thread"
STEPS = 6


def rows(*specs: tuple[int, int | None, int]) -> list[ValueRow]:
    return [ValueRow("log", v, prev, base, b"") for v, prev, base in specs]


def test_a_chain_is_read_oldest_first() -> None:
    chain = chain_from_rows(T, "log", 5, rows((1, None, 1), (3, 1, 1), (5, 3, 1), (4, 1, 1)))
    assert [r.version for r in chain] == [1, 3, 5]


@pytest.mark.parametrize(
    ("stored", "version"),
    [
        (rows((1, None, 1), (3, 5, 1), (5, 3, 1)), 5),  # 5 -> 3 -> 5 -> ...
        (rows((1, None, 1), (5, 5, 1)), 5),  # points at itself
        (rows((1, None, 1), (3, 1, 1), (5, 7, 1), (7, 3, 1)), 5),  # forward
    ],
    ids=["two-row-loop", "self-loop", "points-forward"],
)
def test_loops_are_refused(stored: list[ValueRow], version: int) -> None:
    with pytest.raises(CorruptionError) as info:
        chain_from_rows(T, "log", version, stored)
    message = str(info.value)
    assert repr(T) in message and "'log'" in message and "loop" in message


def test_missing_rows_and_wrong_bases_are_corruption() -> None:
    with pytest.raises(CorruptionError, match=r"'log' at version 3 is missing"):
        chain_from_rows(T, "log", 5, rows((5, 3, 1)))
    with pytest.raises(CorruptionError, match=r"version 5 says its chain starts at version 2"):
        chain_from_rows(T, "log", 5, rows((1, None, 1), (5, 1, 2)))
    with pytest.raises(CorruptionError, match=r"version 1 says its chain starts at version 0"):
        chain_from_rows(T, "log", 1, rows((1, None, 0)))
    with pytest.raises(CorruptionError, match=r"broken at version 4"):
        walk_chain(T, "log", 4, lambda _c, _v: ValueRow("log", 3, None, 3, b""))


# -- on every backend, with the loop written straight into storage ----------------------------


class Log(TypedDict, total=False):
    log: Annotated[list, operator.add]


def log_graph(saver: Saver) -> Any:
    def step(state: Log) -> dict[str, Any]:
        return {"log": [f"entry {len(state.get('log', []))}"]}

    g = StateGraph(Log)
    g.add_node("step", step)
    g.add_edge(START, "step")
    g.add_conditional_edges("step", lambda s: "step" if len(s["log"]) < STEPS else END)
    return g.compile(checkpointer=saver)


def log_rows(saver: Saver) -> list[ValueRow]:
    return sorted(
        (v for v in saver.dump_thread(T).values if v.channel == "log"), key=lambda v: v.version
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("loop", ["two-row-loop", "self-loop"])
def test_a_looped_chain_is_corruption_on_every_backend(
    saver_factory: SaverFactory, request: pytest.FixtureRequest, loop: str
) -> None:
    backend = str(request.node.callspec.params["saver_factory"])
    saver = saver_factory()
    app = log_graph(saver)
    config = {"configurable": {"thread_id": T}}
    app.invoke({"log": []}, config)
    stored = log_rows(saver)
    head, older = stored[-1], stored[-2]
    assert head.prev == older.version and older.prev is not None  # a chain of deltas
    raw = RawStore(saver, backend)
    try:
        if loop == "two-row-loop":
            raw.put_value(T, dataclasses.replace(older, prev=head.version))
        else:
            raw.put_value(T, dataclasses.replace(head, prev=head.version))
    finally:
        raw.close()
    reader = log_graph(saver_factory(same=True))
    for read in (
        lambda: reader.get_state(config),
        lambda: reader.invoke(None, config),
        lambda: list(reader.get_state_history(config)),
        lambda: saver.prune(T, keep_last=1),
    ):
        with pytest.raises(CorruptionError) as info:
            read()
        message = str(info.value)
        assert repr(T) in message and "'log'" in message
        bad = head.version if loop == "self-loop" else older.version
        assert f"version {bad}" in message
