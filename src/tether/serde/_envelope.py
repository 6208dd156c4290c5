"""The frame of a stored record: its first bytes say what it is and how it is checked.

- ``C1 01`` + CRC-32 of the payload (4 bytes, big-endian) + msgpack payload: a plaintext
  record, checked on every read (a flipped bit fails the checksum);
- ``C1 7E`` + version + key-id length + key id, then nonce + ciphertext: an encrypted record,
  checked by AES-GCM's tag (``serde/_crypto.py``), so it carries no checksum of its own;
- anything else: a plaintext record written before checksums (bare msgpack), read unchecked.

Invariant: every frame starts with 0xC1, a byte msgpack never emits, so a framed record can
never be mistaken for a bare one (or one kind of frame for the other) by its first bytes.
"""

from __future__ import annotations

import struct
import zlib
from typing import Final

from tether.errors import SerializationError

MAGIC: Final = b"\xc1\x7e"
VERSION: Final = 1
NONCE_SIZE: Final = 12
MAX_KEY_ID_BYTES: Final = 255

CHECKED: Final = b"\xc1\x01"
"""Starts a plaintext record with a checksum (its second byte is 7 bits away from MAGIC's)."""
CHECKSUM_SIZE: Final = 4
CHECKED_HEADER_SIZE: Final = len(CHECKED) + CHECKSUM_SIZE
_FRAME: Final = CHECKED[0]
_CRC: Final = struct.Struct(">I")
_COPY_MAX: Final = 2048
"""Payloads up to this size are sliced out as bytes; larger ones as a view (no copy)."""


class HeaderError(Exception):
    """The bytes start like an encrypted record but the header is malformed (internal)."""


class CorruptRecordError(SerializationError):
    """Stored bytes fail their checksum or their frame is damaged. Readers that know the
    thread and the row turn it into a ``CorruptionError`` naming them."""


def is_encrypted(data: bytes) -> bool:
    """True if ``data`` starts with the encrypted-record magic."""
    return data[: len(MAGIC)] == MAGIC


def is_framed(data: bytes) -> bool:
    """True if ``data`` starts with a frame byte (checked plaintext or encrypted)."""
    return data[:1] == MAGIC[:1]


def build_header(key_id: bytes) -> bytes:
    """The authenticated header for a record written with ``key_id`` (1..255 UTF-8 bytes)."""
    return MAGIC + bytes((VERSION, len(key_id))) + key_id


def parse_header(data: bytes) -> tuple[str, int]:
    """Return ``(key_id, header_length)`` of an encrypted record, or raise ``HeaderError``."""
    if data[: len(MAGIC)] != MAGIC:
        raise HeaderError("bad magic bytes")
    fixed = len(MAGIC) + 2
    if len(data) < fixed:
        raise HeaderError("truncated header")
    version = data[len(MAGIC)]
    if version != VERSION:
        raise HeaderError(f"unsupported record version {version}")
    kid_len = data[len(MAGIC) + 1]
    end = fixed + kid_len
    if kid_len == 0 or len(data) < end:
        raise HeaderError("truncated header")
    try:
        key_id = data[fixed:end].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HeaderError("key id is not UTF-8") from exc
    return key_id, end


def seal(payload: bytes) -> bytes:
    """A checked plaintext record holding ``payload``."""
    return CHECKED + _CRC.pack(zlib.crc32(payload)) + payload


def unseal(data: bytes) -> bytes | memoryview:
    """The payload of a plaintext record (checked, or bare from before checksums).

    Raises ``CorruptRecordError`` when the checksum or the frame is wrong. The caller has
    already routed encrypted records elsewhere (``is_encrypted``).
    """
    if data[:2] == CHECKED:
        size = len(data)
        cut = CHECKED_HEADER_SIZE
        payload = data[cut:] if size <= _COPY_MAX else memoryview(data)[cut:]
        if size < cut or zlib.crc32(payload) != _CRC.unpack_from(data, len(CHECKED))[0]:
            raise CorruptRecordError(
                f"stored record fails its checksum ({len(data)} bytes): it was damaged after it "
                "was written"
            )
        return payload
    if is_framed(data):
        raise CorruptRecordError(
            f"stored record starts with an unknown frame {bytes(data[:2]).hex()!r}: it is "
            "damaged, or was written by a newer tether"
        )
    if _damaged_frame_byte(data):
        raise CorruptRecordError(
            f"stored record's first byte is damaged ({bytes(data[:1]).hex()!r} where a checked "
            "record has 'c1')"
        )
    return data


def _damaged_frame_byte(data: bytes) -> bool:
    """A checked record whose first byte had one bit flipped would otherwise read as a bare
    record: detect it by its second byte and its (still valid) checksum."""
    if len(data) < CHECKED_HEADER_SIZE or data[1:2] != CHECKED[1:]:
        return False
    if (data[0] ^ _FRAME).bit_count() != 1:
        return False
    stored: int = _CRC.unpack_from(data, len(CHECKED))[0]
    return zlib.crc32(memoryview(data)[CHECKED_HEADER_SIZE:]) == stored


def verify(data: bytes) -> None:
    """Check a stored record's frame and checksum without decoding it (raises
    ``CorruptRecordError``); encrypted and bare records pass (they are checked on decode)."""
    if not is_encrypted(data):
        unseal(data)
