"""@entrypoint: the functional API over the same engine (previous, final, state, resume)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pydantic
import pytest
from tests._parity import Api

from tether import Command, EmptyInputError, GraphError, Interrupt, entrypoint, interrupt, task
from tether.checkpoint import InMemorySaver


def cfg(thread: str = "t1") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def make_counter() -> Any:
    @entrypoint(checkpointer=InMemorySaver())
    def wf(x: int, *, previous: int | None = None) -> int:
        return (previous or 0) + x

    return wf


def test_invoke_returns_the_value() -> None:
    @entrypoint(checkpointer=InMemorySaver())
    def wf(x: dict[str, int]) -> dict[str, int]:
        return {"doubled": x["n"] * 2}

    assert wf.invoke({"n": 21}, cfg()) == {"doubled": 42}


def test_previous_is_none_first_then_last_saved_value() -> None:
    seen: list[Any] = []

    @entrypoint(checkpointer=InMemorySaver())
    def wf(x: int, *, previous: int | None = None) -> int:
        seen.append(previous)
        return (previous or 0) + x

    assert wf.invoke(1, cfg()) == 1
    assert wf.invoke(2, cfg()) == 3
    assert wf.invoke(10, cfg()) == 13
    assert seen == [None, 1, 3]
    # another thread starts fresh
    assert wf.invoke(5, cfg("other")) == 5
    assert seen[-1] is None


def test_final_returns_value_but_saves_save() -> None:
    seen: list[Any] = []

    @entrypoint(checkpointer=InMemorySaver())
    def wf(x: int, *, previous: Any = None) -> Any:
        seen.append(previous)
        return entrypoint.final(value=f"returned-{x}", save={"saved": x})

    assert wf.invoke(1, cfg()) == "returned-1"
    # as in LangGraph, the state shows what the run returned; the saved value is `previous`
    assert wf.get_state(cfg()).values == "returned-1"
    assert wf.invoke(2, cfg()) == "returned-2"
    assert seen == [None, {"saved": 1}]


def test_get_state_values_is_the_returned_value() -> None:
    wf = make_counter()
    wf.invoke(4, cfg())
    wf.invoke(5, cfg())
    snap = wf.get_state(cfg())
    assert snap.values == 9
    assert snap.next == ()


def test_get_state_history_lists_runs_newest_first() -> None:
    wf = make_counter()
    wf.invoke(1, cfg())
    wf.invoke(2, cfg())
    hist = list(wf.get_state_history(cfg()))
    assert hist[0].values == 3
    steps = [h.metadata["step"] for h in hist]
    assert steps == sorted(steps, reverse=True)
    assert 1 in [h.values for h in hist]


def test_stream_values_ends_with_return_value() -> None:
    wf = make_counter()
    chunks = list(wf.stream(3, cfg(), stream_mode="values"))
    assert chunks[-1] == 3


def test_stream_updates_yields_node_update() -> None:
    wf = make_counter()
    chunks = list(wf.stream(3, cfg()))
    assert len(chunks) == 1
    assert list(chunks[0]) == ["wf"]


def test_stream_updates_yields_return_value_under_function_name() -> None:
    wf = make_counter()
    assert list(wf.stream(3, cfg())) == [{"wf": 3}]


def test_entrypoint_without_checkpointer_runs() -> None:
    @entrypoint()
    def wf(x: int) -> int:
        return x + 1

    assert wf.invoke(1) == 2


def test_invoke_none_on_unknown_thread_raises_empty_input() -> None:
    wf = make_counter()
    with pytest.raises(EmptyInputError):
        wf.invoke(None, cfg("never"))


def test_interrupt_inside_entrypoint_and_resume() -> None:
    calls: Counter[str] = Counter()

    @entrypoint(checkpointer=InMemorySaver())
    def wf(topic: str) -> str:
        calls["body"] += 1
        answer = interrupt(f"approve {topic}?")
        return f"{topic}:{answer}"

    out = wf.invoke("essay", cfg())
    assert isinstance(out, dict)
    assert [i.value for i in out["__interrupt__"]] == ["approve essay?"]
    assert all(isinstance(i, Interrupt) for i in out["__interrupt__"])
    snap = wf.get_state(cfg())
    assert snap.next == ("wf",)
    assert [i.value for i in snap.interrupts] == ["approve essay?"]
    assert wf.invoke(Command(resume="yes"), cfg()) == "essay:yes"
    assert calls["body"] == 2
    assert wf.get_state(cfg()).values == "essay:yes"


def test_interrupt_with_explicit_id_in_entrypoint() -> None:
    @entrypoint(checkpointer=InMemorySaver())
    def wf(x: int) -> list[Any]:
        return [interrupt("a", id="first"), interrupt("b", id="second")]

    assert wf.invoke(0, cfg())["__interrupt__"] == [Interrupt("a", "first")]
    assert wf.invoke(Command(resume={"first": 1}), cfg())["__interrupt__"] == [
        Interrupt("b", "second")
    ]
    assert wf.invoke(Command(resume={"second": 2}), cfg()) == [1, 2]


def test_task_inside_entrypoint_is_journaled_across_resume() -> None:
    calls: Counter[str] = Counter()

    @task
    def write_essay(topic: str) -> str:
        calls["essay"] += 1
        return f"essay about {topic} #{calls['essay']}"

    @entrypoint(checkpointer=InMemorySaver())
    def wf(topic: str) -> dict[str, Any]:
        essay = write_essay(topic).result()
        approved = interrupt({"essay": essay, "action": "approve?"})
        return {"essay": essay, "approved": approved}

    out = wf.invoke("cats", cfg())
    assert out["__interrupt__"][0].value == {"essay": "essay about cats #1", "action": "approve?"}
    assert calls["essay"] == 1
    assert wf.invoke(Command(resume=True), cfg()) == {
        "essay": "essay about cats #1",
        "approved": True,
    }
    assert calls["essay"] == 1


def test_parallel_tasks_in_entrypoint() -> None:
    @task
    def square(x: int) -> int:
        return x * x

    @entrypoint(checkpointer=InMemorySaver())
    def wf(xs: list[int]) -> list[int]:
        futures = [square(x) for x in xs]
        return [f.result() for f in futures]

    assert wf.invoke([1, 2, 3], cfg()) == [1, 4, 9]


def test_async_entrypoint_with_async_task() -> None:
    @task
    async def add_one(x: int) -> int:
        return x + 1

    @entrypoint(checkpointer=InMemorySaver())
    async def wf(x: int, *, previous: int | None = None) -> int:
        return await add_one(x) + (previous or 0)

    async def main() -> list[int]:
        return [await wf.ainvoke(1, cfg()), await wf.ainvoke(1, cfg())]

    assert asyncio.run(main()) == [2, 4]


# -- LangGraph parity: the same program gives the same result on both engines ----------------


def test_stream_values_yields_only_the_return_value(api: Api) -> None:
    @api.entrypoint(checkpointer=api.InMemorySaver())
    def wf(x: int) -> int:
        return x * 2

    assert list(wf.stream(3, cfg(), stream_mode="values")) == [6]
    assert list(wf.stream(4, cfg(), stream_mode="values")) == [8]


def test_stream_values_on_resume_starts_with_the_current_value(api: Api) -> None:
    @api.entrypoint(checkpointer=api.InMemorySaver())
    def wf(x: int) -> str:
        if x > 1:
            api.interrupt("ok?")
        return f"r{x}"

    assert wf.invoke(1, cfg()) == "r1"
    paused = list(wf.stream(2, cfg(), stream_mode="values"))
    assert [list(chunk) for chunk in paused] == [["__interrupt__"]]
    assert list(wf.stream(api.Command(resume=True), cfg(), stream_mode="values")) == ["r1", "r2"]


def test_a_paused_run_shows_the_last_returned_value(api: Api) -> None:
    @api.entrypoint(checkpointer=api.InMemorySaver())
    def wf(x: int) -> dict[str, int]:
        if x > 1:
            api.interrupt("ok?")
        return {"r": x}

    wf.invoke(1, cfg())
    out = wf.invoke(2, cfg())
    assert out["r"] == 1 and [i.value for i in out["__interrupt__"]] == ["ok?"]
    assert wf.get_state(cfg()).values == {"r": 1}
    chunks = list(wf.stream(3, cfg("b"), stream_mode=["updates", "values"]))
    assert [(mode, sorted(chunk)) for mode, chunk in chunks] == [
        ("updates", ["__interrupt__"]),
        ("values", ["__interrupt__"]),
    ]


def test_stream_updates_show_each_task_result_then_the_return_value(api: Api) -> None:
    @api.task
    def double(x: int) -> int:
        return x * 2

    @api.entrypoint(checkpointer=api.InMemorySaver())
    def wf(x: int) -> int:
        return double(double(x).result()).result()

    assert list(wf.stream(3, cfg())) == [{"double": 6}, {"double": 12}, {"wf": 12}]
    modes = ["updates", "values", "custom"]
    assert list(wf.stream(1, cfg("b"), stream_mode=modes)) == [
        ("updates", {"double": 2}),
        ("updates", {"double": 4}),
        ("updates", {"wf": 4}),
        ("values", 4),
    ]


def test_replayed_tasks_are_not_streamed_again(api: Api) -> None:
    @api.task
    def double(x: int) -> int:
        return x * 2

    @api.entrypoint(checkpointer=api.InMemorySaver())
    def wf(x: int) -> list[Any]:
        a = double(x).result()
        answer = api.interrupt("ok?")
        return [double(a).result(), answer]

    first = list(wf.stream(3, cfg(), stream_mode="updates"))
    assert first[0] == {"double": 6} and list(first[1]) == ["__interrupt__"]
    resumed = list(wf.stream(api.Command(resume="yes"), cfg(), stream_mode="updates"))
    assert resumed == [{"double": 12}, {"wf": [12, "yes"]}]


def test_unawaited_tasks_are_streamed_too(api: Api) -> None:
    @api.task
    def echo(x: int) -> int:
        return x

    @api.entrypoint(checkpointer=api.InMemorySaver())
    def wf(x: int) -> int:
        echo(1)
        return echo(2).result()

    chunks = list(wf.stream(0, cfg()))
    assert sorted(chunks[:2], key=lambda c: c["echo"]) == [{"echo": 1}, {"echo": 2}]
    assert chunks[2:] == [{"wf": 2}]


def test_injected_writer_config_store_and_runtime(api: Api) -> None:
    store = object()

    @api.entrypoint(checkpointer=api.InMemorySaver(), store=store)
    def wf(x: int, *, writer, config, store, runtime, previous=None):  # type: ignore[no-untyped-def]
        writer({"step": x})
        return [
            config["configurable"]["thread_id"],
            store is runtime.store,
            runtime.previous == previous,
            previous,
        ]

    assert list(wf.stream(1, cfg(), stream_mode=["custom", "values"])) == [
        ("custom", {"step": 1}),
        ("values", ["t1", True, True, None]),
    ]
    assert wf.invoke(2, cfg())[3] == ["t1", True, True, None]


def test_final_without_previous_parameter_still_saves(api: Api) -> None:
    @api.entrypoint(checkpointer=api.InMemorySaver())
    def wf(x: int, *, runtime) -> Any:  # type: ignore[no-untyped-def]
        return api.entrypoint.final(value=runtime.previous, save=x)

    assert [wf.invoke(n, cfg()) for n in (5, 6, 7)] == [None, 5, 6]


# -- tether only ----------------------------------------------------------------------------


def test_a_generator_entrypoint_is_refused() -> None:
    """LangGraph raises NotImplementedError; tether a GraphError (both at decoration)."""
    with pytest.raises(GraphError, match=r"@entrypoint 'gen' is a generator function"):

        @entrypoint(checkpointer=InMemorySaver())
        def gen(x: int) -> Iterator[int]:
            yield x

    with pytest.raises(GraphError, match=r"@entrypoint 'agen' is a generator function"):

        @entrypoint()
        async def agen(x: int) -> AsyncIterator[int]:
            yield x


class Order(pydantic.BaseModel):
    """Used only here, so no other test registers it."""

    item: str
    qty: int


class Receipt(pydantic.BaseModel):
    order: Order
    total: float


@dataclass
class Tally:
    count: int


def test_pydantic_input_and_return_types_are_registered_from_the_annotations() -> None:
    @entrypoint(checkpointer=InMemorySaver())
    def shop(order: Order, *, previous: Tally | None = None) -> entrypoint.final[Receipt, Tally]:
        count = (previous.count if previous else 0) + 1
        return entrypoint.final(
            value=Receipt(order=order, total=order.qty * 2.5), save=Tally(count)
        )

    out = shop.invoke(Order(item="tea", qty=2), cfg())
    assert out == Receipt(order=Order(item="tea", qty=2), total=5.0)
    assert shop.invoke(Order(item="tea", qty=1), cfg()).total == 2.5
    assert shop.get_state(cfg()).values.order.qty == 1
