"""Rich output: tables of threads and history, a snapshot, pending interrupts.

Every cell is a ``Text`` or ``Pretty``, never a markup string, so stored values that look like
``[bold]`` markup print as they are. Ids never wrap, so they can be copied from the output.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.pretty import Pretty
from rich.table import Table
from rich.text import Text

from tether.engine._metrics import (
    TARGET_CHECKPOINT_BYTES,
    TARGET_IDEMPOTENCY,
    TARGET_RECOVERY_SECONDS,
    TARGET_RESUME_SECONDS,
    ThreadMetrics,
)
from tether.types import Interrupt, StateSnapshot

MAX_STRING = 120
"""Characters of a string value shown before it is cut (``--full`` shows everything)."""
MAX_LENGTH = 20
"""Items of a list or dict value shown before it is cut."""

_PIPE_WIDTH = 200


def _console(stderr: bool) -> Console:
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        # Piped or captured output: do not wrap at 80 columns.
        console = Console(stderr=stderr, highlight=False, width=_PIPE_WIDTH)
    return console


def stdout_console() -> Console:
    return _console(stderr=False)


def stderr_console() -> Console:
    return _console(stderr=True)


def value(obj: Any, *, full: bool = False) -> RenderableType:
    """A stored value, pretty-printed; long strings and collections are cut unless ``full``."""
    if full:
        return Pretty(obj)
    return Pretty(obj, max_string=MAX_STRING, max_length=MAX_LENGTH, max_depth=6)


def _names(names: Sequence[str]) -> Text:
    return Text(", ".join(names)) if names else Text("-", style="dim")


@dataclass(frozen=True, slots=True)
class ThreadRow:
    thread_id: str
    checkpoint_id: str | None
    step: int | None
    next: tuple[str, ...] | None
    interrupts: int | None


def threads_table(rows: Sequence[ThreadRow]) -> Table:
    table = Table(title=f"{len(rows)} thread{'s' if len(rows) != 1 else ''}", title_justify="left")
    table.add_column("thread", no_wrap=True)
    table.add_column("head checkpoint", no_wrap=True)
    table.add_column("step", justify="right")
    table.add_column("next")
    table.add_column("interrupts", justify="right")
    unknown = Text("?", style="dim")
    for r in rows:
        table.add_row(
            Text(r.thread_id, style="bold"),
            Text(r.checkpoint_id or "-"),
            Text(str(r.step)) if r.step is not None else unknown,
            _names(r.next) if r.next is not None else unknown,
            Text(str(r.interrupts), style="yellow" if r.interrupts else "")
            if r.interrupts is not None
            else unknown,
        )
    return table


def history_table(snaps: Sequence[StateSnapshot]) -> Table:
    table = Table(title="newest first", title_justify="left")
    table.add_column("checkpoint", no_wrap=True)
    table.add_column("step", justify="right")
    table.add_column("source")
    table.add_column("next")
    table.add_column("interrupts", justify="right")
    table.add_column("created_at", no_wrap=True)
    for s in snaps:
        table.add_row(
            Text(str(s.config["configurable"].get("checkpoint_id", ""))),
            Text(str(s.metadata.get("step", ""))),
            Text(str(s.metadata.get("source", ""))),
            _names(s.next),
            Text(str(len(s.interrupts)) if s.interrupts else ""),
            Text(s.created_at or ""),
        )
    return table


def interrupts_table(snap: StateSnapshot, interrupts: Sequence[Interrupt], *, full: bool) -> Table:
    node_of = {i.id: t.name for t in snap.tasks for i in t.interrupts}
    table = Table(
        title=f"{len(interrupts)} pending interrupt{'s' if len(interrupts) != 1 else ''}",
        title_justify="left",
        title_style="bold yellow",
    )
    table.add_column("id", no_wrap=True)
    table.add_column("node")
    table.add_column("value")
    for i in interrupts:
        table.add_row(
            Text(i.id, style="bold"), Text(node_of.get(i.id, "")), value(i.value, full=full)
        )
    return table


def values_view(values: Any, *, full: bool) -> RenderableType:
    if not isinstance(values, dict):
        return value(values, full=full)
    if not values:
        return Text("(empty)", style="dim")
    table = Table(show_header=True, box=None, pad_edge=False)
    table.add_column("key", style="cyan", no_wrap=True)
    table.add_column("value")
    for key, val in values.items():
        table.add_row(Text(str(key)), value(val, full=full))
    return table


def pending_view(snap: StateSnapshot, *, full: bool) -> RenderableType:
    """Next nodes, the errors of tasks that failed, and pending interrupts of a snapshot."""
    parts: list[RenderableType] = []
    if snap.next:
        parts.append(Text.assemble(("next: ", "bold"), ", ".join(snap.next)))
    else:
        parts.append(Text.assemble(("next: ", "bold"), ("- (finished)", "dim")))
    for t in snap.tasks:
        if t.error is not None:
            parts.append(Text.assemble(("failed: ", "bold red"), f"{t.name}: ", t.error))
    if snap.interrupts:
        parts.append(interrupts_table(snap, snap.interrupts, full=full))
    else:
        parts.append(Text("no pending interrupts", style="dim"))
    return Group(*parts)


def header(snap: StateSnapshot) -> Text:
    conf = snap.config["configurable"]
    meta = snap.metadata
    return Text.assemble(
        ("thread ", "bold"),
        (str(conf.get("thread_id")), "bold green"),
        "  checkpoint ",
        str(conf.get("checkpoint_id", "-")),
        f"  step {meta.get('step', '?')}  source {meta.get('source', '?')}",
        f"  {snap.created_at or ''}",
    )


def snapshot_view(snap: StateSnapshot, *, full: bool) -> RenderableType:
    return Group(
        header(snap),
        Text("values", style="bold underline"),
        values_view(snap.values, full=full),
        pending_view(snap, full=full),
    )


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def _bytes(value: float) -> str:
    for unit in ("B", "KB", "MB"):
        if value < 1024 or unit == "MB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} MB"


def stats_table(m: ThreadMetrics) -> Table:
    """The four metrics of the guide, each with its target and whether it is met."""
    table = Table(title=f"thread {m.thread_id}: {m.runs} runs, {m.checkpoints} checkpoints")
    for col in ("metric", "measured", "target", "ok"):
        table.add_column(col)

    def ok(flag: bool | None) -> str:
        return "-" if flag is None else ("[green]yes[/]" if flag else "[red]no[/]")

    resume = m.resume_latency_max
    table.add_row(
        "resume latency (last / max)",
        f"{_seconds(m.resume_latency_last)} / {_seconds(resume)}  ({m.resumes} resumes)",
        f"< {TARGET_RESUME_SECONDS:.0f} s",
        ok(None if resume is None else resume < TARGET_RESUME_SECONDS),
    )
    table.add_row(
        "checkpoint size (largest / mean / total)",
        f"{_bytes(m.checkpoint_bytes_largest)} / {_bytes(m.checkpoint_bytes_mean)} / "
        f"{_bytes(m.checkpoint_bytes_total)}",
        f"< {TARGET_CHECKPOINT_BYTES // (1024 * 1024)} MB",
        ok(m.checkpoint_bytes_largest < TARGET_CHECKPOINT_BYTES if m.checkpoints else None),
    )
    recovery = m.recovery_seconds_max
    table.add_row(
        "failure recovery (last / max)",
        f"{_seconds(m.recovery_seconds_last)} / {_seconds(recovery)}  ({m.recoveries} "
        f"recoveries; {m.recovery_tasks_rerun} in-flight tasks redone, "
        f"{m.recovery_tasks_reused} finished reused)",
        f"< {TARGET_RECOVERY_SECONDS:.0f} s",
        ok(None if recovery is None else recovery < TARGET_RECOVERY_SECONDS),
    )
    table.add_row(
        "idempotency",
        f"{m.idempotency * 100:.1f} %  ({m.tasks_executed} task calls executed, "
        f"{m.tasks_replayed} replayed from the journal, {m.divergences} divergences)",
        f"{TARGET_IDEMPOTENCY * 100:.0f} %",
        ok(m.idempotency >= TARGET_IDEMPOTENCY),
    )
    return table
