"""EncryptedSerializer: AES-GCM records, key rotation and every way reading can fail."""

from __future__ import annotations

import base64
import datetime

import pytest

from tether.errors import CheckpointError, ConfigError, EncryptionError, SerializationError
from tether.serde import EncryptedSerializer, MsgpackSerializer, Serializer, TypeRegistry
from tether.serde._envelope import MAGIC, NONCE_SIZE, VERSION

K1 = bytes(range(32))
K2 = bytes(range(32, 64))
VALUE = {"messages": ["hi", ("x", 1)], "when": datetime.datetime(2024, 1, 1), "n": 2**70}


@pytest.fixture
def inner() -> MsgpackSerializer:
    return MsgpackSerializer(TypeRegistry())


def test_roundtrip_and_record_format(inner: MsgpackSerializer) -> None:
    enc = EncryptedSerializer(inner, {"k1": K1}, "k1")
    assert isinstance(enc, Serializer)
    data = enc.dumps(VALUE)
    assert enc.loads(data) == VALUE
    header = MAGIC + bytes([VERSION, 2]) + b"k1"
    assert data.startswith(header)
    plaintext = inner.dumps_payload(VALUE)  # no checksum inside: the GCM tag checks every byte
    assert len(data) == len(header) + NONCE_SIZE + len(plaintext) + 16  # GCM tag
    assert plaintext not in data


def test_nonce_is_random(inner: MsgpackSerializer) -> None:
    enc = EncryptedSerializer(inner, {"k1": K1}, "k1")
    a, b = enc.dumps(VALUE), enc.dumps(VALUE)
    assert a != b
    assert enc.loads(a) == enc.loads(b) == VALUE


def test_rotation(inner: MsgpackSerializer) -> None:
    old = EncryptedSerializer(inner, {"k1": K1}, "k1")
    old_record = old.dumps(VALUE)
    rotated = EncryptedSerializer(inner, {"k1": K1, "k2": K2}, "k2")
    new_record = rotated.dumps(VALUE)
    assert new_record.startswith(MAGIC + bytes([VERSION, 2]) + b"k2")
    assert rotated.loads(old_record) == VALUE
    assert rotated.loads(new_record) == VALUE
    assert rotated.active_key_id == "k2" and rotated.key_ids == ["k1", "k2"]


def test_missing_key_names_key_id(inner: MsgpackSerializer) -> None:
    record = EncryptedSerializer(inner, {"old-key": K1}, "old-key").dumps(VALUE)
    reader = EncryptedSerializer(inner, {"k2": K2}, "k2")
    with pytest.raises(EncryptionError, match="'old-key'"):
        reader.loads(record)


def test_wrong_key(inner: MsgpackSerializer) -> None:
    record = EncryptedSerializer(inner, {"k1": K1}, "k1").dumps(VALUE)
    with pytest.raises(EncryptionError, match=r"wrong key|tampered"):
        EncryptedSerializer(inner, {"k1": K2}, "k1").loads(record)


def test_tampering_is_detected_everywhere(inner: MsgpackSerializer) -> None:
    enc = EncryptedSerializer(inner, {"k1": K1, "k2": K1}, "k1")
    record = enc.dumps(VALUE)
    for i in range(len(record)):
        tampered = bytearray(record)
        tampered[i] ^= 0x01
        with pytest.raises((EncryptionError, SerializationError)) as info:
            enc.loads(bytes(tampered))
        if i >= len(MAGIC):  # the first byte flip makes it look like plaintext msgpack
            assert isinstance(info.value, EncryptionError)


def test_key_id_is_authenticated(inner: MsgpackSerializer) -> None:
    # Same key under two ids: swapping the id in the header must still fail.
    enc = EncryptedSerializer(inner, {"k1": K1, "k2": K1}, "k1")
    record = enc.dumps(VALUE)
    swapped = record.replace(b"k1", b"k2", 1)
    with pytest.raises(EncryptionError, match="'k2'"):
        enc.loads(swapped)


def test_truncated_records(inner: MsgpackSerializer) -> None:
    enc = EncryptedSerializer(inner, {"k1": K1}, "k1")
    record = enc.dumps(VALUE)
    for cut in range(1, len(record)):
        with pytest.raises(EncryptionError):
            enc.loads(record[:cut])


def test_plaintext_through_encrypted_serializer(inner: MsgpackSerializer) -> None:
    enc = EncryptedSerializer(inner, {"k1": K1}, "k1")
    with pytest.raises(EncryptionError, match="not encrypted"):
        enc.loads(inner.dumps(VALUE))
    with pytest.raises(EncryptionError, match="not encrypted"):
        enc.loads(b"")


def test_encrypted_through_plain_serializer(inner: MsgpackSerializer) -> None:
    record = EncryptedSerializer(inner, {"prod-2024": K1}, "prod-2024").dumps(VALUE)
    with pytest.raises(EncryptionError, match=r"encrypted.*'prod-2024'"):
        inner.loads(record)


def test_unknown_version(inner: MsgpackSerializer) -> None:
    record = bytearray(EncryptedSerializer(inner, {"k1": K1}, "k1").dumps(VALUE))
    record[len(MAGIC)] = 99
    with pytest.raises(EncryptionError, match="version 99"):
        EncryptedSerializer(inner, {"k1": K1}, "k1").loads(bytes(record))


def test_encryption_error_is_a_checkpoint_error() -> None:
    assert issubclass(EncryptionError, CheckpointError)


@pytest.mark.parametrize(
    ("keys", "active", "match"),
    [
        ({}, "k1", "at least one key"),
        ({"k1": b"short"}, "k1", "32 bytes"),
        ({"k1": K1}, "k2", "active key id 'k2'"),
        ({"": K1}, "", "non-empty"),
        ({"x" * 256: K1}, "x" * 256, "255 bytes"),
    ],
)
def test_bad_configuration(
    inner: MsgpackSerializer, keys: dict[str, bytes], active: str, match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        EncryptedSerializer(inner, keys, active)


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def test_from_env(monkeypatch: pytest.MonkeyPatch, inner: MsgpackSerializer) -> None:
    monkeypatch.setenv("TETHER_ENCRYPTION_KEYS", f"new:{_b64(K2)}, old:{_b64(K1)}")
    enc = EncryptedSerializer.from_env(inner=inner)
    assert enc.active_key_id == "new" and enc.key_ids == ["new", "old"]
    old_record = EncryptedSerializer(inner, {"old": K1}, "old").dumps(VALUE)
    assert enc.loads(old_record) == VALUE
    assert enc.loads(enc.dumps(VALUE)) == VALUE


def test_from_env_defaults_to_default_serializer() -> None:
    enc = EncryptedSerializer.from_env("MY_KEYS", environ={"MY_KEYS": f"a:{_b64(K1)}"})
    assert enc.loads(enc.dumps([1, (2,)])) == [1, (2,)]


def test_generate_key() -> None:
    key = EncryptedSerializer.generate_key()
    assert len(key) == 32 and key != EncryptedSerializer.generate_key()


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (None, "not set"),
        ("", "not set"),
        ("justakey", "entry 1 is malformed"),
        (f"a:{_b64(K1)},b", "entry 2 is malformed"),
        (f":{_b64(K1)}", "entry 1 is malformed"),
        ("a:", "entry 1 is malformed"),
        ("a:!!notbase64!!", "'a' is not valid base64"),
        (f"a:{_b64(b'short')}", "32 bytes"),
        (f"a:{_b64(K1)},a:{_b64(K2)}", "appears twice"),
    ],
)
def test_from_env_malformed(raw: str | None, match: str) -> None:
    environ = {} if raw is None else {"KEYS": raw}
    with pytest.raises(ConfigError, match=match) as info:
        EncryptedSerializer.from_env("KEYS", environ=environ)
    assert _b64(K1) not in str(info.value)


def test_loads_many_decrypts_each_record(inner: MsgpackSerializer) -> None:
    enc = EncryptedSerializer(inner, {"k1": K1, "k2": K2}, "k1")
    old = enc.dumps("old")
    enc = EncryptedSerializer(inner, {"k1": K1, "k2": K2}, "k2")
    records = [old, enc.dumps(VALUE), enc.dumps(3)]
    assert enc.loads_many(records) == ["old", VALUE, 3]
    with pytest.raises(EncryptionError, match="authentication failed"):
        enc.loads_many([records[0], records[1][:-1] + bytes([records[1][-1] ^ 1])])
