"""The scheduler, driven by a simulated master with random finishing orders."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hpsearch.search.scheduler import (
    IN_FLIGHT,
    FinishSearch,
    PromoteTrial,
    SampleTrial,
    SearchState,
    StartStage,
    TrialView,
    next_actions,
)
from hpsearch.search.space import train_seed
from hpsearch.search.spec import SearchSpec, parse_search_spec


def make_spec(**changes: Any) -> SearchSpec:
    raw: dict[str, Any] = {
        "name": "sim",
        "base": {"data": {"source": "spiral"}},
        "space": {
            "optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-5, "high": 1.0},
            "model.keep_prob": {"kind": "uniform", "low": 0.3, "high": 1.0},
        },
        "stages": [
            {"trials": 12, "epochs": 1},
            {"trials": 6, "epochs": 3, "keep": 0.25, "refine": "both"},
            {"trials": 2, "epochs": 9, "keep": 2, "refine": "promote"},
        ],
        "concurrency": 3,
        "seed": 11,
        "asynchronous": False,
    }
    raw.update(changes)
    return parse_search_spec(raw)


def fake_accuracy(params: dict[str, Any], epochs: int) -> float | None:
    """Deterministic in params: peak at lr = 10**-2.5, keep_prob = 0.8; lr > 0.3 diverges."""
    lr = params["optimizer.learning_rate"]
    if lr > 0.3:
        return None
    score = 0.9 - 0.05 * (math.log10(lr) + 2.5) ** 2 - 0.3 * (params["model.keep_prob"] - 0.8) ** 2
    return min(0.999, max(0.0, score + 0.01 * math.log(epochs)))


class Master:
    """Applies actions the way the real master must: idempotent by (stage, index)."""

    def __init__(self, spec: SearchSpec) -> None:
        self.spec = spec
        self.trials: dict[tuple[int, int], TrialView] = {}
        self.spaces: dict[int, Any] = {}
        self.seeds: dict[tuple[int, int], int] = {}
        self.next_id = 1
        self.finished: FinishSearch | None = None
        self.max_promoted_fraction_ok = True

    def state(self) -> SearchState:
        return SearchState(tuple(self.trials.values()), dict(self.spaces))

    def apply(self, actions: list) -> None:
        for action in actions:
            if isinstance(action, StartStage):
                self.spaces.setdefault(action.stage, action.space)
            elif isinstance(action, SampleTrial | PromoteTrial):
                key = (action.stage, action.index)
                if key in self.trials:
                    continue
                parent = getattr(action, "parent_trial_id", None)
                self.trials[key] = TrialView(
                    self.next_id,
                    action.stage,
                    action.index,
                    "queued",
                    dict(action.params),
                    parent_trial_id=parent,
                )
                self.seeds[key] = action.train_seed
                self.next_id += 1
            elif isinstance(action, FinishSearch):
                self.finished = action

    def finish_one(self, rng: random.Random) -> None:
        flying = [key for key, t in self.trials.items() if t.status in IN_FLIGHT]
        key = rng.choice(sorted(flying))
        trial = self.trials[key]
        epochs = self.spec.stages[trial.stage].epochs
        accuracy = fake_accuracy(dict(trial.params), epochs)
        if accuracy is None:
            self.trials[key] = replace(trial, status="diverged", epochs_done=1)
        else:
            self.trials[key] = replace(
                trial, status="completed", val_accuracy=accuracy, epochs_done=epochs
            )


def committed(spec: SearchSpec, trials: list[TrialView]) -> int:
    total = 0
    for t in trials:
        start = spec.stages[t.stage - 1].epochs if t.parent_trial_id else 0
        end = spec.stages[t.stage].epochs if t.status in IN_FLIGHT else t.epochs_done
        total += max(end - start, 0)
    return total


def check_invariants(spec: SearchSpec, master: Master) -> None:
    trials = list(master.trials.values())
    assert sum(t.status in IN_FLIGHT for t in trials) <= spec.concurrency
    assert committed(spec, trials) <= spec.budget
    by_id = {t.trial_id: t for t in trials}
    for stage in range(1, len(spec.stages)):
        promoted = [t for t in trials if t.stage == stage and t.parent_trial_id is not None]
        finished = [t for t in trials if t.stage == stage - 1 and t.status not in IN_FLIGHT]
        if spec.asynchronous:
            assert len(promoted) <= math.floor(len(finished) / spec.eta)
        for child in promoted:
            assert by_id[child.parent_trial_id].status == "completed"


def simulate(spec: SearchSpec, order_seed: int, repeat_calls: bool = False) -> Master:
    master = Master(spec)
    rng = random.Random(order_seed)
    for _ in range(1000):
        actions = next_actions(spec, master.state())
        if repeat_calls:
            assert next_actions(spec, master.state()) == actions  # a pure function
        master.apply(actions)
        if repeat_calls:
            master.apply(actions)  # applying twice is harmless
        check_invariants(spec, master)
        if master.finished is not None:
            return master
        master.finish_one(rng)
    raise AssertionError("the search never finished")


def configurations(master: Master, samples_only: bool = False) -> set:
    return {
        (t.stage, t.index, tuple(sorted(t.params.items())), master.seeds[(t.stage, t.index)])
        for t in master.trials.values()
        if not (samples_only and t.parent_trial_id is not None)
    }


@settings(max_examples=25, deadline=None)
@given(order_a=st.integers(0, 10**6), order_b=st.integers(0, 10**6))
def test_same_seed_same_configurations_in_any_completion_order(order_a, order_b) -> None:
    spec = make_spec()
    first, second = simulate(spec, order_a), simulate(spec, order_b)
    assert configurations(first) == configurations(second)
    assert first.finished == second.finished
    assert first.spaces == second.spaces


@settings(max_examples=25, deadline=None)
@given(
    order_a=st.integers(0, 10**6), order_b=st.integers(0, 10**6), eta=st.sampled_from([2.0, 3.0])
)
def test_async_samples_are_order_independent_and_promotions_respect_eta(order_a, order_b, eta):
    spec = make_spec(asynchronous=True, eta=eta)
    first, second = simulate(spec, order_a), simulate(spec, order_b)  # invariants checked
    assert configurations(first, True) == configurations(second, True)
    assert first.spaces == second.spaces


def test_repeated_calls_and_repeated_actions_are_harmless() -> None:
    for asynchronous in (False, True):
        master = simulate(make_spec(asynchronous=asynchronous), 5, repeat_calls=True)
        assert master.finished is not None and master.finished.best_trial_id is not None


def test_sync_stages_spend_the_epochs_of_diverged_samples_again() -> None:
    # lr > 0.3 diverges after 1 of 3 epochs: the 2 epochs each leaves buy replacements
    space = {
        "optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-5, "high": 10.0},
        "model.keep_prob": {"kind": "uniform", "low": 0.3, "high": 1.0},
    }
    stages = [
        {"trials": 12, "epochs": 3},
        {"trials": 2, "epochs": 9, "keep": 2, "refine": "promote"},
    ]
    spec = make_spec(space=space, stages=stages)
    master = simulate(spec, 5)
    stage0 = sorted((t for t in master.trials.values() if t.stage == 0), key=lambda t: t.index)
    diverged = [t for t in stage0 if t.status == "diverged"]
    assert len(diverged) >= 2
    assert [t.index for t in stage0] == list(range(len(stage0)))
    assert 12 < len(stage0) <= 12 + len(diverged)
    # the later stage's planned promotions are never starved by the replacements
    stage1 = [t for t in master.trials.values() if t.stage == 1]
    assert len(stage1) == 2 and all(t.parent_trial_id is not None for t in stage1)
    left = spec.budget - committed(spec, list(master.trials.values()))
    assert 0 <= left < 3 or len(stage0) == 12 + len(diverged)
    # without a lost sample nothing is replaced: the same stages in a space that never diverges
    calm = make_spec(stages=stages)
    assert sum(t.stage == 0 for t in simulate(calm, 5).trials.values()) == 12


def test_sync_stages_follow_resample_both_and_promote() -> None:
    spec = make_spec()
    master = simulate(spec, 1)
    trials = master.trials
    stage0 = sorted(
        (t for t in trials.values() if t.stage == 0 and t.status == "completed"),
        key=lambda t: (-t.val_accuracy, t.index),
    )
    stage1 = [trials[(1, i)] for i in range(6)]
    # both: keep 0.25 of 12 = 3 promotions (indexes 0-2) of the top 3, then 3 new samples
    assert [t.parent_trial_id for t in stage1[:3]] == [t.trial_id for t in stage0[:3]]
    assert all(t.parent_trial_id is None for t in stage1[3:])
    assert all(master.spaces[1].contains(t.params) for t in stage1[3:])
    for t in stage1[:3]:
        parent = next(p for p in stage0 if p.trial_id == t.parent_trial_id)
        assert master.seeds[(1, t.index)] == train_seed(spec.seed, 0, parent.index)
    # promote: the best 2 of stage 1 continue to 9 epochs
    ranked1 = sorted(stage1, key=lambda t: (-t.val_accuracy, t.index))
    stage2 = [trials[(2, i)] for i in range(2)]
    assert [t.parent_trial_id for t in stage2] == [t.trial_id for t in ranked1[:2]]
    best = max(trials.values(), key=lambda t: (t.val_accuracy or 0, t.stage))
    assert master.finished == FinishSearch(best.trial_id, "all stages finished")
    assert committed(spec, list(trials.values())) == spec.planned_epochs()


def test_sync_stage_waits_for_the_previous_stage() -> None:
    spec = make_spec()
    master = Master(spec)
    master.apply(next_actions(spec, master.state()))
    assert len(master.trials) == 3  # concurrency
    rng = random.Random(0)
    while len([t for t in master.trials.values() if t.stage == 0]) < 12 or any(
        t.status in IN_FLIGHT for t in master.trials.values()
    ):
        master.finish_one(rng)
        actions = next_actions(spec, master.state())
        pending = [t for t in master.trials.values() if t.stage == 0 and t.status in IN_FLIGHT]
        if pending or len(master.trials) < 12:
            assert all(getattr(a, "stage", 0) == 0 for a in actions)
        master.apply(actions)
        if any(t.stage == 1 for t in master.trials.values()):
            break
    assert all(t.status not in IN_FLIGHT for t in master.trials.values() if t.stage == 0)


def test_budget_stops_the_search_and_is_never_exceeded() -> None:
    spec = make_spec(budget_epochs=20)  # stage 0 needs 12; stage 1 can only partly run
    master = simulate(spec, 3)
    assert committed(spec, list(master.trials.values())) <= 20
    assert master.finished is not None and "budget exhausted" in master.finished.reason


def test_diverged_trials_are_never_promoted() -> None:
    raw_space = {
        "optimizer.learning_rate": {"kind": "log_uniform", "low": 0.4, "high": 1.0},
        "model.keep_prob": {"kind": "uniform", "low": 0.3, "high": 1.0},
    }
    spec = make_spec(space=raw_space)  # every trial diverges
    master = simulate(spec, 0)
    assert all(t.parent_trial_id is None for t in master.trials.values())
    assert master.finished is not None and master.finished.best_trial_id is None


def test_grid_sampler_uses_grid_points() -> None:
    spec = make_spec(sampler="grid", stages=[{"trials": 9, "epochs": 1}])
    master = simulate(spec, 0)
    keeps = sorted({round(t.params["model.keep_prob"], 9) for t in master.trials.values()})
    assert keeps == [round(0.3 + 0.7 * (j + 0.5) / 3, 9) for j in range(3)]
