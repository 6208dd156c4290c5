"""Storage that stays small (ARCHITECTURE.md §3): sizes, never times.

A 400-message thread keeps its SQLite file under 3x the raw message bytes, and reading a
thread's head costs one snapshot plus a bounded chain, whatever the number of steps, on
every backend."""

from __future__ import annotations

import operator
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from tether import END, START, StateGraph
from tether.checkpoint import Saver, SqliteSaver, ValueRow

SaverFactory = Callable[..., Saver]

T = "thread-1"
N_MESSAGES = 400
N_STEPS = 1000

_VOCABULARY_TEXT = (
    "the a an agent user assistant tool call returned result with status ok error retry "
    "invoice order customer refund shipment warehouse delayed arrived tomorrow today please "
    "confirm approve reject budget quarter revenue forecast summary draft review policy "
    "account balance transfer pending completed failed timeout network database query rows "
    "latency seconds minutes report chart table column value total average maximum minimum"
)
VOCABULARY = _VOCABULARY_TEXT.split()


def messages(count: int = N_MESSAGES, seed: int = 1234) -> list[str]:
    """Realistic chat-like text: about 200 bytes each, words drawn from a vocabulary."""
    rng = random.Random(seed)
    out: list[str] = []
    for n in range(count):
        target = rng.randint(185, 215)
        words: list[str] = [f"#{n}"]
        while len(" ".join(words)) < target:
            words.append(rng.choice(VOCABULARY))
        out.append(" ".join(words)[:target].capitalize() + ".")
    return out


def cfg(thread: str = T, limit: int = N_STEPS + 50) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}, "recursion_limit": limit}


class Chat(TypedDict, total=False):
    messages: Annotated[list, operator.add]


def chat_graph(saver: Saver, script: list[str]) -> Any:
    """One node on a loop: each step appends the next message of ``script``."""

    def talk(state: Chat) -> dict[str, Any]:
        return {"messages": [script[len(state.get("messages", []))]]}

    g = StateGraph(Chat)
    g.add_node("talk", talk)
    g.add_edge(START, "talk")
    g.add_conditional_edges("talk", lambda s: "talk" if len(s["messages"]) < len(script) else END)
    return g.compile(checkpointer=saver)


def test_sqlite_file_of_a_400_message_thread_is_under_3x_raw(tmp_path: Path) -> None:
    script = messages()
    raw = sum(len(m.encode()) for m in script)
    assert 190 * N_MESSAGES < raw < 220 * N_MESSAGES
    path = tmp_path / "chat.db"
    saver = SqliteSaver(path)
    out = chat_graph(saver, script).invoke({}, cfg(), durability="sync")
    assert out["messages"] == script
    steps = len(list(chat_graph(saver, script).get_state_history(cfg())))
    assert steps == N_MESSAGES + 2  # the input checkpoint, START's step, one per message
    saver.close()
    size = os.path.getsize(path)
    wal = Path(f"{path}-wal")
    leftover = wal.stat().st_size if wal.exists() else 0
    print(
        f"\nSQLite file for {N_MESSAGES} messages: {size} bytes (+{leftover} WAL) for "
        f"{raw} raw message bytes = {(size + leftover) / raw:.2f}x"
    )
    assert size + leftover < 3 * raw


# -- read cost -----------------------------------------------------------------------------


class Reads:
    """Records what ``saver.get_values`` returns: rows and payload bytes per channel."""

    def __init__(self, saver: Saver, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[dict[str, list[ValueRow]]] = []
        self.wanted: list[dict[str, int]] = []
        original = saver.get_values

        def get_values(thread_id: str, wanted: Any) -> dict[str, list[ValueRow]]:
            out = original(thread_id, wanted)
            self.wanted.append(dict(wanted))
            self.calls.append(out)
            return out

        monkeypatch.setattr(saver, "get_values", get_values)

    def clear(self) -> None:
        self.calls.clear()
        self.wanted.clear()

    def rows(self, channel: str) -> int:
        return sum(len(call.get(channel, [])) for call in self.calls)

    def bytes(self, channel: str) -> int:
        return sum(len(r.payload) for call in self.calls for r in call.get(channel, []))


class Counter(TypedDict, total=False):
    i: int
    note: str
    count: Annotated[int, operator.add]


def counter_graph(saver: Saver) -> Any:
    def tick(state: Counter) -> dict[str, Any]:
        i = state.get("i", 0) + 1
        # a last-value key rewritten every step, too long to ride inline in the checkpoint
        return {"i": i, "note": f"step {i:05d} rewrote this note; " + "x" * 40, "count": 1}

    g = StateGraph(Counter)
    g.add_node("tick", tick)
    g.add_edge(START, "tick")
    g.add_conditional_edges("tick", lambda s: "tick" if s["i"] < N_STEPS else END)
    return g.compile(checkpointer=saver)


def test_get_state_reads_bounded_rows_after_1000_steps(
    saver_factory: SaverFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = counter_graph(saver_factory()).invoke({"count": 0}, cfg())
    assert out["i"] == N_STEPS and out["count"] == N_STEPS

    reader = saver_factory(same=True)
    reads = Reads(reader, monkeypatch)
    snap = counter_graph(reader).get_state(cfg())
    assert snap.values["count"] == N_STEPS
    assert snap.values["note"].startswith(f"step {N_STEPS:05d} ")
    assert len(reads.calls) == 1
    assert "note" in reads.wanted[0] and "count" in reads.wanted[0]
    # (a) a last-value channel rewritten on each of 1,000 steps: exactly its current row
    assert reads.rows("note") == 1
    # (b) a small counter with a reducer: one snapshot plus at most 64 deltas
    assert 1 <= reads.rows("count") <= 65
    print(
        f"\nrows read after {N_STEPS} steps: note={reads.rows('note')}, count={reads.rows('count')}"
    )

    # the same bound holds for older checkpoints read through the history
    reads.clear()
    hist = list(counter_graph(reader).get_state_history(cfg(), limit=200))
    assert len(hist) == 200 and 1 <= len(reads.calls) <= 200
    assert all(len(call.get("note", [])) <= 1 for call in reads.calls)
    assert all(len(call.get("count", [])) <= 65 for call in reads.calls)


def test_get_state_bytes_of_a_400_message_list_stay_near_its_size(
    saver_factory: SaverFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = messages()
    saver = saver_factory()
    chat_graph(saver, script).invoke({}, cfg())

    reader = saver_factory(same=True)
    reads = Reads(reader, monkeypatch)
    snap = chat_graph(reader, script).get_state(cfg())
    assert snap.values["messages"] == script
    encoded = len(reader.serde.dumps(script))
    read = reads.bytes("messages")
    print(
        f"\nbytes read for {N_MESSAGES} messages: {read} in {reads.rows('messages')} rows; "
        f"encoded value {encoded} bytes = {read / encoded:.2f}x"
    )
    assert read <= 2.5 * encoded
