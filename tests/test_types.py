"""Commands, sends and policies: plain values with validation."""

from __future__ import annotations

import pytest

from tether import Command, ConfigError, RetryPolicy, Send, default_retry_on
from tether.errors import InterruptError


def test_command_keeps_resume_none_apart_from_no_resume() -> None:
    assert not Command(goto="a").has_resume
    assert Command(resume=None).has_resume and Command(resume=None).resume is None
    assert Command(goto=["a", Send("b", 1)]).goto_targets() == ["a", Send("b", 1)]
    assert Command(goto=Send("b", 2)).goto_targets() == [Send("b", 2)]


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"initial_interval": -1}, {"backoff_factor": 0.5}, {"max_interval": -2}],
)
def test_retry_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_retry_policy_waits_grow_and_cap() -> None:
    p = RetryPolicy(initial_interval=1.0, backoff_factor=3.0, max_interval=5.0, jitter=False)
    assert [p.wait_before(n, 0.9) for n in (2, 3, 4)] == [1.0, 3.0, 5.0]
    jittered = RetryPolicy(initial_interval=1.0, jitter=True)
    assert 1.0 <= jittered.wait_before(2, 0.99) < 1.5


def test_default_retry_on() -> None:
    assert default_retry_on(ConnectionError()) and default_retry_on(RuntimeError())
    assert default_retry_on(TimeoutError())
    assert not default_retry_on(ValueError()) and not default_retry_on(KeyError())
    assert not default_retry_on(InterruptError("x"))
    assert not default_retry_on(KeyboardInterrupt())


def test_graph_output_reads_like_langgraphs() -> None:
    import pytest

    from tether.types import INTERRUPT_KEY, GraphOutput, Interrupt

    out = GraphOutput({"x": 1}, (Interrupt("q", "i1"),))
    assert out.value == {"x": 1}
    assert out.interrupts == (Interrupt("q", "i1"),)
    with pytest.warns(DeprecationWarning, match=r"result\.value"):
        assert out["x"] == 1
    with pytest.warns(DeprecationWarning):
        assert out[INTERRUPT_KEY] == (Interrupt("q", "i1"),)
    with pytest.warns(DeprecationWarning):
        assert "x" in out and INTERRUPT_KEY in out and "y" not in out


def test_overwrite_is_a_frozen_value_with_langgraphs_fields() -> None:
    import dataclasses

    import pytest

    from tether.types import Overwrite

    ow = Overwrite([1])
    assert (ow.value, ow.type) == ([1], "__overwrite__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ow.value = []  # type: ignore[misc]


def test_default_cache_key_ignores_mapping_order_and_tells_values_apart() -> None:
    from tether.types import CachePolicy, default_cache_key

    key = CachePolicy().key_func
    assert key is default_cache_key
    assert key({"a": 1, "b": [1, 2]}) == key({"b": [1, 2], "a": 1})
    assert key({"a": 1}) != key({"a": 2})
    assert CachePolicy().ttl is None
