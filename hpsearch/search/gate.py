"""The sanity gate: the notes' checks on the search's base model before any budget is spent.

`sanity_gate(spec, data_root)` builds the base network at the smallest and at
the largest configuration of the space (every parameter at the low end of its
range, then at the high end: widths, depth and every other model setting) and
runs, on the training split, the checks of `hpsearch.nn.sanity`:

- initial_loss: at small init the loss is ln(C) for softmax (C - 1 for the
  SVM), within 5% (the notes' check of the loss and the labels);
- init_scale: at the network's own initialization the loss is at most 20
  times that (scores that start in the tens saturate the softmax);
- overfit_20: 20 training examples reach 100% training accuracy and a loss at
  most a tenth of their initial loss within 500 full-batch Adam steps at a
  learning rate of 3e-2 (the same optimizer for every search).

Other losses skip the two loss checks, regression skips the overfit.
Regularization and dropout are off in these checks, so learning rate, L2 and
keep probability of the space do not matter here. Every example under
`examples/` and the benchmarks' spaces pass with a wide margin; a network
that cannot fit 20 points (10 classes through a 1- or 2-unit layer) or an
init scale far too large fails. It costs about 0.1-0.5 s per search on one
core (`bench/sanity_gate.py`).

The master runs it (`hpsearch.master.advance`) once, before the first stage
is recorded; a failure ends the search `failed` with the measured numbers.
On by default; `sanity_gate = false` in the spec switches it off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from hpsearch.nn.sanity import (
    OVERFIT_LOSS_FRACTION,
    init_scale_check,
    initial_loss_check,
    overfit_small_subset_check,
)
from hpsearch.search.spec import SearchSpec, trial_config
from hpsearch.training import model_config, prepare

__all__ = ["GateResult", "extreme_params", "sanity_gate"]


@dataclass(frozen=True)
class GateResult:
    """Every check's measured numbers; `reason` names the failures (empty when passed)."""

    passed: bool
    checks: tuple[dict[str, Any], ...]
    reason: str


def extreme_params(spec: SearchSpec) -> dict[str, dict[str, Any]]:
    """{"smallest": params, "largest": params}: every unit coordinate at 0, then just below 1."""
    space = spec.search_space
    top = math.nextafter(1.0, 0.0)
    return {
        "smallest": space.point([0.0] * len(space.params)),
        "largest": space.point([top] * len(space.params)),
    }


def sanity_gate(spec: SearchSpec, data_root: Path) -> GateResult:
    """Run the checks on both extreme configurations (see the module doc), on one BLAS
    thread as workers train: 20-row products gain nothing from more, and on a busy
    machine a second spinning thread made a 512x512 network's gate 6-8x slower."""
    with threadpool_limits(limits=1):
        return _gate(spec, data_root)


def _gate(spec: SearchSpec, data_root: Path) -> GateResult:
    checks: list[dict[str, Any]] = []
    for label, params in extreme_params(spec).items():
        config = trial_config(spec, params, train_seed=spec.seed, epochs=1)
        prepared = prepare(config, data_root)
        base = model_config(config, prepared.input_dim, prepared.output_dim)
        rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 4]))
        X, y = prepared.X_train, prepared.y_train
        where = {"config": label, "hidden_sizes": config.model.hidden_sizes}
        if base.loss in ("softmax", "svm"):
            small = initial_loss_check(base, X[:500], y[:500], rng)
            checks.append({**where, "check": "initial_loss", "expected": small.expected,
                           "measured": small.measured, "passed": small.passed})  # fmt: skip
            scale = init_scale_check(base, X[:500], y[:500], rng)
            checks.append({**where, "check": "init_scale", "chance": scale.chance,
                           "measured": scale.measured, "max_ratio": scale.max_ratio,
                           "passed": scale.passed})  # fmt: skip
        if base.loss not in ("l2", "l1") and len(X) >= 20:
            overfit = overfit_small_subset_check(base, X, y, rng)
            checks.append({**where, "check": "overfit_20", "initial_loss": overfit.initial_loss,
                           "final_loss": overfit.final_loss, "train_accuracy": overfit.accuracy,
                           "epochs": overfit.epochs, "passed": overfit.passed})  # fmt: skip
    failures = [_describe(check) for check in checks if not check["passed"]]
    reason = "" if not failures else "sanity gate failed: " + "; ".join(failures)
    return GateResult(not failures, tuple(checks), reason)


def _describe(check: dict[str, Any]) -> str:
    where = f"{check['config']} network {check['hidden_sizes']}"
    if check["check"] == "initial_loss":
        return (
            f"{where}: initial loss {check['measured']:.4g}, expected about "
            f"{check['expected']:.4g} at small init"
        )
    if check["check"] == "init_scale":
        return (
            f"{where}: initial loss {check['measured']:.4g} at its own init, over "
            f"{check['max_ratio']:g} x chance ({check['chance']:.4g}): the init scale is too large"
        )
    return (
        f"{where}: 20 examples not fit in {check['epochs']} steps (loss "
        f"{check['initial_loss']:.4g} -> {check['final_loss']:.4g}, needs <= "
        f"{OVERFIT_LOSS_FRACTION:g} x initial; training accuracy {check['train_accuracy']:.3f})"
    )
