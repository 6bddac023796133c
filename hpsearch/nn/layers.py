"""Layers as pure forward/backward function pairs (notes, parts 1 and 2).

Every `*_forward` returns `(out, cache)`; the matching `*_backward` takes the
upstream gradient `dout` (same shape as `out`) and that cache. Caches hold only
what backward needs: inputs the gradient reads, boolean masks, or the output.

Arrays keep their dtype: float32 in gives float32 out, nothing is upcast.
Inputs are never modified unless a function is called with `inplace=True`,
in which case the docstring says which argument is overwritten.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "affine_backward",
    "affine_batchnorm_relu_backward",
    "affine_batchnorm_relu_forward",
    "affine_forward",
    "affine_relu_backward",
    "affine_relu_forward",
    "batchnorm_backward",
    "batchnorm_forward",
    "dropout_backward",
    "dropout_forward",
    "leaky_relu_backward",
    "leaky_relu_forward",
    "maxout_backward",
    "maxout_forward",
    "prelu_backward",
    "prelu_forward",
    "relu_backward",
    "relu_forward",
    "sigmoid_backward",
    "sigmoid_forward",
    "stable_sigmoid",
    "tanh_backward",
    "tanh_forward",
]

Cache = Any


def _check_float(name: str, array: Any, ndim: int | None = None) -> None:
    """Raise TypeError/ValueError naming `name` unless `array` is a float ndarray."""
    if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
        kind = getattr(array, "dtype", type(array).__name__)
        raise TypeError(f"{name} must be a floating-point numpy array, got {kind}")
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {array.shape}")


def _check_same_dtype(name: str, array: np.ndarray, reference: np.ndarray) -> None:
    if array.dtype != reference.dtype:
        raise TypeError(
            f"{name} has dtype {array.dtype} but x has {reference.dtype}; "
            "cast them to one dtype (mixing would upcast)"
        )


def affine_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, Cache]:
    """Fully-connected layer `out = x @ w + b`.

    Inputs: x (N, D), w (D, M), b (M,), all of one float dtype (not modified).
    Returns: out (N, M), a fresh array the caller may overwrite; cache (x, w).
    """
    _check_float("x", x, 2)
    _check_float("w", w, 2)
    _check_float("b", b, 1)
    if w.shape[0] != x.shape[1] or b.shape[0] != w.shape[1]:
        raise ValueError(
            f"shapes x {x.shape}, w {w.shape}, b {b.shape} do not fit (N,D),(D,M),(M,)"
        )
    _check_same_dtype("w", w, x)
    _check_same_dtype("b", b, x)
    out = x @ w
    out += b
    return out, (x, w)


def affine_backward(
    dout: np.ndarray, cache: Cache, need_dx: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients of the affine layer.

    Inputs: dout (N, M) (not modified); cache from `affine_forward`; need_dx=False
    skips the `dout @ w.T` product (the first layer never needs dx).
    Returns: dx (N, D) or None, dw (D, M), db (M,).
    """
    x, w = cache
    dw = x.T @ dout
    db = dout.sum(axis=0)
    dx = dout @ w.T if need_dx else None
    return dx, dw, db


def relu_forward(x: np.ndarray, inplace: bool = False) -> tuple[np.ndarray, Cache]:
    """Rectified linear unit `max(0, x)`.

    Inputs: x (any shape); overwritten with the output when inplace=True (use it
    on a fresh affine output). Returns: out, cache = out (its sign is the mask;
    later in-place ops on out must keep that sign where gradient flows, as
    inverted dropout does).
    """
    _check_float("x", x)
    out = np.maximum(x, 0, out=x if inplace else None)
    return out, out


def relu_backward(dout: np.ndarray, cache: Cache, inplace: bool = False) -> np.ndarray:
    """Gradient of ReLU: dout where the output was positive, 0 elsewhere.

    dout is overwritten with dx when inplace=True. Returns dx (shape of dout).
    """
    out = cache
    return np.multiply(dout, out > 0, out=dout if inplace else None)


def leaky_relu_forward(x: np.ndarray, alpha: float) -> tuple[np.ndarray, Cache]:
    """Leaky ReLU `x if x > 0 else alpha * x` with a fixed slope 0 <= alpha < 1.

    Inputs: x (any shape, not modified). Returns: out, cache (mask x > 0, alpha).
    """
    _check_float("x", x)
    if not 0.0 <= alpha < 1.0:
        raise ValueError(f"alpha must satisfy 0 <= alpha < 1, got {alpha!r}")
    slope = x.dtype.type(alpha)
    out = np.maximum(x, x * slope)
    return out, (x > 0, slope)


def leaky_relu_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    """Gradient of leaky ReLU: dout where x > 0, alpha * dout elsewhere."""
    positive, slope = cache
    dx = np.multiply(dout, positive)
    negative_part = np.multiply(dout, ~positive)
    negative_part *= slope
    dx += negative_part
    return dx


def prelu_forward(x: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, Cache]:
    """Parametric ReLU with one learned slope per unit.

    Inputs: x (N, M), alpha (M,) (neither modified).
    Returns: out (N, M) = x where x > 0, alpha * x elsewhere;
    cache (min(x, 0), alpha, mask x > 0).
    """
    _check_float("x", x, 2)
    _check_float("alpha", alpha, 1)
    if alpha.shape[0] != x.shape[1]:
        raise ValueError(f"alpha must have shape ({x.shape[1]},), got {alpha.shape}")
    _check_same_dtype("alpha", alpha, x)
    positive = x > 0
    negative_part = np.minimum(x, 0)
    out = np.maximum(x, 0)
    out += negative_part * alpha
    return out, (negative_part, alpha, positive)


def prelu_backward(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of PReLU. Returns dx (N, M) and dalpha (M,) = sum_n dout * x over x <= 0."""
    negative_part, alpha, positive = cache
    dx = np.multiply(dout, positive)
    dx_negative = np.multiply(dout, ~positive)
    dx_negative *= alpha
    dx += dx_negative
    np.multiply(dout, negative_part, out=dx_negative)
    return dx, dx_negative.sum(axis=0)


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    """Hyperbolic tangent. Returns out (shape of x) and cache = out."""
    _check_float("x", x)
    out = np.tanh(x)
    return out, out


def tanh_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    """Gradient of tanh: dout * (1 - out**2)."""
    out = cache
    dx = np.multiply(out, out)
    np.subtract(1, dx, out=dx)
    dx *= dout
    return dx


def stable_sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function 1 / (1 + exp(-x)) without overflow for large |x|.

    With e = exp(-|x|) <= 1: sigma = 1/(1+e) for x >= 0 and e/(1+e) for x < 0,
    written as (e + [x >= 0] * (1 - e)) / (1 + e) (masked writes are slow in numpy).
    Returns a new array of x's dtype.
    """
    e = np.abs(x)
    np.negative(e, out=e)
    np.exp(e, out=e)
    numerator = np.subtract(1, e)
    numerator *= x >= 0
    numerator += e
    e += 1
    numerator /= e
    return numerator


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    """Sigmoid, stable for large |x|. Returns out (shape of x) and cache = out."""
    _check_float("x", x)
    out = stable_sigmoid(x)
    return out, out


def sigmoid_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    """Gradient of the sigmoid: dout * out * (1 - out)."""
    out = cache
    dx = np.subtract(1, out)
    dx *= out
    dx *= dout
    return dx


def maxout_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, pieces: int
) -> tuple[np.ndarray, Cache]:
    """Maxout layer: each of M units is the max of `pieces` linear functions.

    Column layout is piece-major: column `k * M + m` of w and b is piece k of
    unit m, so `w[:, k*M:(k+1)*M]` is a plain affine layer for piece k.
    Inputs: x (N, D), w (D, M*pieces), b (M*pieces,), pieces >= 2 (none modified).
    Returns: out (N, M); cache (x, w, winner) with winner (N, M) uint8 piece ids.
    """
    if not isinstance(pieces, int | np.integer) or not 2 <= pieces <= 255:
        raise ValueError(f"pieces must be an integer in [2, 255], got {pieces!r}")
    if w.ndim == 2 and w.shape[1] % pieces != 0:
        raise ValueError(f"w has {w.shape[1]} columns, not a multiple of pieces={pieces}")
    z, (_, _) = affine_forward(x, w, b)
    units = w.shape[1] // pieces
    out = z[:, :units].copy()
    winner = np.zeros(out.shape, dtype=np.uint8)
    for piece in range(1, pieces):
        candidate = z[:, piece * units : (piece + 1) * units]
        better = (candidate > out).view(np.uint8)
        np.maximum(out, candidate, out=out)
        # pieces come in increasing order, so a later winner always has the larger id
        np.maximum(winner, better * np.uint8(piece), out=winner)
    return out, (x, w, winner)


def maxout_backward(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of maxout: dout flows only to the winning piece of each unit.

    Returns: dx (N, D), dw (D, M*pieces), db (M*pieces,).
    """
    x, w, winner = cache
    units = dout.shape[1]
    pieces = w.shape[1] // units
    dz = np.empty((dout.shape[0], w.shape[1]), dtype=dout.dtype)
    for piece in range(pieces):
        np.multiply(dout, winner == piece, out=dz[:, piece * units : (piece + 1) * units])
    dx, dw, db = affine_backward(dz, (x, w))
    assert dx is not None
    return dx, dw, db


def _running_stats(bn_param: dict[str, Any], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    features = x.shape[1]
    mean = bn_param.get("running_mean")
    var = bn_param.get("running_var")
    mean = np.zeros(features, dtype=x.dtype) if mean is None else mean
    var = np.ones(features, dtype=x.dtype) if var is None else var
    if mean.shape != (features,) or var.shape != (features,):
        raise ValueError(f"bn_param running_mean/running_var must have shape ({features},)")
    return mean, var


def batchnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]
) -> tuple[np.ndarray, Cache]:
    """Batch normalization over the batch axis, then scale and shift.

    Inputs: x (N, M), gamma (M,), beta (M,) (not modified); bn_param dict with
    "mode" ("train" | "test"), optional "eps" (1e-5), "momentum" (0.9),
    "running_mean" (M,), "running_var" (M,) (zeros/ones when missing). In train
    mode the batch mean and (biased) variance normalize x and the running stats
    become `momentum * running + (1 - momentum) * batch` (new arrays stored in
    bn_param); in test mode the running stats normalize x.
    Returns: out (N, M) = gamma * xhat + beta; cache (xhat, gamma, inv_std, mode).
    """
    _check_float("x", x, 2)
    _check_float("gamma", gamma, 1)
    _check_float("beta", beta, 1)
    if gamma.shape != (x.shape[1],) or beta.shape != (x.shape[1],):
        raise ValueError(f"gamma and beta must have shape ({x.shape[1]},)")
    mode = bn_param.get("mode", "train")
    if mode not in ("train", "test"):
        raise ValueError(f"bn_param['mode'] must be 'train' or 'test', got {mode!r}")
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    if not (eps >= 0 and 0 <= momentum < 1):
        raise ValueError(
            f"bn_param needs eps >= 0 and 0 <= momentum < 1, got {eps!r}, {momentum!r}"
        )
    running_mean, running_var = _running_stats(bn_param, x)
    if mode == "train":
        mean = x.mean(axis=0)
        xhat = x - mean
        var = np.square(xhat).mean(axis=0)
        bn_param["running_mean"] = momentum * running_mean + (1 - momentum) * mean
        bn_param["running_var"] = momentum * running_var + (1 - momentum) * var
    else:
        xhat = x - running_mean.astype(x.dtype, copy=False)
        var = running_var.astype(x.dtype, copy=False)
    inv_std = 1 / np.sqrt(var + eps)
    xhat *= inv_std
    out = xhat * gamma
    out += beta
    return out, (xhat, gamma, inv_std, mode)


def batchnorm_backward(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of batch normalization (compact closed form).

    train: dx = gamma * inv_std / N * (N * dout - dbeta - xhat * dgamma);
    test: dx = gamma * inv_std * dout (the running stats are constants).
    Returns: dx (N, M), dgamma (M,), dbeta (M,).
    """
    xhat, gamma, inv_std, mode = cache
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    scale = gamma * inv_std
    if mode == "test":
        return dout * scale, dgamma, dbeta
    batch = dout.shape[0]
    dx = dout * batch
    dx -= dbeta
    dx -= xhat * dgamma
    dx *= scale / batch
    return dx, dgamma, dbeta


def dropout_forward(
    x: np.ndarray, keep_prob: float, mode: str, rng: np.random.Generator, inplace: bool = False
) -> tuple[np.ndarray, Cache]:
    """Inverted dropout: keep each unit with probability keep_prob (the notes' p).

    train: out = x * mask / keep_prob with mask = rng.random(x.shape) < keep_prob,
    so E[out] = x; test: out is x itself (no copy), the prediction path is
    unchanged. keep_prob == 1 is the identity in both modes. x is overwritten
    with the output when inplace=True (train mode only).
    Returns: out (shape of x); cache (mask or None, 1/keep_prob).
    """
    _check_float("x", x)
    if not 0.0 < keep_prob <= 1.0:
        raise ValueError(f"keep_prob must be in (0, 1], got {keep_prob!r}")
    if mode not in ("train", "test"):
        raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if mode == "test" or keep_prob == 1.0:
        return x, (None, 1.0)
    mask = rng.random(x.shape, dtype=x.dtype) < keep_prob
    scale = x.dtype.type(1.0 / keep_prob)
    out = np.multiply(x, mask, out=x if inplace else None)
    out *= scale
    return out, (mask, scale)


def dropout_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    """Gradient of inverted dropout: dout * mask / keep_prob (dout itself in test mode)."""
    mask, scale = cache
    if mask is None:
        return dout
    dx = np.multiply(dout, mask)
    dx *= scale
    return dx


def affine_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, Cache]:
    """Affine layer followed by ReLU, applied in place on the fresh affine output.

    Inputs: x (N, D), w (D, M), b (M,). Returns: out (N, M); cache (affine, relu).
    """
    a, affine_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a, inplace=True)
    return out, (affine_cache, relu_cache)


def affine_relu_backward(
    dout: np.ndarray, cache: Cache, need_dx: bool = True, inplace: bool = False
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients of affine + ReLU; dout is overwritten when inplace=True.

    Returns: dx (N, D) or None when need_dx=False, dw (D, M), db (M,).
    """
    affine_cache, relu_cache = cache
    da = relu_backward(dout, relu_cache, inplace=inplace)
    return affine_backward(da, affine_cache, need_dx=need_dx)


def affine_batchnorm_relu_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    bn_param: dict[str, Any],
) -> tuple[np.ndarray, Cache]:
    """Affine, then batch normalization, then ReLU (in place on the fresh BN output).

    Inputs: x (N, D), w (D, M), b (M,), gamma (M,), beta (M,), bn_param as in
    `batchnorm_forward`. Returns: out (N, M); cache (affine, batchnorm, relu).
    """
    a, affine_cache = affine_forward(x, w, b)
    normalized, bn_cache = batchnorm_forward(a, gamma, beta, bn_param)
    out, relu_cache = relu_forward(normalized, inplace=True)
    return out, (affine_cache, bn_cache, relu_cache)


def affine_batchnorm_relu_backward(
    dout: np.ndarray, cache: Cache, need_dx: bool = True, inplace: bool = False
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of affine + batchnorm + ReLU; dout is overwritten when inplace=True.

    Returns: dx (N, D) or None, dw (D, M), db (M,), dgamma (M,), dbeta (M,).
    """
    affine_cache, bn_cache, relu_cache = cache
    dnormalized = relu_backward(dout, relu_cache, inplace=inplace)
    da, dgamma, dbeta = batchnorm_backward(dnormalized, bn_cache)
    dx, dw, db = affine_backward(da, affine_cache, need_dx=need_dx)
    return dx, dw, db, dgamma, dbeta
