"""The master's brain: `next_actions(spec, state) -> list[Action]`, a pure function.

The master calls it whenever something changes (a search starts, a trial
finishes) and applies the actions idempotently: every trial is keyed by
(search, stage, index), a stage's space is decided once, so an action applied
twice changes nothing.

Rules, in the order they are applied:

1. Spaces. Stage 0 uses the spec's space. Stage k >= 1 refines stage k-1's
   space from stage k-1's results (see `refine`), with stage k's `keep` and
   `margin`. Synchronous mode decides it when stage k-1 is closed (the notes'
   stage-by-stage search). Asynchronous mode decides it as soon as the trials of
   stage k-1 with index < q have all finished, q = max(ceil(n / eta),
   n - concurrency) for n = stage k-1's trials (or when stage k-1 is closed,
   if that comes first). Indexes, not completion order, pick these results, so
   the refined space, and every new sample drawn in it, is the same whatever
   order workers finish in. A stage is closed when it has nothing in flight and
   nothing left it could start.
2. Promotions, highest stage first. Stage k's first P slots (`promotion_slots`)
   continue stage k-1 trials from their checkpoints to stage k's epochs.
   Synchronous: once stage k-1 is closed, its best `keep` completed trials.
   Asynchronous (ASHA): with f trials of stage k-1 finished, a completed trial
   is promoted when it ranks within the top floor(f / eta) of them, and at
   most floor(f / eta) are ever promoted from that stage. Which ones depends on
   completion order, as in ASHA. Diverged, failed and cancelled trials are
   never promoted. A promotion trains on with the seed of its parent's
   (stage, index).
3. New samples, lowest stage first, in index order: params and training seed
   are functions of (seed, stage, index) only (`sample_params`, `train_seed`),
   or the grid point of that index with `sampler = "grid"`; in their stage's
   space, or for an automatic plan (all new samples at rung 0) in
   `automatic_space` of the spaces decided when drawn. In synchronous
   hand-written stages a sample that diverged or failed is replaced by the
   stage's next index (at most the stage's count of samples again; never on a
   grid), so the epochs it did not train are spent again on a result of its
   stage.
4. Never more than `concurrency` trials queued + running; never more epochs
   committed than the budget (a running trial counts its whole stage; a
   finished one what it trained; a promotion only the epochs it adds).
5. Seeds stage (only when the spec's `[ensembles]` kinds has "seeds"): once
   no trial of the spec's stages is in flight and none can start, the best
   completed trial's configuration is trained again from scratch with
   `ensembles.seeds` new seeds, as stage len(stages) (`_seed_trials`). An
   automatic plan holds back `ensembles.seeds` x its top rung's epochs for them
   (its rungs are chosen so that one bracket plus those trials fit the budget).
6. When nothing is in flight and nothing can start: `FinishSearch` with the
   best completed trial of the spec's stages (ties: later stage, then lower index).

`TrialView.epochs_done` counts epochs in total, a promoted parent's included.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from hpsearch.search.refine import BorderWarning, RefinePolicy, TrialResult, refine
from hpsearch.search.space import SearchSpace, grid_params, sample_params, train_seed
from hpsearch.search.spec import SearchSpec, keep_of
from hpsearch.search.tpe import RecordedResult, tpe_params

__all__ = [
    "IN_FLIGHT",
    "Action",
    "FinishSearch",
    "PromoteTrial",
    "SampleTrial",
    "SearchState",
    "StartStage",
    "TrialView",
    "next_actions",
]

TrialStatus = Literal["queued", "running", "completed", "diverged", "failed", "cancelled"]
IN_FLIGHT = frozenset({"queued", "running"})


@dataclass(frozen=True)
class TrialView:
    """One trial as the master knows it; `val_accuracy` is its result so far (its best
    epoch's validation accuracy, or its last epoch's: the spec's `result`)."""

    trial_id: int | None
    stage: int
    index: int
    status: TrialStatus
    params: Mapping[str, Any]
    val_accuracy: float | None = None
    epochs_done: int = 0
    parent_trial_id: int | None = None

    @property
    def usable(self) -> bool:
        """Completed with a finite accuracy: may rank, drive narrowing, be promoted."""
        return (
            self.status == "completed"
            and self.val_accuracy is not None
            and math.isfinite(self.val_accuracy)
        )


@dataclass(frozen=True)
class SearchState:
    """Every trial so far, and the spaces of the stages already started."""

    trials: tuple[TrialView, ...] = ()
    spaces: Mapping[int, SearchSpace] = field(default_factory=dict)


@dataclass(frozen=True)
class StartStage:
    """Stage `stage` samples in `space`; decided once, with its border warnings."""

    stage: int
    space: SearchSpace
    warnings: tuple[BorderWarning, ...] = ()


@dataclass(frozen=True)
class SampleTrial:
    """Train a new trial `index` of `stage` from scratch for `epochs` epochs."""

    stage: int
    index: int
    params: Mapping[str, Any]
    train_seed: int
    epochs: int


@dataclass(frozen=True)
class PromoteTrial:
    """Continue `parent_trial_id` from its checkpoint to `epochs` epochs in total."""

    stage: int
    index: int
    parent_trial_id: int
    params: Mapping[str, Any]
    train_seed: int
    epochs: int


@dataclass(frozen=True)
class FinishSearch:
    """Nothing left to run; `best_trial_id` is None when no trial completed."""

    best_trial_id: int | None
    reason: str


Action = StartStage | SampleTrial | PromoteTrial | FinishSearch


def next_actions(spec: SearchSpec, state: SearchState) -> list[Action]:
    """What the master should do now; see the module docstring for the rules."""
    plan = _Plan(spec, state)
    actions: list[Action] = list(_decide_spaces(plan))
    work = _work(plan)
    if not work and plan.in_flight == 0 and spec.auto_plan is not None:
        plan = _Plan(spec, state, reserve=False)
        plan.spaces.update({a.stage: a.space for a in actions if isinstance(a, StartStage)})
        work = _work(plan)
    actions.extend(work)
    seeds = _seed_trials(plan) if not work else []
    actions.extend(seeds)
    if not work and not seeds and plan.in_flight == 0:
        actions.append(_finish(plan))
    return actions


def _work(plan: _Plan) -> list[Action]:
    """Promotions (highest stage first), then new samples (lowest stage first)."""
    work: list[Action] = []
    for stage in reversed(range(1, len(plan.spec.plan))):
        work.extend(_promotions(plan, stage))
    for stage in range(len(plan.spec.plan)):
        work.extend(_samples(plan, stage))
    return work


class _Plan:
    """Working view of the state for one call; updated as actions are chosen."""

    def __init__(self, spec: SearchSpec, state: SearchState, reserve: bool = True) -> None:
        self.spec = spec
        self.reserve = reserve
        self.spaces: dict[int, SearchSpace] = dict(state.spaces)
        self.by_stage: list[list[TrialView]] = [[] for _ in spec.plan]
        for trial in state.trials:
            if 0 <= trial.stage < len(spec.plan):
                self.by_stage[trial.stage].append(trial)
        self.used: list[set[int]] = [{t.index for t in trials} for trials in self.by_stage]
        self.fresh = [sum(t.parent_trial_id is None for t in ts) for ts in self.by_stage]
        self.in_flight = sum(t.status in IN_FLIGHT for t in state.trials)
        self.seed_stage = [t for t in state.trials if t.stage == len(spec.plan)]
        self.seed_epochs = _seed_epochs(self)
        self.seed_reserve = _seed_reserve(spec, len(self.seed_stage))
        self.budget_left = spec.budget - sum(self._cost(t) for t in state.trials)
        self.budget_left -= self.seed_reserve  # released by `_seed_trials`

    @property
    def free(self) -> int:
        return self.spec.concurrency - self.in_flight

    def start_epochs(self, stage: int, promoted: bool) -> int:
        return self.spec.plan[stage - 1].epochs if promoted and stage > 0 else 0

    def _cost(self, trial: TrialView) -> int:
        if trial.stage == len(self.spec.plan) and trial.status in IN_FLIGHT:
            return max(self.seed_epochs, trial.epochs_done)  # a seed trial
        if not 0 <= trial.stage < len(self.spec.plan):
            return max(0, trial.epochs_done)
        start = self.start_epochs(trial.stage, trial.parent_trial_id is not None)
        if trial.status in IN_FLIGHT:
            return max(self.spec.plan[trial.stage].epochs - start, 0)
        return max(trial.epochs_done - start, 0)

    def take(self, stage: int, index: int, epochs: int) -> None:
        self.used[stage].add(index)
        self.in_flight += 1
        self.budget_left -= epochs

    def alive(self, stage: int) -> int:
        """Trials of `stage` known to the state that are in flight or usable."""
        known = sum(t.status in IN_FLIGHT or t.usable for t in self.by_stage[stage])
        return known + self.started_now(stage)

    def started_now(self, stage: int) -> int:
        """Trials of `stage` chosen during this call (not yet in the state)."""
        return len(self.used[stage]) - len(self.by_stage[stage])

    def promote_cost(self, stage: int) -> int:
        return self.spec.plan[stage].epochs - self.spec.plan[stage - 1].epochs

    def finished(self, stage: int) -> list[TrialView]:
        return [t for t in self.by_stage[stage] if t.status not in IN_FLIGHT]

    def ranked(self, stage: int) -> list[TrialView]:
        """Usable finished trials of `stage`, best first, ties by index."""
        usable = [t for t in self.by_stage[stage] if t.usable and t.trial_id is not None]
        return sorted(usable, key=lambda t: (-float(t.val_accuracy or 0.0), t.index))

    def promotion_limit(self, stage: int) -> int:
        """How many stage-`stage` slots may hold promotions right now."""
        slots = self.spec.promotion_slots(stage)
        if slots == 0:
            return 0
        if self.spec.asynchronous:
            return min(slots, math.floor(len(self.finished(stage - 1)) / self.spec.eta))
        if not self.closed(stage - 1):
            return 0
        keep = keep_of(self.spec.plan[stage].keep, max(len(self.ranked(stage - 1)), 1))
        return min(slots, keep)

    def promotion_candidates(self, stage: int) -> list[TrialView]:
        limit = self.promotion_limit(stage)
        promoted = {t.parent_trial_id for t in self.by_stage[stage]}
        top = self.ranked(stage - 1)[:limit]
        return [t for t in top if t.trial_id not in promoted]

    def promoted_count(self, stage: int) -> int:
        if self.spec.auto_plan is not None:  # fresh trials share the indexes
            return len(self.used[stage]) - self.fresh[stage]
        slots = self.spec.promotion_slots(stage)
        return sum(index < slots for index in self.used[stage])

    def can_start(self, stage: int) -> bool:
        """Whether `stage` has a slot it could fill now or later (budget allowing)."""
        slots = self.spec.promotion_slots(stage)
        unused = (i for i in self.sample_indexes(stage) if i not in self.used[stage])
        if any(self.pays_for(stage, i) for i in unused):
            return True
        if slots == 0 or self.promoted_count(stage) >= slots:
            return False
        if self.budget_left < self.promote_cost(stage):
            return False
        if not self.closed(stage - 1):
            return True
        room = self.promotion_limit(stage) - self.promoted_count(stage)
        return room > 0 and bool(self.promotion_candidates(stage))

    def sample_indexes(self, stage: int) -> range:
        """Indexes of `stage`'s new samples (hand-written stages): its slots after the
        promotions, plus, in synchronous mode, one replacement per sample that diverged or
        failed (at most the stage's own count; not on a grid, whose points are fixed), so
        epochs such a trial did not train buy another result of its stage when the budget
        allows. (Asynchronous stages do not: which trials the budget pays for there
        depends on completion order, and their samples must not.)"""
        spec = self.spec.plan[stage]
        slots = self.spec.promotion_slots(stage)
        lost = 0
        if self.spec.sampler != "grid" and not self.spec.asynchronous:
            lost = sum(
                t.parent_trial_id is None and t.status in ("diverged", "failed")
                for t in self.by_stage[stage]
            )
        return range(slots, spec.trials + min(lost, spec.trials - slots))

    def pays_for(self, stage: int, index: int) -> bool:
        """Whether the budget pays for new sample `index` of `stage` now; a replacement
        only from epochs no planned slot of any stage still needs."""
        epochs = self.spec.plan[stage].epochs
        if index < self.spec.plan[stage].trials:
            return self.budget_left >= epochs
        return self.budget_left - self._owed() >= epochs

    def _owed(self) -> int:
        """Epochs the planned slots not started yet will cost (hand-written stages)."""
        owed = 0
        for stage, spec in enumerate(self.spec.plan):
            slots = self.spec.promotion_slots(stage)
            for index in range(spec.trials):
                if index not in self.used[stage]:
                    owed += self.promote_cost(stage) if index < slots else spec.epochs
        return owed

    def closed(self, stage: int) -> bool:
        """Decided, nothing in flight, nothing left to start."""
        if stage not in self.spaces:
            return False
        if any(t.status in IN_FLIGHT for t in self.by_stage[stage]):
            return False
        return not self.can_start(stage)


def _decide_spaces(plan: _Plan) -> list[StartStage]:
    actions = []
    for stage in range(len(plan.spec.plan)):
        if stage in plan.spaces:
            continue
        if stage == 0:
            space, warnings = plan.spec.search_space, list[BorderWarning]()
        else:
            results = _refine_inputs(plan, stage - 1)
            if results is None:
                break
            space, warnings = refine(plan.spaces[stage - 1], results, _policy(plan, stage))
            if not _samples_anything(plan.spec, stage):
                warnings = []  # promotions only: nothing is drawn from this range
        plan.spaces[stage] = space
        actions.append(StartStage(stage, space, tuple(warnings)))
    return actions


def _samples_anything(spec: SearchSpec, stage: int) -> bool:
    """Whether new trials are ever drawn in `stage`'s space."""
    return spec.auto_plan is not None or spec.promotion_slots(stage) < spec.plan[stage].trials


def _policy(plan: _Plan, stage: int) -> RefinePolicy:
    spec = plan.spec.plan[stage]
    keep = spec.keep
    if isinstance(keep, int) and plan.spec.asynchronous:
        keep = min(1.0, keep / plan.spec.plan[stage - 1].trials)
    return RefinePolicy(
        keep=keep,
        margin=spec.margin,
        widen_on_border=plan.spec.widen_on_border and _samples_anything(plan.spec, stage),
        border_fraction=plan.spec.border_fraction,
    )


def _refine_inputs(plan: _Plan, stage: int) -> list[TrialResult] | None:
    """The results stage `stage + 1`'s space is refined from, or None if not ready yet."""
    if stage not in plan.spaces:
        return None
    chosen: list[TrialView] | None = None
    if plan.spec.asynchronous:
        quorum = _quorum(plan.spec, stage)
        early = [t for t in plan.by_stage[stage] if t.index < quorum]
        if {t.index for t in early} == set(range(quorum)) and all(
            t.status not in IN_FLIGHT for t in early
        ):
            chosen = early
    if chosen is None and plan.closed(stage):
        chosen = plan.finished(stage)
    if chosen is None:
        return None
    chosen = sorted(chosen, key=lambda t: t.index)
    return [TrialResult(t.params, t.val_accuracy if t.usable else None) for t in chosen]


def _quorum(spec: SearchSpec, stage: int) -> int:
    """How many first indexes of `stage` decide the next stage's space (asynchronous)."""
    if spec.auto_plan is not None:
        return math.ceil(spec.auto_plan.rungs[stage].planned_trials / spec.eta)
    trials = spec.plan[stage].trials
    return max(math.ceil(trials / spec.eta), trials - spec.concurrency)


def _promotions(plan: _Plan, stage: int) -> list[PromoteTrial]:
    if stage not in plan.spaces or plan.spec.promotion_slots(stage) == 0:
        return []
    actions = []
    epochs = plan.spec.plan[stage].epochs
    cost = plan.promote_cost(stage)
    room = plan.promotion_limit(stage) - plan.promoted_count(stage)
    free_indexes = [i for i in range(plan.spec.promotion_slots(stage)) if i not in plan.used[stage]]
    for parent, index in zip(plan.promotion_candidates(stage)[:room], free_indexes, strict=False):
        if plan.free <= 0 or plan.budget_left < cost + _reserved(plan, stage):
            break
        assert parent.trial_id is not None
        seed = train_seed(plan.spec.seed, parent.stage, parent.index)
        actions.append(PromoteTrial(stage, index, parent.trial_id, parent.params, seed, epochs))
        plan.take(stage, index, cost)
    return actions


def _samples(plan: _Plan, stage: int) -> list[SampleTrial]:
    if stage not in plan.spaces:
        return []
    if plan.spec.auto_plan is not None:
        return _automatic_samples(plan) if stage == 0 else []
    spec = plan.spec.plan[stage]
    slots = plan.spec.promotion_slots(stage)
    actions = []
    for index in plan.sample_indexes(stage):
        if index in plan.used[stage]:
            continue
        if plan.free <= 0 or not plan.pays_for(stage, index):
            break
        space = plan.spaces[stage]
        if plan.spec.sampler == "grid":
            params = grid_params(space, spec.trials - slots, index - slots)
        else:
            params = _draw(plan, space, stage, index)
        seed = train_seed(plan.spec.seed, stage, index)
        actions.append(SampleTrial(stage, index, params, seed, spec.epochs))
        plan.take(stage, index, spec.epochs)
    return actions


def _draw(plan: _Plan, space: SearchSpace, stage: int, index: int) -> dict[str, Any]:
    """The configuration of new trial `index` of `stage`: random, or `tpe_params` from
    every completed trial known now (`sampler = "tpe"`)."""
    if plan.spec.sampler != "tpe":
        return sample_params(space, plan.spec.seed, stage, index)
    results = [
        RecordedResult(t.stage, t.index, t.params, float(t.val_accuracy))
        for trials in plan.by_stage
        for t in trials
        if t.usable and t.val_accuracy is not None
    ]
    return tpe_params(space, results, plan.spec.seed, stage, index)


def _automatic_samples(plan: _Plan) -> list[SampleTrial]:
    """New trials of the automatic plan (asynchronous successive halving, see `plan`).

    Every new trial starts at rung 0, while the budget pays for it together
    with the promotions it may earn. Even indexes draw in the spec's space;
    odd indexes in the space of the highest rung decided so far, refined from
    the first results of the rung below it (`automatic_space`): the coarse to
    fine of the notes, later samples narrower and learned from longer-trained
    results, with half of them still exploring the whole space.
    """
    auto = plan.spec.auto_plan
    assert auto is not None
    actions = []
    epochs = auto.rungs[0].epochs
    while (
        plan.free > 0
        and plan.budget_left >= epochs + _reserved(plan, 0)
        and len(plan.used[0]) < plan.spec.plan[0].trials
    ):
        index = min(set(range(len(plan.used[0]) + 1)) - plan.used[0])
        params = _draw(plan, automatic_space(plan.spaces, index), 0, index)
        actions.append(SampleTrial(0, index, params, train_seed(plan.spec.seed, 0, index), epochs))
        plan.take(0, index, epochs)
        plan.fresh[0] += 1
    return actions


def automatic_space(spaces: Mapping[int, SearchSpace], index: int) -> SearchSpace:
    """The space new trial `index` of an automatic plan draws in, from the rungs' spaces
    decided when it is drawn: the spec's (rung 0's) for even indexes, the highest
    rung's for odd ones."""
    return spaces[0] if index % 2 == 0 else spaces[max(spaces)]


def _reserved(plan: _Plan, stage: int) -> int:
    """Epochs owed to promotions above `stage` if one more trial joins `stage`.

    Automatic plans only (0 otherwise, or when `plan.reserve` is off): rung k
    owes floor(alive(k-1) / eta) promotions, alive = in flight, completed with
    a result, or owed itself.
    """
    if plan.spec.auto_plan is None or not plan.reserve:
        return 0
    expected = plan.alive(stage) + 1
    reserve = 0
    for higher in range(stage + 1, len(plan.spec.plan)):
        owed = max(0, math.floor(expected / plan.spec.eta) - len(plan.used[higher]))
        reserve += owed * plan.promote_cost(higher)
        expected = plan.alive(higher) + owed
    return reserve


def _best(plan: _Plan) -> TrialView | None:
    """The best completed trial of the spec's stages (ties: later stage, then lower index)."""
    completed = [
        t for trials in plan.by_stage for t in trials if t.usable and t.trial_id is not None
    ]
    return min(
        completed,
        key=lambda t: (-float(t.val_accuracy or 0.0), -t.stage, t.index),
        default=None,
    )


def _seed_epochs(plan: _Plan) -> int:
    best = _best(plan)
    return 0 if best is None else plan.spec.plan[best.stage].epochs


def _seed_reserve(spec: SearchSpec, started: int) -> int:
    """Epochs an automatic plan holds back for the seeds stage's trials not started yet:
    each at most the top rung's epochs (hand-written stages plan them in their budget)."""
    if spec.auto_plan is None or "seeds" not in spec.ensembles.kinds:
        return 0
    return max(spec.ensembles.seeds - started, 0) * spec.auto_plan.rungs[-1].epochs


def _seed_trials(plan: _Plan) -> list[SampleTrial]:
    """The seeds stage (`[ensembles]` kinds has "seeds"), once no trial of the spec's stages
    is in flight: the best configuration retrained from scratch with K = `ensembles.seeds`
    new seeds, as stage len(stages), indexes 0..K-1, each its stage's epochs. Counted in
    the budget and the concurrency like any trial; [] when not asked or nothing is left."""
    spec = plan.spec
    best = _best(plan)
    in_flight = any(t.status in IN_FLIGHT for trials in plan.by_stage for t in trials)
    if "seeds" not in spec.ensembles.kinds or best is None or in_flight:
        return []
    plan.budget_left += plan.seed_reserve
    plan.seed_reserve = 0
    stage, used = len(spec.plan), {t.index for t in plan.seed_stage}
    actions = []
    for index in range(spec.ensembles.seeds):
        if index in used:
            continue
        if plan.free <= 0 or plan.budget_left < plan.seed_epochs:
            break
        seed = train_seed(spec.seed, stage, index)
        actions.append(SampleTrial(stage, index, best.params, seed, plan.seed_epochs))
        plan.in_flight += 1
        plan.budget_left -= plan.seed_epochs
    return actions


def _finish(plan: _Plan) -> FinishSearch:
    best = _best(plan)
    if all(len(plan.used[s]) >= spec.trials for s, spec in enumerate(plan.spec.plan)):
        reason = "all stages finished"
    elif _budget_blocks(plan):
        reason = f"budget exhausted ({plan.spec.budget} epochs)"
    else:
        reason = "stopped early: too few completed trials to promote"
    return FinishSearch(best.trial_id if best else None, reason)


def _budget_blocks(plan: _Plan) -> bool:
    """Whether some unfilled slot could not be paid for with the epochs left."""
    for stage, spec in enumerate(plan.spec.plan):
        slots = plan.spec.promotion_slots(stage)
        open_samples = any(i not in plan.used[stage] for i in range(slots, spec.trials))
        if open_samples and plan.budget_left < spec.epochs:
            return True
        if plan.promoted_count(stage) < slots and plan.budget_left < plan.promote_cost(stage):
            return True
    return False
