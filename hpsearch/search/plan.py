"""The automatic plan: the rungs of asynchronous successive halving, chosen from a budget.

A spec with `budget_epochs` and no `[[stages]]` gets `automatic_plan(budget,
eta, min_epochs, max_epochs)`:

- rungs at r_k = min_epochs * eta**k epochs (rounded, strictly increasing),
  up to the top rung R;
- R = `max_epochs` when the spec sets it, else the longest rung for which one
  full successive-halving bracket fits the budget: n_K = 1 trial reaching R,
  n_k = eta**(K - k) trials reaching rung k, costing
  n_0 * r_0 + sum_k n_k * (r_k - r_{k-1}) epochs (each rung above the first
  costs about n_0 * r_0 * (1 - 1/eta)). The longer the budget, the longer the
  finalists train: at eta = 3, 1 epoch per first-rung trial, 300 epochs give
  rungs 1/3/9/27/81, 1,500 epochs 1/3/9/27/81/243;
- `planned` counts are that bracket's n_k: what the plan expects, not limits.

How the scheduler runs it (see `scheduler`): stage k is rung k, and the
plan is asynchronous successive halving with the notes' coarse to fine:

- promotions (ASHA): the top 1/eta of each rung's finished trials continue
  from their checkpoints to the next rung, highest rung first;
- new trials: every one starts at rung 0, even indexes in the spec's space,
  odd indexes in the space of the highest rung decided so far (`refine`d from
  rung k-1's first ceil(planned_{k-1} / eta) results): wide and short first,
  then samples narrowed by longer-trained results, half of them still drawn
  wide. A configuration is trained long only once it has earned it.
  (Starting trials directly at higher rungs too, in Hyperband's other
  brackets with equal budgets, was tried: with the one bracket the budget
  pays for, each blind trial at the top rung took a sixth to a quarter of the
  budget, often before any promotion could reach that rung. On MNIST-1D,
  `bench/search_quality.py`, the median test accuracy over 20 seeds at 300
  epochs went from 64.9% with those brackets to 67.2% without; at 1,500
  epochs, 5 seeds, from 73.3% to 72.4%.)
- budget: a trial starts only when the budget pays for it and for the
  promotions the trials started so far will earn (`_reserved`); promotions are
  never capped by `planned`; epochs a diverged or failed trial did not train
  are free again; when nothing is in flight and nothing else fits, the last
  epochs buy rung-0 trials until less than `min_epochs` remain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["AutoPlan", "Rung", "automatic_plan", "bracket_cost"]


@dataclass(frozen=True)
class Rung:
    """Rung `k`: trials reaching it have trained `epochs` epochs in total."""

    epochs: int
    planned_trials: int


@dataclass(frozen=True)
class AutoPlan:
    """The rungs chosen for a budget, lowest first."""

    budget: int
    eta: float
    rungs: tuple[Rung, ...]

    @property
    def min_epochs(self) -> int:
        return self.rungs[0].epochs

    def lines(self) -> list[str]:
        """A human description, one line per rung (for `hpsearch plan`)."""
        lines = [
            f"automatic plan: asynchronous successive halving, budget {self.budget} epochs, "
            f"eta {self.eta:g}, rungs {'/'.join(str(r.epochs) for r in self.rungs)} epochs"
        ]
        previous = 0
        for k, rung in enumerate(self.rungs):
            how = "new samples" if k == 0 else f"top 1/{self.eta:g} of rung {k - 1} promoted"
            lines.append(
                f"  rung {k}: {rung.epochs:>5} epochs, ~{rung.planned_trials} trials ({how}, "
                f"+{rung.epochs - previous} epochs each)"
            )
            previous = rung.epochs
        lines.append(
            f"  one bracket costs {bracket_cost(self.rungs)} epochs; the rest of the budget "
            "buys more rung-0 samples (and their promotions)"
        )
        return lines


def rung_epochs(min_epochs: int, eta: float, top: int) -> list[int]:
    """min_epochs * eta**k (rounded, strictly increasing) below `top`, then `top`."""
    epochs = [min_epochs]
    while True:
        following = max(epochs[-1] + 1, round(min_epochs * eta ** len(epochs)))
        if following >= top:
            break
        epochs.append(following)
    if top > epochs[-1]:
        epochs.append(top)
    return epochs


def _bracket(epochs: list[int], eta: float) -> tuple[Rung, ...]:
    top = len(epochs) - 1
    return tuple(Rung(e, max(1, round(eta ** (top - k)))) for k, e in enumerate(epochs))


def bracket_cost(rungs: tuple[Rung, ...]) -> int:
    """Epochs of one bracket: every planned trial trained to its rung."""
    cost, previous = 0, 0
    for rung in rungs:
        cost += rung.planned_trials * (rung.epochs - previous)
        previous = rung.epochs
    return cost


def automatic_plan(
    budget: int,
    eta: float,
    min_epochs: int = 1,
    max_epochs: int | None = None,
    reserved_top_trials: int = 0,
) -> AutoPlan:
    """The rungs for `budget` epochs (see the module doc); ValueError naming the field.

    `reserved_top_trials` trials of the top rung's length are held out of the
    bracket (the `seeds` ensemble's retrainings): the top rung is the longest for
    which one bracket plus those trials fit the budget.
    """
    if budget < min_epochs:
        raise ValueError(
            f"budget_epochs: {budget} is smaller than one trial of the smallest rung "
            f"(min_epochs = {min_epochs})"
        )
    if max_epochs is not None:
        if max_epochs < min_epochs:
            raise ValueError(f"max_epochs: {max_epochs} is below min_epochs = {min_epochs}")
        return AutoPlan(budget, eta, _bracket(rung_epochs(min_epochs, eta, max_epochs), eta))
    best = _bracket([min_epochs], eta)
    for k in range(1, 64):
        top = max(best[-1].epochs + 1, round(min_epochs * eta**k))
        candidate = _bracket(rung_epochs(min_epochs, eta, top), eta)
        cost = bracket_cost(candidate) + reserved_top_trials * candidate[-1].epochs
        if cost > budget or not math.isfinite(eta**k):
            break
        best = candidate
    return AutoPlan(budget, eta, best)
