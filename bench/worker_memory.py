"""Resident memory of 1, 2 and 4 workers holding one CIFAR-10-shaped prepared set.

    python bench/worker_memory.py [--rows 50000] [--features 3072]

The data set: X_train (rows x features float32, random normal), 1,000
validation rows, 10 classes, stored as an uncompressed `.npz`; preprocessing
is the default (per-feature mean). Each worker is a separate process that
calls the workers' `hpsearch.training.prepare`, then reads every prepared row
the way an epoch does (batches of 256 through a features x 100 layer), and
reports ready; its memory is read from /proc/<pid>/smaps_rollup while all N
hold their data.

Two ways, measured in this run on this machine:
- per-process copies (the peer: `prepare` without a store, as before):
  every process loads and preprocesses its own copy;
- the shared store (`prepare(..., store_root)`, as the workers run now): the
  prepared arrays are written once (by a first, unmeasured process, as the
  first worker of a host does) and memory-mapped by every worker.

Per N it prints the sum over the N workers of RSS (which counts a shared
page once per process that maps it) and of PSS (proportional set size: a page
shared by k processes counts 1/k in each, so the sum is what the N workers
cost the host). Target: the shared store's PSS sum of 4 workers <= 1.3 x one
worker's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WORKER = """
import sys, json
from pathlib import Path
import numpy as np
from hpsearch.config import TrainConfig
from hpsearch.training import prepare
config = TrainConfig.model_validate(json.loads(sys.argv[1]))
store = None if sys.argv[3] == "-" else Path(sys.argv[3])
prepared = prepare(config, Path(sys.argv[2]), store)
weights = np.random.default_rng(0).standard_normal((prepared.input_dim, 100)).astype(np.float32)
X = prepared.X_train
for start in range(0, len(X), 256):
    np.maximum(X[start:start + 256] @ weights, 0.0)
print("ready", flush=True)
sys.stdin.read()
"""
MB = 1024.0 * 1024.0


def write_data(folder: Path, rows: int, features: int) -> None:
    rng = np.random.default_rng(0)
    X_train = np.empty((rows, features), np.float32)
    for start in range(0, rows, 5000):
        X_train[start : start + 5000] = rng.standard_normal((min(5000, rows - start), features))
    np.savez(
        folder / "cifar_shaped.npz",
        X_train=X_train,
        y_train=rng.integers(0, 10, rows),
        X_val=rng.standard_normal((1000, features)).astype(np.float32),
        y_val=rng.integers(0, 10, 1000),
    )


def memory_of(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of a process, in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = float(value.split()[0]) / 1024.0
    return fields["Rss"], fields["Pss"]


def hold(workers: int, config: str, data_root: Path, store: str) -> tuple[float, float]:
    """Start `workers` processes, wait until each holds its data; summed (RSS, PSS) MiB."""
    command = [sys.executable, "-c", WORKER, config, str(data_root), store]
    processes = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(workers)
    ]
    try:
        for process in processes:
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        measured = [memory_of(process.pid) for process in processes]
        return sum(m[0] for m in measured), sum(m[1] for m in measured)
    finally:
        for process in processes:
            assert process.stdin is not None
            process.stdin.close()
            process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--features", type=int, default=3072)
    parser.add_argument("--repeats", type=int, default=1, help="median over this many runs")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hpsearch-memory-") as folder:
        root = Path(folder)
        write_data(root, arguments.rows, arguments.features)
        config = json.dumps({"data": {"source": "npz", "path": "cifar_shaped.npz"},
                             "model": {"hidden_sizes": [100]}})  # fmt: skip
        store = root / "prepared"
        hold(1, config, root, str(store))  # the first worker of the host writes the store
        stored_mb = sum(p.stat().st_size for p in store.rglob("*") if p.is_file()) / MB
        print(f"data: {arguments.rows} x {arguments.features} float32; "
              f"stored prepared copy {stored_mb:.0f} MiB")  # fmt: skip
        print(f"{'way':<20} {'workers':>7} {'RSS sum MiB':>12} {'PSS sum MiB':>12} {'PSS / 1':>8}")
        for way, store_argument in (("per-process copies", "-"), ("shared store", str(store))):
            baseline = None
            for workers in (1, 2, 4):
                runs = [hold(workers, config, root, store_argument)
                        for _ in range(arguments.repeats)]  # fmt: skip
                rss = statistics.median(r[0] for r in runs)
                pss = statistics.median(r[1] for r in runs)
                baseline = baseline or pss
                print(f"{way:<20} {workers:>7} {rss:>12.0f} {pss:>12.0f} {pss / baseline:>8.2f}")


if __name__ == "__main__":
    main()
