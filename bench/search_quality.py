"""Search quality at an equal epoch budget: coarse→fine vs random vs grid vs Optuna.

On the built-in digits data set (64-100-10 MLP family, Adam), every method may
train at most BUDGET epochs in total; we report the best validation accuracy
each finds, over several seeds (median, min, max), trained in-process.

    python bench/search_quality.py [--seeds 5]

Methods:
- coarse→fine: `hpsearch.search.next_actions` driven by a sequential in-process
  master (synchronous stages): 27 trials x 1 epoch, 9 new samples x 5 epochs in
  the refined ranges, then the best 3 promoted (continued) to 20 epochs.
- random: the same space, one stage, trials of 10 epochs.
- grid: a 2x2x2x2 grid (16 points) with BUDGET // 16 epochs each.
- optuna: TPE sampler + Hyperband pruner (1..20 epochs, reduction 3), epochs
  reported one by one, stopped when the budget is spent.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpsearch.data import PreparedData, prepare_data
from hpsearch.nn.model import MLP
from hpsearch.nn.trainer import TrainResult, train
from hpsearch.search import (
    FinishSearch,
    PromoteTrial,
    SampleTrial,
    SearchSpec,
    SearchState,
    StartStage,
    TrialView,
    next_actions,
    parse_search_spec,
    trial_config,
)
from hpsearch.training import build_model, trainer_config

SPACE = {
    "optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-6, "high": 1.0},
    "model.l2": {"kind": "log_uniform", "low": 1e-7, "high": 1.0},
    "model.hidden_sizes.0": {"kind": "log_int", "low": 4, "high": 256},
    "model.keep_prob": {"kind": "uniform", "low": 0.2, "high": 1.0},
}
BASE = {
    "data": {"source": "digits"},
    "preprocess": {"mean": "feature", "std": True},
    "model": {"hidden_sizes": [100]},
    "optimizer": {"rule": "adam"},
}
COARSE_TO_FINE = [
    {"trials": 27, "epochs": 1},
    {"trials": 9, "epochs": 5, "keep": 5, "refine": "resample", "margin": 0.15},
    {"trials": 3, "epochs": 20, "keep": 3, "refine": "promote"},
]
BUDGET = 27 * 1 + 9 * 5 + 3 * 15  # 117 epochs
RANDOM_EPOCHS = 10
GRID_POINTS = 16
MAX_EPOCHS = 20


def make_spec(seed: int, stages: list[dict[str, Any]], sampler: str = "random") -> SearchSpec:
    return parse_search_spec(
        {
            "name": "bench",
            "base": BASE,
            "space": SPACE,
            "stages": stages,
            "budget_epochs": BUDGET,
            "concurrency": 1,
            "seed": seed,
            "sampler": sampler,
            "asynchronous": False,
        }
    )


def run_hpsearch(spec: SearchSpec, data: PreparedData) -> tuple[float, int]:
    """Drive the scheduler with a sequential in-process master; (best val acc, epochs)."""
    trials: dict[tuple[int, int], TrialView] = {}
    spaces: dict[int, Any] = {}
    saved: dict[int, tuple[MLP, TrainResult]] = {}
    epochs_used = 0
    while True:
        actions = next_actions(spec, SearchState(tuple(trials.values()), dict(spaces)))
        for action in actions:
            if isinstance(action, StartStage):
                spaces[action.stage] = action.space
            elif isinstance(action, FinishSearch):
                best = [t.val_accuracy for t in trials.values() if t.val_accuracy is not None]
                return max(best, default=0.0), epochs_used
            elif isinstance(action, SampleTrial | PromoteTrial):
                trial_id = len(trials) + 1
                config = trial_config(spec, dict(action.params), action.train_seed, action.epochs)
                parent = getattr(action, "parent_trial_id", None)
                if parent is None:
                    model, resume = build_model(config, data), None
                else:
                    model, previous = saved[parent]
                    resume = previous.state
                result = train(
                    model, data.X_train, data.y_train, data.X_val, data.y_val,
                    trainer_config(config), resume=resume,
                )  # fmt: skip
                start = 0 if resume is None else resume.epoch
                epochs_used += len(result.history) - start
                saved[trial_id] = (model, result)
                status = "completed" if result.status == "completed" else "diverged"
                trials[(action.stage, action.index)] = TrialView(
                    trial_id, action.stage, action.index, status, dict(action.params),
                    result.best_val_accuracy, len(result.history), parent,
                )  # fmt: skip


def run_optuna(seed: int, data: PreparedData) -> tuple[float, int]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = make_spec(seed, [{"trials": 1, "epochs": MAX_EPOCHS}])
    used = [0]

    def objective(trial: Any) -> float:
        params = {
            "optimizer.learning_rate": trial.suggest_float("lr", 1e-6, 1.0, log=True),
            "model.l2": trial.suggest_float("l2", 1e-7, 1.0, log=True),
            "model.hidden_sizes.0": trial.suggest_int("width", 4, 256, log=True),
            "model.keep_prob": trial.suggest_float("keep_prob", 0.2, 1.0),
        }
        config = trial_config(spec, params, seed * 1000 + trial.number, MAX_EPOCHS)
        stop = [False]

        def on_epoch(record: dict[str, Any], state: Any) -> None:
            used[0] += 1
            trial.report(record["val_accuracy"], record["epoch"])
            stop[0] = trial.should_prune() or used[0] >= BUDGET

        result = train(
            build_model(config, data), data.X_train, data.y_train, data.X_val, data.y_val,
            trainer_config(config), on_epoch=on_epoch, should_stop=lambda: stop[0],
        )  # fmt: skip
        best = result.best_val_accuracy
        return float(best) if best is not None else 0.0

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=MAX_EPOCHS, reduction_factor=3
        ),
    )
    while used[0] < BUDGET:
        study.optimize(objective, n_trials=1)
    return float(study.best_value), used[0]


def methods(seed: int) -> dict[str, Callable[[PreparedData], tuple[float, int]]]:
    random_stage = [{"trials": BUDGET // RANDOM_EPOCHS, "epochs": RANDOM_EPOCHS}]
    grid_stage = [{"trials": GRID_POINTS, "epochs": BUDGET // GRID_POINTS}]
    return {
        "coarse→fine": lambda data: run_hpsearch(make_spec(seed, COARSE_TO_FINE), data),
        "random": lambda data: run_hpsearch(make_spec(seed, random_stage), data),
        "grid": lambda data: run_hpsearch(make_spec(seed, grid_stage, "grid"), data),
        "optuna TPE+Hyperband": lambda data: run_optuna(seed, data),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    spec = make_spec(0, COARSE_TO_FINE)
    data = prepare_data(spec.base.data, spec.base.preprocess, Path("."))
    scores: dict[str, list[float]] = {}
    epochs: dict[str, list[int]] = {}
    seconds: dict[str, float] = {}
    for seed in range(args.seeds):
        for name, run in methods(seed).items():
            start = time.perf_counter()
            best, used = run(data)
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
            scores.setdefault(name, []).append(best)
            epochs.setdefault(name, []).append(used)
    print(f"digits, budget {BUDGET} epochs per search, {args.seeds} seeds")
    print(f"{'method':<22} {'median':>7} {'min':>7} {'max':>7} {'epochs':>7} {'time s':>7}")
    for name, values in scores.items():
        print(
            f"{name:<22} {statistics.median(values):7.4f} {min(values):7.4f} "
            f"{max(values):7.4f} {max(epochs[name]):7d} {seconds[name]:7.1f}"
        )


if __name__ == "__main__":
    main()
