"""The automatic plan: rungs from the budget, the whole budget spent, never more."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpsearch.errors import ConfigError
from hpsearch.search import (
    FinishSearch,
    PromoteTrial,
    SampleTrial,
    SearchSpec,
    SearchState,
    StartStage,
    TrialView,
    automatic_plan,
    next_actions,
    parse_search_spec,
)
from hpsearch.search.plan import bracket_cost
from hpsearch.search.scheduler import IN_FLIGHT, automatic_space


def auto_spec(budget: int | None, **changes: Any) -> SearchSpec:
    raw: dict[str, Any] = {
        "name": "auto",
        "base": {"data": {"source": "spiral"}},
        "space": {
            "optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-5, "high": 1.0},
            "model.keep_prob": {"kind": "uniform", "low": 0.3, "high": 1.0},
        },
        "budget_epochs": budget,
        "concurrency": 3,
        "seed": 5,
    }
    raw.update(changes)
    return parse_search_spec(raw)


def accuracy_of(params: dict[str, Any], epochs: int) -> float:
    lr, keep = params["optimizer.learning_rate"], params["model.keep_prob"]
    return 0.9 - 0.05 * (math.log10(lr) + 2.5) ** 2 - 0.2 * (keep - 0.8) ** 2 + 0.01 * epochs


def run_search(
    spec: SearchSpec, order_seed: int, diverge: float = 0.0, spaces: dict[int, Any] | None = None
) -> tuple[dict[tuple[int, int], TrialView], FinishSearch]:
    """A simulated master: random completion order; a `diverge` share of trials
    diverges after a random number of the epochs it had to train. `spaces`, when
    given, receives the stage spaces."""
    rng = random.Random(order_seed)
    trials: dict[tuple[int, int], TrialView] = {}
    spaces = {} if spaces is None else spaces
    for _ in range(20_000):
        actions = next_actions(spec, SearchState(tuple(trials.values()), dict(spaces)))
        for action in actions:
            if isinstance(action, StartStage):
                spaces[action.stage] = action.space
            elif isinstance(action, SampleTrial | PromoteTrial):
                parent = getattr(action, "parent_trial_id", None)
                trials[(action.stage, action.index)] = TrialView(
                    len(trials) + 1, action.stage, action.index, "queued",
                    dict(action.params), parent_trial_id=parent,
                )  # fmt: skip
            elif isinstance(action, FinishSearch):
                return trials, action
        assert committed(spec, trials.values()) <= spec.budget
        assert sum(t.status in IN_FLIGHT for t in trials.values()) <= spec.concurrency
        flying = sorted(key for key, t in trials.items() if t.status in IN_FLIGHT)
        key = rng.choice(flying)
        trial = trials[key]
        start = spec.plan[trial.stage - 1].epochs if trial.parent_trial_id else 0
        end = spec.plan[trial.stage].epochs
        if rng.random() < diverge:
            trials[key] = replace(trial, status="diverged", epochs_done=rng.randrange(start, end))
        else:
            value = accuracy_of(dict(trial.params), end)
            trials[key] = replace(trial, status="completed", val_accuracy=value, epochs_done=end)
    raise AssertionError("the search never finished")


def committed(spec: SearchSpec, trials: Any) -> int:
    total = 0
    for t in trials:
        start = spec.plan[t.stage - 1].epochs if t.parent_trial_id else 0
        end = spec.plan[t.stage].epochs if t.status in IN_FLIGHT else t.epochs_done
        total += max(end - start, 0)
    return total


def test_rungs_grow_with_the_budget_and_one_bracket_fits() -> None:
    assert [r.epochs for r in automatic_plan(300, 3.0).rungs] == [1, 3, 9, 27, 81]
    assert [r.planned_trials for r in automatic_plan(300, 3.0).rungs] == [81, 27, 9, 3, 1]
    assert [r.epochs for r in automatic_plan(1500, 3.0).rungs] == [1, 3, 9, 27, 81, 243]
    assert [r.epochs for r in automatic_plan(40, 2.0, min_epochs=2).rungs] == [2, 4, 8, 16]
    for budget in (1, 7, 50, 300, 1500, 10_000):
        plan = automatic_plan(budget, 3.0)
        assert bracket_cost(plan.rungs) <= budget
    capped = automatic_plan(300, 3.0, max_epochs=20)
    assert [r.epochs for r in capped.rungs] == [1, 3, 9, 20]


@settings(max_examples=30, deadline=None)
@given(
    budget=st.integers(1, 400),
    concurrency=st.integers(1, 6),
    min_epochs=st.integers(1, 3),
    diverge=st.sampled_from([0.0, 0.2, 0.5]),
    order=st.integers(0, 10**6),
)
def test_spends_the_whole_budget_and_never_more(budget, concurrency, min_epochs, diverge, order):
    if budget < min_epochs:
        return
    spec = auto_spec(budget, concurrency=concurrency, min_epochs=min_epochs)
    trials, finish = run_search(spec, order, diverge)
    spent = committed(spec, trials.values())
    assert budget - min_epochs < spent <= budget
    assert finish.reason.startswith("budget exhausted")


def test_epochs_of_diverged_trials_are_spent_again() -> None:
    spec = auto_spec(300, concurrency=2)
    clean, _ = run_search(spec, 1, diverge=0.0)
    rough, _ = run_search(spec, 1, diverge=0.3)
    assert committed(spec, rough.values()) == committed(spec, clean.values()) == 300
    diverged = [t for t in rough.values() if t.status == "diverged"]
    assert diverged and len(rough) > len(clean)


def test_the_top_rung_is_reached_with_workers_in_parallel() -> None:
    for concurrency in (1, 4, 8):
        spec = auto_spec(300, concurrency=concurrency)
        trials, finish = run_search(spec, concurrency)
        top = len(spec.plan) - 1
        assert [t for t in trials.values() if t.stage == top and t.status == "completed"]
        assert trials[next(k for k, t in trials.items() if t.trial_id == finish.best_trial_id)]


def test_new_trials_start_at_rung_0_and_half_of_them_draw_in_the_narrowest_space() -> None:
    spec = auto_spec(300, concurrency=2)
    spaces: dict[int, Any] = {}
    trials, _ = run_search(spec, 3, spaces=spaces)
    fresh = [t for t in trials.values() if t.parent_trial_id is None]
    assert {t.stage for t in fresh} == {0} and len(spaces) >= 3
    assert all(spaces[0].contains(t.params) for t in fresh if t.index % 2 == 0)
    # rung 1's space is decided once rung 0's first ceil(81 / 3) = 27 trials have
    # finished; every odd index drawn later lies in a refined space
    late = [t for t in fresh if t.index % 2 == 1 and t.index > 27 + spec.concurrency]
    assert late and all(any(spaces[k].contains(t.params) for k in spaces if k > 0) for t in late)
    width = [
        math.log10(space["optimizer.learning_rate"].distribution.high)
        - math.log10(space["optimizer.learning_rate"].distribution.low)
        for space in (spaces[0], spaces[1])
    ]
    assert width[1] < 0.75 * width[0]


def test_the_space_of_a_new_trial_alternates_between_the_spec_and_the_highest_rung() -> None:
    spaces = {0: "spec", 1: "rung 1", 2: "rung 2"}
    assert [automatic_space(spaces, i) for i in range(4)] == ["spec", "rung 2", "spec", "rung 2"]
    assert automatic_space({0: "spec"}, 1) == "spec"  # nothing refined yet


def test_a_budget_below_one_smallest_trial_is_refused() -> None:
    with pytest.raises(ConfigError, match="budget_epochs: 2 is smaller than one trial"):
        auto_spec(2, min_epochs=3)
    with pytest.raises(ConfigError, match="stages: give"):
        auto_spec(300, budget_epochs=None)
    with pytest.raises(ConfigError, match="max_epochs: only an automatic plan"):
        auto_spec(300, max_epochs=9, stages=[{"trials": 2, "epochs": 1}])


def test_plan_lines_describe_the_rungs() -> None:
    lines = auto_spec(300).plan_lines()
    assert "rungs 1/3/9/27/81" in lines[0]
    assert len(lines) == 7


def test_a_tpe_search_spends_the_budget_inside_its_spaces() -> None:
    spec = auto_spec(120, concurrency=2, sampler="tpe")
    spaces: dict[int, Any] = {}
    trials, finish = run_search(spec, 2, spaces=spaces)
    assert committed(spec, trials.values()) == 120 and finish.best_trial_id is not None
    assert all(spaces[0].contains(t.params) for t in trials.values())


def test_no_border_warning_for_a_range_only_promotions_use() -> None:
    spec = auto_spec(
        None, budget_epochs=None, asynchronous=False, concurrency=4,
        stages=[{"trials": 4, "epochs": 1},
                {"trials": 2, "epochs": 3, "keep": 2, "refine": "promote"}],
    )  # fmt: skip
    lrs = [0.9, 0.8, 1e-4, 1e-3]  # the best two sit at the high border
    trials = tuple(
        TrialView(i + 1, 0, i, "completed", {"optimizer.learning_rate": lr, "model.keep_prob": 0.5},
                  0.9 - i / 10, 1)
        for i, lr in enumerate(lrs)
    )  # fmt: skip
    actions = next_actions(spec, SearchState(trials, {0: spec.search_space}))
    started = [a for a in actions if isinstance(a, StartStage)]
    assert started and started[0].stage == 1 and started[0].warnings == ()
