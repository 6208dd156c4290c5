"""``EncryptedSerializer``: AES-256-GCM around another serializer, with key ids for rotation.

Invariant: every record is header + 96-bit random nonce + ciphertext, where the header (magic,
version, key id) is authenticated as associated data; nothing is returned unless the tag verifies.
The tag already detects any damaged bit, so the plaintext inside carries no checksum of its own.
"""

from __future__ import annotations

import binascii
import os
from collections.abc import Callable, Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tether.errors import ConfigError, EncryptionError
from tether.serde._base import Serializer
from tether.serde._envelope import (
    MAX_KEY_ID_BYTES,
    NONCE_SIZE,
    HeaderError,
    build_header,
    is_encrypted,
    parse_header,
)

KEY_SIZE = 32
ENV_VAR = "TETHER_ENCRYPTION_KEYS"


class EncryptedSerializer:
    """Encrypts what ``inner`` produces. New records use ``active_key_id``; any key in ``keys``
    can read, so rotating is: add the new key, make it active, keep the old one until rewritten.
    """

    def __init__(self, inner: Serializer, keys: Mapping[str, bytes], active_key_id: str) -> None:
        if not keys:
            raise ConfigError("EncryptedSerializer needs at least one key")
        self._inner = inner
        self._encode, self._decode = _bare_codec(inner)
        self._ciphers: dict[str, AESGCM] = {}
        for key_id, key in keys.items():
            _check_key_id(key_id)
            if not isinstance(key, bytes | bytearray) or len(key) != KEY_SIZE:
                raise ConfigError(
                    f"encryption key {key_id!r} must be {KEY_SIZE} bytes (AES-256), "
                    f"got {len(key) if isinstance(key, bytes | bytearray) else type(key).__name__}"
                )
            self._ciphers[key_id] = AESGCM(bytes(key))
        if active_key_id not in self._ciphers:
            raise ConfigError(
                f"active key id {active_key_id!r} is not among the configured keys "
                f"{sorted(self._ciphers)}"
            )
        self._active_key_id = active_key_id
        self._active_cipher = self._ciphers[active_key_id]
        self._active_header = build_header(active_key_id.encode("utf-8"))

    @property
    def active_key_id(self) -> str:
        return self._active_key_id

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._ciphers)

    @staticmethod
    def generate_key() -> bytes:
        """A fresh random 256-bit key."""
        return AESGCM.generate_key(bit_length=256)

    @classmethod
    def from_env(
        cls,
        var: str = ENV_VAR,
        *,
        inner: Serializer | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> EncryptedSerializer:
        """Build from ``"kid1:base64key,kid2:base64key"`` in ``var``; the first key is active.

        ``inner`` defaults to ``default_serializer()``.
        """
        env = os.environ if environ is None else environ
        raw = env.get(var)
        if raw is None or not raw.strip():
            raise ConfigError(f"environment variable {var} is not set (expected kid:base64key,...)")
        keys: dict[str, bytes] = {}
        for index, item in enumerate(raw.split(",")):
            item = item.strip()
            key_id, sep, encoded = item.partition(":")
            key_id = key_id.strip()
            if not sep or not key_id or not encoded.strip():
                raise ConfigError(
                    f"{var}: entry {index + 1} is malformed; expected 'kid:base64key' "
                    "separated by commas"
                )
            if key_id in keys:
                raise ConfigError(f"{var}: key id {key_id!r} appears twice")
            try:
                keys[key_id] = binascii.a2b_base64(encoded.strip(), strict_mode=True)
            except (binascii.Error, ValueError):
                raise ConfigError(
                    f"{var}: the key for {key_id!r} is not valid base64"
                ) from None  # never chain: the exception text could echo key material
        if inner is None:
            from tether.serde._msgpack import default_serializer

            inner = default_serializer()
        return cls(inner, keys, next(iter(keys)))

    def dumps(self, value: object) -> bytes:
        plaintext = self._encode(value)
        nonce = os.urandom(NONCE_SIZE)
        header = self._active_header
        return header + nonce + self._active_cipher.encrypt(nonce, plaintext, header)

    def dumps_plaintext(self, value: object) -> bytes:
        """The bytes ``dumps`` encrypts: the same for equal values, unlike ``dumps`` (its
        nonce is random), so they can be hashed to compare values. Never store them."""
        return self._encode(value)

    def loads(self, data: bytes) -> object:
        return self._decode(self._decrypt(data))

    def loads_many(self, records: Sequence[bytes]) -> list[object]:
        """Decrypt and decode each record (the plaintexts carry no frame to batch over)."""
        return [self._decode(self._decrypt(r)) for r in records]

    def _decrypt(self, data: bytes) -> bytes:
        data = bytes(data)
        if not is_encrypted(data):
            raise EncryptionError(
                "cannot decrypt record: it is not encrypted (plaintext record read through an "
                "EncryptedSerializer)"
            )
        try:
            key_id, header_len = parse_header(data)
        except HeaderError as exc:
            raise EncryptionError(f"cannot decrypt record: malformed header ({exc})") from None
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise EncryptionError(
                f"cannot decrypt record: it was encrypted with key id {key_id!r}, which is not "
                f"configured (known key ids: {sorted(self._ciphers)})"
            )
        nonce = data[header_len : header_len + NONCE_SIZE]
        if len(nonce) != NONCE_SIZE:
            raise EncryptionError(f"cannot decrypt record (key id {key_id!r}): truncated")
        try:
            plaintext = cipher.decrypt(nonce, data[header_len + NONCE_SIZE :], data[:header_len])
        except InvalidTag:
            raise EncryptionError(
                f"cannot decrypt record with key id {key_id!r}: authentication failed (wrong "
                "key for that id, or the record was tampered with)"
            ) from None
        return plaintext


def _bare_codec(inner: Serializer) -> tuple[Callable[[object], bytes], Callable[[bytes], object]]:
    """The inner serializer's functions, without its checksum frame when it has one: AES-GCM
    authenticates every byte already."""
    from tether.serde._msgpack import MsgpackSerializer

    if isinstance(inner, MsgpackSerializer):
        return inner.dumps_payload, inner.loads_payload
    return inner.dumps, inner.loads


def _check_key_id(key_id: object) -> None:
    if not isinstance(key_id, str) or not key_id:
        raise ConfigError(f"encryption key ids must be non-empty strings, got {key_id!r}")
    if len(key_id.encode("utf-8")) > MAX_KEY_ID_BYTES:
        raise ConfigError(f"encryption key id {key_id[:20]!r}... is longer than 255 bytes")
