"""Header of an encrypted record: MAGIC + version + key-id length + key id, then nonce + ciphertext.

Invariant: MAGIC starts with 0xC1, a byte msgpack never emits, so a plaintext msgpack record can
never be mistaken for an encrypted one (and vice versa) by looking at its first byte.
"""

from __future__ import annotations

from typing import Final

MAGIC: Final = b"\xc1\x7e"
VERSION: Final = 1
NONCE_SIZE: Final = 12
MAX_KEY_ID_BYTES: Final = 255


class HeaderError(Exception):
    """The bytes start like an encrypted record but the header is malformed (internal)."""


def is_encrypted(data: bytes) -> bool:
    """True if ``data`` starts with the encrypted-record magic."""
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
