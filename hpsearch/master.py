"""The master: apply the search core's decisions to the database, and reap the dead.

`advance(storage, search_id, executor)` asks `hpsearch.search.next_actions`
what to do given the spec and every trial so far, then applies it:
stage spaces are recorded once, new trials are inserted with a unique
(search, stage, index) key, and the trials this call inserted are handed to
the executor. Because the decisions are a pure function of the stored state
and the insert ignores existing keys, two concurrent `advance` calls never
create a trial twice; running it again is harmless.

`master_tick(storage, executor, stale_after_s)` is one pass of the periodic
master (`hpsearch master`, and the API process through `api.background`):
`reap`, then `advance` for every running search.

`reap(storage, executor, stale_after_s)` requeues trials whose worker stopped
heartbeating (within their retry budget, else fails them) and enqueues them,
and enqueues again every queued trial the queue has lost (e.g. a flushed
Redis; see `RQExecutor.lost`); ensemble builds of a silent worker are queued
again, and queued ones whose job the queue lost are enqueued again.

When a search ends, `complete_with_ensembles` marks it completed and queues
the ensembles of its spec's `[ensembles]` table in the same transaction; a
worker builds them (`worker.ensembles`).

The master runs from the worker that finished a trial (on a background
thread, and only once the queue runs low: see `worker.trial.advance_if_needed`)
and from a periodic loop: `hpsearch run` (local mode), `hpsearch master` or
the API process (cluster mode). A parsed spec is cached per process.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from hpsearch.db import Storage, open_storage
from hpsearch.db.records import (
    NewTrial,
    SearchRecord,
    StageRecord,
    TrialRecord,
    result_accuracy,
)
from hpsearch.errors import HpsearchError
from hpsearch.executors import CLAIM_GRACE_S, Executor, make_executor
from hpsearch.logs import log_event, stop_on_signals
from hpsearch.search import (
    FinishSearch,
    PromoteTrial,
    SampleTrial,
    SearchSpace,
    SearchSpec,
    SearchState,
    StartStage,
    TrialView,
    next_actions,
    parse_search_spec,
    trial_config,
)
from hpsearch.search.gate import sanity_gate
from hpsearch.search.importance import importance
from hpsearch.settings import Settings, get_settings

__all__ = [
    "MAX_SEARCHES_PER_TICK",
    "AdvanceResult",
    "advance",
    "complete_with_ensembles",
    "create_search",
    "master_tick",
    "reap",
    "run_master_loop",
    "search_learned",
    "search_spec",
    "search_state",
    "seed_stage_of",
]


# Parsed specs by (search id, creation time, concurrency, budget): parsing is a
# pydantic validation; the creation time tells apart equal ids of two databases.
_parsed_specs: dict[tuple[int, datetime, int, int | None], SearchSpec] = {}
_MAX_PARSED_SPECS = 256
MAX_SEARCHES_PER_TICK = 1000


@dataclass(frozen=True)
class AdvanceResult:
    """How many trials this call created (and enqueued), and whether the search ended."""

    created: int
    enqueued: int
    finished: bool


def create_search(
    storage: Storage, spec: SearchSpec, executor: Executor, start: bool = True
) -> int:
    """Store a validated spec as a new running search and, with `start`, run its sanity
    gate and start its first trials here (else the next master tick does)."""
    record = storage.create_search(
        name=spec.name,
        spec=spec.model_dump(mode="json"),
        seed=spec.seed,
        budget_epochs=spec.budget,
        concurrency=spec.concurrency,
        result=spec.result,
    )
    if start:
        advance(storage, record.id, executor)
    return record.id


def search_spec(storage: Storage, search_id: int) -> SearchSpec:
    """The stored spec, with the search's current budget and concurrency applied."""
    return _spec_of(storage.get_search(search_id))


def _spec_of(search: SearchRecord) -> SearchSpec:
    key = (search.id, search.created_at, search.concurrency, search.budget_epochs)
    spec = _parsed_specs.get(key)
    if spec is None:  # a stored spec never changes; only budget and concurrency do
        raw = dict(search.spec)
        raw["concurrency"] = search.concurrency
        if search.budget_epochs is not None:
            raw["budget_epochs"] = search.budget_epochs
        spec = parse_search_spec(raw, source=f"search {search.id}")
        if len(_parsed_specs) >= _MAX_PARSED_SPECS:
            _parsed_specs.clear()
        _parsed_specs[key] = spec
    return spec


def advance(storage: Storage, search_id: int, executor: Executor) -> AdvanceResult:
    """Apply `next_actions` for a running search; see the module docstring."""
    snapshot = storage.search_snapshot(search_id)
    search = snapshot.search
    if search.status != "running":
        return AdvanceResult(0, 0, search.status != "paused")
    spec = _spec_of(search)
    if not snapshot.stages and not _passes_gate(storage, spec, search_id):
        return AdvanceResult(0, 0, True)
    state = search_state(spec, snapshot.trials, snapshot.stages)
    new_trials: list[NewTrial] = []
    finished = False
    for action in next_actions(spec, state):
        if isinstance(action, StartStage):
            warnings = [
                asdict(warning) | {"message": warning.message()} for warning in action.warnings
            ]
            storage.record_stage(search_id, action.stage, action.space.to_dict(), warnings)
        elif isinstance(action, SampleTrial | PromoteTrial):
            new_trials.append(_new_trial(spec, action))
        elif isinstance(action, FinishSearch):
            status, reason = _outcome(storage, search_id, snapshot.trials, action.reason)
            if status == "completed":
                complete_with_ensembles(storage, spec, search_id, reason, executor)
            else:
                storage.set_search_status(search_id, status, reason=reason)
            finished = True
    # Only the call that inserted a trial enqueues it; one that died in between
    # leaves it to `reap`, which enqueues queued trials the queue does not hold.
    created = storage.insert_new_trials(search_id, new_trials) if new_trials else []
    executor.enqueue(created)
    return AdvanceResult(len(created), len(created), finished)


def _outcome(storage: Storage, search_id: int, trials: list[Any], reason: str) -> tuple[str, str]:
    """("completed", reason), or ("failed", why) when every trial of the search failed."""
    if not trials or any(trial.status != "failed" for trial in trials):
        return "completed", reason
    failed = storage.best_trials(search_id, limit=min(len(trials), 1000), status="failed")
    errors = Counter(trial.error or "no reason recorded" for trial in failed)
    error, count = errors.most_common(1)[0]
    if count == len(trials):
        return "failed", f"all {count} trials failed: {error}"
    return "failed", f"all {len(trials)} trials failed, {count} of them with: {error}"


def seed_stage_of(spec: SearchSpec) -> int | None:
    """The stage number of the search's seed trials (one past its last stage), if it has one."""
    return len(spec.plan) if "seeds" in spec.ensembles.kinds else None


def complete_with_ensembles(
    storage: Storage, spec: SearchSpec, search_id: int, reason: str | None, executor: Executor
) -> None:
    """Mark the search completed and queue the ensembles of its `[ensembles]` table for a
    worker, in one transaction (kinds with nothing to build from are left out)."""
    requests = [(kind, spec.ensembles.size_of(kind)) for kind in spec.ensembles.kinds]
    queued = storage.complete_search(search_id, reason, requests, seed_stage_of(spec))
    executor.enqueue_ensembles([record.id for record in queued])


def _passes_gate(storage: Storage, spec: SearchSpec, search_id: int) -> bool:
    """The sanity gate before the first stage (`hpsearch.search.gate`); a failure ends
    the search `failed` with the measured numbers, a gate that cannot run (the data
    set gone since admission) with its error: never a search left running that every
    master tick would try again."""
    if not spec.sanity_gate:
        return True
    try:
        result = sanity_gate(spec, get_settings().data_root)
    except Exception as error:
        message = (
            str(error) if isinstance(error, HpsearchError) else f"{type(error).__name__}: {error}"
        )
        storage.set_search_status(
            search_id, "failed", reason=f"sanity gate could not run: {message}"
        )
        return False
    if result.passed:
        return True
    storage.set_search_status(search_id, "failed", reason=result.reason)
    return False


def search_learned(storage: Storage, search_id: int) -> dict[str, Any]:
    """What the search learned: each stage's ranges and each parameter's importance
    (`hpsearch.search.importance`, from the completed trials so far)."""
    snapshot = storage.search_snapshot(search_id)
    spec = _spec_of(snapshot.search)
    results = [
        (trial.stage, trial.params, accuracy)
        for trial in snapshot.trials
        if trial.status == "completed"
        and (accuracy := result_accuracy(trial, spec.result)) is not None
    ]
    stages = [{"stage": stage.stage, "ranges": _ranges(stage.space)} for stage in snapshot.stages]
    return {"stages": stages, "importance": importance(spec.search_space, results)}


def _ranges(space: dict[str, Any]) -> dict[str, Any]:
    """`{name: [low, high] | [values...]}` of a stored stage space."""
    return {
        name: body["values"] if "values" in body else [body["low"], body["high"]]
        for name, body in space.items()
    }


def search_state(spec: SearchSpec, trials: list[Any], stages: list[StageRecord]) -> SearchState:
    """The search core's view of the stored trials (`Storage.search_state` views) and
    stage spaces: each trial's `val_accuracy` is its result under the spec's `result`
    (its best epoch's validation accuracy, or its last epoch's)."""
    views = tuple(
        TrialView(
            trial_id=trial.trial_id,
            stage=trial.stage,
            index=trial.index,
            status=trial.status,
            params=trial.params,
            val_accuracy=result_accuracy(trial, spec.result),
            epochs_done=trial.last_epoch or 0,
            parent_trial_id=trial.parent_trial_id,
        )
        for trial in trials
    )
    spaces = {stage.stage: SearchSpace.from_dict(stage.space) for stage in stages}
    return SearchState(trials=views, spaces=spaces)


def _new_trial(spec: SearchSpec, action: SampleTrial | PromoteTrial) -> NewTrial:
    params = dict(action.params)
    config = trial_config(spec, params, train_seed=action.train_seed, epochs=action.epochs)
    parent = action.parent_trial_id if isinstance(action, PromoteTrial) else None
    return NewTrial(
        stage=action.stage,
        index=action.index,
        params=params,
        config=config.model_dump(mode="json"),
        train_seed=action.train_seed,
        epochs=action.epochs,
        parent_trial_id=parent,
    )


def reap(
    storage: Storage,
    executor: Executor,
    stale_after_s: float,
    prune_workers_after_s: float = 3600.0,
) -> list[TrialRecord]:
    """Requeue stale trials and re-enqueue lost ones; returns the trials requeued or failed.

    Requeued trials go to the front of the queue. Silent workers are marked
    dead, and rows of workers stopped or dead for `prune_workers_after_s` deleted.
    """
    reaped = storage.reap_stale(stale_after_s)
    requeued = [trial.id for trial in reaped if trial.status == "queued"]
    executor.enqueue(requeued, at_front=True)
    dead, pruned = storage.reap_workers(stale_after_s, prune_workers_after_s)
    for worker_id in dead:
        log_event("master", "worker.dead", logging.WARNING, worker_id=worker_id,
                  silent_for_s=stale_after_s)  # fmt: skip
    if pruned:
        log_event("master", "workers.pruned", count=pruned)
    queued = [trial_id for trial_id in storage.queued_trial_ids() if trial_id not in requeued]
    executor.enqueue(executor.lost(queued))
    stale_builds = storage.requeue_stale_ensembles(stale_after_s)
    executor.enqueue_ensembles([record.id for record in stale_builds if record.status == "queued"])
    for ensemble_ids in storage.queued_ensembles(older_than_s=CLAIM_GRACE_S).values():
        if executor.ensembles_lost(ensemble_ids[0]):
            executor.enqueue_ensembles(ensemble_ids)
    for search_id in {trial.search_id for trial in reaped if trial.status != "queued"}:
        advance(storage, search_id, executor)
    return reaped


def master_tick(
    storage: Storage,
    executor: Executor,
    stale_after_s: float,
    prune_workers_after_s: float = 3600.0,
) -> int:
    """One pass of the periodic master: reap, then advance every running search.

    Returns how many searches were advanced.
    """
    reap(storage, executor, stale_after_s, prune_workers_after_s)
    searches = storage.list_searches(limit=MAX_SEARCHES_PER_TICK, status="running")
    for search in searches:
        advance(storage, search.id, executor)
    return len(searches)


def run_master_loop(tick_s: float = 1.0, settings: Settings | None = None) -> None:
    """`hpsearch master`: `master_tick` every `tick_s` seconds, until SIGTERM or SIGINT.

    A tick that fails (the database or Redis restarting) is logged and the
    next one tries again: the master reconnects by itself.
    """
    settings = settings or get_settings()
    storage = open_storage(settings.resolved_database_url)
    executor = make_executor(settings.redis_url)
    stopping = threading.Event()
    stop_on_signals(stopping, "master")
    log_event("master", "master.started", tick_s=tick_s, database=storage.url)
    while not stopping.is_set():
        try:
            master_tick(storage, executor, settings.stale_after_s, settings.worker_prune_after_s)
        except Exception as error:  # retried at the next tick; the database is the truth
            log_event("master", "master.tick_failed", logging.WARNING,
                      error=f"{type(error).__name__}: {error}")  # fmt: skip
        stopping.wait(tick_s)
    storage.close()
    log_event("master", "master.stopped")
