"""Coarse to fine: narrowing on hand-worked results, border warnings and widening."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpsearch.search.distributions import Choice, IntUniform, LogInt, LogUniform, Uniform
from hpsearch.search.refine import RefinePolicy, TrialResult, keep_count, refine
from hpsearch.search.space import Param, SearchSpace, sample_params

NO_WIDEN = RefinePolicy(keep=2, margin=0.1, widen_on_border=False)


def one(name: str, distribution, limits=(None, None)) -> SearchSpace:
    return SearchSpace((Param(name, distribution, limits=limits),))


def results(name: str, scored: list[tuple[float, float | None]]) -> list[TrialResult]:
    return [TrialResult({name: value}, accuracy) for value, accuracy in scored]


def test_keep_count_rounds_fractions_up_and_caps_counts() -> None:
    assert keep_count(0.25, 16) == 4
    assert keep_count(0.25, 13) == 4
    assert keep_count(0.01, 5) == 1
    assert keep_count(10, 4) == 4
    assert keep_count(3, 0) == 0


def test_log_param_keeps_log_span_of_top_plus_margin() -> None:
    space = one("lr", LogUniform(1e-6, 1.0))  # 6 decades: margin 0.1 = 0.6 decade
    scored = [(1e-4, 0.9), (1e-3, 0.8), (1e-5, 0.3), (0.5, None)]
    refined, warnings = refine(space, results("lr", scored), NO_WIDEN)
    dist = refined["lr"].distribution
    assert dist.low == pytest.approx(10**-4.6)
    assert dist.high == pytest.approx(10**-2.4)
    assert warnings == []


def test_linear_param_keeps_span_plus_margin() -> None:
    space = one("keep", Uniform(0.0, 1.0))
    scored = [(0.4, 0.9), (0.6, 0.85), (0.1, 0.2), (0.95, 0.1)]
    refined, _ = refine(space, results("keep", scored), NO_WIDEN)
    assert refined["keep"].distribution.low == pytest.approx(0.3)
    assert refined["keep"].distribution.high == pytest.approx(0.7)


def test_integer_range_is_rounded_and_never_empty() -> None:
    space = one("width", IntUniform(1, 100))
    refined, _ = refine(space, results("width", [(50, 0.9), (50, 0.8)]), RefinePolicy(2, 0.0))
    dist = refined["width"].distribution
    assert isinstance(dist, IntUniform)
    assert dist.low <= 50 <= dist.high and dist.low < dist.high


def test_choice_keeps_values_present_among_the_best() -> None:
    space = one("act", Choice(["relu", "tanh", "sigmoid"]))
    scored = [("tanh", 0.9), ("relu", 0.8), ("sigmoid", 0.1), ("sigmoid", 0.05)]
    refined, _ = refine(space, results("act", scored), NO_WIDEN)
    assert refined["act"].distribution == Choice(["relu", "tanh"])


def test_failed_trials_never_drive_narrowing() -> None:
    space = one("keep", Uniform(0.0, 1.0))
    scored = [(0.5, 0.9), (0.52, 0.8), (0.0, None), (1.0, math.nan)]
    refined, _ = refine(space, results("keep", scored), NO_WIDEN)
    assert refined["keep"].distribution.low == pytest.approx(0.4)
    assert refined["keep"].distribution.high == pytest.approx(0.62)
    unchanged, warnings = refine(space, results("keep", [(0.9, None)]), NO_WIDEN)
    assert unchanged == space and warnings == []


def test_best_at_high_border_of_log_range_warns_and_widens_by_the_margin() -> None:
    space = one("lr", LogUniform(1e-6, 1e-1))  # 5 decades: margin 0.1 = half a decade
    scored = [(0.09, 0.9), (0.05, 0.85), (1e-5, 0.2), (1e-6, 0.1)]
    refined, warnings = refine(space, results("lr", scored), RefinePolicy(keep=2, margin=0.1))
    assert len(warnings) == 1
    warning = warnings[0]
    assert (warning.param, warning.side) == ("lr", "high")
    assert warning.evidence == (0.09, 0.05)
    assert warning.range == (1e-6, 1e-1)
    assert warning.widened_to == pytest.approx(10**-0.5)  # the span, 0.26 decade, is less
    assert refined["lr"].distribution.high == pytest.approx(10**-0.5)
    assert "high border" in warning.message()


def test_widening_moves_as_far_as_the_best_values_spread_at_most_one_decade() -> None:
    width = one("width", LogInt(16, 256))
    scored = [(256, 0.9), (128, 0.85), (16, 0.2)]
    _, warnings = refine(width, results("width", scored), RefinePolicy(keep=2, margin=0.0))
    assert warnings[0].widened_to == 512  # the top values span a factor 2: 256 -> 512
    lr = one("lr", LogUniform(1e-6, 1e-1))
    spread = [(0.09, 0.9), (1e-3, 0.85), (1e-6, 0.1)]  # two decades apart, both high
    _, warnings = refine(lr, results("lr", spread), RefinePolicy(keep=2, margin=0.0))
    assert warnings[0].widened_to == pytest.approx(1.0)  # capped at one decade


def test_border_warning_without_widening_keeps_the_bound() -> None:
    space = one("lr", LogUniform(1e-6, 1e-1))
    scored = [(0.09, 0.9), (0.05, 0.85), (1e-5, 0.2)]
    refined, warnings = refine(space, results("lr", scored), NO_WIDEN)
    assert warnings[0].side == "high" and warnings[0].widened_to is None
    assert refined["lr"].distribution.high == pytest.approx(1e-1)


def test_linear_low_border_widens_by_the_span_clipped_to_limit() -> None:
    space = one("keep", Uniform(0.5, 1.0), limits=(0.05, 1.0))
    scored = [(0.51, 0.9), (0.74, 0.8), (0.9, 0.1)]
    refined, warnings = refine(space, results("keep", scored), RefinePolicy(keep=2))
    assert [w.side for w in warnings] == ["low"]
    assert warnings[0].widened_to == pytest.approx(0.27)  # 0.5 - (0.74 - 0.51)
    assert refined["keep"].distribution.low == pytest.approx(0.27)
    limited = one("keep", Uniform(0.5, 1.0), limits=(0.3, 1.0))
    _, warnings = refine(limited, results("keep", scored), RefinePolicy(keep=2))
    assert warnings[0].widened_to == pytest.approx(0.3)


def test_border_at_hard_limit_warns_but_cannot_widen() -> None:
    space = one("keep", Uniform(0.2, 1.0), limits=(0.0, 1.0))
    scored = [(0.99, 0.9), (0.97, 0.8), (0.3, 0.1)]
    refined, warnings = refine(space, results("keep", scored), RefinePolicy(keep=2))
    assert warnings[0].side == "high" and warnings[0].widened_to is None
    assert refined["keep"].distribution.high == pytest.approx(1.0)


def test_log_int_low_border_widens_rounded_outward_but_not_below_one() -> None:
    space = one("width", LogInt(16, 256), limits=(1, None))
    scored = [(16, 0.9), (17, 0.85), (200, 0.1)]
    refined, warnings = refine(space, results("width", scored), RefinePolicy(keep=2))
    assert warnings[0].side == "low"
    assert refined["width"].distribution.low == 12  # 16 / 10**0.12 = 12.1, rounded outward
    small = one("width", LogInt(2, 256), limits=(1, None))
    refined, _ = refine(small, results("width", [(2, 0.9), (2, 0.85), (200, 0.1)]),
                        RefinePolicy(keep=2))  # fmt: skip
    assert refined["width"].distribution.low == 1  # 2 / 10**0.21 = 1.2, rounded outward


def test_interior_best_or_split_top_gives_no_warning() -> None:
    space = one("keep", Uniform(0.0, 1.0))
    interior = [(0.5, 0.9), (0.55, 0.8)]
    assert refine(space, results("keep", interior), RefinePolicy(keep=2))[1] == []
    # best on the border but the rest of the top on the other half: noise, not a border
    split = [(0.02, 0.9), (0.8, 0.85), (0.7, 0.8)]
    assert refine(space, results("keep", split), RefinePolicy(keep=3))[1] == []


def test_inactive_conditional_param_keeps_its_range() -> None:
    space = SearchSpace.from_dict(
        {
            "act": {"kind": "choice", "values": ["relu", "leaky_relu"]},
            "alpha": {"kind": "uniform", "low": 0.01, "high": 0.3, "when": {"act": "leaky_relu"}},
        }
    )
    top = [TrialResult({"act": "relu"}, 0.9), TrialResult({"act": "leaky_relu", "alpha": 0.1}, 0.1)]
    refined, _ = refine(space, top, RefinePolicy(keep=1))
    assert refined["act"].distribution == Choice(["relu"])
    assert refined["alpha"].distribution == space["alpha"].distribution


def test_bad_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="keep"):
        RefinePolicy(keep=0)
    with pytest.raises(ValueError, match="keep"):
        RefinePolicy(keep=1.5)
    with pytest.raises(ValueError, match="margin"):
        RefinePolicy(margin=-0.1)
    with pytest.raises(ValueError, match="border_fraction"):
        RefinePolicy(border_fraction=0.5)


PROPERTY_SPACE = SearchSpace.from_dict(
    {
        "lr": {"kind": "log_uniform", "low": 1e-6, "high": 1e-1, "limit_high": 1.0},
        "keep": {"kind": "uniform", "low": 0.3, "high": 1.0, "limit_low": 0.01, "limit_high": 1.0},
        "width": {"kind": "log_int", "low": 8, "high": 256, "limit_low": 1},
        "depth": {"kind": "int", "low": 1, "high": 3, "limit_low": 1},
        "act": {"kind": "choice", "values": ["relu", "tanh"]},
    }
)


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    accuracies=st.lists(st.one_of(st.none(), st.floats(0.0, 1.0)), min_size=1, max_size=20),
    keep=st.one_of(st.integers(1, 5), st.floats(0.05, 1.0)),
    margin=st.floats(0.0, 0.5),
    widen=st.booleans(),
)
def test_refining_never_yields_an_empty_or_invalid_range(seed, accuracies, keep, margin, widen):
    trials = [
        TrialResult(sample_params(PROPERTY_SPACE, seed, 0, i), accuracy)
        for i, accuracy in enumerate(accuracies)
    ]
    policy = RefinePolicy(keep=keep, margin=margin, widen_on_border=widen)
    refined, warnings = refine(PROPERTY_SPACE, trials, policy)
    assert SearchSpace.from_dict(refined.to_dict()) == refined  # every range re-validates
    for param in refined.params:
        low, high = param.limits
        dist = param.distribution
        if hasattr(dist, "low"):
            assert dist.low < dist.high
            assert low is None or dist.low >= low
            assert high is None or dist.high <= high
    best = max(
        (t for t in trials if t.val_accuracy is not None),
        key=lambda t: t.val_accuracy,
        default=None,
    )
    if best is not None:
        for name, value in best.params.items():
            assert refined[name].distribution.contains(value)
    assert all(w.side in ("low", "high") for w in warnings)


def test_widened_integer_bounds_stay_integers_and_hard_limits_hold() -> None:
    space = SearchSpace.from_dict(
        {"model.hidden_sizes.0": {"kind": "log_int", "low": 16, "high": 256, "limit_high": 300}}
    )
    results = [TrialResult({"model.hidden_sizes.0": w}, 0.9 - i / 100) for i, w in
               enumerate([256, 250, 240, 200, 30, 20])]  # fmt: skip
    refined, warnings = refine(space, results, RefinePolicy(keep=4))
    assert warnings and warnings[0].side == "high" and warnings[0].widened_to == 300  # 338
    assert refined["model.hidden_sizes.0"].distribution.to_dict()["high"] == 300
    low_side = [TrialResult({"model.hidden_sizes.0": w}, 0.9 - i / 100) for i, w in
                enumerate([16, 17, 18, 20, 200, 250])]  # fmt: skip
    _, found = refine(space, low_side, RefinePolicy(keep=4))
    assert found[0].widened_to == 12 and isinstance(found[0].widened_to, int)
    assert "widened to 12;" in found[0].message() or found[0].message().endswith("widened to 12")


def test_a_lucky_straggler_does_not_hold_the_range_open() -> None:
    space = SearchSpace.from_dict(
        {"optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-6, "high": 1.0}}
    )
    leaders = [1e-3, 2e-3, 8e-4, 1.5e-3, 1.2e-3, 9e-4, 1.1e-3]
    results = [
        TrialResult({"optimizer.learning_rate": v}, 0.9 - i / 100)
        for i, v in enumerate([*leaders, 0.5])
    ]  # 8th best: a straggler at 0.5
    results += [TrialResult({"optimizer.learning_rate": 1e-5}, 0.1)] * 24
    refined, _ = refine(space, results, RefinePolicy(keep=8, margin=0.05))
    distribution = refined["optimizer.learning_rate"].distribution
    assert distribution.low <= 8e-4 and 2e-3 <= distribution.high < 0.05
    plain_high = 0.5 * 10 ** (0.05 * 6)
    assert distribution.high < plain_high / 10


def test_a_choice_whose_top_values_all_lie_outside_it_keeps_its_values() -> None:
    # Rung k's space was narrowed to {32, 128}; its best results were promoted from a
    # wider rung and used 64. Refining must not produce an empty choice.
    space = SearchSpace((Param("batch_size", Choice([32, 128])),))
    results = [TrialResult({"batch_size": 64}, 0.9), TrialResult({"batch_size": 64}, 0.8)]
    refined, warnings = refine(space, results, RefinePolicy(keep=2))
    assert refined["batch_size"].distribution == Choice([32, 128])
    assert warnings == []


def test_a_choice_keeps_only_the_top_values_it_holds() -> None:
    space = SearchSpace((Param("batch_size", Choice([32, 64, 128])),))
    results = [TrialResult({"batch_size": 128}, 0.9), TrialResult({"batch_size": 16}, 0.8)]
    refined, _ = refine(space, results, RefinePolicy(keep=2))
    assert refined["batch_size"].distribution == Choice([128])
