"""A thread's state between the loop and its saver: load a checkpoint, commit a step.

Invariant: only channels written since the last commit are stored; a reducer channel stores
the writes themselves (a delta) until a snapshot is due (``needs_snapshot``). Storage grows
with what was written, and a read costs O(size of the value). A failed commit changes
nothing in memory either.
"""

from __future__ import annotations

import operator
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tether._messages import add_messages
from tether.checkpoint._base import CheckpointRow, Head, Owner, Saver, ValueRow, WriteRow
from tether.checkpoint._body import Body, TaskRecord, decode_body, encode_body, is_inline
from tether.checkpoint._unreadable import unreadable
from tether.engine._planner import PlannedTask, fold_many, overwrite_of, with_defaults
from tether.engine._spec import Channel, GraphSpec
from tether.errors import CheckpointError, SerializationError, TetherError

SNAPSHOT_RATIO = 8
"""A reducer channel snapshots when its deltas since the last snapshot outweigh the snapshot
(at least SNAPSHOT_FLOOR bytes) this many times over. Snapshots then grow geometrically
(x9), so together they cost at most 1/8 more than the final value, and a read costs one
snapshot plus deltas: O(size of the value), whatever the number of steps."""

SNAPSHOT_FLOOR = 256

SMALL_SNAPSHOT = 1024
SMALL_CHAIN = 64
"""A small value (a counter, a short list) snapshots every SMALL_CHAIN deltas: cheap, and it
keeps reads of such channels to a bounded number of rows."""

MAX_CHAIN = 1024
"""A custom reducer channel also snapshots after this many deltas, bounding the reducer
calls per read. The built-in list reducers fold any number of deltas in one pass, so they
are not capped: a cap would make storage grow with the square of the length."""


LEASE_SECONDS = 300.0

_KNOWN_REDUCERS: dict[int, Callable[[Any, Any], Any]] = {1: operator.add, 2: add_messages}


def reducer_code(channel: Channel) -> int:
    """Stored with each delta so that a reader without the graph (the CLI) can fold the
    well-known reducers; 0 means a custom reducer, which needs the graph."""
    if channel.reducer is operator.add:
        return 1
    if channel.reducer is add_messages:
        return 2
    return 0


def channel_for_code(thread_id: str, key: str, code: int) -> Channel:
    reducer = _KNOWN_REDUCERS.get(code)
    if reducer is None:
        raise CheckpointError(
            f"thread {thread_id!r}: state key {key!r} uses a custom reducer, so its stored "
            "deltas can only be folded with the graph that wrote them (pass the graph, e.g. "
            "--graph module:attr)"
        )
    return Channel(key, reducer, list)


def new_checkpoint_id() -> str:
    """A UUIDv7-shaped id: time-ordered, unique without coordination."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 68) << 64
    value |= 0x2 << 62 | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


@dataclass(slots=True)
class ChainStat:
    """Where a reducer channel's stored chain stands: its snapshot, and deltas since."""

    base: int
    last: int
    snapshot_bytes: int
    delta_bytes: int
    deltas: int


def needs_snapshot(stat: ChainStat, delta_bytes: int, *, one_pass_fold: bool = True) -> bool:
    """The snapshot policy, in one place (see the constants above)."""
    grown = stat.delta_bytes + delta_bytes
    if grown > SNAPSHOT_RATIO * max(stat.snapshot_bytes, SNAPSHOT_FLOOR):
        return True
    if not one_pass_fold and stat.deltas >= MAX_CHAIN:
        return True
    return stat.deltas >= SMALL_CHAIN and stat.snapshot_bytes <= SMALL_SNAPSHOT


@dataclass(slots=True)
class ThreadState:
    """The loop's working copy of one thread."""

    spec: GraphSpec
    saver: Saver | None
    thread_id: str
    head: Head | None = None
    checkpoint_id: str | None = None
    committed_id: str | None = None
    parent_id: str | None = None
    step: int = -1
    created_at: float | None = None
    values: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    chains: dict[str, ChainStat] = field(default_factory=dict)
    pending: dict[str, list[Any]] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    overwritten: set[str] = field(default_factory=set)
    """Reducer channels given an Overwrite since the last commit: stored as a snapshot, since
    a delta folded onto the old chain would not replace it."""
    tasks: list[PlannedTask] = field(default_factory=list)
    joins: dict[str, frozenset[str]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def exists(self) -> bool:
        return self.committed_id is not None

    # -- load ------------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        spec: GraphSpec,
        saver: Saver,
        thread_id: str,
        head: Head | None,
        checkpoint_id: str | None = None,
    ) -> ThreadState:
        """The thread at ``checkpoint_id`` (default: its head); empty if it never ran."""
        state = cls(spec, saver, thread_id, head=head)
        target = checkpoint_id or (head.checkpoint_id if head else None)
        if target is None:
            return state
        row = saver.get_checkpoint(thread_id, target)
        if row is None:
            raise CheckpointError(
                f"thread {thread_id!r} has no checkpoint {target!r}; list them with "
                "get_state_history(config)"
            )
        state.apply_row(row)
        return state

    def apply_row(self, row: CheckpointRow) -> None:
        assert self.saver is not None
        serde = self.saver.serde
        body = decode_body(serde, self.thread_id, row.checkpoint_id, row.body)
        versions = body.versions
        self.checkpoint_id = self.committed_id = row.checkpoint_id
        self.parent_id = row.parent_id
        self.step = row.step
        self.created_at = row.created_at
        self.versions = dict(versions)
        self.tasks = [PlannedTask(t.id, t.node, t.index, t.is_send, t.arg) for t in body.tasks]
        self.joins = {k: frozenset(v) for k, v in body.joins.items()}
        self.metadata = {**body.metadata, "step": row.step}
        self.values.update(body.inline)
        chains = self.saver.get_values(self.thread_id, versions)
        channels = self.spec.channels
        for name, chain in chains.items():
            try:
                value = serde.loads(chain[0].payload)
                deltas: list[Any] = [serde.loads(r.payload) for r in chain[1:]]
            except TetherError as exc:
                what = f"the stored value of state key {name!r} (version {chain[-1].version})"
                raise unreadable(exc, self.thread_id, what) from exc
            channel = channels.get(name)
            if deltas:
                fold_with = channel or channel_for_code(self.thread_id, name, deltas[0][0])
                value = fold_many(fold_with, value, (w for d in deltas for w in d[1]))
            self.values[name] = value
            if channel is not None and channel.reducer is not None:
                self.chains[name] = ChainStat(
                    chain[0].version,
                    chain[-1].version,
                    len(chain[0].payload),
                    sum(len(r.payload) for r in chain[1:]),
                    len(chain) - 1,
                )

    # -- change ----------------------------------------------------------------------------

    def record(self, per_key: dict[str, list[Any]]) -> None:
        """Note the writes just folded into ``values`` so the next commit stores them."""
        for key, writes in per_key.items():
            self.dirty.add(key)
            if self.spec.channels[key].reducer is not None:
                self.pending.setdefault(key, []).extend(writes)
                if any(overwrite_of(w)[0] for w in writes):
                    self.overwritten.add(key)

    def plan(self, tasks: list[PlannedTask], checkpoint_id: str) -> None:
        self.tasks = tasks
        self.checkpoint_id = checkpoint_id
        self.step += 1

    # -- commit ----------------------------------------------------------------------------

    def _encode(self, key: str, value: Any) -> bytes:
        assert self.saver is not None
        try:
            return self.saver.serde.dumps(value)
        except SerializationError as exc:
            raise SerializationError(
                f"thread {self.thread_id!r}, state key {key!r}: {exc}"
            ) from exc

    def _value_rows(
        self, version: int
    ) -> tuple[list[ValueRow], dict[str, int], dict[str, ChainStat]]:
        """The value rows of the dirty channels, and the versions and chain stats the
        thread will have once they are stored (nothing is changed here)."""
        rows: list[ValueRow] = []
        versions = dict(self.versions)
        chains = dict(self.chains)
        channels = self.spec.channels
        for key in sorted(self.dirty):
            channel = channels[key]
            if channel.reducer is None and is_inline(self.values[key]):
                versions.pop(key, None)
                continue
            versions[key] = version
            stat = chains.get(key)
            delta_ok = key in self.pending and key not in self.overwritten
            if channel.reducer is not None and stat is not None and delta_ok:
                code = reducer_code(channel)
                delta = self._encode(key, [code, self.pending[key]])
                if not needs_snapshot(stat, len(delta), one_pass_fold=code != 0):
                    rows.append(ValueRow(key, version, stat.last, stat.base, delta))
                    chains[key] = ChainStat(
                        stat.base,
                        version,
                        stat.snapshot_bytes,
                        stat.delta_bytes + len(delta),
                        stat.deltas + 1,
                    )
                    continue
            payload = self._encode(key, self.values[key])
            rows.append(ValueRow(key, version, None, version, payload))
            if channel.reducer is not None:
                chains[key] = ChainStat(version, version, len(payload), 0, 0)
        return rows, versions, chains

    def _encode_body(self, source: str, versions: dict[str, int]) -> bytes:
        assert self.saver is not None and self.checkpoint_id is not None
        inline = {
            k: v for k, v in self.values.items() if k not in versions and k in self.spec.channels
        }
        tasks = [TaskRecord(t.id, t.node, t.index, t.is_send, t.arg) for t in self.tasks]
        joins = {k: sorted(v) for k, v in self.joins.items()}
        body = Body(versions, inline, tasks, joins, {"source": source})
        try:
            return encode_body(self.saver.serde, self.thread_id, self.checkpoint_id, body)
        except SerializationError as exc:
            raise SerializationError(
                f"thread {self.thread_id!r}: the argument of a Send cannot be stored: {exc}"
            ) from exc

    def commit(
        self,
        *,
        source: str,
        owner: Owner | None,
        durable: bool,
        writes: list[WriteRow] | None = None,
        extra_writes: Callable[[int, list[ValueRow]], list[WriteRow]] | None = None,
    ) -> None:
        """Store the checkpoint ``checkpoint_id`` with the changed values, moving the head.
        ``extra_writes(nbytes, value_rows)``: more write rows for the same transaction,
        given the checkpoint's size and the value rows it stores."""
        saver = self.saver
        if saver is None:
            self.committed_id = self.checkpoint_id
            self.dirty.clear()
            self.pending.clear()
            self.overwritten.clear()
            return
        assert self.checkpoint_id is not None
        expected = self.head.version if self.head is not None else None
        version = (expected or 0) + 1
        values, versions, chains = self._value_rows(version)
        body = self._encode_body(source, versions)
        nbytes = len(body) + sum(len(v.payload) for v in values)
        all_writes = list(writes or [])
        if extra_writes is not None:
            all_writes += extra_writes(nbytes, values)
        now = time.time()
        row = CheckpointRow(
            self.thread_id,
            self.checkpoint_id,
            self.committed_id,
            version,
            self.step,
            now,
            body,
        )
        saver.commit(
            self.thread_id,
            expected_version=expected,
            checkpoint=row,
            values=values,
            writes=all_writes,
            owner=owner,
            lease_seconds=LEASE_SECONDS,
            durable=durable,
        )
        self.versions, self.chains = versions, chains
        self.metadata = {"source": source, "step": self.step}
        self.head = Head(self.checkpoint_id, version)
        self.parent_id = self.committed_id
        self.committed_id = self.checkpoint_id
        self.created_at = now
        self.dirty.clear()
        self.pending.clear()
        self.overwritten.clear()

    def output_values(self) -> dict[str, Any]:
        values = with_defaults(self.spec, self.values)
        return {k: values[k] for k in self.spec.output_keys if k in values}

    def snapshot_values(self) -> dict[str, Any]:
        return dict(with_defaults(self.spec, self.values))
