"""Records of the storage API -> response schemas (no database access but through Storage)."""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, TypeAdapter

from api.schemas import (
    CheckpointPublic,
    EnsembleMemberPublic,
    EnsemblePublic,
    EnsembleSinglePublic,
    EpochPublic,
    SearchDetailPublic,
    SearchPublic,
    StagePublic,
    TrialCountsPublic,
    TrialDetailPublic,
    TrialEventPublic,
    TrialPublic,
)
from hpsearch.db import Storage
from hpsearch.db.records import (
    CheckpointRecord,
    EnsembleRecord,
    EpochRecord,
    SearchRecord,
    TrialPage,
    TrialRecord,
    result_accuracy,
)
from hpsearch.search.plan import automatic_plan

__all__ = [
    "checkpoint_public",
    "downsample",
    "ensemble_public",
    "search_detail",
    "search_public",
    "trial_detail",
    "trial_etag",
    "trial_list_json",
    "trial_public",
]


def _planned_trials(spec: dict[str, Any]) -> int:
    """The stages' trials, plus the seeds stage's when the spec's ensembles ask for it."""
    stages = spec.get("stages") or []
    if not stages and isinstance(spec.get("budget_epochs"), int):
        plan = automatic_plan(
            spec["budget_epochs"], float(spec.get("eta", 3.0)), int(spec.get("min_epochs", 1)),
            spec.get("max_epochs"),
        )  # fmt: skip
        planned = sum(rung.planned_trials for rung in plan.rungs)
    else:
        planned = sum(int(st.get("trials", 0)) for st in stages if isinstance(st, dict))
    ensembles = spec.get("ensembles") or {}
    if "seeds" in (ensembles.get("kinds") or []):
        planned += int(ensembles.get("seeds", 5))
    return planned


def search_public(storage: Storage, search: SearchRecord) -> SearchPublic:
    counts = storage.trial_counts(search.id)
    progress = TrialCountsPublic(
        **counts,
        total=sum(counts.values()),
        planned=_planned_trials(search.spec),
        epochs_trained=storage.epochs_trained(search.id),
    )
    fields = dict(vars(search))
    fields.pop("spec")
    return SearchPublic(**fields, progress=progress)


def search_detail(storage: Storage, search_id: int) -> SearchDetailPublic:
    search = storage.get_search(search_id)
    summary = search_public(storage, search)
    stages = [
        StagePublic(stage=s.stage, space=s.space, warnings=s.warnings, started_at=s.started_at)
        for s in storage.list_stages(search_id)
    ]
    best = None
    if search.best_trial_id is not None:
        best = trial_public(storage.get_trial(search.best_trial_id), search.result)
    return SearchDetailPublic(
        **summary.model_dump(), spec=search.spec, stages=stages, best_trial=best
    )


def trial_public(trial: TrialRecord, result: str) -> TrialPublic:
    """The trial, with its result under its search's `result` ("best" | "last")."""
    return TrialPublic(**vars(trial), result_val_accuracy=result_accuracy(trial, result))


_TRIAL_PUBLIC_FIELDS = tuple(TrialPublic.model_fields)
_PLAIN_LIST = TypeAdapter(list[dict[str, Any]])


def trial_list_json(trials: list[TrialRecord], result: str) -> bytes:
    """The JSON of `[trial_public(trial, result) for trial in trials]`, the same bytes,
    serialized from the records' fields without validating them into models again
    (the records are typed as the schema; validating 50 of them per leaderboard cost
    as much as the database read)."""
    rows = []
    for trial in trials:
        fields = vars(trial) | {"result_val_accuracy": result_accuracy(trial, result)}
        rows.append({name: fields[name] for name in _TRIAL_PUBLIC_FIELDS})
    return _PLAIN_LIST.dump_json(rows)


def checkpoint_public(checkpoint: CheckpointRecord) -> CheckpointPublic:
    return CheckpointPublic(
        epoch=checkpoint.epoch,
        val_accuracy=checkpoint.val_accuracy,
        name=checkpoint.path.rsplit("/", 1)[-1],
        created_at=checkpoint.created_at,
        download_url=f"/trials/{checkpoint.trial_id}/checkpoints/{checkpoint.epoch}",
    )


def downsample(count: int, max_points: int | None) -> list[int]:
    """Indexes of at most `max_points` of `count` points, evenly spread, first and last kept.

    Index i of the result is round(i * (count - 1) / (max_points - 1)).
    """
    if max_points is None or count <= max_points:
        return list(range(count))
    if max_points == 1:
        return [count - 1]
    step = (count - 1) / (max_points - 1)
    return sorted({round(i * step) for i in range(max_points)})


_EPOCH_FIELDS = (
    "epoch",
    "train_loss",
    "val_loss",
    "train_accuracy",
    "val_accuracy",
    "ema_val_accuracy",
    "learning_rate",
)


def _epoch_public(epoch: EpochRecord, include_stats: bool) -> EpochPublic:
    fields = {name: getattr(epoch, name) for name in _EPOCH_FIELDS}
    return EpochPublic(**fields, stats=epoch.stats if include_stats else None)


def trial_etag(trial: TrialRecord, max_points: int | None, include_stats: bool) -> str:
    """A weak ETag of `trial_detail` from the trial row alone (one cheap read).

    Every change a detail shows moves the row too: an epoch commit (curves,
    checkpoints) raises last_epoch and the heartbeat, a state change (an
    event) its status, attempts or cancel flag; so equal rows, equal details.
    """
    key = repr((sorted(vars(trial).items()), max_points, include_stats)).encode()
    return f'W/"{hashlib.blake2b(key, digest_size=12).hexdigest()}"'


def trial_detail(page: TrialPage, max_points: int | None, include_stats: bool) -> TrialDetailPublic:
    kept = [page.curves[i] for i in downsample(len(page.curves), max_points)]
    return TrialDetailPublic(
        **vars(page.trial),
        result_val_accuracy=result_accuracy(page.trial, page.result),
        curves=[_epoch_public(epoch, include_stats) for epoch in kept],
        epochs_recorded=len(page.curves),
        checkpoints=[checkpoint_public(c) for c in page.checkpoints],
        events=[TrialEventPublic(**vars(event)) for event in page.events],
    )


def ensemble_public(ensemble: EnsembleRecord) -> EnsemblePublic:
    figures = ensemble.figures
    single = figures.get("best_single")
    members = [EnsembleMemberPublic(**_known(m, EnsembleMemberPublic)) for m in ensemble.members]
    best = EnsembleSinglePublic(**_known(single, EnsembleSinglePublic)) if single else None
    built = ensemble.path is not None and ensemble.status == "completed"
    name = ensemble.path.rsplit("/", 1)[-1] if built and ensemble.path else None
    return EnsemblePublic(
        id=ensemble.id, search_id=ensemble.search_id, kind=ensemble.kind, size=ensemble.size,
        status=ensemble.status, val_accuracy=ensemble.val_accuracy,
        test_accuracy=ensemble.test_accuracy, best_single=best,
        diversity=figures.get("diversity"), members=members, figures=figures,
        error=ensemble.error, name=name,
        download_url=f"/ensembles/{ensemble.id}/file" if built else None,
        created_at=ensemble.created_at, started_at=ensemble.started_at,
        finished_at=ensemble.finished_at,
    )  # fmt: skip


def _known(values: dict[str, Any], schema: type[BaseModel]) -> dict[str, Any]:
    """The entries of `values` that `schema` declares (stored documents may hold more)."""
    return {key: value for key, value in values.items() if key in schema.model_fields}
