"""The pure planner: how node outputs become writes, how writes fold into state, and which
tasks run next. No I/O, no clocks, no threads: given the same inputs it gives the same plan.

Fold order is fixed: tasks sorted by (node name, Send order), so results never depend on
which thread finished first.
"""

from __future__ import annotations

import inspect
import operator
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tether._messages import add_messages, with_message_ids
from tether.checkpoint._body import derive_task_id
from tether.engine._spec import Branch, Channel, GraphSpec
from tether.errors import DroppedUpdateWarning, InvalidUpdateError
from tether.types import END, OVERWRITE_KEY, START, Command, Overwrite, Send

MISSING: Any = object()

DEFERRED = "defer"
"""The ``joins`` entry holding the deferred nodes that were triggered and wait to run (join
ids start with "join:", so it cannot clash)."""


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


def annotated_keys(cls: type) -> tuple[str, ...]:
    """The keys a class declares with annotations, along its MRO (base classes first)."""
    keys: dict[str, None] = {}
    for base in reversed(cls.__mro__):
        keys.update(dict.fromkeys(inspect.get_annotations(base)))
    return tuple(keys)


def object_items(value: Any, keys: Iterable[str]) -> list[tuple[str, Any]]:
    """The writes an object with annotated fields (a dataclass, a pydantic model, a plain
    class) makes to ``keys``, by LangGraph's rule: every key it has as an attribute, except
    that a pydantic field left at a default of None is not written. So a returned model
    writes what it set and its fields whose defaults are not None, and a key it lacks keeps
    its value."""
    fields_set = getattr(value, "model_fields_set", None)
    model_fields = getattr(type(value), "model_fields", None)
    none_default: set[str] = set()
    if isinstance(fields_set, set | frozenset) and isinstance(model_fields, dict):
        none_default = {
            k for k, f in model_fields.items() if getattr(f, "default", MISSING) is None
        } - set(fields_set)
    items = []
    for key in keys:
        attr = getattr(value, key, MISSING)
        if attr is MISSING or (attr is None and key in none_default):
            continue
        items.append((key, attr))
    return items


def is_state_object(value: Any) -> bool:
    """Whether ``value`` writes state as an object with annotated fields (a dataclass or
    pydantic instance, say) rather than as a mapping or a list of pairs."""
    if isinstance(value, Mapping | str | bytes | list | tuple):
        return False
    return bool(annotated_keys(type(value)))


def _as_items(where: str, update: Any, keys: Iterable[str]) -> list[tuple[str, Any]]:
    """A return value (or input) as (key, value) writes: a dict's items, a list of pairs, or
    an annotated object's fields among ``keys`` (see ``object_items``)."""
    if update is None:
        return []
    if isinstance(update, Mapping):
        return list(update.items())
    if isinstance(update, list | tuple) and all(
        isinstance(i, tuple) and len(i) == 2 and isinstance(i[0], str) for i in update
    ):
        return list(update)
    if is_state_object(update):
        return object_items(update, keys)
    raise InvalidUpdateError(
        f"{where} returned {type(update).__name__} {update!r:.80}; a node must return a dict "
        "of state updates, a Command, an instance of the state schema, or None"
    )


def normalize_output(
    spec: GraphSpec,
    node: str,
    output: Any,
    where: str | None = None,
    *,
    keys: Iterable[str] | None = None,
) -> TaskOutput:
    """Validate a node's return value into writes and gotos; nothing unknown gets through.
    ``where`` names the writer in errors (default: the node, or "the input" for START);
    ``keys``, the keys an object's fields are read for (default: the input keys for START,
    the state keys otherwise)."""
    where = where or (f"node {node!r}" if node != START else "the input")
    if keys is None:
        keys = spec.input_keys if node == START else spec.channels.keys()
    if isinstance(output, Command):
        if output.has_resume and node != START:
            raise InvalidUpdateError(
                f"{where} returned Command(resume=...); resume is only valid as run input"
            )
        items = _as_items(where, output.update, keys)
        targets = [validate_target(spec, where, t) for t in output.goto_targets()]
        goto = [t for t in targets if t is not None]
        update: Any = output.update
    else:
        items = _as_items(where, output, keys)
        goto = []
        update = output
    channels = spec.channels
    known = [(k, v) for k, v in items if k in channels]
    for key, _ in items:
        if key not in channels:
            _unknown_key(spec, where, key)
    items = [(k, prepare_write(channels[k], v)) for k, v in known]
    return TaskOutput(items, [g for g in goto if g != END], update)


def _unknown_key(spec: GraphSpec, where: str, key: str) -> None:
    """A write to a key that is no channel: an error, or with ``strict=False`` a warning."""
    name = spec.schema.cls.__name__
    if key in spec.schema.managed:
        message = (
            f"{where} wrote key {key!r}, a managed value of {name} (computed by tether for "
            "each step, never written); remove it from the update"
        )
    else:
        message = (
            f"{where} wrote key {key!r}, which is not in the state schema {name} "
            f"(keys: {sorted(spec.channels)}); add it to the schema"
        )
    _reject(spec, message)


def _reject(spec: GraphSpec, message: str) -> None:
    if spec.strict:
        raise InvalidUpdateError(message)
    warnings.warn(
        f"{message}. Dropped (the graph was compiled with strict=False).",
        DroppedUpdateWarning,
        stacklevel=4,
    )


def overwrite_of(value: Any) -> tuple[bool, Any]:
    """Whether ``value`` is an Overwrite (``Overwrite(v)`` or ``{"__overwrite__": v}``), and
    the value it writes."""
    if isinstance(value, Overwrite):
        return True, value.value
    if isinstance(value, dict) and len(value) == 1 and OVERWRITE_KEY in value:
        return True, value[OVERWRITE_KEY]
    return False, None


def prepare_write(channel: Channel, value: Any) -> Any:
    """A write as it will be stored and folded: messages written to an ``add_messages`` key
    get their ids here, once, so that every fold of the stored delta gives the same ids. An
    Overwrite of a key without reducer is just its value; of a reducer key, an ``Overwrite``
    whatever form it was written in."""
    is_overwrite, replacement = overwrite_of(value)
    if is_overwrite:
        if channel.reducer is None:
            return replacement
        if channel.reducer is add_messages:
            replacement = with_message_ids(replacement)
        return Overwrite(replacement)
    if channel.reducer is add_messages:
        return with_message_ids(value)
    return value


def validate_target(spec: GraphSpec, where: str, target: Any) -> str | Send | None:
    """``target`` if it names a node (or END); None when ``strict=False`` drops it."""
    if isinstance(target, Send):
        if target.node in spec.nodes:
            return target
        _reject(
            spec,
            f"{where} sent to node {target.node!r}, which is not in the graph "
            f"(known nodes: {sorted(spec.nodes)})",
        )
        return None
    if target == END or (isinstance(target, str) and target in spec.nodes):
        return str(target)
    _reject(
        spec,
        f"{where} routed to {target!r}, which is not a node of the graph "
        f"(known nodes: {sorted(spec.nodes)}, or END)",
    )
    return None


def resolve_branch(spec: GraphSpec, branch: Branch, result: Any) -> list[str | Send]:
    """Turn a router's return value into targets, through its path_map."""
    where = f"router of the conditional edge from {branch.source!r}"
    raw = list(result) if isinstance(result, list | tuple) else [result]
    out: list[str | Send] = []
    for r in raw:
        if not isinstance(r, Send) and branch.path_map is not None:
            if r not in branch.path_map:
                raise InvalidUpdateError(
                    f"{where} returned {r!r}, which is not a key of its path_map "
                    f"{sorted(map(str, branch.path_map))}"
                )
            r = branch.path_map[r]
        target = validate_target(spec, where, r)
        if target is not None:
            out.append(target)
    return [t for t in out if t != END]


def with_defaults(spec: GraphSpec, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` plus the empty value of each reducer channel never written: as in
    LangGraph, ``Annotated[list, operator.add]`` reads ``[]`` from the start."""
    missing = [c for c in spec.channels.values() if c.reducer is not None and c.default is not None]
    missing = [c for c in missing if c.name not in values]
    if not missing:
        return values
    return {**values, **{c.name: c.default() for c in missing if c.default is not None}}


def with_managed(spec: GraphSpec, values: dict[str, Any], remaining: int) -> dict[str, Any]:
    """The state as nodes and routers read it: ``values`` with reducer defaults
    (``with_defaults``), plus the schema's managed values for a step after which
    ``remaining`` more steps may run."""
    values = with_defaults(spec, values)
    managed = spec.schema.managed
    if not managed:
        return values
    return {**values, **{key: get(remaining) for key, get in managed.items()}}


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
    """Fold a run of writes; list concatenation is done in one pass instead of n copies. An
    Overwrite among them is the result (the step's other writes to the key are dropped)."""
    writes = list(writes)
    if not writes:
        return current
    replaced = [v for is_over, v in map(overwrite_of, writes) if is_over]
    if replaced:
        if len(replaced) > 1:
            raise InvalidUpdateError(
                f"key {channel.name!r} received {len(replaced)} Overwrite values in one step; "
                "a key takes at most one Overwrite per step"
            )
        return replaced[0]
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
        overwriters = [n for n, w in zip(names, per_key[key], strict=True) if overwrite_of(w)[0]]
        if len(overwriters) > 1:
            raise InvalidUpdateError(
                f"key {key!r} received an Overwrite from each of nodes {overwriters} in one "
                "step; a key takes at most one Overwrite per step, so let one node replace it"
            )
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

    Pull triggers are deduplicated and sorted by node name; Sends keep their order. A
    deferred node (``defer=True``) that is triggered waits, kept in ``joins`` under
    ``DEFERRED``, until a step plans nothing else; then the waiting ones run together.
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
    waiting = seen.pop(DEFERRED, set()) | {n for n in pulls if spec.nodes[n].defer}
    pulls -= waiting
    if pulls or sends:
        seen[DEFERRED] = waiting
    else:
        pulls = waiting
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
