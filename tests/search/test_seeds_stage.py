"""The seeds stage of the scheduler: the best configuration retrained with K new seeds."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from hpsearch.search.scheduler import (
    IN_FLIGHT,
    FinishSearch,
    SampleTrial,
    next_actions,
)
from hpsearch.search.space import train_seed
from tests.search.test_scheduler import Master, fake_accuracy, make_spec


class SeedMaster(Master):
    """The simulated master, with each trial's epochs taken from its action."""

    def apply(self, actions: list) -> None:
        super().apply(actions)
        self.epochs = getattr(self, "epochs", {})
        for action in actions:
            if isinstance(action, SampleTrial) or hasattr(action, "parent_trial_id"):
                self.epochs.setdefault((action.stage, action.index), action.epochs)

    def finish_one(self, rng: random.Random) -> None:
        flying = sorted(key for key, t in self.trials.items() if t.status in IN_FLIGHT)
        key = rng.choice(flying)
        trial, epochs = self.trials[key], self.epochs[key]
        accuracy = fake_accuracy(dict(trial.params), epochs)
        self.trials[key] = replace(
            trial, status="completed", val_accuracy=accuracy or 0.0, epochs_done=epochs
        )


def run(spec, order_seed: int = 0) -> SeedMaster:
    master, rng = SeedMaster(spec), random.Random(order_seed)
    for _ in range(1000):
        actions = next_actions(spec, master.state())
        assert next_actions(spec, master.state()) == actions  # still a pure function
        master.apply(actions)
        assert sum(t.status in IN_FLIGHT for t in master.trials.values()) <= spec.concurrency
        if master.finished is not None:
            return master
        master.finish_one(rng)
    raise AssertionError("the search never finished")


@pytest.mark.parametrize("order_seed", [0, 1, 2])
def test_seeds_retrain_the_best_configuration_with_new_seeds_before_the_search_ends(
    order_seed: int,
) -> None:
    spec = make_spec(ensembles={"kinds": ["greedy", "seeds"], "seeds": 4})
    master = run(spec, order_seed)
    stage = len(spec.stages)
    seeds = [t for t in master.trials.values() if t.stage == stage]
    assert sorted(t.index for t in seeds) == [0, 1, 2, 3]
    assert all(t.status == "completed" for t in seeds)
    others = [t for t in master.trials.values() if t.stage < stage]
    best = max(others, key=lambda t: (t.val_accuracy or 0.0, t.stage, -t.index))
    assert all(dict(t.params) == dict(best.params) for t in seeds)
    assert {master.seeds[(stage, i)] for i in range(4)} == {
        train_seed(spec.seed, stage, i) for i in range(4)
    }
    assert len({master.seeds[(stage, i)] for i in range(4)}) == 4
    assert {master.epochs[(stage, i)] for i in range(4)} == {spec.stages[best.stage].epochs}
    assert isinstance(master.finished, FinishSearch)
    assert master.finished.best_trial_id == best.trial_id


def test_the_seeds_stage_is_planned_in_the_budget_and_bounded_by_it() -> None:
    without = make_spec()
    with_seeds = make_spec(ensembles={"kinds": ["seeds"], "seeds": 3})
    assert with_seeds.budget == without.budget + 3 * without.stages[-1].epochs
    short = make_spec(ensembles={"kinds": ["seeds"], "seeds": 3}, budget_epochs=without.budget + 9)
    master = run(short)
    seeds = [t for t in master.trials.values() if t.stage == len(short.stages)]
    assert len(seeds) == 1  # 9 epochs left: one seed trial of 9 epochs fits


def test_no_seeds_stage_unless_asked() -> None:
    master = run(make_spec())
    assert {t.stage for t in master.trials.values()} == {0, 1, 2}


@pytest.mark.parametrize("budget", [120, 400])
def test_an_automatic_plan_holds_back_the_seeds_stage_budget(budget: int) -> None:
    spec = make_spec(
        stages=None,
        asynchronous=True,
        budget_epochs=budget,
        ensembles={"kinds": ["greedy", "seeds"], "seeds": 3},
    )
    assert spec.auto_plan is not None
    top = spec.auto_plan.rungs[-1].epochs
    master = run(spec)
    seeds = [t for t in master.trials.values() if t.stage == len(spec.plan)]
    assert len(seeds) == 3 and all(master.epochs[(t.stage, t.index)] <= top for t in seeds)
    spent = sum(master.epochs[key] for key, t in master.trials.items() if t.parent_trial_id is None)
    promoted = sum(
        master.epochs[key] - spec.plan[key[0] - 1].epochs
        for key, t in master.trials.items()
        if t.parent_trial_id is not None
    )
    assert spent + promoted <= budget
