"""The pure planner: how node outputs become writes, how writes fold into state, and which
tasks run next. No I/O, no clocks, no threads: given the same inputs it gives the same plan.

Fold order is fixed: tasks sorted by (node name, Send order), so results never depend on
which thread finished first.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tether._messages import add_messages, with_message_ids
from tether.checkpoint._body import derive_task_id
from tether.engine._spec import Branch, Channel, GraphSpec
from tether.errors import InvalidUpdateError
from tether.types import END, START, Command, Send

MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class PlannedTask:
    """A task of a step. Pull tasks (triggered by edges) get the state; Send tasks their arg."""

    id: str
    node: str
    index: int
    is_send: bool
    arg: Any = None

    @property
    def path(self) -> tuple[Any, ...]:
        return ("send", self.index) if self.is_send else ("pull", self.node)

    def sort_key(self) -> tuple[str, int, int]:
        return (self.node, 1 if self.is_send else 0, self.index)


@dataclass(frozen=True, slots=True)
class Trigger:
    """A task to plan, before it has an id."""

    node: str
    is_send: bool
    index: int
    arg: Any = None


@dataclass(slots=True)
class TaskOutput:
    """What a finished task contributes: state writes, and where to go next."""

    writes: list[tuple[str, Any]]
    goto: list[str | Send]
    update: Any = None


def task_id(thread_id: str, checkpoint_id: str, trigger: Trigger) -> str:
    """Deterministic from the task's position (see ``derive_task_id``)."""
    return derive_task_id(thread_id, checkpoint_id, trigger.node, trigger.is_send, trigger.index)


def assign_ids(
    thread_id: str, checkpoint_id: str, triggers: Sequence[Trigger]
) -> list[PlannedTask]:
    return [
        PlannedTask(task_id(thread_id, checkpoint_id, t), t.node, t.index, t.is_send, t.arg)
        for t in triggers
    ]


# -- node outputs -------------------------------------------------------------------------


def _is_instance(value: Any, cls: Any) -> bool:
    """isinstance that tolerates TypedDict classes (which refuse instance checks)."""
    try:
        return isinstance(value, cls)
    except TypeError:
        return False


def _as_items(node: str, update: Any, schema_cls: Any) -> list[tuple[str, Any]]:
    if update is None:
        return []
    if isinstance(update, Mapping):
        return list(update.items())
    if isinstance(update, list | tuple) and all(
        isinstance(i, tuple) and len(i) == 2 and isinstance(i[0], str) for i in update
    ):
        return list(update)
    if schema_cls is not None and _is_instance(update, schema_cls):
        if dataclasses.is_dataclass(update) and not isinstance(update, type):
            return [(f.name, getattr(update, f.name)) for f in dataclasses.fields(update)]
        dump = getattr(update, "model_dump", None)
        if callable(dump):
            return list(update.__dict__.items())
    raise InvalidUpdateError(
        f"{node} returned {type(update).__name__} {update!r:.80}; a node must return a dict "
        "of state updates, a Command, or None"
    )


def normalize_output(
    spec: GraphSpec, node: str, output: Any, where: str | None = None
) -> TaskOutput:
    """Validate a node's return value into writes and gotos; nothing unknown gets through.
    ``where`` names the writer in errors (default: the node, or "the input" for START)."""
    where = where or (f"node {node!r}" if node != START else "the input")
    if isinstance(output, Command):
        if output.has_resume and node != START:
            raise InvalidUpdateError(
                f"{where} returned Command(resume=...); resume is only valid as run input"
            )
        items = _as_items(where, output.update, spec.schema.cls)
        goto = [validate_target(spec, where, t) for t in output.goto_targets()]
        update: Any = output.update
    else:
        items = _as_items(where, output, spec.schema.cls)
        goto = []
        update = output
    channels = spec.channels
    for key, _ in items:
        if key not in channels:
            raise InvalidUpdateError(
                f"{where} wrote key {key!r}, which is not in the state schema "
                f"{spec.schema.cls.__name__} (keys: {sorted(channels)}); add it to the schema"
            )
    items = [(k, prepare_write(channels[k], v)) for k, v in items]
    return TaskOutput(items, [g for g in goto if g != END], update)


def prepare_write(channel: Channel, value: Any) -> Any:
    """A write as it will be stored and folded: messages written to an ``add_messages`` key
    get their ids here, once, so that every fold of the stored delta gives the same ids."""
    if channel.reducer is add_messages:
        return with_message_ids(value)
    return value


def validate_target(spec: GraphSpec, where: str, target: Any) -> str | Send:
    if isinstance(target, Send):
        if target.node not in spec.nodes:
            raise InvalidUpdateError(
                f"{where} sent to node {target.node!r}, which is not in the graph "
                f"(known nodes: {sorted(spec.nodes)})"
            )
        return target
    if target == END or (isinstance(target, str) and target in spec.nodes):
        return str(target)
    raise InvalidUpdateError(
        f"{where} routed to {target!r}, which is not a node of the graph "
        f"(known nodes: {sorted(spec.nodes)}, or END)"
    )


def resolve_branch(spec: GraphSpec, branch: Branch, result: Any) -> list[str | Send]:
    """Turn a router's return value into targets, through its path_map."""
    where = f"router of the conditional edge from {branch.source!r}"
    raw = list(result) if isinstance(result, list | tuple) else [result]
    out: list[str | Send] = []
    for r in raw:
        if isinstance(r, Send):
            out.append(validate_target(spec, where, r))
            continue
        if branch.path_map is not None:
            if r not in branch.path_map:
                raise InvalidUpdateError(
                    f"{where} returned {r!r}, which is not a key of its path_map "
                    f"{sorted(map(str, branch.path_map))}"
                )
            r = branch.path_map[r]
        out.append(validate_target(spec, where, r))
    return [t for t in out if t != END]


# -- folding ------------------------------------------------------------------------------


def fold(channel: Channel, current: Any, write: Any) -> Any:
    """Apply one write to a channel's value."""
    if channel.reducer is None:
        return write
    if current is MISSING:
        if channel.default is None:
            return write
        current = channel.default()
    return channel.reducer(current, write)


def fold_many(channel: Channel, current: Any, writes: Iterable[Any]) -> Any:
    """Fold a run of writes; list concatenation is done in one pass instead of n copies."""
    writes = list(writes)
    if not writes:
        return current
    if channel.reducer is add_messages:
        # add_messages over the concatenated writes equals folding them one by one (a later
        # message with a known id replaces it in place either way), in one pass.
        merged: list[Any] = []
        for w in writes:
            merged.extend(w if isinstance(w, list | tuple) else [w])
        return add_messages([] if current is MISSING else current, merged)
    if channel.reducer is operator.add and all(isinstance(w, list) for w in writes):
        base = [] if current is MISSING else current
        if isinstance(base, list):
            out = list(base)
            for w in writes:
                out.extend(w)
            return out
    for w in writes:
        current = fold(channel, current, w)
    return current


def apply_writes(
    spec: GraphSpec,
    values: dict[str, Any],
    outputs: Sequence[tuple[PlannedTask, TaskOutput]],
) -> dict[str, list[Any]]:
    """Fold the step's writes into ``values`` (in place) in task order. Returns, per changed
    channel, the writes applied (a reducer channel's delta). Raises before changing anything
    when two tasks write one last-value key."""
    ordered = sorted(outputs, key=lambda o: o[0].sort_key())
    writers: dict[str, list[str]] = {}
    per_key: dict[str, list[Any]] = {}
    for task, out in ordered:
        for key, value in out.writes:
            writers.setdefault(key, []).append(task.node)
            per_key.setdefault(key, []).append(value)
    channels = spec.channels
    for key, names in writers.items():
        if channels[key].reducer is None and len(names) > 1:
            raise InvalidUpdateError(
                f"key {key!r} was written {len(names)} times in one step (by nodes "
                f"{names}) but has no reducer; give it a reducer with Annotated[..., reducer] "
                "or let only one node write it per step"
            )
    folded: dict[str, Any] = {}
    for key, writes in per_key.items():
        channel = channels[key]
        try:
            folded[key] = fold_many(channel, values.get(key, MISSING), writes)
        except Exception as exc:
            reducer = getattr(channel.reducer, "__name__", repr(channel.reducer))
            raise InvalidUpdateError(
                f"key {key!r}: its reducer {reducer} failed on the writes of nodes "
                f"{writers[key]} ({type(exc).__name__}: {exc}); write values the reducer "
                "accepts (for operator.add on a list, a list)"
            ) from exc
    values.update(folded)  # all or nothing: a failing reducer leaves the state as it was
    return per_key


# -- what runs next -----------------------------------------------------------------------


def plan_next(
    spec: GraphSpec,
    finished: Sequence[tuple[PlannedTask, TaskOutput]],
    joins: Mapping[str, frozenset[str]],
) -> tuple[list[Trigger], dict[str, frozenset[str]]]:
    """Next step's triggers from the finished tasks' edges, gotos and joins.

    Pull triggers are deduplicated and sorted by node name; Sends keep their order.
    """
    pulls: set[str] = set()
    sends: list[Send] = []
    seen = {k: set(v) for k, v in joins.items()}
    for task, out in sorted(finished, key=lambda o: o[0].sort_key()):
        for edge_target in spec.edges.get(task.node, ()):
            if edge_target != END:
                pulls.add(edge_target)
        for target in out.goto:
            if isinstance(target, Send):
                sends.append(target)
            else:
                pulls.add(target)
        for join in spec.joins_by_source.get(task.node, ()):
            got = seen.setdefault(join.id, set())
            got.add(task.node)
            if got >= join.sources:
                if join.target != END:
                    pulls.add(join.target)
                seen[join.id] = set()
    triggers = [Trigger(n, False, 0) for n in sorted(pulls)]
    triggers += [Trigger(s.node, True, i, s.arg) for i, s in enumerate(sends)]
    return triggers, {k: frozenset(v) for k, v in seen.items() if v}


def goto_triggers(goto: Sequence[str | Send]) -> list[Trigger]:
    """Triggers for explicit targets only (``Command(goto=...)`` given as run input)."""
    pulls = sorted({g for g in goto if isinstance(g, str)})
    sends = [g for g in goto if isinstance(g, Send)]
    return [Trigger(n, False, 0) for n in pulls] + [
        Trigger(s.node, True, i, s.arg) for i, s in enumerate(sends)
    ]
