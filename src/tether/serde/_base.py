"""The one shape every serializer has: values to bytes and back, nothing else."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Serializer(Protocol):
    """Encodes values for storage. ``dumps`` fails on unregistered types (never guesses);
    ``loads`` never imports modules named by the data and never unpickles."""

    def dumps(self, value: object) -> bytes: ...

    def loads(self, data: bytes) -> object: ...
