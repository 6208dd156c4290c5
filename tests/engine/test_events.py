"""The payloads of stream modes "tasks", "checkpoints" and "debug" (engine/_events.py), as
LangGraph shapes them. tests/graph/test_stream.py checks them end to end on both engines."""

from __future__ import annotations

from tether.engine._events import (
    checkpoint_tasks,
    langgraph_order,
    task_result,
    task_start,
    triggers_of,
    user_metadata,
    writes_by_key,
)
from tether.engine._planner import PlannedTask, TaskOutput
from tether.engine._status import TaskLog
from tether.types import Interrupt


def test_a_key_written_several_times_lists_its_writes() -> None:
    writes = [("a", 1), ("b", 2), ("a", 3), ("a", 4)]
    assert writes_by_key(writes) == {"a": {"$writes": [1, 3, 4]}, "b": 2}
    assert writes_by_key([]) == {}


def test_triggers_name_langgraphs_channels() -> None:
    pull = PlannedTask("t1", "n", 0, False)
    send = PlannedTask("t2", "n", 0, True, "arg")
    joined = {"n": ("branch:to:n", "join:a+b:n")}
    assert triggers_of({}, pull) == ("branch:to:n",)
    assert triggers_of(joined, pull) == ("branch:to:n", "join:a+b:n")
    assert triggers_of(joined, send) == ("__pregel_push",)
    assert triggers_of(joined, pull, path="0") == ("__pregel_push",)  # a @task call


def test_sends_come_first_as_langgraph_lists_a_step() -> None:
    tasks = [
        PlannedTask("1", "a", 0, False),
        PlannedTask("2", "s", 0, True),
        PlannedTask("3", "b", 0, False),
    ]
    assert [t.id for t in langgraph_order(tasks)] == ["2", "1", "3"]


def test_a_task_payload_keeps_the_users_metadata_only() -> None:
    config = {
        "metadata": {"user": "u", "thread_id": "t", "langgraph_node": "x"},
        "tags": ["keep", "seq:step:1"],
    }
    assert user_metadata(config) == {"user": "u", "tags": ["keep"]}
    event = task_start(3, "id", "n", {"x": 1}, ("branch:to:n",), config)
    assert event["type"] == "task" and event["step"] == 3 and event["timestamp"]
    assert event["payload"] == {
        "id": "id",
        "name": "n",
        "input": {"x": 1},
        "triggers": ("branch:to:n",),
        "metadata": {"user": "u", "tags": ["keep"]},
    }
    assert "metadata" not in task_start(3, "id", "n", None, (), {})["payload"]


def test_a_task_result_names_its_error_or_its_interrupts() -> None:
    error = ValueError("boom")
    failed = task_result(1, "id", "n", error=error)["payload"]
    assert failed == {"id": "id", "name": "n", "error": error, "result": {}, "interrupts": []}
    paused = task_result(1, "id", "n", interrupts=[Interrupt("ok?", "i1")])["payload"]
    assert paused["interrupts"] == [{"value": "ok?", "id": "i1"}]
    assert task_result(1, "id", "n", writes=[("k", 1)])["payload"]["result"] == {"k": 1}


def test_checkpoint_tasks_show_what_each_task_recorded() -> None:
    tasks = [PlannedTask("d", "done", 0, False), PlannedTask("e", "err", 0, False)]
    tasks += [PlannedTask("p", "paused", 0, False), PlannedTask("n", "new", 0, False)]
    logs = {
        "d": TaskLog(output=TaskOutput([("k", 1)], [])),
        "e": TaskLog(error="ValueError: boom"),
        "p": TaskLog(interrupts={"i1": Interrupt("ok?", "i1")}),
    }
    assert checkpoint_tasks(tasks, logs) == [
        {"id": "d", "name": "done", "result": {"k": 1}, "interrupts": (), "state": None},
        {"id": "e", "name": "err", "error": "ValueError: boom", "state": None},
        {
            "id": "p",
            "name": "paused",
            "interrupts": ({"value": "ok?", "id": "i1"},),
            "state": None,
        },
        {"id": "n", "name": "new", "interrupts": (), "state": None},
    ]
