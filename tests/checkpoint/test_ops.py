"""Thread export files: malformed input is a CheckpointError naming the problem."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import replace

import pytest

from tether.checkpoint import CheckpointRow, InMemorySaver, ValueRow, WriteRow
from tether.checkpoint._ops import export_lines, parse_lines
from tether.errors import CheckpointError, CorruptionError


def header(**over: object) -> str:
    base: dict[str, object] = {
        "format": "tether-thread",
        "version": 1,
        "thread_id": "t",
        "head": None,
    }
    return json.dumps({**base, **over})


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "empty"),
        (["not json"], "malformed"),
        ([header(format="other")], "not a tether thread export"),
        ([header(version=9)], "version 9"),
        ([header(), json.dumps({"type": "mystery"})], "unknown record type"),
        ([header(), json.dumps({"type": "value", "channel": "x"})], "malformed"),
        (
            [
                header(),
                json.dumps(
                    {"type": "write", "task": "t", "kind": "output", "key": "", "payload": "***"}
                ),
            ],
            "malformed",
        ),
    ],
)
def test_bad_exports(lines: list[str], message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        parse_lines(lines)


def test_prune_and_export_need_an_existing_thread() -> None:
    saver = InMemorySaver()
    with pytest.raises(CheckpointError, match="does not exist"):
        saver.prune("nope", keep_last=1)
    with pytest.raises(CheckpointError, match="does not exist"):
        saver.export_thread("nope", io.StringIO())
    with pytest.raises(CheckpointError, match="keep_last"):
        saver.prune("nope", keep_last=0)


def _flip_last_bit(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0x10])


def _damage_line(line: str, kind: str) -> str:
    rec = json.loads(line)
    if rec.get("type") != kind:
        return line
    field = "body" if kind == "checkpoint" else "payload"
    rec[field] = base64.b64encode(_flip_last_bit(base64.b64decode(rec[field]))).decode()
    return json.dumps(rec)


def test_damaged_records_are_neither_exported_nor_imported() -> None:
    saver = InMemorySaver()
    body = saver.serde.dumps([1, {"note": 1}, {}, [], {}, {}])
    saver.commit(
        "t",
        expected_version=None,
        checkpoint=CheckpointRow("t", "c1", None, 1, 0, 0.0, body),
        values=[ValueRow("note", 1, None, 1, saver.serde.dumps("a note"))],
        writes=[WriteRow("task", "interrupt", "i1", saver.serde.dumps(["ok?", ""]))],
        lease_seconds=1.0,
        durable=False,
    )
    dump = saver.dump_thread("t")
    (c,), (v,), (w,) = dump.checkpoints, dump.values, dump.writes
    for kind, bad, named in (
        (
            "checkpoint",
            replace(dump, checkpoints=[replace(c, body=_flip_last_bit(c.body))]),
            "'c1'",
        ),
        ("value", replace(dump, values=[replace(v, payload=_flip_last_bit(v.payload))]), "'note'"),
        ("write", replace(dump, writes=[replace(w, payload=_flip_last_bit(w.payload))]), "'i1'"),
    ):
        damaged_store = InMemorySaver()
        damaged_store.load_thread(bad)
        with pytest.raises(CorruptionError, match=rf"thread 't': .*{named}.* damaged"):
            damaged_store.export_thread("t", io.StringIO())
        damaged_file = "\n".join(_damage_line(line, kind) for line in export_lines(dump))
        with pytest.raises(CorruptionError, match=rf"thread 'copy': .*{named}.* damaged"):
            saver.import_thread(io.StringIO(damaged_file), thread_id="copy")
        assert saver.get_head("copy") is None
