"""Distributions: values against hand-worked numbers, validation messages, round trips."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hpsearch.search.distributions import (
    Choice,
    IntUniform,
    LogInt,
    LogUniform,
    Uniform,
    distribution_from_dict,
)


def test_log_uniform_maps_unit_interval_through_log10() -> None:
    dist = LogUniform(1e-6, 1e-2)
    assert dist.from_unit(0.0) == pytest.approx(1e-6)
    assert dist.from_unit(0.5) == pytest.approx(1e-4)  # 10**(-6 + 0.5 * 4)
    assert dist.from_unit(1.0) == pytest.approx(1e-2)
    assert dist.to_unit(1e-3) == pytest.approx(0.75)


def test_uniform_is_linear() -> None:
    dist = Uniform(0.2, 1.0)
    assert dist.from_unit(0.25) == pytest.approx(0.4)
    assert dist.to_unit(0.6) == pytest.approx(0.5)


def test_int_uniform_gives_each_integer_an_equal_share() -> None:
    dist = IntUniform(1, 4)
    assert [dist.from_unit(u) for u in (0.0, 0.24, 0.25, 0.5, 0.74, 0.75, 0.999)] == [
        1,
        1,
        2,
        3,
        3,
        4,
        4,
    ]


def test_log_int_end_points_and_middle() -> None:
    dist = LogInt(1, 100)
    assert dist.from_unit(0.0) == 1
    assert dist.from_unit(1.0) == 100
    # log10(0.5)=-0.301, log10(100.5)=2.002: the middle is 10**0.8507 = 7.09 -> 7
    assert dist.from_unit(0.5) == 7


def test_choice_splits_unit_interval_evenly() -> None:
    dist = Choice(["relu", "tanh", "sigmoid"])
    assert [dist.from_unit(u) for u in (0.0, 0.34, 0.67, 1.0)] == [
        "relu",
        "tanh",
        "sigmoid",
        "sigmoid",
    ]
    assert dist.to_unit("tanh") == pytest.approx(0.5)
    assert dist.contains("relu") and not dist.contains("maxout")
    assert not Choice([1, 2]).contains(True)


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: LogUniform(0.0, 1.0), "log bounds must be > 0, got low=0.0"),
        (lambda: LogUniform(-1e-3, 1.0), "got low=-0.001"),
        (lambda: Uniform(1.0, 1.0), "low must be < high, got low=1.0, high=1.0"),
        (lambda: Uniform(2.0, 1.0), "low=2.0, high=1.0"),
        (lambda: Uniform(math.nan, 1.0), "bounds must be finite, got low=nan"),
        (lambda: LogUniform(1e-3, math.inf), "bounds must be finite, got high=inf"),
        (lambda: IntUniform(1.5, 3), "low must be an integer, got low=1.5"),
        (lambda: LogInt(0, 5), "got low=0"),
        (lambda: Uniform("a", 1.0), "low must be a number"),  # type: ignore[arg-type]
        (lambda: Choice([]), "non-empty"),
        (lambda: Choice(["a", "a"]), "distinct"),
        (lambda: Choice([math.nan]), "finite"),
    ],
)
def test_bad_bounds_raise_quoting_the_values(make, fragment) -> None:
    with pytest.raises(ValueError) as info:
        make()
    assert fragment in str(info.value)


def test_from_dict_refuses_unknown_kind_and_keys() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        distribution_from_dict({"kind": "normal", "low": 0, "high": 1})
    for not_a_name in (["uniform"], {"a": 1}, 3):  # an unhashable kind was a TypeError (a 500)
        with pytest.raises(ValueError, match="kind must be one of"):
            distribution_from_dict({"kind": not_a_name, "low": 0, "high": 1})
    with pytest.raises(ValueError, match="unexpected keys"):
        distribution_from_dict({"kind": "uniform", "low": 0, "high": 1, "step": 2})
    with pytest.raises(ValueError, match="needs both low and high"):
        distribution_from_dict({"kind": "uniform", "low": 0})


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(a=finite, b=finite, u=st.floats(0.0, 1.0))
def test_uniform_round_trip_and_containment(a: float, b: float, u: float) -> None:
    if not a < b:
        return
    dist = Uniform(a, b)
    assert distribution_from_dict(dist.to_dict()) == dist
    assert dist.contains(dist.from_unit(u))


@given(
    low=st.floats(1e-8, 1e3),
    decades=st.floats(0.01, 8.0),
    u=st.floats(0.0, 1.0),
)
def test_log_uniform_round_trip_and_containment(low: float, decades: float, u: float) -> None:
    dist = LogUniform(low, low * 10**decades)
    assert distribution_from_dict(dist.to_dict()) == dist
    assert dist.contains(dist.from_unit(u))


@given(low=st.integers(1, 1000), extra=st.integers(1, 1000), u=st.floats(0.0, 1.0))
def test_integer_kinds_round_trip_and_containment(low: int, extra: int, u: float) -> None:
    for dist in (IntUniform(low, low + extra), LogInt(low, low + extra)):
        assert distribution_from_dict(dist.to_dict()) == dist
        value = dist.from_unit(u)
        assert isinstance(value, int) and dist.contains(value)
