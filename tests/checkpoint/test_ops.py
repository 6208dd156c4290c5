"""Thread export files: malformed input is a CheckpointError naming the problem."""

from __future__ import annotations

import io
import json

import pytest

from tether.checkpoint import InMemorySaver
from tether.checkpoint._ops import parse_lines
from tether.errors import CheckpointError


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
