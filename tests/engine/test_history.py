"""get_state_history: every snapshot equals get_state at its checkpoint, and the work grows
linearly with the checkpoints returned (counted in value rows read and records decoded,
never timed)."""

from __future__ import annotations

import operator
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from tether import END, START, ConfigError, StateGraph, add_messages
from tether.checkpoint import InMemorySaver, Saver, SqliteSaver, ValueRow
from tether.engine import _history
from tether.serde import default_serializer


def cfg(thread: str = "t", **extra: Any) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread, **extra}, "recursion_limit": 10_000}


def merge_in_place(left: dict[str, int], right: dict[str, int]) -> dict[str, int]:
    """A custom reducer that changes its left argument (allowed: tether must cope)."""
    for k, v in right.items():
        left[k] = left.get(k, 0) + v
    return left


class Rich(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    messages: Annotated[list[Any], add_messages]
    tally: Annotated[dict[str, int], merge_in_place]
    note: str
    i: int
    n: int


def rich_graph(saver: Saver) -> Any:
    def tick(s: Rich) -> dict[str, Any]:
        i = s.get("i", 0) + 1
        out: dict[str, Any] = {
            "log": [f"entry {i:04d} " + "y" * 40],
            "messages": [{"id": f"m{i}", "role": "ai", "content": f"reply {i}"}],
            "tally": {f"k{i % 3}": 1},
            "note": f"note {i:04d} rewritten every step " + "x" * 20,
            "i": i,
        }
        if i % 5 == 0:  # an edit by id replaces an earlier message where it stands
            out["messages"].append({"id": f"m{i - 2}", "role": "ai", "content": f"edit {i}"})
        return out

    g = StateGraph(Rich)
    g.add_node("tick", tick)
    g.add_edge(START, "tick")
    g.add_conditional_edges("tick", lambda s: "tick" if s["i"] < s["n"] else END)
    return g.compile(checkpointer=saver)


def open_saver(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Saver:
    if backend == "memory":
        return InMemorySaver()
    if backend == "sqlite":
        return SqliteSaver(tmp_path / "h.db")
    prefix = f"h_{uuid.uuid4().hex[:12]}"
    if backend == "postgres":
        from tether.checkpoint import PostgresSaver  # type: ignore[attr-defined]

        saver: Saver = PostgresSaver(request.getfixturevalue("postgres_dsn"), schema=prefix)
        return saver
    from tether.checkpoint import RedisSaver  # type: ignore[attr-defined]

    saver = RedisSaver(request.getfixturevalue("redis_url"), prefix=prefix)
    return saver


@pytest.mark.parametrize("backend", ["memory", "sqlite", "postgres", "redis"])
def test_every_snapshot_equals_get_state_at_its_checkpoint(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.setattr(_history, "PAGE", 7)  # many pages, chains reused across them
    saver = open_saver(backend, tmp_path, request)
    app = rich_graph(saver)
    app.invoke({"log": [], "messages": [], "tally": {}, "i": 0, "n": 90}, cfg())
    # a second branch, forked from an old checkpoint and run on
    old = list(app.get_state_history(cfg()))[60].config
    fork = app.update_state(old, {"log": ["fork"], "tally": {"fork": 1}})
    app.invoke({"n": 120}, {**fork, "recursion_limit": 10_000})
    app.invoke(None, cfg())

    hist = list(app.get_state_history(cfg()))
    assert len(hist) > 150
    for snap in hist:
        assert snap.values == app.get_state(snap.config).values, snap.config
    heads = [h for h in hist if h.values.get("i") == 120]
    assert heads and heads[0].values["tally"]["fork"] == 1
    assert len(heads[0].values["messages"]) == 120
    saver.close()


def test_snapshots_own_their_values(tmp_path: Path) -> None:
    app = rich_graph(SqliteSaver(tmp_path / "h.db"))
    app.invoke({"log": [], "messages": [], "tally": {}, "i": 0, "n": 30}, cfg())
    # the input checkpoint (the last) holds the state before the input: nothing yet
    hist = list(app.get_state_history(cfg()))[:-1]
    for snap in hist:
        snap.values["log"].append("mutated")
        snap.values["tally"]["mutated"] = 1
    again = list(app.get_state_history(cfg()))
    for snap in again:
        assert "mutated" not in snap.values.get("log", [])
        assert "mutated" not in snap.values.get("tally", {})
        assert snap.values == app.get_state(snap.config).values


# -- work --------------------------------------------------------------------------------------


class CountingSerde:
    """The default serializer, counting the records it decodes."""

    def __init__(self) -> None:
        self.inner = default_serializer()
        self.records = 0

    def dumps(self, value: object) -> bytes:
        return self.inner.dumps(value)

    def loads(self, data: bytes) -> object:
        self.records += 1
        return self.inner.loads(data)

    def loads_many(self, records: Sequence[bytes]) -> list[object]:
        self.records += len(records)
        return self.inner.loads_many(records)


class Log(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    note: str
    i: int
    n: int


def log_graph(saver: Saver) -> Any:
    def tick(s: Log) -> dict[str, Any]:
        i = s.get("i", 0) + 1
        return {"log": [f"entry {i:05d} " + "y" * 60], "note": f"note {i:05d} " + "x" * 40, "i": i}

    g = StateGraph(Log)
    g.add_node("tick", tick)
    g.add_edge(START, "tick")
    g.add_conditional_edges("tick", lambda s: "tick" if s["i"] < s["n"] else END)
    return g.compile(checkpointer=saver)


def history_work(tmp_path: Path, steps: int, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """(value rows read, records decoded) by a full history of a ``steps``-step thread."""
    serde = CountingSerde()
    saver = SqliteSaver(tmp_path / f"w{steps}.db", serde=serde)
    app = log_graph(saver)
    app.invoke({"log": [], "i": 0, "n": steps}, cfg())
    rows: list[int] = []
    original = saver.get_values

    def get_values(thread_id: str, wanted: Any) -> dict[str, list[ValueRow]]:
        out = original(thread_id, wanted)
        rows.append(sum(len(chain) for chain in out.values()))
        return out

    monkeypatch.setattr(saver, "get_values", get_values)
    serde.records = 0
    hist = list(app.get_state_history(cfg()))
    assert len(hist) == steps + 2  # the input checkpoint, START's step, one per step
    assert hist[0].values["log"][-1].startswith(f"entry {steps:05d}")
    assert all(len(h.values.get("log", [])) == h.values.get("i", 0) for h in hist[:-1])
    saver.close()
    return sum(rows), serde.records


def test_history_work_grows_linearly_with_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_rows, small_decodes = history_work(tmp_path, 150, monkeypatch)
    big_rows, big_decodes = history_work(tmp_path, 600, monkeypatch)
    print(
        f"\nhistory of 151 checkpoints: {small_rows} rows read, {small_decodes} records "
        f"decoded; of 601: {big_rows} rows, {big_decodes} records"
    )
    # each checkpoint costs a bounded number of rows and decodes, whatever the chain length
    # (reading each checkpoint's chain from scratch costs ~20x more at 600 steps)
    assert big_rows <= 3 * 601 and big_decodes <= 6 * 601
    # 4x the checkpoints: about 4x the work, not 16x
    assert big_rows <= 5 * small_rows and big_decodes <= 5 * small_decodes


def test_first_snapshot_reads_one_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_history, "PAGE", 10)
    saver = SqliteSaver(tmp_path / "h.db")
    app = log_graph(saver)
    app.invoke({"log": [], "i": 0, "n": 300}, cfg())
    wanted: list[dict[str, int]] = []
    original = saver.get_values

    def get_values(thread_id: str, want: Any) -> dict[str, list[ValueRow]]:
        wanted.append(dict(want))
        return original(thread_id, want)

    monkeypatch.setattr(saver, "get_values", get_values)
    it = app.get_state_history(cfg())
    assert wanted == []  # nothing is read before the iterator advances
    first = next(it)
    assert first.values["i"] == 300
    # "note" has a row per step: one page reads ten of them, not three hundred
    assert sum("note" in w for w in wanted) == 10
    assert sum(1 for _ in it) == 301
    saver.close()


def test_before_naming_an_unknown_checkpoint_fails_at_the_call() -> None:
    app = log_graph(InMemorySaver())
    app.invoke({"log": [], "i": 0, "n": 2}, cfg())
    with pytest.raises(ConfigError, match="before="):
        app.get_state_history(cfg(), before=cfg(checkpoint_id="nope"))
