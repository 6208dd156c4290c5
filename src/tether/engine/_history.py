"""``get_state_history``: a thread's checkpoints, newest first, each with its full values.

Invariant: a history costs O(checkpoints returned) value rows read and decoded, not
O(checkpoints x chain length). Checkpoints are read a page at a time; a channel's delta chain
is fetched and decoded once and kept while older checkpoints still fall on it, and the values
of a page are folded forward along the chain in one pass. The snapshots of one history call
share the decoded messages (elements) of such a chain; every snapshot gets its own lists.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tether._messages import add_messages
from tether.checkpoint._base import CheckpointRow, ValueRow
from tether.checkpoint._body import decode_body
from tether.checkpoint._saver import Saver
from tether.engine._loop import checkpoint_id_of, thread_id_of
from tether.engine._results import attach_step_results
from tether.engine._spec import Channel, GraphSpec
from tether.engine._status import collect_logs
from tether.engine._store import (
    ThreadState,
    decode_chain,
    decode_records,
    fold_channel,
    fold_writes,
)
from tether.engine._update import _require_saver, snapshot
from tether.errors import CheckpointError, ConfigError
from tether.types import StateSnapshot

PAGE = 100
"""Checkpoints materialized at a time: one read of task logs per page, and the memory of a
history that is iterated (not kept) stays at about one page of values."""

_PURE_REDUCERS = (operator.add, add_messages)
"""Reducers known to return a new value without touching their arguments, so a folded value
can be handed out and folded further. Other reducers get copies (``_ValueReader._copy``)."""


@dataclass(slots=True)
class _Chain:
    """One channel's chain as read from storage: a full value, then deltas, oldest first."""

    rows: list[ValueRow]
    position: dict[int, int] = field(default_factory=dict)
    decoded: list[Any] | None = None

    def __post_init__(self) -> None:
        self.position = {r.version: i for i, r in enumerate(self.rows)}


class _ValueReader:
    """Values of many checkpoints of one thread, reusing chains across pages."""

    def __init__(self, spec: GraphSpec, saver: Saver, thread_id: str) -> None:
        self.spec = spec
        self.saver = saver
        self.thread_id = thread_id
        self.chains: dict[str, _Chain] = {}
        self.page_rows: dict[tuple[str, int], ValueRow] = {}
        """The value rows read for the page being loaded (and the chains kept from before):
        they hold the writes of the page's one-task steps (engine/_results.py)."""

    def read(self, wanted: list[Mapping[str, int]]) -> list[dict[str, Any]]:
        """For each checkpoint's ``{channel: version}``, its values (same order)."""
        out: list[dict[str, Any]] = [{} for _ in wanted]
        self.page_rows = {
            (name, r.version): r for name, chain in self.chains.items() for r in chain.rows
        }
        pending: dict[str, dict[int, list[int]]] = {}  # channel -> version -> checkpoints
        for i, versions in enumerate(wanted):
            for name, version in versions.items():
                pending.setdefault(name, {}).setdefault(version, []).append(i)
        while pending:
            for name, by_version in list(pending.items()):
                self._take_from_chain(name, by_version, out)
                if not by_version:
                    del pending[name]
            # the newest missing version of each channel: older ones on its chain come along
            self._fetch({name: max(by_version) for name, by_version in pending.items()})
        return out

    def _take_from_chain(
        self, name: str, by_version: dict[int, list[int]], out: list[dict[str, Any]]
    ) -> None:
        """Fill in the versions on the channel's current chain, and drop them from
        ``by_version``."""
        chain = self.chains.get(name)
        if chain is None:
            return
        on_chain = {v: c for v, c in by_version.items() if v in chain.position}
        if on_chain:
            self._fill(name, chain, on_chain, out)
        for v in on_chain:
            del by_version[v]

    def _fetch(self, versions: dict[str, int]) -> None:
        if not versions:
            return
        for name, rows in self.saver.get_values(self.thread_id, versions).items():
            chain = self.chains[name] = _Chain(rows)
            self.page_rows.update(((name, r.version), r) for r in rows)
            if versions[name] not in chain.position:  # else the loop in read() never ends
                raise CheckpointError(
                    f"thread {self.thread_id!r}: the saver returned a chain for state key "
                    f"{name!r} without its version {versions[name]}"
                )

    def _fill(
        self, name: str, chain: _Chain, on_chain: dict[int, list[int]], out: list[dict[str, Any]]
    ) -> None:
        serde = self.saver.serde
        ordered = sorted(on_chain, key=chain.position.__getitem__)
        if chain.position[ordered[0]] == 0:
            # the full value: decoded afresh for each checkpoint, so none shares it
            whole = ordered.pop(0)
            readers = on_chain[whole]
            payload = chain.rows[0].payload
            values = decode_records(serde, self.thread_id, [name], [payload] * len(readers))
            for i, value in zip(readers, values, strict=True):
                out[i][name] = value
        if not ordered:
            return
        if chain.decoded is None:
            chain.decoded = decode_chain(serde, self.thread_id, name, chain.rows)
        fold_with = fold_channel(self.spec, self.thread_id, name, chain.decoded)
        assert fold_with is not None
        for version, value in _fold_forward(fold_with, chain, ordered, self._copy):
            for k, i in enumerate(on_chain[version]):
                out[i][name] = value if k == 0 else self._copy(fold_with, value)

    def _copy(self, fold_with: Channel, value: Any) -> Any:
        """A value of its own: a new list for the pure reducers (they build one anyway), a
        decoded copy for others (their reducer may change the value in place)."""
        if fold_with.reducer in _PURE_REDUCERS:
            return list(value) if isinstance(value, list) else value
        serde = self.saver.serde
        return serde.loads(serde.dumps(value))


def _fold_forward(
    fold_with: Channel, chain: _Chain, versions: list[int], copy: Callable[[Channel, Any], Any]
) -> Iterator[tuple[int, Any]]:
    """The values at ``versions`` (deltas of ``chain``, oldest first), folded in one pass
    from the chain's full value."""
    assert chain.decoded is not None
    pure = fold_with.reducer in _PURE_REDUCERS
    deltas = chain.decoded
    # a pure fold never changes its input; any other gets a copy to change
    value = deltas[0] if pure else copy(fold_with, deltas[0])
    at = 0
    for version in versions:
        upto = chain.position[version]
        value = fold_writes(fold_with, value, [w for d in deltas[at + 1 : upto + 1] for w in d[1]])
        at = upto
        yield version, copy(fold_with, value) if not pure or value is deltas[0] else value


def _matching(
    saver: Saver,
    thread_id: str,
    rows: Iterable[CheckpointRow],
    filter: dict[str, Any] | None,
    limit: int | None,
) -> Iterator[CheckpointRow]:
    taken = 0
    for row in rows:
        if limit is not None and taken >= limit:
            return
        if filter:
            # metadata is in the body: filter before reading any values
            meta = {
                **decode_body(saver.serde, thread_id, row.checkpoint_id, row.body).metadata,
                "step": row.step,
            }
            if any(meta.get(k) != v for k, v in filter.items()):
                continue
        taken += 1
        yield row


def get_state_history(
    spec: GraphSpec,
    saver: Saver | None,
    config: dict[str, Any],
    *,
    limit: int | None = None,
    before: dict[str, Any] | None = None,
    filter: dict[str, Any] | None = None,
) -> Iterator[StateSnapshot]:
    """The thread's checkpoints, newest first, across branches. The arguments are checked
    here; values are read as the iterator advances."""
    saver = _require_saver(saver, "get_state_history")
    thread_id = thread_id_of(config, required=True)
    assert thread_id is not None
    before_version = None
    if before is not None:
        bid = checkpoint_id_of(before)
        row = saver.get_checkpoint(thread_id, bid) if bid else None
        if row is None:
            raise ConfigError(f"before= names checkpoint {bid!r}, which thread {thread_id!r} lacks")
        before_version = row.version
    rows = saver.list_checkpoints(
        thread_id, before_version=before_version, limit=None if filter else limit
    )
    return _history(spec, saver, thread_id, rows, limit=limit, filter=filter)


def _history(
    spec: GraphSpec,
    saver: Saver,
    thread_id: str,
    rows: Iterable[CheckpointRow],
    *,
    limit: int | None,
    filter: dict[str, Any] | None,
) -> Iterator[StateSnapshot]:
    reader = _ValueReader(spec, saver, thread_id)
    page: list[tuple[ThreadState, dict[str, int]]] = []
    newer: ThreadState | None = None  # the last of the page before, whose parent may open this
    for row in _matching(saver, thread_id, rows, filter, limit):
        state = ThreadState(spec, saver, thread_id)
        page.append((state, state.apply_body(row)))
        if len(page) == PAGE:
            yield from _snapshots(reader, saver, page, newer)
            newer = page[-1][0]
            page = []
    yield from _snapshots(reader, saver, page, newer)


def _snapshots(
    reader: _ValueReader,
    saver: Saver,
    page: list[tuple[ThreadState, dict[str, int]]],
    newer: ThreadState | None,
) -> Iterator[StateSnapshot]:
    if not page:
        return
    values = reader.read([versions for _, versions in page])
    for (state, versions), found in zip(page, values, strict=True):
        for name in versions:  # the order get_state gives
            state.values[name] = found[name]
    # one read of the task logs for the whole page, not one per checkpoint
    task_ids = [t.id for state, _ in page for t in state.tasks]
    rows = saver.get_writes(reader.thread_id, task_ids) if task_ids else []
    logs = collect_logs(saver.serde, rows, reader.thread_id)
    states = [state for state, _ in page]
    # a one-task step's writes are shown by the commit after it (see engine/_results.py)
    around = [newer, *states] if newer is not None else states
    attach_step_results(saver, reader.thread_id, around, logs, reader.page_rows)
    for state in states:
        yield snapshot(state, saver, logs, live=False)
