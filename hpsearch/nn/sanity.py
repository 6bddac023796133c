"""Sanity checks before a long search (notes, part 3, "before learning").

Each check returns a frozen dataclass with the measured numbers and `passed`:

- `initial_loss_check`: at small init ("small", 0.01) and no regularization the
  scores are near 0, so the softmax loss is ln(C) and the SVM loss is C - 1.
- `init_scale_check`: the network at its own initialization (no
  regularization) starts at most `max_ratio` (20) times that chance loss. He
  or calibrated init stays within about 1-11x (measured on digits, MNIST-1D,
  spiral and blobs, standardized or raw, 1 to 8 layers); far above, the
  scores start in the tens (an init scale too large for the fan-in, e.g.
  "small" with init_scale 1 on 64 inputs: 30-150x) and the softmax saturates.
- `regularization_raises_loss_check`: the same network with l2 > 0 has a larger loss.
- `overfit_small_subset_check`: 20 examples, no regularization or dropout,
  full-batch Adam at a fixed learning rate (3e-2) for at most 500 steps: it
  passes at the first step with 100% training accuracy and a loss at most a
  tenth of its initial loss on those examples. (The notes' "loss near zero"
  takes small networks thousands of steps; a tenth of the initial loss with
  every example right is what fitting them means, and a network that cannot
  fit 20 points, such as 10 classes through a 1- or 2-unit layer, never gets
  there.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpsearch.nn.fused import PenalizedUpdate
from hpsearch.nn.model import MLP, MLPConfig
from hpsearch.nn.optim import make_config

__all__ = [
    "OVERFIT_LEARNING_RATE",
    "OVERFIT_LOSS_FRACTION",
    "OVERFIT_STEPS",
    "InitScaleResult",
    "InitialLossResult",
    "OverfitResult",
    "RegularizationResult",
    "chance_loss",
    "init_scale_check",
    "initial_loss_check",
    "overfit_small_subset_check",
    "regularization_raises_loss_check",
]

OVERFIT_STEPS = 500
OVERFIT_LEARNING_RATE = 3e-2
OVERFIT_LOSS_FRACTION = 0.1


@dataclass(frozen=True)
class InitialLossResult:
    expected: float
    measured: float
    tolerance: float
    passed: bool


@dataclass(frozen=True)
class InitScaleResult:
    chance: float
    measured: float
    max_ratio: float
    passed: bool


@dataclass(frozen=True)
class RegularizationResult:
    loss_without: float
    loss_with: float
    l2: float
    passed: bool


@dataclass(frozen=True)
class OverfitResult:
    """`epochs`: full-batch steps taken (one per epoch); `initial_loss` before the first."""

    examples: int
    epochs: int
    initial_loss: float
    final_loss: float
    accuracy: float
    passed: bool


def _unregularized(config: MLPConfig, **changes: Any) -> MLPConfig:
    if not isinstance(config, MLPConfig):
        raise TypeError(f"model_config must be an MLPConfig, got {type(config).__name__}")
    return config.replace(l2=0.0, l1=0.0, max_norm=None, keep_prob=1.0, **changes)


def chance_loss(config: MLPConfig) -> float:
    """The loss of all-zero scores: ln(C) for softmax, C - 1 for the SVM."""
    expected = {"softmax": math.log(config.output_dim), "svm": config.output_dim - 1.0}
    if config.loss not in expected:
        raise ValueError(f"model_config.loss must be 'softmax' or 'svm', got {config.loss!r}")
    return expected[config.loss]


def initial_loss_check(
    model_config: MLPConfig,
    X: np.ndarray,
    y: np.ndarray,
    rng: np.random.Generator,
    tolerance: float = 0.05,
) -> InitialLossResult:
    """Loss at small init vs ln(C) (softmax) or C - 1 (svm); relative `tolerance`."""
    config = _unregularized(model_config, init="small", init_scale=0.01, batchnorm=False)
    expected = chance_loss(config)
    model = MLP(config, rng)
    X_checked, y_checked = model.check_inputs(X, y)
    measured, _ = model.loss(X_checked, y_checked, rng)
    passed = abs(measured - expected) <= tolerance * expected
    return InitialLossResult(expected, float(measured), tolerance, bool(passed))


def init_scale_check(
    model_config: MLPConfig,
    X: np.ndarray,
    y: np.ndarray,
    rng: np.random.Generator,
    max_ratio: float = 20.0,
) -> InitScaleResult:
    """Loss of the network at its own initialization (no regularization or dropout)
    vs `chance_loss`: passed when at most `max_ratio` times it."""
    config = _unregularized(model_config)
    chance = chance_loss(config)
    model = MLP(config, rng)
    X_checked, y_checked = model.check_inputs(X, y)
    measured, _ = model.loss(X_checked, y_checked, rng)
    passed = math.isfinite(measured) and measured <= max_ratio * chance
    return InitScaleResult(chance, float(measured), max_ratio, bool(passed))


def regularization_raises_loss_check(
    model_config: MLPConfig,
    X: np.ndarray,
    y: np.ndarray,
    rng: np.random.Generator,
    l2: float = 1e3,
) -> RegularizationResult:
    """Loss of the same initial network without and with an L2 penalty of strength `l2`."""
    if not l2 > 0:
        raise ValueError(f"l2 must be > 0, got {l2!r}")
    seed = int(rng.integers(2**31))
    plain = MLP(_unregularized(model_config), np.random.default_rng(seed))
    strong = MLP(_unregularized(model_config).replace(l2=l2), np.random.default_rng(seed))
    X_checked, y_checked = plain.check_inputs(X, y)
    without, _ = plain.loss(X_checked, y_checked)
    with_l2, _ = strong.loss(X_checked, y_checked)
    return RegularizationResult(float(without), float(with_l2), l2, bool(with_l2 > without))


def overfit_small_subset_check(
    model_config: MLPConfig,
    X: np.ndarray,
    y: np.ndarray,
    rng: np.random.Generator,
    examples: int = 20,
    max_steps: int = OVERFIT_STEPS,
    learning_rate: float = OVERFIT_LEARNING_RATE,
    loss_fraction: float = OVERFIT_LOSS_FRACTION,
) -> OverfitResult:
    """Fit `examples` random rows (full batch, Adam, no regularization or dropout):
    passed when, within `max_steps` steps, the rows are all classified right with a
    loss at most `loss_fraction` of their initial loss (test-mode loss and accuracy,
    measured before every step). A bare loop, not `train`: the babysitting
    statistics `train` records every epoch would cost about 3x the steps here."""
    if len(X) < examples:
        raise ValueError(f"X must have at least {examples} rows, got {len(X)}")
    pick = rng.choice(len(X), size=examples, replace=False)
    model = MLP(_unregularized(model_config), rng)
    X_small, y_small = model.check_inputs(np.asarray(X)[pick], np.asarray(y)[pick])
    assert y_small is not None
    update = PenalizedUpdate("adam", model.param_vector, model.grad_vector,
                             make_config("adam", learning_rate))  # fmt: skip
    initial, accuracy = model.evaluate_scores(model.scores(X_small), y_small)
    loss, steps = initial, 0
    while not (accuracy == 1.0 and loss <= loss_fraction * initial):
        if steps == max_steps or not math.isfinite(loss):
            break
        model.data_step(X_small, y_small, None)
        update()
        steps += 1
        loss, accuracy = model.evaluate_scores(model.scores(X_small), y_small)
    passed = accuracy == 1.0 and loss <= loss_fraction * initial
    return OverfitResult(examples, steps, initial, loss, accuracy, bool(passed))
