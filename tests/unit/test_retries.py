"""``Retries``: validation with the accepted ranges, backoff, and ``retries=<int>``."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from jupyter_remote import ConfigError, Retries


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_retries": -1}, "max_retries=-1: accepted values are 0 to 10"),
        ({"max_retries": 11}, "max_retries=11: accepted values are 0 to 10"),
        (
            {"max_retries": 1, "backoff_coefficient": 0.5},
            "backoff_coefficient=0.5: accepted values are 1.0 to 10.0",
        ),
        (
            {"max_retries": 1, "backoff_coefficient": 11},
            "backoff_coefficient=11: accepted values are 1.0 to 10.0",
        ),
        (
            {"max_retries": 1, "initial_delay": -1},
            "initial_delay=-1: accepted values are 0 to 60 s",
        ),
        (
            {"max_retries": 1, "initial_delay": 61},
            "initial_delay=61: accepted values are 0 to 60 s",
        ),
        ({"max_retries": 1, "max_delay": 0.5}, "max_delay=0.5: accepted values are 1 to 60 s"),
        ({"max_retries": 1, "max_delay": 0}, "max_delay=0: accepted values are 1 to 60 s"),
        ({"max_retries": 1, "max_delay": 61}, "max_delay=61: accepted values are 1 to 60 s"),
    ],
)
def test_out_of_range_values_name_the_accepted_range(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Retries(**kwargs)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("value", [True, False, 2.0, "3", None])
def test_max_retries_must_be_an_int(value: Any) -> None:
    with pytest.raises(TypeError, match=f"max_retries must be an int, not {type(value).__name__}"):
        Retries(value)


@pytest.mark.parametrize("n", [0, 1, 10])
def test_bounds_are_accepted(n: int) -> None:
    r = Retries(n, backoff_coefficient=10.0, initial_delay=60.0, max_delay=60.0)
    assert r.max_retries == n


def test_defaults() -> None:
    r = Retries(3)
    assert (r.max_retries, r.backoff_coefficient, r.initial_delay, r.max_delay) == (
        3,
        2.0,
        1.0,
        60.0,
    )


def test_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Retries(1).max_retries = 2  # type: ignore[misc]


def test_exponential_backoff_is_capped() -> None:
    r = Retries(10)
    assert [r.delay(i) for i in range(1, 10)] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]


def test_backoff_with_initial_delay_and_cap() -> None:
    assert Retries(4, initial_delay=0.5).delay(3) == 2.0
    r = Retries(5, backoff_coefficient=3.0, initial_delay=2.0, max_delay=20.0)
    assert [r.delay(i) for i in range(1, 5)] == [2.0, 6.0, 18.0, 20.0]
    assert all(isinstance(r.delay(i), float) for i in range(1, 5))


def test_zero_initial_delay_retries_at_once() -> None:
    r = Retries(3, initial_delay=0.0)
    assert [r.delay(i) for i in (1, 2, 3)] == [0.0, 0.0, 0.0]


def test_coerce_int_is_a_fixed_one_second_delay() -> None:
    r = Retries.coerce(3)
    assert r == Retries(3, backoff_coefficient=1.0, initial_delay=1.0)
    assert [r.delay(i) for i in (1, 2, 3)] == [1.0, 1.0, 1.0]


def test_coerce_none_and_instances() -> None:
    assert Retries.coerce(None) == Retries(0)
    policy = Retries(2, initial_delay=5.0)
    assert Retries.coerce(policy) is policy


@pytest.mark.parametrize("value", [True, False, 2.5, "2", [2]])
def test_coerce_rejects_non_ints(value: Any) -> None:
    with pytest.raises(TypeError, match=r"retries must be an int or jupyter_remote\.Retries"):
        Retries.coerce(value)


def test_coerce_out_of_range_int() -> None:
    with pytest.raises(ConfigError, match="accepted values are 0 to 10"):
        Retries.coerce(11)


def test_non_numeric_backoff_names_the_argument() -> None:
    with pytest.raises(TypeError, match="backoff_coefficient must be a number, not str"):
        Retries(1, backoff_coefficient="2")  # type: ignore[arg-type]
