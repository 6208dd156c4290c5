"""``StoredException``: what a stored exception of an unknown class is read back as.

Invariant: decoding never imports the class named by the data; it keeps only the name and the
message, so reading an exception can never run code.
"""

from __future__ import annotations


class StoredException(Exception):
    """An exception read back from storage whose class tether cannot (or may not) recreate.

    ``type_name`` is the original ``module.qualname``; ``message`` is ``str()`` of the original.
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(type_name, message)
        self.type_name = type_name
        self.message = message

    def __str__(self) -> str:
        return f"{self.type_name}: {self.message}" if self.message else self.type_name

    def __repr__(self) -> str:
        return f"StoredException({self.type_name!r}, {self.message!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StoredException):
            return NotImplemented
        return (self.type_name, self.message) == (other.type_name, other.message)

    def __hash__(self) -> int:
        return hash((self.type_name, self.message))
