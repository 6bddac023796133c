"""`run_ensemble_builds(ensemble_ids)`: a worker builds queued ensembles of a search.

1. Claim each ensemble row (queued -> running); one claimed elsewhere is skipped.
2. Per search: load its raw data set once (`spec.base.data`), read its
   checkpoint rows best first, and load only the checkpoints the requested
   kinds need (`MemberPool`); every member's validation and test outputs are
   computed once (`OutputCache`) and shared by all the kinds of the job.
3. Per ensemble: check the request again (`kinds.check_request`), build it
   (`hpsearch.ensembles.build`), write the ensemble file atomically under the
   search's checkpoint folder, then store members, figures and the file's
   path. Any error fails that ensemble with the message; the others go on.
   `cost_s` is this ensemble's seconds from the request check to the file
   write (loading its members and computing their outputs, when an earlier
   kind of the same job has not already); `extra_epochs` the epochs trained
   only for it (the seed trials', for `seeds`).

The CPU work happens here, never in the API process.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from hpsearch.checkpoints import ensemble_name
from hpsearch.data import Dataset, load_dataset
from hpsearch.db.ensembles import configuration_key
from hpsearch.db.records import CandidateCheckpoint, EnsembleRecord
from hpsearch.ensembles import (
    BuiltEnsemble,
    Member,
    MemberPool,
    OutputCache,
    build,
    check_request,
    ensemble_to_checkpoint,
    member_from_checkpoint,
)
from hpsearch.master import search_spec, seed_stage_of
from hpsearch.search import SearchSpec
from worker.context import WorkerContext, get_context

__all__ = ["build_pool", "run_ensemble_builds"]


def run_ensemble_builds(
    ensemble_ids: Sequence[int], context: WorkerContext | None = None
) -> list[str]:
    """Build the claimable ensembles among `ensemble_ids`; returns each one's final status."""
    context = context or get_context()
    claimed = [context.storage.claim_ensemble(i, context.worker_id) for i in ensemble_ids]
    statuses = []
    by_search: dict[int, list[EnsembleRecord]] = {}
    for record in claimed:
        if record is None:
            statuses.append("skipped")
        else:
            by_search.setdefault(record.search_id, []).append(record)
    for search_id, records in by_search.items():
        statuses.extend(_build_search(context, search_id, records))
    return statuses


def _build_search(
    context: WorkerContext, search_id: int, records: list[EnsembleRecord]
) -> list[str]:
    try:
        spec = search_spec(context.storage, search_id)
        data = load_dataset(spec.base.data, context.settings.data_root)
        candidates = context.storage.ensemble_candidates(search_id)
    except Exception as error:  # every ensemble of the search fails with the reason
        return [_fail(context, record, error) for record in records]
    loader = _Loader(context)
    cache = OutputCache(data)
    statuses = []
    for record in records:
        try:
            statuses.append(_build_one(context, spec, record, candidates, loader, data, cache))
        except Exception as error:
            statuses.append(_fail(context, record, error))
    return statuses


def _build_one(
    context: WorkerContext,
    spec: SearchSpec,
    record: EnsembleRecord,
    candidates: list[CandidateCheckpoint],
    loader: _Loader,
    data: Dataset,
    cache: OutputCache,
) -> str:
    started = time.perf_counter()
    storage, seed_stage = context.storage, seed_stage_of(spec)
    available = storage.ensemble_availability(record.search_id, seed_stage)
    size = check_request(record.kind, record.size, available)
    seed_trials = set()
    if record.kind == "seeds" and seed_stage is not None:
        stage_trials = storage.trials_of_stage(record.search_id, seed_stage)
        seed_trials = {trial for trial, status in stage_trials if status == "completed"}
    pool = build_pool(record.kind, size, candidates, loader.member, spec.ensembles.candidates,
                      seed_trials, spec.result)  # fmt: skip
    built = build(record.kind, size, pool, data, cache)
    built.figures["extra_epochs"] = _extra_epochs(context, record.kind, pool)
    built.figures["cost_s"] = round(time.perf_counter() - started, 4)
    name = ensemble_name(built.figures["val_accuracy"], record.id, record.kind)
    ids = {"search_id": record.search_id, "ensemble_id": record.id}
    checkpoint = ensemble_to_checkpoint(built.ensemble, built.figures, ids)
    path = context.checkpoints.save(f"search_{record.search_id:06d}", name, checkpoint)
    finished = storage.finish_ensemble(
        record.id, context.worker_id, members=_members(built), figures=built.figures, path=path
    )
    _log("ensemble_built", record, val_accuracy=finished.val_accuracy, path=path)
    return finished.status


def build_pool(
    kind: str,
    size: int,
    candidates: list[CandidateCheckpoint],
    load: Callable[[CandidateCheckpoint], Member],
    library_size: int,
    seed_trials: set[int],
    result: str = "best",
) -> MemberPool:
    """Load the checkpoints `kind` needs, and the best one (the single model to beat).

    candidates: every stored checkpoint of the search, best first
    (`Storage.ensemble_candidates`: under `result` "last", by trial, each trial's
    last checkpoint first). A trial's member for top_k, seeds and the greedy
    library is its first candidate: its best checkpoint, or its last one; with
    "best" the greedy library may also hold several checkpoints of one trial.
    """
    ranked = candidates if result == "best" else _best_per_trial(candidates)
    library = [load(c) for c in ranked[: library_size if kind == "greedy" else 1]]
    per_configuration: list[Member] = []
    best_trial: list[Member] = []
    seeds: list[Member] = []
    if kind == "top_k":
        per_configuration = [load(c) for c in _best_per_configuration(candidates)[:size]]
    if kind in ("snapshots", "polyak"):
        best_trial = [load(c) for c in candidates if c.trial_id == candidates[0].trial_id]
    if kind == "seeds":
        of_seeds = [c for c in candidates if c.trial_id in seed_trials]
        seeds = [load(c) for c in _best_per_trial(of_seeds)[:size]]
    return MemberPool(library, per_configuration, best_trial, seeds)


def _best_per_configuration(candidates: list[CandidateCheckpoint]) -> list[CandidateCheckpoint]:
    seen: set[str] = set()
    best = []
    for candidate in candidates:  # best first: the first of a configuration is its best
        key = configuration_key(candidate.params)
        if key not in seen:
            seen.add(key)
            best.append(candidate)
    return best


def _best_per_trial(candidates: list[CandidateCheckpoint]) -> list[CandidateCheckpoint]:
    seen: set[int] = set()
    best = []
    for candidate in candidates:
        if candidate.trial_id not in seen:
            seen.add(candidate.trial_id)
            best.append(candidate)
    return best


class _Loader:
    """Checkpoints loaded once per job, as ensemble members."""

    def __init__(self, context: WorkerContext) -> None:
        self.context = context
        self.members: dict[str, Member] = {}

    def member(self, candidate: CandidateCheckpoint) -> Member:
        if candidate.path not in self.members:
            checkpoint = self.context.checkpoints.load(candidate.path)
            self.members[candidate.path] = member_from_checkpoint(
                checkpoint, trial_id=candidate.trial_id, stage=candidate.stage,
                epoch=candidate.epoch, path=candidate.path, val_accuracy=candidate.val_accuracy,
            )  # fmt: skip
        return self.members[candidate.path]


def _extra_epochs(context: WorkerContext, kind: str, pool: MemberPool) -> int:
    """Epochs trained only for this ensemble: the seed trials' (0 for every other kind)."""
    if kind != "seeds":
        return 0
    trials = {member.source["trial_id"] for member in pool.seeds}
    return sum(context.storage.get_trial(trial).epochs for trial in trials)


def _members(built: BuiltEnsemble) -> list[dict[str, Any]]:
    """The members as stored in the database: where each came from and its weight."""
    return [
        {**{k: v for k, v in member.source.items() if k != "path" or "#" not in str(v)},
         "weight": float(weight)}
        for member, weight in zip(built.ensemble.members, built.ensemble.weights, strict=True)
    ]  # fmt: skip


def _fail(context: WorkerContext, record: EnsembleRecord, error: Exception) -> str:
    message = (
        f"{type(error).__name__}: {error}" if not isinstance(error, ValueError) else str(error)
    )
    finished = context.storage.finish_ensemble(record.id, context.worker_id, error=message)
    _log("ensemble_failed", record, reason=message)
    return finished.status


def _log(event: str, record: EnsembleRecord, **fields: Any) -> None:
    details = " ".join(f"{key}={value!r}" for key, value in fields.items())
    ids = f"ensemble_id={record.id} search_id={record.search_id} kind={record.kind}"
    print(f"hpsearch worker: event={event} {ids} {details}", file=sys.stderr, flush=True)
