"""First-order parameter update rules (notes, part 3, "parameter updates").

Every rule has the signature ``rule(w, dw, config) -> (next_w, config)``:

- ``w``: a floating-point parameter array of any shape; it is UPDATED IN PLACE
  and returned as ``next_w`` (the trainer relies on this: no copy is made).
- ``dw``: the gradient of the loss with respect to ``w``, same shape and dtype;
  it is never modified.
- ``config``: a plain dict holding the rule's hyperparameters (Python floats)
  and its state (numpy arrays shaped like ``w``, plus the int step count ``t``
  for Adam). A missing state array is created as zeros like ``w`` on the first
  call; the dict is updated in place and returned. Because it holds only
  numbers and arrays, it goes into ``np.savez`` as is; a config read back with
  ``np.load(..., allow_pickle=False)`` (0-d arrays instead of floats) works
  unchanged. Use one config per parameter array.

Hyperparameter names match `hpsearch.config.OptimizerConfig`: learning_rate,
momentum, decay_rate, beta1, beta2, epsilon. `make_config` builds a validated
config holding only the keys a rule uses; the rules themselves do not validate
hyperparameters (they run every iteration) and fall back to the defaults below
for a missing one.

Speed: all arithmetic stays in the dtype of ``w`` (scalars are converted to
Python floats, which NumPy treats as weakly typed), every rule allocates one
scratch buffer (at most `CHUNK_ELEMENTS` long) and does the rest with ``out=``,
and large contiguous arrays are processed chunk by chunk so that the rule's
passes hit the CPU cache. Rules work on any array, so a trainer that keeps all
parameters (and all gradients) as views of one flat buffer can update them
with a single call, saving the per-array Python overhead on small networks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "CHUNK_ELEMENTS",
    "DEFAULTS",
    "RULE_SETUPS",
    "UPDATE_RULES",
    "adagrad",
    "adam",
    "make_config",
    "nesterov",
    "rmsprop",
    "sgd",
    "sgd_momentum",
]

Config = dict[str, Any]
UpdateRule = Callable[[np.ndarray, np.ndarray, Config], tuple[np.ndarray, Config]]

DEFAULTS: dict[str, float] = {
    "learning_rate": 1e-3,
    "momentum": 0.9,
    "decay_rate": 0.99,
    "beta1": 0.9,
    "beta2": 0.999,
    "epsilon": 1e-8,
}


def _hyper(config: Config, key: str) -> float:
    """A hyperparameter as a Python float (weak dtype: keeps float32 float32)."""
    value = config.get(key)
    if value is None:
        value = config[key] = DEFAULTS[key]
    return float(value)


def _check_pair(w: np.ndarray, dw: np.ndarray) -> None:
    if not isinstance(w, np.ndarray) or w.dtype.kind != "f":
        raise ValueError(f"w must be a floating-point numpy array, got {type(w).__name__}")
    if not isinstance(dw, np.ndarray) or dw.shape != w.shape or dw.dtype != w.dtype:
        shape = getattr(dw, "shape", None)
        dtype = getattr(dw, "dtype", type(dw).__name__)
        raise ValueError(
            f"dw must match w: w has shape {w.shape} dtype {w.dtype}, "
            f"dw has shape {shape} dtype {dtype}"
        )


def _state(config: Config, key: str, w: np.ndarray) -> np.ndarray:
    """The state array `config[key]`, created as zeros like `w` if missing."""
    state = config.get(key)
    if state is None:
        state = config[key] = np.zeros_like(w)
        return state
    if not isinstance(state, np.ndarray) or state.dtype != w.dtype:
        state = config[key] = np.array(state, dtype=w.dtype)
    if state.shape != w.shape:
        raise ValueError(f"config[{key!r}] has shape {state.shape}, but w has shape {w.shape}")
    return state


# Arrays larger than this many elements are updated in chunks of this size, so
# that the several passes of a rule over w, dw, its state and one scratch buffer
# run from the CPU cache instead of main memory (about 1.7x faster for Adam on a
# 3072x512 float32 matrix).
CHUNK_ELEMENTS = 65_536

States = tuple[np.ndarray, ...]
Scalars = tuple[float, ...]
Kernel = Callable[[np.ndarray, np.ndarray, States, np.ndarray, Scalars], None]
Setup = tuple[Kernel, States, Scalars]  # what a rule runs: kernel, state arrays, scalars


def _apply(
    w: np.ndarray,
    dw: np.ndarray,
    kernel: Kernel,
    states: States,
    scalars: Scalars,
) -> None:
    """Run `kernel` over `w`, `dw` and `states`, chunk by chunk when they are large."""
    arrays = (w, dw, *states)
    size = w.size
    if size <= CHUNK_ELEMENTS or not all(array.flags.c_contiguous for array in arrays):
        kernel(w, dw, states, np.empty_like(w), scalars)
        return
    flat_w, flat_dw = w.reshape(-1), dw.reshape(-1)
    flat_states = tuple(state.reshape(-1) for state in states)
    scratch = np.empty(CHUNK_ELEMENTS, dtype=w.dtype)
    for begin in range(0, size, CHUNK_ELEMENTS):
        end = min(begin + CHUNK_ELEMENTS, size)
        kernel(
            flat_w[begin:end],
            flat_dw[begin:end],
            tuple(state[begin:end] for state in flat_states),
            scratch[: end - begin],
            scalars,
        )


def sgd(w: np.ndarray, dw: np.ndarray, config: Config) -> tuple[np.ndarray, Config]:
    """Vanilla SGD: ``w -= learning_rate * dw`` (in place).

    config: learning_rate.
    """
    _check_pair(w, dw)
    _apply(w, dw, *_sgd_setup(w, config))
    return w, config


def _sgd_setup(w: np.ndarray, config: Config) -> Setup:
    return _sgd_kernel, (), (_hyper(config, "learning_rate"),)


def _sgd_kernel(
    w: np.ndarray, dw: np.ndarray, states: States, buffer: np.ndarray, scalars: Scalars
) -> None:
    np.multiply(dw, scalars[0], out=buffer)
    w -= buffer


def sgd_momentum(w: np.ndarray, dw: np.ndarray, config: Config) -> tuple[np.ndarray, Config]:
    """Momentum: ``v = mu * v - learning_rate * dw; w += v`` (in place).

    config: learning_rate, momentum; state: velocity (shape of w).
    """
    _check_pair(w, dw)
    _apply(w, dw, *_momentum_setup(w, config))
    return w, config


def _velocity_setup(w: np.ndarray, config: Config) -> tuple[States, Scalars]:
    velocity = _state(config, "velocity", w)
    return (velocity,), (_hyper(config, "learning_rate"), _hyper(config, "momentum"))


def _momentum_setup(w: np.ndarray, config: Config) -> Setup:
    return (_momentum_kernel, *_velocity_setup(w, config))


def _momentum_kernel(
    w: np.ndarray, dw: np.ndarray, states: States, buffer: np.ndarray, scalars: Scalars
) -> None:
    (velocity,), (learning_rate, momentum) = states, scalars
    np.multiply(dw, learning_rate, out=buffer)
    velocity *= momentum
    velocity -= buffer
    w += velocity


def nesterov(w: np.ndarray, dw: np.ndarray, config: Config) -> tuple[np.ndarray, Config]:
    """Nesterov momentum on the stored look-ahead parameter (in place).

    The notes evaluate the gradient at ``x_ahead = x + mu * v``; storing
    ``x_ahead`` as the parameter turns the update into
    ``v_prev = v; v = mu * v - lr * dw; w += -mu * v_prev + (1 + mu) * v``,
    computed here as the equal ``w += mu * v - lr * dw`` (no copy of v).

    config: learning_rate, momentum; state: velocity (shape of w).
    """
    _check_pair(w, dw)
    _apply(w, dw, *_nesterov_setup(w, config))
    return w, config


def _nesterov_setup(w: np.ndarray, config: Config) -> Setup:
    return (_nesterov_kernel, *_velocity_setup(w, config))


def _nesterov_kernel(
    w: np.ndarray, dw: np.ndarray, states: States, buffer: np.ndarray, scalars: Scalars
) -> None:
    (velocity,), (learning_rate, momentum) = states, scalars
    np.multiply(dw, learning_rate, out=buffer)
    velocity *= momentum
    velocity -= buffer
    w -= buffer
    np.multiply(velocity, momentum, out=buffer)
    w += buffer


def adagrad(w: np.ndarray, dw: np.ndarray, config: Config) -> tuple[np.ndarray, Config]:
    """Adagrad: ``cache += dw**2; w -= lr * dw / (sqrt(cache) + eps)`` (in place).

    config: learning_rate, epsilon; state: cache (shape of w).
    """
    _check_pair(w, dw)
    _apply(w, dw, *_adagrad_setup(w, config))
    return w, config


def _adagrad_setup(w: np.ndarray, config: Config) -> Setup:
    cache = _state(config, "cache", w)
    scalars = (_hyper(config, "learning_rate"), _hyper(config, "epsilon"), 1.0, 1.0)
    return _adaptive_kernel, (cache,), scalars


def rmsprop(w: np.ndarray, dw: np.ndarray, config: Config) -> tuple[np.ndarray, Config]:
    """RMSProp: ``cache = d * cache + (1 - d) * dw**2``, then the Adagrad step.

    config: learning_rate, decay_rate, epsilon; state: cache (shape of w).
    """
    _check_pair(w, dw)
    _apply(w, dw, *_rmsprop_setup(w, config))
    return w, config


def _rmsprop_setup(w: np.ndarray, config: Config) -> Setup:
    cache = _state(config, "cache", w)
    decay = _hyper(config, "decay_rate")
    scalars = (_hyper(config, "learning_rate"), _hyper(config, "epsilon"), decay, 1.0 - decay)
    return _adaptive_kernel, (cache,), scalars


def _adaptive_kernel(
    w: np.ndarray, dw: np.ndarray, states: States, buffer: np.ndarray, scalars: Scalars
) -> None:
    """``cache = keep * cache + add * dw**2; w -= lr * dw / (sqrt(cache) + eps)``."""
    (cache,), (learning_rate, epsilon, keep, add) = states, scalars
    np.multiply(dw, dw, out=buffer)
    if add != 1.0:
        buffer *= add
    if keep != 1.0:
        cache *= keep
    cache += buffer
    _scaled_step(w, dw, cache, buffer, learning_rate, epsilon)


def _scaled_step(
    w: np.ndarray,
    numerator: np.ndarray,
    second_moment: np.ndarray,
    buffer: np.ndarray,
    learning_rate: float,
    epsilon: float,
) -> None:
    """``w -= learning_rate * numerator / (sqrt(second_moment) + epsilon)``, using `buffer`."""
    np.sqrt(second_moment, out=buffer)
    buffer += epsilon
    np.divide(numerator, buffer, out=buffer)
    buffer *= learning_rate
    w -= buffer


def adam(w: np.ndarray, dw: np.ndarray, config: Config) -> tuple[np.ndarray, Config]:
    """Adam with bias correction (in place).

    ``t += 1; m = b1*m + (1-b1)*dw; v = b2*v + (1-b2)*dw**2;
    w -= lr * m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - b1**t)`` and
    ``v_hat = v / (1 - b2**t)``; computed as the algebraically equal
    ``w -= lr_t * m / (sqrt(v) + eps * sqrt(1 - b2**t))``,
    ``lr_t = lr * sqrt(1 - b2**t) / (1 - b1**t)``.

    config: learning_rate, beta1, beta2, epsilon; state: m, v (shape of w), t (int).
    """
    _check_pair(w, dw)
    _apply(w, dw, *_adam_setup(w, config))
    return w, config


def _adam_setup(w: np.ndarray, config: Config) -> Setup:
    """Adam's states and step scalars; counts the step (``config["t"] += 1``)."""
    first = _state(config, "m", w)
    second = _state(config, "v", w)
    beta1, beta2 = _hyper(config, "beta1"), _hyper(config, "beta2")
    t = int(config.get("t", 0)) + 1
    config["t"] = t
    root_correction = math.sqrt(1.0 - beta2**t)
    learning_rate = _hyper(config, "learning_rate") * root_correction / (1.0 - beta1**t)
    epsilon = _hyper(config, "epsilon") * root_correction
    return _adam_kernel, (first, second), (beta1, beta2, learning_rate, epsilon)


def _adam_kernel(
    w: np.ndarray, dw: np.ndarray, states: States, buffer: np.ndarray, scalars: Scalars
) -> None:
    (first, second), (beta1, beta2, learning_rate, epsilon) = states, scalars
    np.multiply(dw, 1.0 - beta1, out=buffer)
    first *= beta1
    first += buffer
    np.multiply(dw, dw, out=buffer)
    buffer *= 1.0 - beta2
    second *= beta2
    second += buffer
    _scaled_step(w, first, second, buffer, learning_rate, epsilon)


# What each rule runs, for code that applies the kernel chunk by chunk itself
# (`hpsearch.nn.fused.PenalizedUpdate`): setup(w, config) -> (kernel, states,
# scalars), creating missing states and (Adam) counting the step, as the rule does;
# then ``kernel(w_part, dw_part, states_parts, scratch_part, scalars)`` updates a part.
RULE_SETUPS: dict[str, Callable[[np.ndarray, Config], Setup]] = {
    "sgd": _sgd_setup,
    "momentum": _momentum_setup,
    "nesterov": _nesterov_setup,
    "adagrad": _adagrad_setup,
    "rmsprop": _rmsprop_setup,
    "adam": _adam_setup,
}

UPDATE_RULES: dict[str, UpdateRule] = {
    "sgd": sgd,
    "momentum": sgd_momentum,
    "nesterov": nesterov,
    "adagrad": adagrad,
    "rmsprop": rmsprop,
    "adam": adam,
}

_RULE_KEYS: dict[str, tuple[str, ...]] = {
    "sgd": ("learning_rate",),
    "momentum": ("learning_rate", "momentum"),
    "nesterov": ("learning_rate", "momentum"),
    "adagrad": ("learning_rate", "epsilon"),
    "rmsprop": ("learning_rate", "decay_rate", "epsilon"),
    "adam": ("learning_rate", "beta1", "beta2", "epsilon"),
}

# (lowest, highest, lowest allowed, highest allowed), as in OptimizerConfig.
_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "learning_rate": (0.0, math.inf, False, False),
    "momentum": (0.0, 1.0, True, False),
    "decay_rate": (0.0, 1.0, False, False),
    "beta1": (0.0, 1.0, True, False),
    "beta2": (0.0, 1.0, True, False),
    "epsilon": (0.0, math.inf, False, False),
}


def _check_range(name: str, value: float) -> float:
    low, high, low_ok, high_ok = _RANGES[name]
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    above = number > low or (low_ok and number == low)
    below = number < high or (high_ok and number == high)
    if not (math.isfinite(number) and above and below):
        interval = f"{'[' if low_ok else '('}{low}, {high}{']' if high_ok else ')'}"
        raise ValueError(f"{name} must be finite and in {interval}, got {value!r}")
    return number


def make_config(
    rule: str,
    learning_rate: float = DEFAULTS["learning_rate"],
    momentum: float = DEFAULTS["momentum"],
    decay_rate: float = DEFAULTS["decay_rate"],
    beta1: float = DEFAULTS["beta1"],
    beta2: float = DEFAULTS["beta2"],
    epsilon: float = DEFAULTS["epsilon"],
) -> Config:
    """A fresh, validated config for `rule` holding only the keys it uses.

    `rule` is a key of `UPDATE_RULES`; the other arguments are those of
    `OptimizerConfig` (so ``make_config(**optimizer_config.model_dump())`` works).
    Ranges: learning_rate > 0, momentum in [0, 1), decay_rate in (0, 1),
    beta1 and beta2 in [0, 1), epsilon > 0. Call once per parameter array.
    """
    if rule not in _RULE_KEYS:
        raise ValueError(f"rule must be one of {sorted(_RULE_KEYS)}, got {rule!r}")
    given = {
        "learning_rate": learning_rate,
        "momentum": momentum,
        "decay_rate": decay_rate,
        "beta1": beta1,
        "beta2": beta2,
        "epsilon": epsilon,
    }
    return {key: _check_range(key, given[key]) for key in _RULE_KEYS[rule]}
