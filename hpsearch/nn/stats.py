"""Training statistics for babysitting a run (notes, part 3).

The trainer computes these once per epoch and sends them to the database and
the dashboard, so everything returns plain Python numbers, lists and dicts
(JSON-serialisable), except `first_layer_images`, which returns a uint8 array.

Default histogram bins (fixed, so histograms of different epochs and trials
line up):

- `ACTIVATION_EDGES`: 60 linear bins of width 0.1 over [-3, 3]; tanh and
  sigmoid outputs get 10 bins per unit interval, ReLU outputs of a well
  scaled layer fall mostly in [0, 3], and exact zeros (dead or inactive ReLUs)
  land in the bin [0, 0.1).
- `GRADIENT_EDGES`: symmetric log-spaced edges, two per decade, ``-1 ... -1e-8,
  1e-8 ... 1`` (33 bins); the middle bin [-1e-8, 1e-8) holds (near-)zero
  gradients, so vanishing and exploding gradients both show.

Values outside the edges are counted in ``underflow`` / ``overflow``, NaN in ``nan``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "ACTIVATION_EDGES",
    "GRADIENT_EDGES",
    "dead_fraction",
    "first_layer_images",
    "histogram",
    "linear_edges",
    "loss_history_decimate",
    "symmetric_log_edges",
    "update_ratio",
    "update_ratios",
]


def linear_edges(low: float, high: float, num_bins: int) -> tuple[float, ...]:
    """`num_bins` equal-width bins over [low, high]: num_bins + 1 edges."""
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"low and high must be finite with low < high, got {low!r}, {high!r}")
    if isinstance(num_bins, bool) or not isinstance(num_bins, int) or num_bins < 1:
        raise ValueError(f"num_bins must be an integer >= 1, got {num_bins!r}")
    width = high - low
    return tuple(low + width * index / num_bins for index in range(num_bins + 1))


def symmetric_log_edges(smallest: float, largest: float, per_decade: int) -> tuple[float, ...]:
    """Edges ``-largest ... -smallest, smallest ... largest``, log-spaced.

    `per_decade` edges per factor of 10 on each side; the bin
    [-smallest, smallest) in the middle holds the (near-)zero values.
    """
    if not (0.0 < smallest < largest and math.isfinite(largest)):
        raise ValueError(
            f"smallest and largest must satisfy 0 < smallest < largest, got "
            f"{smallest!r}, {largest!r}"
        )
    if isinstance(per_decade, bool) or not isinstance(per_decade, int) or per_decade < 1:
        raise ValueError(f"per_decade must be an integer >= 1, got {per_decade!r}")
    low, high = math.log10(smallest), math.log10(largest)
    count = max(1, round((high - low) * per_decade)) + 1
    magnitudes = np.logspace(low, high, count)
    edges = np.concatenate([-magnitudes[::-1], magnitudes])
    return tuple(float(edge) for edge in edges)


ACTIVATION_EDGES = linear_edges(-3.0, 3.0, 60)
GRADIENT_EDGES = symmetric_log_edges(1e-8, 1.0, 2)


def _float_array(name: str, values: Any) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind not in "fiu":
        raise ValueError(f"{name} must be a numeric array, got dtype {array.dtype}")
    return array


def _squared_norm(array: np.ndarray) -> float:
    flat = array.reshape(-1)
    return float(np.vdot(flat, flat))


def update_ratio(param_before: np.ndarray, param_after: np.ndarray) -> float:
    """``norm(param_after - param_before) / norm(param_before)``; healthy is about 1e-3.

    When the parameter was all zeros (e.g. biases before their first update)
    the norm of `param_after` is the denominator instead, and two all-zero
    arrays give 0.0, so the result is always a finite float. Sums run in the
    arrays' own float dtype and are redone in float64 only if they overflow.
    """
    before = _float_array("param_before", param_before)
    after = _float_array("param_after", param_after)
    if after.shape != before.shape:
        raise ValueError(
            f"param_after has shape {after.shape}, but param_before has shape {before.shape}"
        )
    if before.dtype.kind != "f" or after.dtype != before.dtype:
        before, after = before.astype(np.float64), after.astype(np.float64)
    update = np.subtract(after, before)
    squares = [_squared_norm(update), _squared_norm(before)]
    if not all(math.isfinite(value) for value in squares):
        update64, before64 = update.astype(np.float64), before.astype(np.float64)
        squares = [_squared_norm(update64), _squared_norm(before64)]
        if not all(math.isfinite(value) for value in squares):
            raise ValueError("param_before or param_after contains NaN or infinite values")
    update_squared, scale_squared = squares
    if scale_squared == 0.0:
        scale_squared = _squared_norm(after.astype(np.float64))
    return 0.0 if scale_squared == 0.0 else math.sqrt(update_squared / scale_squared)


def update_ratios(
    params_before: dict[str, np.ndarray], params_after: dict[str, np.ndarray]
) -> dict[str, float]:
    """`update_ratio` for every name of `params_after` (all must be in `params_before`)."""
    missing = sorted(set(params_after) - set(params_before))
    if missing:
        raise ValueError(f"params_before has no entry for {missing}")
    return {name: update_ratio(params_before[name], params_after[name]) for name in params_after}


def histogram(values: np.ndarray, bins: Sequence[float] = ACTIVATION_EDGES) -> dict[str, Any]:
    """Counts of `values` (any shape) in the FIXED bins with edges `bins`.

    Bins are [e_i, e_{i+1}), the last one closed. Returns
    ``{"edges": [...], "counts": [...], "underflow": int, "overflow": int, "nan": int}``
    with len(counts) == len(edges) - 1; -inf counts as underflow, +inf as overflow.
    """
    edges = np.asarray(bins, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or not np.isfinite(edges).all():
        raise ValueError("bins must be at least two finite edges")
    if not (np.diff(edges) > 0).all():
        raise ValueError("bins must be strictly increasing")
    flat = _float_array("values", values).reshape(-1)
    counts, _ = np.histogram(flat, edges)
    below = int(np.count_nonzero(flat < edges[0]))
    above = int(np.count_nonzero(flat > edges[-1]))
    nan_count = int(np.count_nonzero(np.isnan(flat))) if flat.dtype.kind == "f" else 0
    return {
        "edges": edges.tolist(),
        "counts": [int(count) for count in counts],
        "underflow": below,
        "overflow": above,
        "nan": nan_count,
    }


def dead_fraction(activations: np.ndarray) -> float:
    """Fraction of units (columns) that are exactly zero for every example.

    Input: activations of shape (N, M), N >= 1 (e.g. a ReLU layer's output on
    a batch). Returns a float in [0, 1]: the share of dead ReLUs.
    """
    array = _float_array("activations", activations)
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"activations must have shape (N, M) with N, M >= 1, got {array.shape}")
    alive = int(np.count_nonzero(array.any(axis=0)))
    return 1.0 - alive / array.shape[1]


def loss_history_decimate(losses: Sequence[float] | np.ndarray, max_points: int) -> list[float]:
    """At most `max_points` losses: every k-th from the first, plus always the last.

    With n losses and m = max_points >= 2, k = ceil((n - 1) / (m - 1)); the
    indices kept are 0, k, 2k, ... and n - 1. With m = 1 only the last is kept.
    """
    if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 1:
        raise ValueError(f"max_points must be an integer >= 1, got {max_points!r}")
    values = np.asarray(losses, dtype=np.float64).reshape(-1)
    count = values.size
    if count <= max_points:
        return [float(value) for value in values]
    if max_points == 1:
        return [float(values[-1])]
    step = math.ceil((count - 1) / (max_points - 1))
    indices = list(range(0, count, step))
    if indices[-1] != count - 1:
        indices.append(count - 1)
    return [float(value) for value in values[indices]]


def first_layer_images(
    w: np.ndarray, image_shape: Sequence[int], per_image: bool = True
) -> np.ndarray:
    """The first layer's weight columns as uint8 images for display.

    Inputs: w of shape (D, M), one column per hidden unit; image_shape (C, H, W)
    or (H, W) with C*H*W (or H*W) == D, in the order the input was flattened
    (CIFAR-10 rows are (3, 32, 32)). Each image is min-max scaled to [0, 255]
    (per_image=True, the default) or all with one global min and max; a
    constant image becomes all zeros.
    Returns: uint8 array of shape (M, *image_shape).
    """
    array = _float_array("w", w)
    shape = tuple(int(size) for size in image_shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ValueError(f"image_shape must be (C, H, W) or (H, W), got {image_shape!r}")
    if array.ndim != 2 or array.shape[0] != math.prod(shape):
        raise ValueError(
            f"w must have shape ({math.prod(shape)}, M) for {shape}, got {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError("w contains NaN or infinite values")
    images = array.T.reshape((array.shape[1], *shape)).astype(np.float64)
    axes = tuple(range(1, images.ndim)) if per_image else None
    low = images.min(axis=axes, keepdims=True)
    span = images.max(axis=axes, keepdims=True) - low
    scaled = np.divide(images - low, span, out=np.zeros_like(images), where=span > 0)
    return np.rint(scaled * 255.0).astype(np.uint8)
