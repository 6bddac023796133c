"""Search quality on MNIST-1D at equal epoch budgets: hpsearch against Optuna (issue 10).

The space: a 40-h-h-10 ReLU MLP (Adam) searched over learning rate, L2,
hidden width (one value shared by both layers when the search core supports
it, else one per layer), dropout keep probability and batch size. Every
method may train at most BUDGET epochs in total; it is scored by the TEST
accuracy of the model with the best validation accuracy it trained (a trial's
epoch, as hpsearch's best checkpoint), over several seeds (median, min, max).
Methods run in this process, one trial at a time:

- hpsearch default: a spec with only `budget_epochs` (the automatic plan).
- hpsearch notes 1-5-B/15: the notes' coarse-to-fine written by hand, stages of
  1, 5 and "many" epochs (new samples, new samples in the refined space, the
  best continued to B/15 epochs: 20 at 300, 100 at 1,500), sized to fill the
  budget (`notes_stages`).
- hpsearch tpe: the automatic plan with `sampler = "tpe"`.
- optuna TPE+Hyperband, optuna random+ASHA: hpsearch's own engine
  (`build_model`, `train`) as the objective, validation accuracy reported
  epoch by epoch, stopped when the budget is spent.

hpsearch's trials are run in the order the scheduler queues them, `concurrency`
at a time (the first queued finishes first), as workers would. A method the
search core cannot run yet (no automatic plan, no tpe sampler) prints why.
`--service` adds the run through the real service (see search_quality_service.py).

    python bench/search_quality.py [--seeds 5] [--budgets 300,1500]
        [--methods default,notes,tpe,optuna-tpe,optuna-asha] [--widths auto|shared|per-layer]
        [--service [--service-budget 1500] [--service-method default] [--service-seeds 3]
                   [--target 0.70]]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from hpsearch.data import PreparedData, prepare_data
from hpsearch.errors import ConfigError
from hpsearch.nn.trainer import TrainResult, TrainState, train
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

BASE = {
    "data": {"source": "mnist1d", "val_fraction": 0.2},
    "preprocess": {"mean": "feature", "std": True},
    "model": {"hidden_sizes": [64, 64], "activation": "relu"},
    "optimizer": {"rule": "adam"},
    "train_accuracy_samples": 200,
}
COMMON_SPACE = {
    "optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-4, "high": 1.0},
    "model.l2": {"kind": "log_uniform", "low": 1e-6, "high": 1e-1},
    "model.keep_prob": {"kind": "uniform", "low": 0.3, "high": 1.0},
    "batch_size": {"kind": "choice", "values": [32, 64, 128, 256]},
}
WIDTH = {"kind": "log_int", "low": 16, "high": 256}
SHARED_WIDTH = "model.hidden_sizes.*"  # one width for every hidden layer (core's syntax)
LAYER_WIDTHS = ("model.hidden_sizes.0", "model.hidden_sizes.1")
PER_LAYER_SPACE = {**COMMON_SPACE, **dict.fromkeys(LAYER_WIDTHS, WIDTH)}
BUDGETS = (300, 1500)
OPTUNA_MAX_EPOCHS = {300: 27, 1500: 81}  # Hyperband / ASHA max resource per budget
ETA = 3
METHOD_NAMES = {
    "default": "hpsearch default",
    "notes": "hpsearch notes 1-5-B/15",
    "tpe": "hpsearch tpe",
    "optuna-tpe": "optuna TPE+Hyperband",
    "optuna-asha": "optuna random+ASHA",
}


WIDTHS = ["auto"]  # --widths: "auto" (shared when the core parses it), "shared", "per-layer"


def search_space() -> dict[str, dict[str, Any]]:
    """The space, with one width shared by both layers or one width per layer (--widths)."""
    shared = {**COMMON_SPACE, SHARED_WIDTH: WIDTH}
    if WIDTHS[0] != "auto":
        return shared if WIDTHS[0] == "shared" else PER_LAYER_SPACE
    try:
        parse_search_spec({"name": "probe", "base": BASE, "space": shared, "budget_epochs": 300})
        return shared
    except ConfigError:
        return PER_LAYER_SPACE


def notes_stages(budget: int) -> list[dict[str, Any]]:
    """The notes' coarse to fine in three stages, a third of `budget` each: 1 epoch in
    the spec's space; 5 epochs, new samples in the refined space (B/15 of them); and the
    notes' "many epochs" for the best of those, continued from their checkpoints to
    B/15 epochs, as many as a third of the budget pays for. At 300 epochs that is the
    issue's 1 -> 5 -> 20 (110, 20 and 6 trials); at 1,500 it is 1 -> 5 -> 100 (525, 100,
    5): with five times the budget, the notes' final stage trains longer, not wider."""
    final = max(6, budget // 15)
    second = max(1, budget // 15)
    third = max(1, (budget // 3) // (final - 5))
    first = max(1, budget - 5 * second - (final - 5) * third)
    return [
        {"trials": first, "epochs": 1},
        {"trials": second, "epochs": 5, "refine": "resample"},
        {"trials": third, "epochs": final, "keep": third, "refine": "promote"},
    ]


def raw_spec(method: str, seed: int, budget: int, space: dict[str, Any]) -> dict[str, Any]:
    """The spec each hpsearch method runs, as a user writes it (TOML / JSON fields)."""
    raw: dict[str, Any] = {
        "name": f"bench-{method}",
        "base": BASE,
        "space": space,
        "budget_epochs": budget,
        "seed": seed,
    }
    if method == "notes":
        raw.update(stages=notes_stages(budget), asynchronous=False)
    elif method == "tpe":
        raw["sampler"] = "tpe"
    return raw


def hpsearch_spec(method: str, seed: int, budget: int, space: dict[str, Any]) -> SearchSpec:
    """`raw_spec` parsed; raises ConfigError when the search core lacks a feature."""
    return parse_search_spec(raw_spec(method, seed, budget, space), source=f"bench {method}")


@dataclass
class Scorer:
    """The test accuracy of the best-validation epoch seen so far, and epochs spent.

    `events` holds (seconds since start, val accuracy, test accuracy) at each
    improvement of the best validation accuracy.
    """

    data: PreparedData
    budget: int
    start: float = field(default_factory=time.monotonic)
    epochs: int = 0
    best_val: float = -math.inf
    test_accuracy: float = 0.0
    events: list[tuple[float, float, float]] = field(default_factory=list)

    def epoch(self, model: Any, record: dict[str, Any]) -> None:
        self.epochs += 1
        val = record.get("val_accuracy")
        if val is not None and math.isfinite(val) and val > self.best_val:
            assert self.data.X_test is not None and self.data.y_test is not None
            self.best_val = float(val)
            self.test_accuracy = float(model.accuracy(self.data.X_test, self.data.y_test))
            self.events.append((time.monotonic() - self.start, self.best_val,
                                self.test_accuracy))  # fmt: skip

    @property
    def spent(self) -> bool:
        return self.epochs >= self.budget


def train_trial(
    config: Any, data: PreparedData, scorer: Scorer, resume: TrainState | None = None,
    on_epoch: Callable[[dict[str, Any]], bool] | None = None,
) -> TrainResult:  # fmt: skip
    """Train one configuration, scoring every epoch; `on_epoch` returning True stops it."""
    model = build_model(config, data)
    stop = [False]

    def after_epoch(record: dict[str, Any], state: TrainState) -> None:
        scorer.epoch(model, record)
        stop[0] = scorer.spent or (on_epoch is not None and on_epoch(record))

    return train(
        model, data.X_train, data.y_train, data.X_val, data.y_val, trainer_config(config),
        on_epoch=after_epoch, should_stop=lambda: stop[0], resume=resume,
    )  # fmt: skip


def run_hpsearch(spec: SearchSpec, data: PreparedData, scorer: Scorer) -> None:
    """Drive `next_actions` like the master, training queued trials oldest first."""
    trials: dict[tuple[int, int], TrialView] = {}
    spaces: dict[int, Any] = {}
    results: dict[int, TrainResult] = {}
    queue: list[SampleTrial | PromoteTrial] = []
    while True:
        for action in next_actions(spec, SearchState(tuple(trials.values()), dict(spaces))):
            if isinstance(action, StartStage):
                spaces[action.stage] = action.space
            elif isinstance(action, FinishSearch):
                return
            elif isinstance(action, SampleTrial | PromoteTrial):
                parent = getattr(action, "parent_trial_id", None)
                trials[(action.stage, action.index)] = TrialView(
                    len(trials) + 1, action.stage, action.index, "queued", dict(action.params),
                    parent_trial_id=parent,
                )  # fmt: skip
                queue.append(action)
            else:
                raise TypeError(f"the bench does not know the action {action!r}")
        if not queue:
            raise RuntimeError("the scheduler queued nothing and did not finish")
        action = queue.pop(0)
        view = trials[(action.stage, action.index)]
        config = trial_config(spec, dict(action.params), action.train_seed, action.epochs)
        parent = view.parent_trial_id
        resume = None if parent is None else results[parent].state
        result = train_trial(config, data, scorer, resume)
        results[view.trial_id or 0] = result
        status = "completed" if result.status == "completed" else "diverged"
        trials[(action.stage, action.index)] = TrialView(
            view.trial_id, view.stage, view.index, status, view.params,
            result.best_val_accuracy, len(result.history), parent,
        )  # fmt: skip


def optuna_params(trial: Any, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Optuna suggestions for hpsearch's space (a shared width goes to every layer)."""
    params: dict[str, Any] = {}
    for name, body in space.items():
        kind = body["kind"]
        if kind == "choice":
            value = trial.suggest_categorical(name, body["values"])
        elif kind in ("int", "log_int"):
            value = trial.suggest_int(name, body["low"], body["high"], log=kind == "log_int")
        else:
            value = trial.suggest_float(name, body["low"], body["high"], log=kind == "log_uniform")
        if name == SHARED_WIDTH:
            params.update(dict.fromkeys(LAYER_WIDTHS, value))
        else:
            params[name] = value
    return params


def optuna_objective(
    space: dict[str, Any], data: PreparedData, scorer: Scorer, max_epochs: int, seed: int
) -> Callable[[Any], float]:
    """Train a configuration suggested in `space` up to `max_epochs`, reporting each epoch."""
    import optuna

    spec = hpsearch_spec("notes", 0, 300, PER_LAYER_SPACE)  # the base, and its trial_config

    def objective(trial: Any) -> float:
        params = optuna_params(trial, space)
        config = trial_config(spec, params, seed * 100_003 + trial.number, max_epochs)

        def report(record: dict[str, Any]) -> bool:
            trial.report(record["val_accuracy"], record["epoch"])
            return bool(trial.should_prune())

        result = train_trial(config, data, scorer, on_epoch=report)
        if result.status == "stopped" and not scorer.spent:
            raise optuna.TrialPruned()
        return float(result.best_val_accuracy or 0.0)

    return objective


def optuna_strategy(kind: str, seed: int, max_epochs: int) -> tuple[Any, Any]:
    """(sampler, pruner): TPE + Hyperband, or random + ASHA, both at reduction 3."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if kind == "optuna-tpe":
        pruner: Any = optuna.pruners.HyperbandPruner(1, max_epochs, reduction_factor=ETA)
        return optuna.samplers.TPESampler(seed=seed), pruner
    pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=ETA)
    return optuna.samplers.RandomSampler(seed=seed), pruner


def make_study(kind: str, seed: int, max_epochs: int, storage: Any = None) -> Any:
    """A maximizing study of `optuna_strategy`, in memory or in `storage`."""
    import optuna

    sampler, pruner = optuna_strategy(kind, seed, max_epochs)
    return optuna.create_study(
        direction="maximize", sampler=sampler, pruner=pruner, storage=storage,
        study_name=f"bench-{kind}-{seed}", load_if_exists=storage is not None,
    )  # fmt: skip


def run_optuna(kind: str, seed: int, budget: int, data: PreparedData, scorer: Scorer) -> None:
    max_epochs = OPTUNA_MAX_EPOCHS.get(budget, 27)
    study = make_study(kind, seed, max_epochs)
    objective = optuna_objective(search_space(), data, scorer, max_epochs, seed)
    while not scorer.spent:
        study.optimize(objective, n_trials=1)


def run_method(method: str, seed: int, budget: int, data: PreparedData) -> Scorer:
    """One method, one seed, one budget; ConfigError when the core lacks the method."""
    if method.startswith("optuna"):
        scorer = Scorer(data, budget)
        run_optuna(method, seed, budget, data, scorer)
        return scorer
    spec = hpsearch_spec(method, seed, budget, search_space())
    scorer = Scorer(data, budget)
    run_hpsearch(spec, data, scorer)
    return scorer


@dataclass
class Tally:
    scores: list[float] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    missing: str | None = None
    failures: list[str] = field(default_factory=list)


def quality_table(seeds: range, budgets: list[int], methods: list[str], data: PreparedData
                  ) -> dict[tuple[int, str], Tally]:  # fmt: skip
    """Run every (budget, seed, method), printing one line each as it ends."""
    tallies: dict[tuple[int, str], Tally] = {}
    for budget in budgets:
        for seed in seeds:
            for method in methods:
                tally = tallies.setdefault((budget, method), Tally())
                if tally.missing:
                    continue
                try:
                    scorer = run_method(method, seed, budget, data)
                except ConfigError as error:
                    tally.missing = str(error).splitlines()[-1].split(" (got")[0]
                    print(f"budget {budget} {METHOD_NAMES[method]}: not run: {tally.missing}")
                    continue
                except Exception as error:  # a bug in one run must not lose the others
                    tally.failures.append(f"seed {seed}: {type(error).__name__}: {error}")
                    print(f"budget {budget} seed {seed} {METHOD_NAMES[method]}: FAILED")
                    traceback.print_exc()
                    continue
                seconds = time.monotonic() - scorer.start
                tally.scores.append(scorer.test_accuracy)
                tally.epochs.append(scorer.epochs)
                tally.seconds.append(seconds)
                print(f"budget {budget} seed {seed} {METHOD_NAMES[method]:<22} test "
                      f"{scorer.test_accuracy:.4f} (val {scorer.best_val:.4f}) epochs "
                      f"{scorer.epochs} {seconds:.0f} s", flush=True)  # fmt: skip
    return tallies


def print_table(tallies: dict[tuple[int, str], Tally], seeds: int) -> None:
    print(f"\nMNIST-1D, test accuracy of the best-validation model, {seeds} seeds "
          "(timings on a shared, loaded machine)")  # fmt: skip
    print(f"{'budget':>6} {'method':<22} {'median':>7} {'min':>7} {'max':>7} "
          f"{'epochs':>11} {'time s':>7}")  # fmt: skip
    for (budget, method), tally in tallies.items():
        if not tally.scores:
            why = tally.missing or "; ".join(tally.failures)
            print(f"{budget:>6} {METHOD_NAMES[method]:<22} not run: {why}")
            continue
        scores = [100 * s for s in tally.scores]
        print(f"{budget:>6} {METHOD_NAMES[method]:<22} {statistics.median(scores):7.2f} "
              f"{min(scores):7.2f} {max(scores):7.2f} {min(tally.epochs):>5}-"
              f"{max(tally.epochs):<5} {statistics.median(tally.seconds):7.0f}")  # fmt: skip
        for failure in tally.failures:
            print(f"{'':>6} {'':<22} failed run, not in the median: {failure}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="run seeds first-seed .. first-seed + seeds - 1 (to split a "
                        "run across processes; medians over the merged lines)")  # fmt: skip
    parser.add_argument("--budgets", default=",".join(map(str, BUDGETS)))
    parser.add_argument("--methods", default=",".join(METHOD_NAMES))
    parser.add_argument("--widths", choices=["auto", "shared", "per-layer"], default="auto")
    parser.add_argument("--service", action="store_true", help="also run the service mode")
    parser.add_argument("--service-budget", type=int, default=1500)
    parser.add_argument("--service-method", default="default", choices=["default", "notes", "tpe"])
    parser.add_argument("--service-seeds", type=int, default=3)
    parser.add_argument("--target", type=float, help="time-to-accuracy target (0..1); default: "
                        "optuna TPE+Hyperband's median at the service budget")  # fmt: skip
    args = parser.parse_args()
    threadpool_limits(limits=1)  # one BLAS thread, as every hpsearch worker pins itself
    WIDTHS[0] = args.widths
    budgets = [int(b) for b in args.budgets.split(",") if b]
    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(methods) - set(METHOD_NAMES))
    if unknown:
        parser.error(f"--methods: unknown {unknown}; choose from {list(METHOD_NAMES)}")
    space_kind = "shared width" if SHARED_WIDTH in search_space() else "per-layer widths"
    print(f"space: {space_kind}; budgets {budgets}; seeds {args.seeds}", flush=True)
    spec = hpsearch_spec("notes", 0, 300, PER_LAYER_SPACE)
    data = prepare_data(spec.base.data, spec.base.preprocess, Path("."))
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    tallies = quality_table(seeds, budgets, methods, data) if methods else {}
    if tallies:
        print_table(tallies, args.seeds)
    if args.service:
        from search_quality_service import service_comparison

        target = args.target
        reference = tallies.get((args.service_budget, "optuna-tpe"))
        if target is None and reference is not None and reference.scores:
            target = float(np.median(reference.scores))
        service_comparison(
            args.service_budget, target, args.service_method, search_space(), args.service_seeds
        )


if __name__ == "__main__":
    main()
