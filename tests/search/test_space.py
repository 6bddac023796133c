"""Search spaces: conditional sampling, reproducibility, the grid, validation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpsearch.search.distributions import Choice, IntUniform, LogInt, LogUniform, Uniform
from hpsearch.search.space import (
    Condition,
    Param,
    SearchSpace,
    check_conditions,
    grid_params,
    sample_params,
    train_seed,
)


def conditional_space() -> SearchSpace:
    return SearchSpace.from_dict(
        {
            "optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-6, "high": 1e-1},
            "model.keep_prob": {"kind": "uniform", "low": 0.3, "high": 1.0},
            "model.activation": {"kind": "choice", "values": ["relu", "leaky_relu", "tanh"]},
            "model.leaky_alpha": {
                "kind": "uniform",
                "low": 0.01,
                "high": 0.3,
                "when": {"model.activation": "leaky_relu"},
            },
            "model.hidden_sizes.2": {"kind": "log_int", "low": 8, "high": 512},
            "model.hidden_sizes.0": {"kind": "log_int", "low": 8, "high": 512},
            "model.depth": {"kind": "int", "low": 1, "high": 3},
        }
    )


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), stage=st.integers(0, 5), index=st.integers(0, 10_000))
def test_samples_lie_in_their_conditional_space(seed: int, stage: int, index: int) -> None:
    space = conditional_space()
    params = sample_params(space, seed, stage, index)
    assert space.contains(params)
    assert ("model.leaky_alpha" in params) == (params["model.activation"] == "leaky_relu")
    assert ("model.hidden_sizes.2" in params) == (params["model.depth"] >= 3)
    assert "model.hidden_sizes.0" in params  # depth >= 1 always
    assert 1e-6 <= params["optimizer.learning_rate"] <= 1e-1


def test_same_seed_stage_index_gives_same_params_and_streams_differ() -> None:
    space = conditional_space()
    assert sample_params(space, 7, 1, 3) == sample_params(space, 7, 1, 3)
    draws = {
        str(sample_params(space, 7, stage, index)) for stage in range(3) for index in range(20)
    }
    assert len(draws) == 60
    assert train_seed(7, 1, 3) == train_seed(7, 1, 3)
    assert len({train_seed(7, s, i) for s in range(3) for i in range(20)}) == 60


def test_parents_are_ordered_before_children() -> None:
    names = conditional_space().names
    assert names.index("model.activation") < names.index("model.leaky_alpha")
    assert names.index("model.depth") < names.index("model.hidden_sizes.0")


def test_contains_refuses_inactive_or_missing_or_out_of_range() -> None:
    space = conditional_space()
    params = sample_params(space, 0, 0, 0)
    assert space.contains(params)
    assert not space.contains({**params, "optimizer.learning_rate": 1.0})
    missing = dict(params)
    del missing["model.keep_prob"]
    assert not space.contains(missing)
    relu = {**params, "model.activation": "relu", "model.leaky_alpha": 0.1}
    assert not space.contains(relu)


def test_round_trip_through_plain_dict() -> None:
    space = conditional_space()
    assert SearchSpace.from_dict(space.to_dict()) == space


def test_grid_of_16_over_four_continuous_params_uses_two_levels_each() -> None:
    space = SearchSpace(
        (*[Param(f"p{k}", Uniform(0.0, 1.0)) for k in range(3)], Param("lr", LogUniform(1e-4, 1.0)))
    )
    points = [grid_params(space, 16, i) for i in range(16)]
    assert len({tuple(sorted(p.items())) for p in points}) == 16
    assert {p["p0"] for p in points} == {0.25, 0.75}
    assert {round(p["lr"], 12) for p in points} == {1e-3, 1e-1}  # 10**(-4 + 4 * (0.25, 0.75))
    assert grid_params(space, 16, 16) == points[0]


def test_grid_covers_every_value_of_a_small_choice() -> None:
    space = SearchSpace((Param("a", Choice(["x", "y", "z"])), Param("n", IntUniform(1, 2))))
    points = [grid_params(space, 6, i) for i in range(6)]
    assert {(p["a"], p["n"]) for p in points} == {(a, n) for a in "xyz" for n in (1, 2)}


def test_invalid_spaces_name_the_problem() -> None:
    with pytest.raises(ValueError, match="duplicate parameter names"):
        SearchSpace((Param("a", Uniform(0, 1)), Param("a", Uniform(0, 2))))
    with pytest.raises(ValueError, match="not a parameter of the space"):
        SearchSpace((Param("a", Uniform(0, 1), (Condition("b", values=(1,)),)),))
    cycle = (
        Param("a", IntUniform(0, 2), (Condition("b", minimum=1),)),
        Param("b", IntUniform(0, 2), (Condition("a", minimum=1),)),
    )
    with pytest.raises(ValueError, match="cycle"):
        SearchSpace(cycle)
    with pytest.raises(ValueError, match="can never be"):
        check_conditions(
            SearchSpace.from_dict(
                {
                    "act": {"kind": "choice", "values": ["relu"]},
                    "alpha": {"kind": "uniform", "low": 0, "high": 1, "when": {"act": "leaky"}},
                }
            )
        )
    with pytest.raises(ValueError, match=r"space\.x: LogInt: log bounds must be > 0, got low=0"):
        SearchSpace.from_dict({"x": {"kind": "log_int", "low": 0, "high": 4}})
    assert LogInt(1, 4).contains(4)


@pytest.mark.parametrize("bound", [[], "0", True, float("nan")])
def test_a_hard_bound_that_is_not_a_number_is_refused_naming_it(bound: object) -> None:
    body = {"kind": "uniform", "low": 0.5, "high": 1.0, "limit_low": bound}
    with pytest.raises(ValueError, match=r"space\.lr: limit_low must be a finite number"):
        Param.from_dict("lr", body)  # a list was a TypeError later (a 500 from POST /searches)
