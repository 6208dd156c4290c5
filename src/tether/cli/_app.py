"""The ``tether`` commands. Each opens the DB, does one thing, and reports through ``reporting``
so that failures are one red line on stderr with exit code 1 or 2 (see ``_errors``)."""

from __future__ import annotations

import io
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from tether.checkpoint import Saver
from tether.cli import _render
from tether.cli._errors import EXIT_USAGE, CliError, reporting
from tether.cli._open import load_graph, open_saver, require_thread
from tether.engine._history import get_state_history
from tether.engine._metrics import read_metrics
from tether.engine._spec import reader_spec
from tether.engine._update import get_state
from tether.errors import CorruptionError, EncryptionError, TetherError
from tether.types import Command, RunResult, StateSnapshot

app = typer.Typer(
    name="tether",
    help="Inspect, resume and maintain tether threads stored in a checkpoint database.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

DbArg = Annotated[
    str,
    typer.Argument(
        metavar="DB",
        help="SQLite file (or sqlite:///path); postgresql://... and redis://... open a server.",
        show_default=False,
    ),
]
ThreadArg = Annotated[str, typer.Argument(metavar="THREAD", help="Thread id.", show_default=False)]
GraphOpt = Annotated[
    str | None,
    typer.Option(
        "--graph",
        "-g",
        metavar="MODULE:ATTR",
        help="The compiled graph that wrote the thread (needed for custom reducers and for "
        "resume); MODULE may also be a path/to/file.py.",
    ),
]
FullOpt = Annotated[bool, typer.Option("--full", help="Do not cut long values.")]


class DurabilityChoice(StrEnum):
    sync = "sync"
    async_ = "async"
    exit = "exit"


def _config(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}}


def _state(saver: Saver, thread_id: str, graph: str | None) -> StateSnapshot:
    if graph is not None:
        return load_graph(graph, saver).get_state(_config(thread_id))
    return get_state(reader_spec(), saver, _config(thread_id))


@app.command()
def _unread_row(saver: Saver, tid: str) -> _render.ThreadRow:
    """The row of a thread whose state cannot be read: its head and step where those read."""
    try:
        head = saver.get_head(tid)
        row = saver.get_checkpoint(tid, head.checkpoint_id) if head is not None else None
    except TetherError:
        return _render.ThreadRow(tid, "?", None, None, None)
    cid = head.checkpoint_id if head is not None else "?"
    return _render.ThreadRow(tid, cid, row.step if row is not None else None, None, None)


@app.command()
def threads(db: DbArg, graph: GraphOpt = None) -> None:
    """List threads: head checkpoint, step, next nodes and pending interrupts."""
    out = _render.stdout_console()
    with reporting(), open_saver(db, read_only=True) as saver:
        compiled = load_graph(graph, saver) if graph is not None else None
        rows: list[_render.ThreadRow] = []
        unreadable: list[str] = []
        damaged: list[tuple[str, str]] = []
        for tid in saver.list_threads():
            try:
                head = saver.get_head(tid)
                if head is None:
                    continue
                snap = (
                    compiled.get_state(_config(tid))
                    if compiled is not None
                    else get_state(reader_spec(), saver, _config(tid))
                )
            except TetherError as exc:
                # One thread that cannot be read (it needs its graph for a custom reducer, it
                # is damaged, or encrypted) must not hide the others.
                rows.append(_unread_row(saver, tid))
                if isinstance(exc, CorruptionError | EncryptionError):
                    damaged.append((tid, str(exc)))
                else:
                    unreadable.append(tid)
                continue
            rows.append(
                _render.ThreadRow(
                    tid,
                    head.checkpoint_id,
                    snap.metadata.get("step"),
                    snap.next,
                    len(snap.interrupts),
                )
            )
        out.print(_render.threads_table(rows))
        for tid, reason in damaged:
            out.print(Text(f"? {tid}: {' '.join(reason.split())}", style="dim"))
        if unreadable:
            out.print(
                Text(
                    f"? {', '.join(unreadable)}: cannot be read without the graph; "
                    "pass --graph module:attr",
                    style="dim",
                )
            )


@app.command()
def show(db: DbArg, thread: ThreadArg, graph: GraphOpt = None, full: FullOpt = False) -> None:
    """Show a thread's current values, next nodes and pending interrupts."""
    out = _render.stdout_console()
    with reporting(), open_saver(db, read_only=True) as saver:
        require_thread(saver, db, thread)
        out.print(_render.snapshot_view(_state(saver, thread, graph), full=full))


@app.command()
def history(
    db: DbArg,
    thread: ThreadArg,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=1, help="Show at most N checkpoints.")
    ] = None,
    graph: GraphOpt = None,
) -> None:
    """A table of a thread's checkpoints, newest first."""
    out = _render.stdout_console()
    with reporting(), open_saver(db, read_only=True) as saver:
        require_thread(saver, db, thread)
        if graph is not None:
            snaps = list(load_graph(graph, saver).get_state_history(_config(thread), limit=limit))
        else:
            snaps = list(get_state_history(reader_spec(), saver, _config(thread), limit=limit))
        out.print(_render.history_table(snaps))


@app.command()
def stats(db: DbArg, thread: ThreadArg) -> None:
    """The thread's durability metrics beside the guide's targets."""
    out = _render.stdout_console()
    with reporting(), open_saver(db, read_only=True) as saver:
        require_thread(saver, db, thread)
        out.print(_render.stats_table(read_metrics(saver, thread)))


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(
            f"--value is not valid JSON ({exc}); quote strings twice, e.g. --value '\"yes\"'",
            EXIT_USAGE,
        ) from exc


@app.command()
def resume(
    db: DbArg,
    thread: ThreadArg,
    graph: Annotated[
        str,
        typer.Option(
            "--graph",
            "-g",
            metavar="MODULE:ATTR",
            help="The compiled graph that wrote the thread.",
            show_default=False,
        ),
    ],
    value: Annotated[
        str,
        typer.Option("--value", metavar="JSON", help="The answer, as JSON.", show_default=False),
    ],
    interrupt_id: Annotated[
        str | None,
        typer.Option(
            "--id",
            metavar="INTERRUPT_ID",
            help="Answer this interrupt (required when several are pending).",
        ),
    ] = None,
    durability: Annotated[
        DurabilityChoice,
        typer.Option(
            "--durability",
            help="Commit mode of the resumed run; sync (the CLI default) flushes each step "
            "to disk, so an answered interrupt survives a machine crash.",
        ),
    ] = DurabilityChoice.sync,
    full: FullOpt = False,
) -> None:
    """Answer a pending interrupt and run the thread until it finishes or pauses again."""
    out = _render.stdout_console()
    with reporting():
        answer = _parse_value(value)  # before touching the database
    with reporting(), open_saver(db) as saver:
        require_thread(saver, db, thread)
        compiled = load_graph(graph, saver)
        before = compiled.get_state(_config(thread))
        if not before.interrupts:
            state = f"its next nodes are {', '.join(before.next)}" if before.next else "finished"
            raise CliError(f"thread {thread!r} has no pending interrupts ({state})")
        pending = [i.id for i in before.interrupts]
        if interrupt_id is None and len(pending) > 1:
            raise CliError(
                f"thread {thread!r} has {len(pending)} pending interrupts {pending}; "
                "choose one with --id"
            )
        if interrupt_id is not None and interrupt_id not in pending:
            raise CliError(
                f"thread {thread!r} has no pending interrupt {interrupt_id!r} (pending: {pending})"
            )
        # Always answer by id: a JSON object value is then never mistaken for an id map.
        answered = interrupt_id or pending[0]
        result = compiled.invoke(
            Command(resume={answered: answer}),
            _config(thread),
            durability=durability.value,
            version="v2",
        )
        assert isinstance(result, RunResult)
        after = compiled.get_state(_config(thread))
        out.print(
            Text.assemble(
                ("resumed ", "bold"),
                (thread, "bold green"),
                f" (answered {answered}); now at checkpoint ",
                str(after.config["configurable"].get("checkpoint_id")),
                f" step {after.metadata.get('step', '?')}",
            )
        )
        out.print(Text("result", style="bold underline"))
        out.print(_render.values_view(result.value, full=full))
        out.print(_render.pending_view(after, full=full))


@app.command()
def prune(
    db: DbArg,
    thread: ThreadArg,
    keep_last: Annotated[
        int,
        typer.Option(
            "--keep-last", min=1, help="Checkpoints to keep, newest first.", show_default=False
        ),
    ],
) -> None:
    """Delete all but the newest N checkpoints of a thread (and values only they needed)."""
    out = _render.stdout_console()
    with reporting(), open_saver(db) as saver:
        require_thread(saver, db, thread)
        deleted = saver.prune(thread, keep_last=keep_last)
        out.print(
            Text(
                f"pruned {deleted} checkpoint{'s' if deleted != 1 else ''} of {thread}; "
                f"kept the newest {keep_last}"
            )
        )


@app.command("export")
def export_(
    db: DbArg,
    thread: ThreadArg,
    output: Annotated[
        str,
        typer.Option("--output", "-o", metavar="FILE", help="Write here ('-': stdout)."),
    ] = "-",
) -> None:
    """Write a thread as JSON lines (readable by `tether import` on any backend)."""
    with reporting(), open_saver(db, read_only=True) as saver:
        require_thread(saver, db, thread)
        # read it all before touching the output, so a failed read leaves no partial file
        text = io.StringIO()
        lines = saver.export_thread(thread, text)
        if output == "-":
            sys.stdout.write(text.getvalue())
            sys.stdout.flush()
            return
        try:
            with open(output, "w", encoding="utf-8", newline="\n") as f:
                f.write(text.getvalue())
        except OSError as exc:
            raise CliError(f"{output}: cannot write: {exc.strerror or exc}") from exc
        _render.stdout_console().print(Text(f"exported {thread} to {output} ({lines} lines)"))


@app.command("import")
def import_(
    db: DbArg,
    file: Annotated[
        str, typer.Argument(metavar="FILE", help="An export ('-': stdin).", show_default=False)
    ],
    thread: Annotated[
        str | None,
        typer.Option("--thread", metavar="NEW_ID", help="Import under this thread id."),
    ] = None,
) -> None:
    """Load a thread written by `tether export`; creates DB if it does not exist."""
    with reporting():
        if file == "-":
            text = sys.stdin.read()
        else:
            try:
                text = Path(file).read_text(encoding="utf-8")
            except OSError as exc:
                raise CliError(f"{file}: cannot read: {exc.strerror or exc}", EXIT_USAGE) from exc
        with open_saver(db, create=True) as saver:
            imported = saver.import_thread(io.StringIO(text), thread_id=thread)
            checkpoints = sum(1 for _ in saver.list_checkpoints(imported))
        _render.stdout_console().print(
            Text(f"imported thread {imported} ({checkpoints} checkpoints)")
        )


@app.command()
def delete(
    db: DbArg,
    thread: ThreadArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a thread and everything it stored."""
    with reporting(), open_saver(db) as saver:
        require_thread(saver, db, thread)
        if not yes:
            if not sys.stdin.isatty():
                raise CliError(f"deleting thread {thread!r} needs --yes", EXIT_USAGE)
            typer.confirm(f"Delete thread {thread!r} and all its checkpoints?", abort=True)
        saver.delete_thread(thread)
        _render.stdout_console().print(Text(f"deleted thread {thread}"))


def main() -> None:
    """Entry point of the ``tether`` script and ``python -m tether.cli``."""
    app(prog_name="tether")
