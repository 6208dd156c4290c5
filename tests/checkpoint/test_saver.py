"""The saver contract as one base class: every backend is a ``Saver``, a backend that misses
a primitive cannot be built, and prune / export / import work through the base class alone."""

from __future__ import annotations

import io
import operator
from typing import Annotated, Any, TypedDict

import pytest
from tests.checkpoint.conftest import SaverFactory

from tether import START, StateGraph
from tether.checkpoint import Saver
from tether.checkpoint._saver import Saver as SaverClass


class Log(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def app(saver: Saver) -> Any:
    g = StateGraph(Log)
    g.add_node("step", lambda s: {"log": ["step"]})
    g.add_edge(START, "step")
    return g.compile(checkpointer=saver)


def test_the_public_name_is_the_base_class() -> None:
    assert Saver is SaverClass


def test_every_backend_is_a_saver(saver_factory: SaverFactory) -> None:
    assert isinstance(saver_factory(), Saver)


def test_a_backend_missing_a_primitive_cannot_be_built() -> None:
    class Partial(Saver):
        def close(self) -> None:
            pass

    with pytest.raises(TypeError, match="abstract"):
        Partial()  # type: ignore[abstract]


def maintain(saver: Saver) -> tuple[int, int, str]:
    """Typed against the base class only: this is what type-checks for any backend."""
    pruned = saver.prune("t", keep_last=2)
    out = io.StringIO()
    lines = saver.export_thread("t", out)
    copy = saver.import_thread(io.StringIO(out.getvalue()), thread_id="copy")
    return pruned, lines, copy


def test_prune_export_import_through_the_base_class(saver_factory: SaverFactory) -> None:
    saver = saver_factory()
    graph = app(saver)
    cfg = {"configurable": {"thread_id": "t"}}
    for _ in range(3):
        graph.invoke({"log": ["in"]}, cfg)
    pruned, lines, copy = maintain(saver)
    # three checkpoints a run (input, START's step, after step): 9, of which 2 are kept
    assert pruned == 7 and lines > 2 and copy == "copy"
    assert graph.get_state({"configurable": {"thread_id": "copy"}}).values == {
        "log": ["in", "step"] * 3
    }
    with saver as same:
        assert same is saver
