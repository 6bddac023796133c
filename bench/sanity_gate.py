"""The sanity gate (`hpsearch.search.gate`) on the examples, the benchmarks' spaces and
broken models: whether it passes, the numbers, and what it costs before every search.

The peer, measured in the same run: the notes' strict 20-example overfit as the
gate ran it before (the trainer's loop, Adam at 1e-2 for at most 300 epochs,
until 100% training accuracy and a loss below 0.05), beside the gate's
criterion (100% training accuracy and a tenth of the initial loss within 500
full-batch Adam steps at 3e-2, in a bare loop). Times are medians of
`--repeats` calls after one warm-up call (the data set is loaded once); both
include preparing the data of the smallest and largest configurations.

    python bench/sanity_gate.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from hpsearch.nn.model import MLP
from hpsearch.nn.sanity import initial_loss_check
from hpsearch.nn.trainer import TrainerConfig, train
from hpsearch.search import SearchSpec, load_search_spec, parse_search_spec
from hpsearch.search.gate import extreme_params, sanity_gate
from hpsearch.search.spec import trial_config
from hpsearch.training import model_config, prepare

sys.path.insert(0, str(Path(__file__).parent))
from search_quality import BASE, search_space

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SPIRAL_16 = {  # the API tests' search: 3 spiral classes through 16 units
    "data": {"source": "spiral", "num_classes": 3, "points_per_class": 30},
    "model": {"hidden_sizes": [16]},
}
LEARNING_RATE = {"optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-3, "high": 1e-1}}
BLOBS = {"source": "blobs", "num_classes": 10, "points_per_class": 10, "num_features": 4}


def cases() -> dict[str, SearchSpec]:
    specs = {f"examples/{name}": load_search_spec(EXAMPLES / name)
             for name in ("search.toml", "search_spiral.toml", "mnist1d.toml")}  # fmt: skip
    raw: dict[str, dict[str, Any]] = {
        "bench mnist1d space": {"base": BASE, "space": search_space()},
        "spiral, 16 units": {"base": SPIRAL_16, "space": LEARNING_RATE},
        "BROKEN blobs-10, width 1-32": {
            "base": {"data": BLOBS, "model": {"hidden_sizes": [8, 8]}},
            "space": {"model.hidden_sizes.*": {"kind": "log_int", "low": 1, "high": 32}},
        },
        "BROKEN digits, small init 1.0": {
            "base": {"data": {"source": "digits"}, "preprocess": {"std": True},
                     "model": {"hidden_sizes": [100], "init": "small", "init_scale": 1.0}},
            "space": LEARNING_RATE,
        },
    }  # fmt: skip
    for name, body in raw.items():
        specs[name] = parse_search_spec({"name": "gate", "budget_epochs": 100, **body})
    return specs


def notes_strict(spec: SearchSpec) -> tuple[bool, list[int]]:
    """The previous overfit check on both extremes (after the small-init loss check, which
    draws from the same generator first): (passed, epochs each took)."""
    passed, epochs = True, []
    for params in extreme_params(spec).values():
        config = trial_config(spec, params, train_seed=spec.seed, epochs=1)
        prepared = prepare(config, Path("."))
        base = model_config(config, prepared.input_dim, prepared.output_dim)
        rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 4]))
        if base.loss in ("softmax", "svm"):  # drawn first, as the gate did
            initial_loss_check(base, prepared.X_train[:500], prepared.y_train[:500], rng)
        pick = rng.choice(len(prepared.X_train), size=20, replace=False)
        model = MLP(base.replace(l2=0.0, l1=0.0, max_norm=None, keep_prob=1.0), rng)
        X, y = model.check_inputs(prepared.X_train[pick], prepared.y_train[pick])
        trainer = TrainerConfig(epochs=300, batch_size=20, rule="adam", learning_rate=1e-2,
                                seed=int(rng.integers(2**31)), divergence_factor=1e6)  # fmt: skip
        done: list[int] = []

        def on_epoch(record: dict[str, Any], state: Any, done: list[int] = done) -> None:
            if record["train_accuracy"] == 1.0 and record["val_loss"] < 0.05:
                done.append(record["epoch"])

        result = train(
            model, X, y, X, y, trainer, on_epoch=on_epoch, should_stop=lambda done=done: bool(done)
        )
        passed = passed and bool(done)
        epochs.append(len(result.history))
    return passed, epochs


def median_s(call: Callable[[], Any], repeats: int) -> float:
    call()  # warm-up: loads the data set once
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{'case':32s} {'gate':5s} {'steps':>10s} {'init/chance':>12s} {'gate s':>7s} "
          f"{'notes':5s} {'epochs':>10s} {'notes s':>8s} {'ratio':>6s}")  # fmt: skip
    with threadpool_limits(1):
        for name, spec in cases().items():
            result = sanity_gate(spec, Path("."))
            steps = [c["epochs"] for c in result.checks if c["check"] == "overfit_20"]
            ratios = [f"{c['measured'] / c['chance']:.1f}" for c in result.checks
                      if c["check"] == "init_scale"]  # fmt: skip
            gate_s = median_s(lambda spec=spec: sanity_gate(spec, Path(".")), args.repeats)
            strict, epochs = notes_strict(spec)
            strict_s = median_s(lambda spec=spec: notes_strict(spec), args.repeats)
            print(f"{name:32s} {'pass' if result.passed else 'FAIL':5s} {steps!s:>10s} "
                  f"{','.join(ratios):>12s} {gate_s:7.3f} {'pass' if strict else 'FAIL':5s} "
                  f"{epochs!s:>10s} {strict_s:8.3f} {gate_s / strict_s:6.2f}")  # fmt: skip
            if not result.passed:
                print(f"    {result.reason}")
    print("gate s: the whole gate (both loss checks and the overfit, both extremes); notes s: "
          "the small-init check and the strict overfit; one BLAS thread")  # fmt: skip


if __name__ == "__main__":
    main()
