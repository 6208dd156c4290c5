"""The backends every saver test runs against. Each factory call gives an empty store."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tether.checkpoint import InMemorySaver, Saver

SaverFactory = Callable[..., Saver]

BACKENDS = ["memory", "sqlite", "postgres", "redis"]


@pytest.fixture(params=BACKENDS)
def saver_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SaverFactory]:
    """``saver_factory(**kwargs)`` builds a saver of the parametrized backend on a fresh
    namespace; calling it twice with ``same=True`` opens the same store again (a second
    process would do the same)."""
    made: list[Saver] = []
    namespace = f"t_{uuid.uuid4().hex[:12]}"
    kind: str = request.param
    memory_shared: list[InMemorySaver] = []

    def make(*, same: bool = False, **kwargs: object) -> Saver:
        saver: Saver
        if kind == "memory":
            if same and memory_shared:
                return memory_shared[0]
            saver = InMemorySaver(**kwargs)  # type: ignore[arg-type]
            memory_shared.append(saver)  # type: ignore[arg-type]
        elif kind == "sqlite":
            from tether.checkpoint import SqliteSaver  # type: ignore[attr-defined]

            saver = SqliteSaver(tmp_path / "tether.db", **kwargs)
        elif kind == "postgres":
            from tether.checkpoint import PostgresSaver  # type: ignore[attr-defined]

            dsn = request.getfixturevalue("postgres_dsn")
            saver = PostgresSaver(dsn, schema=namespace, **kwargs)
        else:
            from tether.checkpoint import RedisSaver  # type: ignore[attr-defined]

            url = request.getfixturevalue("redis_url")
            saver = RedisSaver(url, prefix=namespace, **kwargs)
        made.append(saver)
        return saver

    yield make
    for s in made:
        s.close()
