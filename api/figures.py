"""Server-side aggregation and downsampling for the dashboard's figures (pure functions).

Records of the storage API in, plain JSON-ready dicts out; the browser only
draws. Sizes are bounded whatever the search: at most `max_points` trials per
scatter, `max_bars` timeline bars, MAX_LOSS_POINTS loss points and
MAX_EPOCHS epochs per trial figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from api.views import downsample
from hpsearch.db.figures import TrialPoint, WorkerSpan
from hpsearch.db.records import EpochRecord

__all__ = [
    "MAX_EPOCHS",
    "MAX_LOSS_POINTS",
    "epoch_figures",
    "search_points",
    "timeline",
    "worker_activity",
]

MAX_LOSS_POINTS = 2000
MAX_EPOCHS = 200


def search_points(kept: Sequence[TrialPoint], total: int) -> dict[str, Any]:
    """Columns of the trials kept (`Storage.sampled_points`) of the `total` of the search: ids,
    stages, statuses, accuracies, parameters.

    Returns {"total", "shown", "trial_id": [...], "stage", "status",
    "val_accuracy" (each trial's result: best or last epoch, the search's
    `result`), "params": {name: [value or None per trial]}}; every list has
    `shown` entries.
    """
    names = sorted({name for p in kept for name in p.params})
    return {
        "total": total,
        "shown": len(kept),
        "trial_id": [p.trial_id for p in kept],
        "stage": [p.stage for p in kept],
        "status": [p.status for p in kept],
        "val_accuracy": [p.result_val_accuracy for p in kept],
        "params": {name: [p.params.get(name) for p in kept] for name in names},
    }


def _seconds(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())


def timeline(
    bars: Sequence[TrialPoint], spans: Sequence[WorkerSpan], now: datetime
) -> dict[str, Any]:
    """Trials per worker over time: `bars` (the most recently started trials) and for each
    worker its trial count, busy seconds and share of time busy.

    A worker's share is busy seconds / (its last end - its first start).
    """
    rows = [
        {
            "worker_id": span.worker_id,
            "trials": span.trials,
            "busy_s": span.busy_s,
            "busy_share": _share(span.busy_s, _seconds(span.first_start, span.last_end)),
        }
        for span in spans
    ]
    return {
        "total": sum(span.trials for span in spans),
        "bars": [
            {
                "trial_id": p.trial_id,
                "worker_id": p.worker_id,
                "status": p.status,
                "started_at": p.started_at,
                "finished_at": p.finished_at,
            }
            for p in bars
            if p.worker_id is not None
        ],
        "workers": rows,
    }


def _share(busy_s: float, span_s: float) -> float:
    return min(1.0, busy_s / span_s) if span_s > 0 else 0.0


def worker_activity(
    rows: Sequence[tuple[str, datetime | None, datetime | None]],
    since: Mapping[str, datetime],
    now: datetime,
) -> dict[str, dict[str, Any]]:
    """Per worker: finished trials and share of time busy since the worker started.

    `rows` are (worker_id, started_at, finished_at) of trials; `since` maps a
    worker id to its start time (trials started before it are ignored).
    """
    activity = {worker_id: {"trials_done": 0, "busy_s": 0.0} for worker_id in since}
    for worker_id, started_at, finished_at in rows:
        if worker_id not in since or started_at is None or started_at < since[worker_id]:
            continue
        entry = activity[worker_id]
        entry["busy_s"] += _seconds(started_at, finished_at or now)
        entry["trials_done"] += finished_at is not None
    for worker_id, entry in activity.items():
        entry["busy_share"] = _share(entry["busy_s"], _seconds(since[worker_id], now))
    return activity


def _bucket_means(values: np.ndarray, points: int) -> np.ndarray:
    starts = np.linspace(0, len(values), points, endpoint=False).astype(np.intp)
    return np.add.reduceat(values, starts) / np.diff(np.append(starts, len(values)))


def _loss_per_iteration(epochs: Sequence[EpochRecord]) -> dict[str, list[Any]]:
    """The epochs' loss histories joined, x in epochs (epoch e's points in (e-1, e]),
    then bucket means down to MAX_LOSS_POINTS."""
    xs: list[float] = []
    ys: list[float] = []
    for record in epochs:
        history = [v for v in record.stats.get("loss_history", []) if isinstance(v, int | float)]
        count = len(history)
        xs.extend(record.epoch - 1 + (i + 1) / count for i in range(count))
        ys.extend(float(v) for v in history)
    if len(xs) > MAX_LOSS_POINTS:
        x = _bucket_means(np.asarray(xs), MAX_LOSS_POINTS)
        y = _bucket_means(np.asarray(ys), MAX_LOSS_POINTS)
        xs, ys = x.tolist(), y.tolist()
    return {"x": xs, "y": [v if math.isfinite(v) else None for v in ys]}


def _series(epochs: Sequence[EpochRecord], key: str) -> dict[str, list[float | None]]:
    """{name: value per epoch} of a per-epoch dict statistic (update ratios, dead ReLUs)."""
    names = sorted({name for record in epochs for name in record.stats.get(key, {})})
    return {name: [record.stats.get(key, {}).get(name) for record in epochs] for name in names}


def _heatmaps(epochs: Sequence[EpochRecord], key: str) -> dict[str, dict[str, Any]]:
    """{layer: {"edges", "fractions": [per epoch: fraction of values per bin]}}."""
    layers = sorted({name for record in epochs for name in record.stats.get(key, {})})
    maps = {}
    for layer in layers:
        found = [record.stats.get(key, {}).get(layer) for record in epochs]
        edges: list[float] = next((h["edges"] for h in found if h), [])
        fractions = []
        for hist in found:
            counts = hist["counts"] if hist else [0] * max(len(edges) - 1, 0)
            total = sum(counts) or 1
            fractions.append([count / total for count in counts])
        maps[layer] = {"edges": edges, "fractions": fractions}
    return maps


def epoch_figures(curves: Sequence[EpochRecord]) -> dict[str, Any]:
    """A trial's babysitting figures from its epoch records (at most MAX_EPOCHS epochs).

    Returns {"epochs_recorded", "epoch": [...], the scalar metrics per epoch,
    "loss_per_iteration": {"x", "y"}, "update_ratios": {param: [...]},
    "dead_relu_fraction": {layer: [...]}, "activation_histograms" and
    "gradient_histograms": {layer: {"edges", "fractions"}}}.
    """
    kept = [curves[i] for i in downsample(len(curves), MAX_EPOCHS)]
    figures: dict[str, Any] = {"epochs_recorded": len(curves), "epoch": [r.epoch for r in kept]}
    for name in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
        figures[name] = [getattr(record, name) for record in kept]
    figures["loss_per_iteration"] = _loss_per_iteration(kept)
    figures["update_ratios"] = _series(kept, "update_ratios")
    figures["dead_relu_fraction"] = _series(kept, "dead_relu_fraction")
    figures["activation_histograms"] = _heatmaps(kept, "activation_histograms")
    figures["gradient_histograms"] = _heatmaps(kept, "gradient_histograms")
    return figures
