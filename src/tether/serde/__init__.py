"""Safe encoding of state, checkpoints and journals: msgpack with an explicit type registry,
optionally encrypted with AES-GCM."""

from tether.serde._base import Serializer
from tether.serde._crypto import EncryptedSerializer
from tether.serde._exceptions import StoredException
from tether.serde._msgpack import MAX_DEPTH, MsgpackSerializer, default_serializer
from tether.serde._registry import TypeRegistry, default_registry, register_type

__all__ = [
    "MAX_DEPTH",
    "EncryptedSerializer",
    "MsgpackSerializer",
    "Serializer",
    "StoredException",
    "TypeRegistry",
    "default_registry",
    "default_serializer",
    "register_type",
]
