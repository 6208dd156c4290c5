"""A thread's state between the loop and its saver: load a checkpoint, commit a step.

Invariant: only channels written since the last commit are stored; a reducer channel stores
the writes themselves (a delta) until a snapshot is due (``needs_snapshot``). Storage grows
with what was written, and a read costs O(size of the value): a chain is decoded in one
pass, and a checkpoint ``get_state`` read once is served from ``VALUE_CACHE`` after that. A
failed commit changes nothing in memory either.
"""

from __future__ import annotations

import dataclasses
import marshal
import operator
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tether._messages import _message_id as message_id
from tether._messages import add_messages
from tether.checkpoint._base import CheckpointRow, Head, ValueRow, WriteRow
from tether.checkpoint._body import Body, TaskRecord, decode_body, encode_body, is_inline
from tether.checkpoint._lease import Fence
from tether.checkpoint._saver import Saver
from tether.checkpoint._unreadable import unreadable
from tether.engine._cache import CheckpointCache
from tether.engine._planner import PlannedTask, fold_many, overwrite_of, with_defaults
from tether.engine._spec import Channel, GraphSpec
from tether.errors import CheckpointError, SerializationError, TetherError
from tether.serde import Serializer
from tether.serde._base import loads_many

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


# -- reading values ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CachedValue:
    """One channel's value at a checkpoint, as ``VALUE_CACHE`` keeps it."""

    version: int
    reducer: Callable[[Any, Any], Any] | None
    """What the deltas were folded with; None for a value stored whole."""
    code: int
    """The reducer code stored with the deltas (0 without deltas)."""
    payload: bytes
    marshalled: bool
    """True: ``payload`` is ``marshal`` output (see ``cache_entry``); else the serializer's."""
    stat: ChainStat


VALUE_CACHE: CheckpointCache[dict[str, CachedValue]] = CheckpointCache()
"""Values of the checkpoints ``get_state`` read in this process (see ``engine/_cache.py``)."""


def cache_entry(
    serde: Serializer,
    chain: list[ValueRow],
    fold_with: Channel | None,
    code: int,
    value: Any,
    stat: ChainStat,
) -> CachedValue:
    """What ``VALUE_CACHE`` keeps of a value read from ``chain``: a value stored whole as
    stored; one folded by a built-in list reducer, when it holds only builtins (as decoded
    messages do), as ``marshal`` output, which rebuilds plain lists and dicts about twice as
    fast as msgpack (marshal only ever reads bytes this process made, never stored ones);
    anything else encoded with the serializer."""
    version = chain[-1].version
    if fold_with is None:
        return CachedValue(version, None, code, chain[0].payload, False, stat)
    if fold_with.reducer in _KNOWN_REDUCERS.values():
        try:
            return CachedValue(version, fold_with.reducer, code, marshal.dumps(value), True, stat)
        except ValueError:  # a type marshal does not know (datetime, a registered class, ...)
            pass
    return CachedValue(version, fold_with.reducer, code, serde.dumps(value), False, stat)


def decode_records(
    serde: Serializer, thread_id: str, names: list[str], payloads: list[bytes]
) -> list[Any]:
    """Decode the stored payloads of state keys ``names`` in one pass."""
    try:
        return loads_many(serde, payloads)
    except TetherError as exc:
        keys = ", ".join(repr(n) for n in dict.fromkeys(names))
        raise unreadable(exc, thread_id, f"the stored value of state key {keys}") from exc


def decode_chain(serde: Serializer, thread_id: str, name: str, chain: list[ValueRow]) -> list[Any]:
    """A chain's payloads decoded: the full value, then each delta as ``[code, writes]``."""
    return decode_records(serde, thread_id, [name] * len(chain), [r.payload for r in chain])


def fold_channel(spec: GraphSpec, thread_id: str, name: str, decoded: list[Any]) -> Channel | None:
    """What a decoded chain's deltas fold with: the graph's channel, else the reducer named
    by the code stored with the deltas (reading without the graph); None without deltas."""
    if len(decoded) < 2:
        return None
    return spec.channels.get(name) or channel_for_code(thread_id, name, decoded[1][0])


def fold_chain(fold_with: Channel | None, decoded: list[Any]) -> Any:
    if fold_with is None:
        return decoded[0]
    return fold_writes(fold_with, decoded[0], [w for d in decoded[1:] for w in d[1]])


def fold_writes(fold_with: Channel, current: Any, writes: list[Any]) -> Any:
    """``fold_many`` for reading: stored messages that all carry distinct ids (as written
    since ids are assigned at write time) are appended without any per-message work."""
    if fold_with.reducer is add_messages and isinstance(current, list):
        appended = _append_messages(current, writes)
        if appended is not None:
            return appended
    return fold_many(fold_with, current, writes)


def _append_messages(left: list[Any], writes: list[Any]) -> list[Any] | None:
    """``add_messages(left, writes)`` when it is a plain append, else None (a message
    without an id, or an id seen before: add_messages decides)."""
    right: list[Any] = []
    for w in writes:
        right.extend(w if isinstance(w, list | tuple) else [w])
    ids = [message_id(m) for m in left]
    ids += [message_id(m) for m in right]
    try:
        if None in ids or len(set(ids)) != len(ids):
            return None
    except TypeError:  # an unhashable id: add_messages raises the error
        return None
    return left + right


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
        *,
        remember: bool = False,
    ) -> ThreadState:
        """The thread at ``checkpoint_id`` (default: its head); empty if it never ran.
        ``remember``: keep its values in ``VALUE_CACHE`` (see ``apply_row``)."""
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
        state.apply_row(row, remember=remember)
        return state

    def apply_body(self, row: CheckpointRow) -> dict[str, int]:
        """Take everything but the stored values from ``row``; returns the channel versions
        whose values are stored apart (small values ride in the body and are set here)."""
        assert self.saver is not None
        body = decode_body(self.saver.serde, self.thread_id, row.checkpoint_id, row.body)
        self.checkpoint_id = self.committed_id = row.checkpoint_id
        self.parent_id = row.parent_id
        self.step = row.step
        self.created_at = row.created_at
        self.versions = dict(body.versions)
        self.tasks = [PlannedTask(t.id, t.node, t.index, t.is_send, t.arg) for t in body.tasks]
        self.joins = {k: frozenset(v) for k, v in body.joins.items()}
        # "parents" names the checkpoints of enclosing graphs (LangGraph's layout): none at
        # the root, which is the only namespace tether writes
        self.metadata = {"parents": {}, **body.metadata, "step": row.step}
        self.values.update(body.inline)
        return body.versions

    def apply_row(self, row: CheckpointRow, *, remember: bool = False) -> None:
        """Load the checkpoint ``row``. Its values come from ``VALUE_CACHE`` when a read in
        this process left them there; ``remember`` leaves them there (``get_state``)."""
        versions = self.apply_body(row)
        saver = self.saver
        assert saver is not None
        cached = VALUE_CACHE.get(saver, self.thread_id, row.checkpoint_id)
        if cached is not None and self._apply_cached(versions, cached):
            return
        kept: dict[str, CachedValue] = {}
        for name, chain in saver.get_values(self.thread_id, versions).items():
            entry = self._apply_chain(name, chain, remember)
            if entry is not None:
                kept[name] = entry
        if remember:
            nbytes = sum(len(c.payload) for c in kept.values())
            VALUE_CACHE.put(saver, self.thread_id, row.checkpoint_id, kept, nbytes)

    def _apply_chain(self, name: str, chain: list[ValueRow], remember: bool) -> CachedValue | None:
        """Fold one channel's stored chain into ``values``; its cache entry if ``remember``."""
        assert self.saver is not None
        serde = self.saver.serde
        decoded = decode_chain(serde, self.thread_id, name, chain)
        try:
            fold_with = fold_channel(self.spec, self.thread_id, name, decoded)
            value = self.values[name] = fold_chain(fold_with, decoded)
        except (TypeError, ValueError, IndexError, KeyError) as exc:  # a delta of a wrong shape
            what = f"the stored value of state key {name!r} (version {chain[-1].version})"
            raise unreadable(exc, self.thread_id, what) from exc
        stat = ChainStat(
            chain[0].version,
            chain[-1].version,
            len(chain[0].payload),
            sum(len(r.payload) for r in chain[1:]),
            len(chain) - 1,
        )
        if self._is_reducer(name):
            self.chains[name] = stat
        if not remember:
            return None
        code = decoded[1][0] if fold_with is not None else 0
        return cache_entry(serde, chain, fold_with, code, value, stat)

    def _is_reducer(self, name: str) -> bool:
        channel = self.spec.channels.get(name)
        return channel is not None and channel.reducer is not None

    def _apply_cached(self, versions: dict[str, int], cached: dict[str, CachedValue]) -> bool:
        """Use a cache entry if it was folded the way this graph folds; False to read."""
        channels = self.spec.channels
        for name, version in versions.items():
            hit = cached.get(name)
            if hit is None or hit.version != version:
                return False
            if hit.reducer is not None:
                channel = channels.get(name)
                allowed = channel.reducer if channel is not None else _KNOWN_REDUCERS.get(hit.code)
                if hit.reducer is not allowed:
                    return False
        assert self.saver is not None
        encoded = [n for n in versions if not cached[n].marshalled]
        payloads = [cached[n].payload for n in encoded]
        decoded = decode_records(self.saver.serde, self.thread_id, encoded, payloads)
        by_name = dict(zip(encoded, decoded, strict=True))
        for name in versions:
            hit = cached[name]
            self.values[name] = marshal.loads(hit.payload) if hit.marshalled else by_name[name]
            if self._is_reducer(name):
                self.chains[name] = dataclasses.replace(hit.stat)
        return True

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
        fence: Fence | None,
        durable: bool,
        writes: list[WriteRow] | None = None,
        extra_writes: Callable[[int, list[ValueRow]], list[WriteRow]] | None = None,
    ) -> None:
        """Store the checkpoint ``checkpoint_id`` with the changed values, moving the head
        (fenced by the run's lease, and renewing it). ``extra_writes(nbytes, value_rows)``:
        more write rows for the same transaction, given the checkpoint's size and the value
        rows it stores."""
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
            fence=fence,
            lease_seconds=saver.lease_seconds,
            durable=durable,
        )
        self.versions, self.chains = versions, chains
        self.metadata = {"source": source, "step": self.step, "parents": {}}
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
