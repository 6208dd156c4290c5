"""A task's status comes from its write log alone."""

from __future__ import annotations

import pytest

from tether.checkpoint import WriteRow
from tether.engine._planner import TaskOutput
from tether.engine._status import WITHDRAWN, collect_logs, encode_output
from tether.errors import CorruptionError
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
        "t",
    )
    assert logs["done"].status == "done"
    assert logs["done"].output == TaskOutput([("x", 1)], ["b", Send("c", {"k": 2})])
    assert logs["paused"].status == "paused"
    assert [i.id for i in logs["paused"].pending_interrupts()] == ["i1"]
    assert logs["paused"].positions == {"#0": "i1"}
    assert logs["answered"].status == "runnable" and logs["answered"].resumes == {"i2": True}
    assert logs["withdrawn"].status == "paused"  # a withdrawn answer does not count
    assert logs["failed"].status == "runnable" and logs["failed"].error == "RuntimeError: boom"


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        # damaged bytes: the checksum fails
        (
            WriteRow("task-7", "interrupt", "iid-3", b"\xc1\x01\x00\x00\x00\x00\x92\xa1x\xc0"),
            "interrupt 'iid-3' of task 'task-7'",
        ),
        # bytes no tether writes (an interrupt record is [value, where]): used to be a raw
        # "TypeError: cannot unpack non-iterable int object" naming nothing
        (row("task-7", "interrupt", "iid-3", 5), "interrupt 'iid-3' of task 'task-7'"),
        (row("task-7", "journal", "0", ["two", "items"]), "journal entry '0'"),
        (WriteRow("task-7", "output", "", SER.dumps([[["x"]], []])), "writes of task 'task-7'"),
    ],
    ids=["interrupt-checksum", "interrupt-shape", "journal-shape", "output-shape"],
)
def test_an_unreadable_row_names_the_thread_the_task_and_the_row(bad: WriteRow, named: str) -> None:
    good = row("task-7", "interrupt", "ok", ["fine", ""])
    with pytest.raises(CorruptionError) as info:
        collect_logs(SER, [good, bad], "thread-9")
    assert "thread 'thread-9'" in str(info.value) and named in str(info.value)
