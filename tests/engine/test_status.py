"""A task's status comes from its write log alone."""

from __future__ import annotations

from tether.checkpoint import WriteRow
from tether.engine._planner import TaskOutput
from tether.engine._status import WITHDRAWN, collect_logs, encode_output
from tether.serde import MsgpackSerializer
from tether.types import Send

SER = MsgpackSerializer()


def row(task: str, kind: str, key: str, value: object) -> WriteRow:
    return WriteRow(task, kind, key, SER.dumps(value))  # type: ignore[arg-type]


def test_rules() -> None:
    out = TaskOutput([("x", 1)], ["b", Send("c", {"k": 2})])
    logs = collect_logs(
        SER,
        [
            WriteRow("done", "output", "", encode_output(SER, out)),
            row("paused", "interrupt", "i1", ["ok?", "#0"]),
            row("answered", "interrupt", "i2", ["ok?", "#0"]),
            row("answered", "resume", "i2", True),
            row("withdrawn", "interrupt", "i3", ["ok?", "#0"]),
            row("withdrawn", "resume", "i3", WITHDRAWN),
            row("failed", "error", "", "RuntimeError: boom"),
        ],
    )
    assert logs["done"].status == "done"
    assert logs["done"].output == TaskOutput([("x", 1)], ["b", Send("c", {"k": 2})])
    assert logs["paused"].status == "paused"
    assert [i.id for i in logs["paused"].pending_interrupts()] == ["i1"]
    assert logs["paused"].positions == {"#0": "i1"}
    assert logs["answered"].status == "runnable" and logs["answered"].resumes == {"i2": True}
    assert logs["withdrawn"].status == "paused"  # a withdrawn answer does not count
    assert logs["failed"].status == "runnable" and logs["failed"].error == "RuntimeError: boom"
