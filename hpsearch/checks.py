"""`hpsearch check`: the notes' checks before a long search, on one configuration.

- Gradient check (part 3): float64 copy of the configured network, a few
  examples, a sample of coordinates from every parameter (biases included),
  dropout under a fixed seed, data loss and regularization checked separately,
  kinks crossed by x±h counted, relative errors reported with the notes' bands.
- Sanity checks (`hpsearch.nn.sanity`): initial loss ≈ ln(C) (softmax) or C−1
  (SVM) at small init without regularization; at the network's own init at
  most 20 times that; the loss rises with regularization; a 20-example subset
  is fit to 100% training accuracy and a tenth of its initial loss.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from hpsearch.config import TrainConfig
from hpsearch.nn.gradcheck import check_data_and_regularization
from hpsearch.nn.model import MLP
from hpsearch.nn.sanity import (
    init_scale_check,
    initial_loss_check,
    overfit_small_subset_check,
    regularization_raises_loss_check,
)
from hpsearch.training import model_config, prepare

__all__ = ["GRADIENT_THRESHOLD", "KINKED_THRESHOLD", "run_checks"]

GRADIENT_THRESHOLD = 1e-7  # the notes: < 1e-7 is good for smooth objectives
KINKED_THRESHOLD = 1e-4  # < 1e-4 is fine when the objective has kinks (ReLU, hinge)
_KINKED = ("relu", "leaky_relu", "prelu", "maxout")


def run_checks(config: TrainConfig, data_root: Path, examples: int = 8) -> dict[str, Any]:
    """Every check on `config`'s data and network; plain JSON-able results."""
    prepared = prepare(config, data_root)
    base = model_config(config, prepared.input_dim, prepared.output_dim)
    rng = np.random.default_rng(np.random.SeedSequence([config.seed], spawn_key=(3,)))
    X, y = prepared.X_train, prepared.y_train
    results: dict[str, Any] = {"gradient": _gradient(base, X[:examples], y[:examples], rng)}
    if base.loss in ("softmax", "svm"):
        results["initial_loss"] = asdict(initial_loss_check(base, X[:500], y[:500], rng))
        results["init_scale"] = asdict(init_scale_check(base, X[:500], y[:500], rng))
    results["regularization"] = asdict(
        regularization_raises_loss_check(base, X[:500], y[:500], rng)
    )
    if base.loss not in ("l2", "l1") and len(X) >= 20:
        results["overfit"] = asdict(overfit_small_subset_check(base, X, y, rng))
    results["passed"] = all(
        result["passed"] for key, result in results.items() if isinstance(result, dict)
    )
    return results


def _gradient(base: Any, X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    config = base.replace(dtype="float64", l2=max(base.l2, 1e-3) if base.l1 == 0 else base.l2)
    model = MLP(config, np.random.default_rng(int(rng.integers(2**31))))
    X64, checked_y = model.check_inputs(X, y)
    assert checked_y is not None
    y64 = checked_y

    def data_loss() -> float:
        return model.data_loss_and_grads(X64, y64, np.random.default_rng(7))[0]

    def regularization_loss() -> float:
        return model.regularization_loss_and_grads()[0]

    _, data_grads = model.data_loss_and_grads(X64, y64, np.random.default_rng(7))
    _, reg_grads = model.regularization_loss_and_grads()
    reports = check_data_and_regularization(
        data_loss, data_grads, regularization_loss, reg_grads, model.params, rng
    )
    kinked = config.activation in _KINKED or config.loss in ("svm", "squared_hinge", "l1")
    threshold = KINKED_THRESHOLD if kinked else GRADIENT_THRESHOLD
    summary: dict[str, Any] = {"threshold": threshold, "passed": True}
    for part, report in reports.items():
        worst = report.max_error_without_kinks
        summary[part] = {
            "max_relative_error": {name: _finite(value) for name, value in worst.items()},
            "kinks_crossed": report.kinks_crossed,
            "coordinates": len(report.checks),
        }
        summary["passed"] = summary["passed"] and report.passed(threshold)
    return summary


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
