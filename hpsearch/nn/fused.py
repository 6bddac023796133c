"""The trainer's hot loop: the fused training step of ReLU networks without
batchnorm, and the update rule with the weight penalty folded in.

Same maths as `MLP`'s general path (affine -> ReLU -> inverted dropout per
hidden layer, affine output, any data loss), but every intermediate lives in a
`Workspace` preallocated for one batch size, bias add, ReLU, dropout and the
softmax run in place, gradients are written straight into the model's
`grad_vector` views with `np.matmul(..., out=)`, and the first layer skips
its input gradient. Nothing is validated here: the trainer validates once.

`PenalizedUpdate` runs an update rule of `hpsearch.nn.optim` over the flat
parameter vector with the elastic-net gradient of
`hpsearch.nn.regularization` added on the fly, in one pass over cache-sized
chunks, and sums the penalty of the updated weights while they are in cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from hpsearch.nn import optim
from hpsearch.nn.losses import LOSSES
from hpsearch.nn.regularization import check_strength

if TYPE_CHECKING:
    from hpsearch.nn.model import MLP

__all__ = ["UPDATE_CHUNK", "PenalizedUpdate", "Workspace", "relu_train_step"]

# Elements per chunk of `PenalizedUpdate`: w, dw, the rule's states and two
# scratch buffers of this size (1.25 MB in float32 with one state) stay in a 2 MB
# L2 cache; inside the training loop 65536 measured faster than 32768 or 131072.
UPDATE_CHUNK = 65_536


class Workspace:
    """Buffers for one batch size N: hidden outputs (N, H_i), their gradients, scores."""

    def __init__(self, model: MLP, batch: int) -> None:
        dtype = model.dtype
        widths = [model.params[f"W{i}"].shape[1] for i in range(1, model.num_layers + 1)]
        self.hidden = [np.empty((batch, width), dtype) for width in widths[:-1]]
        self.dhidden = [np.empty((batch, width), dtype) for width in widths[:-1]]
        self.masks = [np.empty((batch, width), bool) for width in widths[:-1]]
        self.ones = np.ones(batch, dtype)  # db = ones @ dout, a GEMV
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
        np.matmul(ws.ones, dout, out=ws.dbiases[i])
        if i == 0:
            break
        dbelow, mask = ws.dhidden[i - 1], ws.masks[i - 1]
        np.matmul(dout, ws.weights[i].T, out=dbelow)
        np.greater(below, 0, out=mask)  # ReLU gate; dropped units are 0 too
        dbelow *= mask
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


class PenalizedUpdate:
    """One `optim.UPDATE_RULES[rule]` step of the flat vector w with the penalty
    gradient added, per call; the arguments are bound once.

    Inputs: w, dw: 1-D contiguous arrays of one float dtype (the model's
    `param_vector` and `grad_vector`); config: the rule's config for w; l1, l2 >= 0;
    regularized: the length of the penalized prefix of w (default all of it).
    Each call updates w in place: the rule sees ``dw + l1 * sign(w) + l2 * w`` on
    w[:regularized] and dw elsewhere, exactly as after
    `regularization.elastic_net_penalty(w, l1, l2, accumulate_into=dw)`, but dw
    is not modified. It returns the elastic-net penalty
    ``l1 * sum|w| + 0.5 * l2 * sum(w**2)`` of the UPDATED w[:regularized], i.e.
    the penalty that belongs to the next forward pass.

    The trainer makes one per run, so the chunk views of w, dw, the scratch
    buffers and the rule's state arrays are cut once, not every iteration
    (about 0.15 ms per step of a 1.8M-parameter network). The hyperparameters
    are read from `config` at every call (schedules change them), and the
    state views are cut again when `config` holds new state arrays (a resume).
    """

    def __init__(
        self,
        rule: str,
        w: np.ndarray,
        dw: np.ndarray,
        config: optim.Config,
        l1: float = 0.0,
        l2: float = 0.0,
        regularized: int | None = None,
    ) -> None:
        size = _check_flat(w, dw, regularized)
        self.l1, self.l2 = check_strength("l1", l1), check_strength("l2", l2)
        if rule not in optim.RULE_SETUPS:
            raise ValueError(f"rule must be one of {sorted(optim.RULE_SETUPS)}, got {rule!r}")
        self.setup, self.w, self.config = optim.RULE_SETUPS[rule], w, config
        regularized = size if regularized is None else regularized
        penalized = regularized if self.l1 > 0.0 or self.l2 > 0.0 else 0
        chunk = min(UPDATE_CHUNK, max(size, 1))
        scratch, gradient = np.empty(chunk, w.dtype), np.empty(chunk, w.dtype)
        self.chunks: list[_Chunk] = []
        for begin in range(0, size, chunk):
            end = min(begin + chunk, size)
            cut = min(max(penalized - begin, 0), end - begin)  # penalized entries of the chunk
            buffer = scratch[: end - begin]
            grad = gradient[: end - begin] if cut else dw[begin:end]
            head = slice(begin, begin + cut)
            self.chunks.append(_Chunk(
                slice(begin, end), w[begin:end], grad, buffer, w[head], dw[head],
                grad[:cut], buffer[:cut], dw[begin + cut : end], grad[cut:],
            ))  # fmt: skip
        self.states: tuple[np.ndarray, ...] | None = None  # those state_parts are cut from
        self.state_parts: list[tuple[np.ndarray, ...]] = []

    def __call__(self) -> float:
        """One update step; returns the penalty of the updated weights."""
        kernel, states, scalars = self.setup(self.w, self.config)
        if self.states is None or any(
            new is not old for new, old in zip(states, self.states, strict=True)
        ):
            self.states = states
            self.state_parts = [tuple(state[c.part] for state in states) for c in self.chunks]
        l1, l2, penalty = self.l1, self.l2, 0.0
        for c, state_part in zip(self.chunks, self.state_parts, strict=True):
            if c.w_head.size:
                _penalized_gradient(c.w_head, c.dw_head, l1, l2, c.grad_head, c.buffer_head)
                if c.dw_tail.size:
                    np.copyto(c.grad_tail, c.dw_tail)
            kernel(c.w, c.grad, state_part, c.buffer, scalars)
            if c.w_head.size:
                penalty += _penalty(c.w_head, l1, l2, c.buffer_head)
        return penalty


class _Chunk(NamedTuple):
    """One chunk (`part` of the vector) as views: w, the gradient the rule
    sees (a scratch copy where the chunk is penalized, else dw itself), a
    scratch buffer, their penalized heads (empty when none), and dw's
    unpenalized tail with where it is copied (used only in the chunk that
    straddles the end of the penalized prefix)."""

    part: slice
    w: np.ndarray
    grad: np.ndarray
    buffer: np.ndarray
    w_head: np.ndarray
    dw_head: np.ndarray
    grad_head: np.ndarray
    buffer_head: np.ndarray
    dw_tail: np.ndarray
    grad_tail: np.ndarray


def _check_flat(w: np.ndarray, dw: np.ndarray, regularized: int | None) -> int:
    if not isinstance(w, np.ndarray) or w.dtype.kind != "f" or w.ndim != 1:
        raise ValueError(f"w must be a 1-D floating-point array, got {getattr(w, 'shape', w)!r}")
    if not isinstance(dw, np.ndarray) or dw.shape != w.shape or dw.dtype != w.dtype:
        raise ValueError(f"dw must match w (shape {w.shape}, dtype {w.dtype})")
    if not (w.flags.c_contiguous and dw.flags.c_contiguous):
        raise ValueError("w and dw must be contiguous")
    if regularized is not None and not (
        isinstance(regularized, int) and 0 <= regularized <= w.size
    ):
        raise ValueError(f"regularized must be an integer in [0, {w.size}], got {regularized!r}")
    return w.size


def _penalized_gradient(
    w: np.ndarray, dw: np.ndarray, l1: float, l2: float, out: np.ndarray, buffer: np.ndarray
) -> None:
    """``out = dw + l1 * sign(w) + l2 * w``, summed in that order (as in `regularization`)."""
    if l1 > 0.0:
        np.sign(w, out=out)
        out *= l1
        out += dw
        if l2 > 0.0:
            np.multiply(w, l2, out=buffer)
            out += buffer
    else:
        np.multiply(w, l2, out=out)
        out += dw


def _penalty(w: np.ndarray, l1: float, l2: float, buffer: np.ndarray) -> float:
    """``l1 * sum|w| + 0.5 * l2 * sum(w**2)`` of a chunk (dot products, float accumulators)."""
    penalty = 0.0
    if l1 > 0.0:
        np.abs(w, out=buffer)
        penalty += l1 * float(buffer.sum(dtype=np.float64))
    if l2 > 0.0:
        penalty += 0.5 * l2 * float(np.vdot(w, w))
    return penalty
