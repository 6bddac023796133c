"""Weight and bias initialization (notes, part 2, "weight initialization").

All weights are drawn from a caller-owned `np.random.Generator` directly in the
requested dtype. All-zero weights are refused: with them every unit of a layer
computes the same output and receives the same gradient, so the units stay
identical forever (the symmetry problem).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["INIT_NAMES", "default_init", "init_bias", "init_weights"]

INIT_NAMES = ("small", "calibrated", "glorot", "he", "sparse")
_ZERO_NAMES = ("zero", "zeros", "constant")
_SYMMETRY = (
    "all-zero (or constant) weights make every unit of a layer compute the same output "
    "and receive the same gradient, so the units never become different (symmetry "
    "breaking needs random weights)"
)
_DEFAULT_INIT = {
    "relu": "he",
    "leaky_relu": "he",
    "prelu": "he",
    "maxout": "he",
    "tanh": "calibrated",
    "sigmoid": "calibrated",
}


def _check_size(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _sparse(
    fan_in: int, fan_out: int, rng: np.random.Generator, dtype: Any, scale: float, connections: int
) -> np.ndarray:
    """Each column gets `connections` distinct random rows with scale * N(0, 1) weights."""
    connections = min(connections, fan_in)
    rows = rng.random((fan_in, fan_out)).argpartition(connections - 1, axis=0)[:connections]
    w = np.zeros((fan_in, fan_out), dtype=dtype)
    values = rng.standard_normal((connections, fan_out), dtype=dtype)
    values *= dtype.type(scale)
    np.put_along_axis(w, rows, values, axis=0)
    return w


def init_weights(
    name: str,
    fan_in: int,
    fan_out: int,
    rng: np.random.Generator,
    dtype: Any = np.float32,
    scale: float = 0.01,
    sparse_connections: int = 10,
) -> np.ndarray:
    """Initial weight matrix w (fan_in, fan_out) of one layer.

    name: "small" scale * randn; "calibrated" randn / sqrt(fan_in) (unit output
    variance); "glorot" randn * sqrt(2 / (fan_in + fan_out)); "he"
    randn * sqrt(2 / fan_in) (for ReLU); "sparse" each output unit (column) is
    connected to `sparse_connections` random inputs with scale * randn weights,
    the rest zero. `scale` is used by "small" and "sparse" only.
    Raises ValueError for zero init, unknown names, bad sizes; TypeError for a
    non-Generator rng or a non-float dtype.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    if name in _ZERO_NAMES:
        raise ValueError(f"init name {name!r} is refused: {_SYMMETRY}")
    if name not in INIT_NAMES:
        raise ValueError(f"name must be one of {INIT_NAMES}, got {name!r}")
    fan_in, fan_out = _check_size("fan_in", fan_in), _check_size("fan_out", fan_out)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    if name in ("small", "sparse") and not (math.isfinite(scale) and scale > 0):
        raise ValueError(
            f"scale must be a positive number, got {scale!r}; scale 0 is refused: {_SYMMETRY}"
        )
    if name == "sparse":
        connections = _check_size("sparse_connections", sparse_connections)
        return _sparse(fan_in, fan_out, rng, dtype, scale, connections)
    std = {
        "small": scale,
        "calibrated": 1.0 / math.sqrt(fan_in),
        "glorot": math.sqrt(2.0 / (fan_in + fan_out)),
        "he": math.sqrt(2.0 / fan_in),
    }[name]
    w = rng.standard_normal((fan_in, fan_out), dtype=dtype)
    w *= dtype.type(std)
    return w


def default_init(activation: str) -> str:
    """Initializer for an activation: "he" for the ReLU family and maxout, else "calibrated"."""
    if activation not in _DEFAULT_INIT:
        raise ValueError(f"activation must be one of {sorted(_DEFAULT_INIT)}, got {activation!r}")
    return _DEFAULT_INIT[activation]


def init_bias(fan_out: int, value: float = 0.0, dtype: Any = np.float32) -> np.ndarray:
    """Bias vector (fan_out,) filled with `value` (0, or a small constant such as 0.01)."""
    fan_out = _check_size("fan_out", fan_out)
    if not math.isfinite(value):
        raise ValueError(f"value must be finite, got {value!r}")
    return np.full(fan_out, value, dtype=np.dtype(dtype))
