"""Sanity checks before a long search (notes, part 3, "before learning").

Each check returns a frozen dataclass with the measured numbers and `passed`:

- `initial_loss_check`: at small init ("small", 0.01) and no regularization the
  scores are near 0, so the softmax loss is ln(C) and the SVM loss is C - 1.
- `regularization_raises_loss_check`: the same network with l2 > 0 has a larger loss.
- `overfit_small_subset_check`: 20 examples, no regularization, trained until
  100% training accuracy and a loss near 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpsearch.nn.model import MLP, MLPConfig
from hpsearch.nn.trainer import TrainerConfig, train

__all__ = [
    "InitialLossResult",
    "OverfitResult",
    "RegularizationResult",
    "initial_loss_check",
    "overfit_small_subset_check",
    "regularization_raises_loss_check",
]


@dataclass(frozen=True)
class InitialLossResult:
    expected: float
    measured: float
    tolerance: float
    passed: bool


@dataclass(frozen=True)
class RegularizationResult:
    loss_without: float
    loss_with: float
    l2: float
    passed: bool


@dataclass(frozen=True)
class OverfitResult:
    examples: int
    epochs: int
    final_loss: float
    accuracy: float
    passed: bool


def _unregularized(config: MLPConfig, **changes: Any) -> MLPConfig:
    if not isinstance(config, MLPConfig):
        raise TypeError(f"model_config must be an MLPConfig, got {type(config).__name__}")
    return config.replace(l2=0.0, l1=0.0, max_norm=None, keep_prob=1.0, **changes)


def initial_loss_check(
    model_config: MLPConfig,
    X: np.ndarray,
    y: np.ndarray,
    rng: np.random.Generator,
    tolerance: float = 0.05,
) -> InitialLossResult:
    """Loss at small init vs ln(C) (softmax) or C - 1 (svm); relative `tolerance`."""
    config = _unregularized(model_config, init="small", init_scale=0.01, batchnorm=False)
    expected = {"softmax": math.log(config.output_dim), "svm": config.output_dim - 1.0}.get(
        config.loss
    )
    if expected is None:
        raise ValueError(f"model_config.loss must be 'softmax' or 'svm', got {config.loss!r}")
    model = MLP(config, rng)
    X_checked, y_checked = model.check_inputs(X, y)
    measured, _ = model.loss(X_checked, y_checked, rng)
    passed = abs(measured - expected) <= tolerance * expected
    return InitialLossResult(expected, float(measured), tolerance, bool(passed))


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
    max_epochs: int = 300,
    learning_rate: float = 1e-2,
    loss_threshold: float = 0.05,
) -> OverfitResult:
    """Train on `examples` examples (full batch, Adam) until 100% accuracy and a small loss."""
    if len(X) < examples:
        raise ValueError(f"X must have at least {examples} rows, got {len(X)}")
    pick = rng.choice(len(X), size=examples, replace=False)
    model = MLP(_unregularized(model_config), rng)
    X_small, y_small = model.check_inputs(np.asarray(X)[pick], np.asarray(y)[pick])
    config = TrainerConfig(epochs=max_epochs, batch_size=examples, rule="adam",
                           learning_rate=learning_rate, seed=int(rng.integers(2**31)),
                           divergence_factor=1e6)  # fmt: skip
    done: dict[str, float] = {}

    def on_epoch(record: dict[str, Any], state: Any) -> None:
        if record["train_accuracy"] == 1.0 and record["val_loss"] < loss_threshold:
            done.setdefault("epoch", record["epoch"])

    result = train(model, X_small, y_small, X_small, y_small, config,
                   on_epoch=on_epoch, should_stop=lambda: "epoch" in done)  # fmt: skip
    last = result.history[-1]
    passed = "epoch" in done
    return OverfitResult(examples, len(result.history), float(last["val_loss"]),
                         float(last["train_accuracy"]), passed)  # fmt: skip
