"""The per-epoch record of the trainer (babysitting statistics, notes part 3).

Everything here runs once per epoch, never per iteration. Activation
statistics come from the validation pass itself (its first `ACTIVATION_ROWS`
rows, test mode), so they cost no extra forward pass and every epoch looks at
the same inputs; gradient histograms come from the data-loss gradients of the
epoch's last batch, update ratios from the epoch's last update. All values are
plain floats, ints, lists and dicts.

Histograms use the FIXED bins of `hpsearch.nn.stats` (`ACTIVATION_EDGES` for
hidden outputs, `GRADIENT_EDGES` for weight gradients), so the edges are the
same in every epoch and every trial and the dashboard can stack them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from hpsearch.nn.stats import ACTIVATION_EDGES, GRADIENT_EDGES, histogram

if TYPE_CHECKING:
    from hpsearch.nn.model import MLP
    from hpsearch.nn.trainer import _Run

__all__ = [
    "ACTIVATION_ROWS",
    "HISTOGRAM_SAMPLE",
    "SCALAR_METRICS",
    "decimate",
    "epoch_statistics",
    "sampled_histogram",
]

# The scalar metrics of every epoch record; the rest of a record is statistics.
SCALAR_METRICS = (
    "train_loss",
    "val_loss",
    "train_accuracy",
    "val_accuracy",
    "ema_val_accuracy",
    "learning_rate",
)
# 16,384 values put every bin's share within 0.4 points (one standard error) of the
# whole array's; np.histogram sorts its input, so 65,536 cost ~2 ms per histogram and
# five of them ~10 % of a small network's epoch.
HISTOGRAM_SAMPLE = 16_384
ACTIVATION_ROWS = 1024
_RELU_FAMILY = ("relu", "leaky_relu", "prelu")


def sampled_histogram(values: np.ndarray, edges: tuple[float, ...]) -> dict[str, Any]:
    """`stats.histogram` in the FIXED bins `edges` of at most HISTOGRAM_SAMPLE values.

    Larger arrays are subsampled with a fixed stride over the flattened array:
    the smallest one >= ceil(size / HISTOGRAM_SAMPLE) that shares no factor with
    the last axis, so every column (a layer's unit, a weight's output) is visited;
    a stride of 4 over 256 units would only ever look at 64 of them. "sampled"
    says how many values were counted and "size" how many the array holds.
    """
    flat = values.reshape(-1)
    sample = flat
    if flat.size > HISTOGRAM_SAMPLE:
        stride = -(-flat.size // HISTOGRAM_SAMPLE)
        while math.gcd(stride, values.shape[-1]) > 1:
            stride += 1
        sample = flat[::stride]
    return {**histogram(sample, edges), "sampled": int(sample.size), "size": int(flat.size)}


def decimate(values: np.ndarray, points: int) -> list[float]:
    """At most `points` values: bucket means of consecutive values when there are more."""
    if len(values) <= points:
        return [float(v) for v in values]
    starts = np.linspace(0, len(values), points, endpoint=False).astype(np.intp)
    sums = np.add.reduceat(values, starts)
    counts = np.diff(np.append(starts, len(values)))
    return [float(v) for v in sums / counts]


def _update_ratios(model: MLP, before: np.ndarray) -> dict[str, float]:
    """||param after - param before|| / ||param before|| for the epoch's last update.

    `before` (the flat parameter vector before that update) is overwritten
    with the update itself (no temporary the size of the network).
    """
    parts, offset = [], 0
    for name, array in model.params.items():
        parts.append((name, slice(offset, offset + array.size)))
        offset += array.size
    old_norms = [math.sqrt(float(np.vdot(before[part], before[part]))) for _, part in parts]
    update = np.subtract(model.param_vector, before, out=before)
    return {
        name: math.sqrt(float(np.vdot(update[part], update[part]))) / max(old_norm, 1e-12)
        for (name, part), old_norm in zip(parts, old_norms, strict=True)
    }


def _ema_accuracy(model: MLP, run: _Run, X_val: np.ndarray, y_val: np.ndarray) -> float | None:
    if run.ema is None:
        return None
    saved = model.param_vector.copy()
    model.param_vector[...] = run.ema
    try:
        return model.accuracy(X_val, y_val)
    finally:
        model.param_vector[...] = saved


def _validation_pass(model: MLP, X_val: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Test-mode scores of X_val and the hidden outputs of its first ACTIVATION_ROWS rows."""
    head, activations = model.forward_with_stats(X_val[:ACTIVATION_ROWS])
    if len(X_val) <= ACTIVATION_ROWS:
        return head, activations
    return np.concatenate([head, model.scores(X_val[ACTIVATION_ROWS:])]), activations


def epoch_statistics(
    model: MLP,
    run: _Run,
    epoch: int,
    losses: np.ndarray,
    before: np.ndarray,
    data: tuple[np.ndarray, ...],
) -> dict[str, Any]:
    """The epoch record without learning_rate, momentum, iterations, duration_s."""
    _, _, X_val, y_val, X_sub, y_sub = data
    val_scores, activations = _validation_pass(model, X_val)
    val_loss, val_accuracy = model.evaluate_scores(val_scores, y_val)
    record: dict[str, Any] = {
        "epoch": epoch + 1,
        "train_loss": float(losses.mean()),
        "loss_history": decimate(losses, run.config.loss_history_points),
        "train_accuracy": model.accuracy(X_sub, y_sub),
        "val_loss": val_loss,
        "val_accuracy": val_accuracy,
        "ema_val_accuracy": _ema_accuracy(model, run, X_val, y_val),
        "update_ratios": _update_ratios(model, before),
        "activation_histograms": {
            name: sampled_histogram(values, ACTIVATION_EDGES)
            for name, values in activations.items()
        },
        "gradient_histograms": {
            f"layer{i}": sampled_histogram(model.grads[f"W{i}"], GRADIENT_EDGES)
            for i in range(1, model.num_layers + 1)
        },
        "dead_relu_fraction": {},
    }
    if model.config.activation in _RELU_FAMILY:
        record["dead_relu_fraction"] = {
            name: float(np.mean(np.all(values <= 0, axis=0)))
            for name, values in activations.items()
        }
    return record
