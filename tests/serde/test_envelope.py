"""The record frame: every plaintext record carries a CRC-32 that every read checks, records
from before checksums still read, and no damaged bit goes unnoticed."""

from __future__ import annotations

import datetime
import zlib

import msgpack
import pytest

from tether.errors import SerializationError
from tether.serde import EncryptedSerializer, MsgpackSerializer, TypeRegistry
from tether.serde._envelope import (
    CHECKED,
    CHECKED_HEADER_SIZE,
    MAGIC,
    CorruptRecordError,
    is_encrypted,
    seal,
    unseal,
    verify,
)

VALUES: list[object] = [
    None,
    7,
    "short",
    {"messages": ["hi", ("x", 1)], "n": 2.5, "when": datetime.date(2024, 5, 1)},
    [1, ["answer yes", {"k": b"\x00\xff"}]],
    "long text " * 40,
]


@pytest.fixture
def ser() -> MsgpackSerializer:
    return MsgpackSerializer(TypeRegistry())


def flips(record: bytes) -> list[bytes]:
    """``record`` with each of its bits flipped in turn."""
    out = []
    for i in range(len(record) * 8):
        damaged = bytearray(record)
        damaged[i // 8] ^= 1 << (i % 8)
        out.append(bytes(damaged))
    return out


@pytest.mark.parametrize("value", VALUES)
def test_records_are_framed_with_a_crc32_of_the_payload(
    ser: MsgpackSerializer, value: object
) -> None:
    record = ser.dumps(value)
    payload = ser.dumps_payload(value)
    assert record[:2] == CHECKED and record[CHECKED_HEADER_SIZE:] == payload
    assert int.from_bytes(record[2:CHECKED_HEADER_SIZE], "big") == zlib.crc32(payload)
    assert bytes(unseal(record)) == payload
    assert ser.loads(record) == value
    verify(record)


@pytest.mark.parametrize("value", VALUES)
def test_every_single_bit_flip_is_caught(ser: MsgpackSerializer, value: object) -> None:
    for damaged in flips(ser.dumps(value)):
        with pytest.raises(CorruptRecordError):
            ser.loads(damaged)
        with pytest.raises(CorruptRecordError):
            verify(damaged)


def test_a_flipped_first_byte_is_not_mistaken_for_a_record_without_checksum(
    ser: MsgpackSerializer,
) -> None:
    # 0xC1 with one bit flipped can be a msgpack header (0xC5: bin 16, 0x81: a map, ...):
    # read as a bare record it could decode to some other value.
    for value in VALUES:
        record = ser.dumps(value)
        for bit in range(8):
            damaged = bytes([record[0] ^ (1 << bit)]) + record[1:]
            with pytest.raises(CorruptRecordError, match="first byte is damaged"):
                ser.loads(damaged)


def test_truncated_records_are_caught(ser: MsgpackSerializer) -> None:
    record = ser.dumps({"a": [1, 2, 3], "b": "text" * 10})
    for cut in range(len(record)):
        with pytest.raises(SerializationError):
            ser.loads(record[:cut])


@pytest.mark.parametrize("value", VALUES)
def test_records_from_before_checksums_still_read(ser: MsgpackSerializer, value: object) -> None:
    bare = ser.dumps_payload(value)
    assert bare[:1] != CHECKED[:1]
    assert ser.loads(bare) == value
    verify(bare)  # nothing to check them against


def test_unknown_frames_are_refused(ser: MsgpackSerializer) -> None:
    for second in (0x00, 0x02, 0x7F, 0xFF):
        record = bytes([0xC1, second]) + msgpack.packb(1)
        with pytest.raises(CorruptRecordError, match="unknown frame"):
            ser.loads(record)


def test_encrypted_records_are_not_framed_twice() -> None:
    inner = MsgpackSerializer(TypeRegistry())
    enc = EncryptedSerializer(inner, {"k": bytes(32)}, "k")
    record = enc.dumps({"a": 1})
    assert is_encrypted(record) and record[:2] == MAGIC
    assert enc.loads(record) == {"a": 1}
    verify(record)  # AES-GCM checks it on decrypt


def test_the_frame_cost(ser: MsgpackSerializer) -> None:
    assert len(seal(b"")) == CHECKED_HEADER_SIZE == 6
    assert len(ser.dumps("x" * 100)) == len(ser.dumps_payload("x" * 100)) + 6
