"""Result caches for nodes and tasks with a ``CachePolicy`` (``compile(cache=...)``)."""

from tether.cache.base import BaseCache
from tether.cache.memory import InMemoryCache

__all__ = ["BaseCache", "InMemoryCache"]
