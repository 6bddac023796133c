"""Ensembles vs the best single model of the same search, on digits and mnist1d.

For each data set and search seed, one coarse-to-fine search runs through the
service's own code path in this process (SQLite, `worker.trial.run_trial`,
`hpsearch.master.advance`, then `worker.ensembles.run_ensemble_builds`), and
every kind is compared with the search's best single checkpoint (chosen on
validation, like every ensemble; the test split only reports):

    python bench/ensembles.py [--seeds 5] [--datasets digits mnist1d] [--kinds ...]

Printed per data set and kind: median validation and test accuracy, the median
test gain over the best single model (points), how often the kind beats or
ties it, and the cost: median seconds of the worker's build (loading members
and computing their validation/test outputs the first time a kind of the job
needs them, so kinds built later reuse them) and extra training epochs (seeds
only). Timings depend on the machine's load; compare kinds measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from hpsearch.executors import LocalExecutor
from hpsearch.master import advance, create_search
from hpsearch.search import parse_search_spec
from hpsearch.settings import Settings
from worker.context import make_context
from worker.ensembles import run_ensemble_builds
from worker.trial import run_trial

KINDS = ["top_k", "snapshots", "polyak", "greedy", "seeds"]
DATA = {
    "digits": {"source": "digits", "test_fraction": 0.2},
    "mnist1d": {"source": "mnist1d"},
}
SPACE = {
    "optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-4, "high": 3e-2},
    "model.l2": {"kind": "log_uniform", "low": 1e-6, "high": 1e-1},
    "model.keep_prob": {"kind": "uniform", "low": 0.5, "high": 1.0},
    "model.hidden_sizes.0": {"kind": "log_int", "low": 32, "high": 256},
}
STAGES = [
    {"trials": 16, "epochs": 2},
    {"trials": 8, "epochs": 10, "keep": 4, "refine": "resample"},
    {"trials": 4, "epochs": 30, "keep": 4, "refine": "promote"},
]


def spec_of(dataset: str, seed: int, kinds: list[str]) -> dict[str, Any]:
    return {
        "name": f"bench-ensembles-{dataset}-{seed}",
        "seed": seed,
        "concurrency": 4,
        "asynchronous": False,
        "base": {
            "data": DATA[dataset],
            "preprocess": {"mean": "feature", "std": True},
            "model": {"hidden_sizes": [128]},
            "optimizer": {"rule": "adam"},
            "batch_size": 64,
            "ema_decay": 0.99,
        },
        "space": SPACE,
        "stages": STAGES,
        "ensembles": {"kinds": kinds},
    }


def run_search(dataset: str, seed: int, kinds: list[str], home: Path) -> dict[str, Any]:
    """One search and its ensembles; returns the figures of every kind and the search time."""
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'bench.db'}")
    context = make_context(settings)
    storage, executor = context.storage, LocalExecutor()
    started = time.perf_counter()
    search_id = create_search(storage, parse_search_spec(spec_of(dataset, seed, kinds)), executor)
    while storage.get_search(search_id).status == "running":
        for trial_id in storage.queued_trial_ids(search_id):
            run_trial(trial_id, context)
        advance(storage, search_id, executor)
    search_s = time.perf_counter() - started
    run_ensemble_builds(storage.queued_ensemble_ids(search_id), context)
    figures = {e.kind: e.figures | {"status": e.status, "error": e.error}
               for e in storage.list_ensembles(search_id)}  # fmt: skip
    if context.beat is not None:
        context.beat.stop()
    storage.close()
    return {"search_s": search_s, "kinds": figures}


def summarize(dataset: str, runs: list[dict[str, Any]], kinds: list[str]) -> None:
    singles_test = [next(iter(r["kinds"].values()))["best_single"]["test_accuracy"] for r in runs]
    singles_val = [next(iter(r["kinds"].values()))["best_single"]["val_accuracy"] for r in runs]
    print(f"\n{dataset}: {len(runs)} searches, median search time "
          f"{statistics.median(r['search_s'] for r in runs):.1f} s")  # fmt: skip
    header = f"{'kind':12} {'val':>7} {'test':>7} {'gain pts':>9} {'>= single':>10} "
    print(header + f"{'cost s':>8} {'+epochs':>8}")
    print(
        f"{'best single':12} {statistics.median(singles_val):7.4f} "
        f"{statistics.median(singles_test):7.4f} {0.0:9.2f} {'-':>10} {0.0:8.2f} {0:8d}"
    )
    for kind in kinds:
        rows = [r["kinds"].get(kind) for r in runs]
        done = [row for row in rows if row and row["status"] == "completed"]
        if not done:
            print(f"{kind:12} not built: {[row and row['error'] for row in rows]}")
            continue
        gains = [100 * (row["test_accuracy"] - row["best_single"]["test_accuracy"]) for row in done]
        wins = sum(gain >= 0 for gain in gains)
        print(f"{kind:12} {statistics.median(row['val_accuracy'] for row in done):7.4f} "
              f"{statistics.median(row['test_accuracy'] for row in done):7.4f} "
              f"{statistics.median(gains):9.2f} {f'{wins}/{len(done)}':>10} "
              f"{statistics.median(row['cost_s'] for row in done):8.2f} "
              f"{int(statistics.median(row['extra_epochs'] for row in done)):8d}")  # fmt: skip
    if "greedy" in kinds and "top_k" in kinds:
        pairs = [(r["kinds"]["greedy"], r["kinds"]["top_k"]) for r in runs
                 if r["kinds"].get("greedy") and r["kinds"].get("top_k")]  # fmt: skip
        diffs = [100 * (g["test_accuracy"] - t["test_accuracy"]) for g, t in pairs]
        if diffs:
            print(f"greedy - top_k test accuracy: median {statistics.median(diffs):+.2f} points")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--datasets", nargs="+", default=list(DATA), choices=list(DATA))
    parser.add_argument("--kinds", nargs="+", default=KINDS, choices=KINDS)
    args = parser.parse_args()
    for dataset in args.datasets:
        runs = []
        for seed in range(args.seeds):
            with tempfile.TemporaryDirectory(prefix="bench-ensembles-") as home:
                runs.append(run_search(dataset, seed, args.kinds, Path(home)))
            print(f"{dataset} seed {seed}: search {runs[-1]['search_s']:.1f} s", flush=True)
        summarize(dataset, runs, args.kinds)


if __name__ == "__main__":
    main()
