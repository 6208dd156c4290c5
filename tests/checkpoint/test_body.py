"""The compact checkpoint body: derived task ids are left out, explicit ones kept."""

from __future__ import annotations

import pytest

from tether.checkpoint._body import (
    Body,
    TaskRecord,
    decode_body,
    derive_task_id,
    encode_body,
    is_inline,
)
from tether.errors import CheckpointError
from tether.serde import MsgpackSerializer

SER = MsgpackSerializer()


def test_round_trip_with_derived_and_explicit_ids() -> None:
    derived = derive_task_id("th", "cp", "a", False, 0)
    send = derive_task_id("th", "cp", "b", True, 1)
    body = Body(
        versions={"messages": 7},
        inline={"n": 3, "flag": True},
        tasks=[
            TaskRecord(derived, "a", 0, False),
            TaskRecord(send, "b", 1, True, {"x": 1}),
            TaskRecord("kept-from-before", "c", 0, False),
            TaskRecord("kept-send", "b", 2, True, [1, 2]),
        ],
        joins={"join:a+b->c": ["a"]},
        metadata={"source": "loop"},
    )
    data = encode_body(SER, "th", "cp", body)
    assert derived.encode() not in data  # derived ids cost nothing
    assert decode_body(SER, "th", "cp", data) == body
    # the same bytes read under another thread id derive other ids: renames re-encode bodies
    assert decode_body(SER, "other", "cp", data).tasks[0].id != derived


def test_unknown_format_and_garbage_are_checkpoint_errors() -> None:
    with pytest.raises(CheckpointError, match="format 99"):
        decode_body(SER, "th", "cp", SER.dumps([99, {}, {}, [], {}, {}]))
    with pytest.raises(CheckpointError, match="cannot be read"):
        decode_body(SER, "th", "cp", b"\xc1\x00garbage")


@pytest.mark.parametrize(
    ("value", "inline"),
    [
        (None, True),
        (3, True),
        (2.5, True),
        ("short", True),
        ("x" * 33, False),
        ([1], False),
        (2**70, False),
        (b"b" * 32, True),
    ],
)
def test_what_rides_inline(value: object, inline: bool) -> None:
    assert is_inline(value) is inline
