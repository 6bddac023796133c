"""Parameter averages of one run: the uniform mean of checkpoints, batch-norm refitted.

Averaging parameters (Polyak averaging) gives one network, not an ensemble
of several: its cost at prediction time is that of a single model. The
running statistics of batch normalization belong to the weights they were
measured with, so after averaging they are recomputed on the training
split: layer by layer, the mean and (biased) variance of the pre-batch-norm
activations of every training example, with the earlier layers already
using their refitted statistics in test mode. Networks without batch
normalization are unchanged by that step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from hpsearch.nn import layers
from hpsearch.nn.general import hidden_forward
from hpsearch.nn.model import MLP

__all__ = ["average_parameters", "refit_batchnorm"]


def average_parameters(params: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The element-wise mean of M parameter dicts with equal names and shapes.

    Computed in float64 and returned in each parameter's own dtype; the mean
    of identical dicts is that dict exactly.
    """
    if not params:
        raise ValueError("average_parameters needs at least one parameter dict")
    names = sorted(params[0])
    for index, candidate in enumerate(params[1:], start=1):
        if sorted(candidate) != names:
            raise ValueError(f"params[{index}] has names {sorted(candidate)}, expected {names}")
    averaged = {}
    for name in names:
        arrays = [np.asarray(p[name]) for p in params]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1:
            raise ValueError(f"parameter {name!r} has different shapes: {sorted(shapes)}")
        if all(np.array_equal(a, arrays[0]) for a in arrays[1:]):
            averaged[name] = arrays[0].copy()
            continue
        mean = np.mean(np.stack(arrays).astype(np.float64), axis=0)
        averaged[name] = mean.astype(arrays[0].dtype)
    return averaged


def refit_batchnorm(
    model: MLP, X_train: np.ndarray, batch_size: int = 4096
) -> dict[str, np.ndarray]:
    """Recompute `model.buffers` (running_mean{i}, running_var{i}) on preprocessed X (N, D).

    Returns the new buffers (also written into the model); {} without batch norm.
    """
    if not model.config.batchnorm:
        return {}
    X = np.asarray(X_train, dtype=model.dtype)
    out = X
    for i in range(1, model.num_layers):
        z = _pre_batchnorm(model, i, out)
        model.buffers[f"running_mean{i}"][...] = z.mean(axis=0)
        model.buffers[f"running_var{i}"][...] = z.var(axis=0)
        out = np.concatenate(
            [hidden_forward(model, i, out[s : s + batch_size], "test", None)[0]
             for s in range(0, len(out), batch_size)]
        )  # fmt: skip
    return {name: value.copy() for name, value in model.buffers.items()}


def _pre_batchnorm(model: MLP, i: int, x: np.ndarray) -> np.ndarray:
    """Hidden layer i's affine (or maxout) output (N, H_i), before batch norm, in float64."""
    params = model.params
    if model.config.activation == "maxout":
        pieces = model.config.maxout_pieces
        z, _ = layers.maxout_forward(x, params[f"W{i}"], params[f"b{i}"], pieces)
    else:
        z, _ = layers.affine_forward(x, params[f"W{i}"], params[f"b{i}"])
    return np.asarray(z, dtype=np.float64)
