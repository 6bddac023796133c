"""The fused training step of ReLU networks without batchnorm (the trainer's hot loop).

Same maths as `MLP`'s general path (affine -> ReLU -> inverted dropout per
hidden layer, affine output, any data loss), but every intermediate lives in a
`Workspace` preallocated for one batch size, bias add, ReLU, dropout and the
softmax run in place, gradients are written straight into the model's
`grad_vector` views with `np.matmul(..., out=)`, and the first layer skips
its input gradient. Nothing is validated here: the trainer validates once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hpsearch.nn.losses import LOSSES

if TYPE_CHECKING:
    from hpsearch.nn.model import MLP

__all__ = ["Workspace", "relu_train_step"]


class Workspace:
    """Buffers for one batch size N: hidden outputs (N, H_i), their gradients, scores."""

    def __init__(self, model: MLP, batch: int) -> None:
        dtype = model.dtype
        widths = [model.params[f"W{i}"].shape[1] for i in range(1, model.num_layers + 1)]
        self.hidden = [np.empty((batch, width), dtype) for width in widths[:-1]]
        self.dhidden = [np.empty((batch, width), dtype) for width in widths[:-1]]
        self.scores = np.empty((batch, widths[-1]), dtype)
        self.rows = np.arange(batch)
        self.weights = [model.params[f"W{i}"] for i in range(1, model.num_layers + 1)]
        self.biases = [model.params[f"b{i}"] for i in range(1, model.num_layers + 1)]
        self.dweights = [model.grads[f"W{i}"] for i in range(1, model.num_layers + 1)]
        self.dbiases = [model.grads[f"b{i}"] for i in range(1, model.num_layers + 1)]
        self.inv_batch = dtype.type(1.0 / batch)
        self.keep_prob = model.config.keep_prob
        self.drop_scale = dtype.type(1.0 / model.config.keep_prob)
        self.loss_name = model.config.loss


def relu_train_step(
    model: MLP, ws: Workspace, X: np.ndarray, y: np.ndarray, rng: np.random.Generator | None
) -> float:
    """Train-mode data loss of a batch X (N, D); gradients go into model.grads."""
    out = X
    dropout = ws.keep_prob < 1.0
    for weight, bias, hidden in zip(ws.weights, ws.biases, ws.hidden, strict=False):
        np.matmul(out, weight, out=hidden)
        hidden += bias
        np.maximum(hidden, 0, out=hidden)
        if dropout:
            assert rng is not None
            hidden *= rng.random(hidden.shape, dtype=hidden.dtype) < ws.keep_prob
            hidden *= ws.drop_scale
        out = hidden
    scores = ws.scores
    np.matmul(out, ws.weights[-1], out=scores)
    scores += ws.biases[-1]
    if ws.loss_name == "softmax":
        loss = _softmax_inplace(scores, y, ws.rows, ws.inv_batch)
        dout = scores
    else:
        loss, dout = LOSSES[ws.loss_name](scores, y)
    _backward(ws, X, dout, dropout)
    return loss


def _backward(ws: Workspace, X: np.ndarray, dout: np.ndarray, dropout: bool) -> None:
    """Back-propagate dscores through the affine/ReLU stack into the gradient views."""
    for i in range(len(ws.weights) - 1, -1, -1):
        below = ws.hidden[i - 1] if i > 0 else X
        np.matmul(below.T, dout, out=ws.dweights[i])
        np.sum(dout, axis=0, out=ws.dbiases[i])
        if i == 0:
            break
        dbelow = ws.dhidden[i - 1]
        np.matmul(dout, ws.weights[i].T, out=dbelow)
        dbelow *= below > 0  # ReLU gate; dropped units are 0 too
        if dropout:
            dbelow *= ws.drop_scale
        dout = dbelow


def _softmax_inplace(
    scores: np.ndarray, y: np.ndarray, rows: np.ndarray, inv_batch: float
) -> float:
    """Softmax cross-entropy; scores (N, C) is overwritten with dscores = (p - onehot) / N."""
    scores -= scores.max(axis=1, keepdims=True)
    correct = scores[rows, y]
    np.exp(scores, out=scores)
    sums = scores.sum(axis=1, keepdims=True)
    loss = (float(np.log(sums).sum()) - float(correct.sum())) * float(inv_batch)
    np.divide(inv_batch, sums, out=sums)
    scores *= sums
    scores[rows, y] -= inv_batch
    return loss
