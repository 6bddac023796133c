"""Weight penalties and the max-norm constraint (notes, part 2, "regularization").

Penalties return ``(loss, dw)``: the penalty's value as a Python float and its
gradient with respect to ``w``. With ``accumulate_into=grad`` the gradient is
added to ``grad`` in place and ``grad`` is returned as ``dw`` (no new array the
size of ``w`` is kept), which is how a model adds the penalty to the data-loss
gradients every iteration. Arithmetic stays in the dtype of ``w``.

- L2: ``0.5 * strength * sum(w**2)``, gradient ``strength * w``.
- L1: ``strength * sum(|w|)``, subgradient ``strength * sign(w)`` (0 at w = 0).
- Elastic net: the sum of the two, ``l1 * sum|w| + 0.5 * l2 * sum(w**2)`` (so
  `l2` means the same as in `l2_penalty`; the notes' ``lambda_2 w**2`` is l2 / 2).

Which parameters are penalised (`is_regularized`): arrays whose names start
with ``W`` (weights, any number of dimensions). Biases (``b*``) only when
`regularize_biases`; batchnorm ``gamma*``/``beta*`` and PReLU ``alpha*`` never.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "check_strength",
    "elastic_net_penalty",
    "elastic_net_value",
    "is_regularized",
    "l1_penalty",
    "l2_penalty",
    "max_norm_project",
    "weight_penalty",
]


def check_strength(name: str, value: float) -> float:
    """`value` as a float, refusing non-numbers, NaN, inf and negatives (ValueError naming it)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(number) and number >= 0.0):
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return number


def _check_weights(w: np.ndarray, accumulate_into: np.ndarray | None) -> None:
    if not isinstance(w, np.ndarray) or w.dtype.kind != "f":
        raise ValueError(f"w must be a floating-point numpy array, got {type(w).__name__}")
    if accumulate_into is None:
        return
    if (
        not isinstance(accumulate_into, np.ndarray)
        or accumulate_into.shape != w.shape
        or accumulate_into.dtype != w.dtype
    ):
        raise ValueError(
            f"accumulate_into must match w (shape {w.shape}, dtype {w.dtype}), got "
            f"shape {getattr(accumulate_into, 'shape', None)} "
            f"dtype {getattr(accumulate_into, 'dtype', type(accumulate_into).__name__)}"
        )


def _sum_of_products(a: np.ndarray, b: np.ndarray) -> float:
    """``sum(a * b)`` without a temporary (a BLAS dot for contiguous arrays)."""
    return float(np.vdot(a.reshape(-1), b.reshape(-1)))


def l2_penalty(
    w: np.ndarray, strength: float, accumulate_into: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """L2 penalty ``0.5 * strength * sum(w**2)`` and its gradient ``strength * w``.

    Inputs: w of any shape; strength >= 0; accumulate_into: optional array
    shaped like w that receives ``+= strength * w`` and is returned as dw.
    Returns: (loss, dw) with dw shaped like w.
    """
    strength = check_strength("strength", strength)
    _check_weights(w, accumulate_into)
    if strength == 0.0:
        return 0.0, np.zeros_like(w) if accumulate_into is None else accumulate_into
    loss = 0.5 * strength * _sum_of_products(w, w)
    gradient = np.multiply(w, strength)
    if accumulate_into is None:
        return loss, gradient
    accumulate_into += gradient
    return loss, accumulate_into


def l1_penalty(
    w: np.ndarray, strength: float, accumulate_into: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """L1 penalty ``strength * sum(|w|)`` and its subgradient ``strength * sign(w)``.

    Inputs and returns as `l2_penalty`; the subgradient is 0 where w is 0.
    """
    strength = check_strength("strength", strength)
    _check_weights(w, accumulate_into)
    if strength == 0.0:
        return 0.0, np.zeros_like(w) if accumulate_into is None else accumulate_into
    gradient = np.sign(w)
    loss = strength * _sum_of_products(gradient, w)
    gradient *= strength
    if accumulate_into is None:
        return loss, gradient
    accumulate_into += gradient
    return loss, accumulate_into


def elastic_net_penalty(
    w: np.ndarray, l1: float, l2: float, accumulate_into: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Elastic net ``l1 * sum|w| + 0.5 * l2 * sum(w**2)``, gradient ``l1 sign(w) + l2 w``.

    Inputs and returns as `l2_penalty`.
    """
    l1, l2 = check_strength("l1", l1), check_strength("l2", l2)
    _check_weights(w, accumulate_into)
    loss_l1, gradient = l1_penalty(w, l1, accumulate_into)
    loss_l2, gradient = l2_penalty(w, l2, gradient)
    return loss_l1 + loss_l2, gradient


def elastic_net_value(w: np.ndarray, l1: float, l2: float) -> float:
    """The value of `elastic_net_penalty` alone: ``l1 * sum|w| + 0.5 * l2 * sum(w**2)``.

    No gradient and no temporary the size of w (|w| is summed in chunks).
    """
    l1, l2 = check_strength("l1", l1), check_strength("l2", l2)
    _check_weights(w, None)
    flat = w.reshape(-1)
    loss = 0.0
    if l1 > 0.0:
        chunk = 65_536
        absolute = sum(
            float(np.abs(flat[start : start + chunk]).sum(dtype=np.float64))
            for start in range(0, flat.size, chunk)
        )
        loss += l1 * absolute
    if l2 > 0.0:
        loss += 0.5 * l2 * _sum_of_products(flat, flat)
    return loss


def is_regularized(name: str, regularize_biases: bool = False) -> bool:
    """Whether the parameter called `name` gets the weight penalty.

    Weights (``W*``) always; biases (``b*`` but not ``beta*``) only when
    `regularize_biases`; everything else (``gamma*``, ``beta*``, ``alpha*``) never.
    """
    if name.startswith("W"):
        return True
    return regularize_biases and name.startswith("b") and not name.startswith("beta")


def weight_penalty(
    params: dict[str, np.ndarray],
    l1: float,
    l2: float,
    regularize_biases: bool = False,
    grads: dict[str, np.ndarray] | None = None,
) -> tuple[float, dict[str, np.ndarray]]:
    """The elastic-net penalty summed over the regularized arrays of `params`.

    Inputs: params maps names to arrays (see `is_regularized`); l1, l2 >= 0;
    grads: optional dict of gradients shaped like params, to which the penalty
    gradients are added in place (and which is then returned).
    Returns: (loss, grads) where, without `grads`, the dict holds new penalty
    gradients for the regularized names only. With l1 = l2 = 0 nothing is computed.
    """
    l1, l2 = check_strength("l1", l1), check_strength("l2", l2)
    penalty_grads: dict[str, np.ndarray] = {} if grads is None else grads
    if l1 == 0.0 and l2 == 0.0:
        return 0.0, penalty_grads
    total = 0.0
    for name, w in params.items():
        if not is_regularized(name, regularize_biases):
            continue
        target = None
        if grads is not None:
            if name not in grads:
                raise ValueError(f"grads has no entry for regularized parameter {name!r}")
            target = grads[name]
        loss, gradient = elastic_net_penalty(w, l1, l2, target)
        total += loss
        penalty_grads[name] = gradient
    return total, penalty_grads


def max_norm_project(w: np.ndarray, max_norm: float) -> np.ndarray:
    """Project each unit's incoming weight vector onto the L2 ball of radius `max_norm`.

    Input: w of shape (fan_in, fan_out) (or (fan_in, ...), one vector per
    trailing index); the vector of unit j is the column ``w[:, j]``.
    Columns with norm <= max_norm are left untouched (bit for bit); longer ones
    are scaled to norm max_norm (up to float rounding). Works in place and
    returns w. Typical max_norm: 3 or 4.
    """
    try:
        radius = float(max_norm)
    except (TypeError, ValueError):
        raise ValueError(f"max_norm must be a number, got {max_norm!r}") from None
    if not (math.isfinite(radius) and radius > 0.0):
        raise ValueError(f"max_norm must be finite and > 0, got {max_norm!r}")
    if not isinstance(w, np.ndarray) or w.dtype.kind != "f" or w.ndim < 2:
        raise ValueError(
            f"w must be a floating-point array of shape (fan_in, fan_out), "
            f"got {getattr(w, 'shape', type(w).__name__)}"
        )
    squared_norms = np.einsum("i...,i...->...", w, w)
    too_long = squared_norms > radius * radius
    if not too_long.any():
        return w
    factors = np.ones_like(squared_norms)
    factors[too_long] = radius / np.sqrt(squared_norms[too_long])
    w *= factors
    return w
