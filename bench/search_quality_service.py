"""Service mode of bench/search_quality.py: hpsearch's real service vs Optuna with 2 processes.

- hpsearch: `hpsearch run SPEC.json --workers 2` in a subprocess (SQLite and
  checkpoints under a temp HPSEARCH_HOME). This process polls the database
  every POLL_S seconds for the trial with the best validation accuracy, loads
  its best checkpoint and scores it on MNIST-1D's test split.
- Optuna: 2 spawned processes sharing one study (a JournalFileStorage) and an
  epoch counter; each logs the test accuracy of its best-validation epoch at
  every improvement, and the logs are merged into one best-so-far timeline.

Printed: time to accuracy (the wall time, from launch, at which the best-
validation model's test accuracy first reaches the target, by default Optuna
TPE+Hyperband's median from the quality table; target hpsearch <= 0.5x
Optuna), epochs spent, wall time, and hpsearch's worker utilization: busy
worker-seconds (the trial rows' finished_at - started_at) over 2 x the time
from the search's creation to its last finished trial (target >= 95%).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from search_quality import (
    OPTUNA_MAX_EPOCHS,
    PER_LAYER_SPACE,
    Scorer,
    hpsearch_spec,
    make_study,
    optuna_objective,
    optuna_strategy,
    raw_spec,
)

from hpsearch.checkpoints import FileSystemCheckpointStorage
from hpsearch.data import load_dataset, prepare_data
from hpsearch.db import Storage, open_storage
from hpsearch.errors import ConfigError, HpsearchError
from hpsearch.training import load_model

__all__ = ["service_comparison"]

WORKERS = 2
POLL_S = 0.5
HPSEARCH = [sys.executable, "-c", "from hpsearch.cli import app; app(prog_name='hpsearch')"]


def time_to(events: list[tuple[float, float, float]], target: float | None) -> float | None:
    """The first time the best-validation model's test accuracy reaches `target`.

    events: (seconds, val accuracy, test accuracy) in any order, from any process.
    """
    if target is None:
        return None
    best_val = -1.0
    for seconds, val, test in sorted(events):
        if val > best_val:
            best_val = val
            if test >= target - 1e-12:
                return seconds
    return None


class CheckpointMonitor:
    """Scores the current best-validation checkpoint of a running search on the test split."""

    def __init__(self, storage: Storage, home: Path, data_config: Any, start: float) -> None:
        self.storage, self.start = storage, start
        self.checkpoints = FileSystemCheckpointStorage(home / "checkpoints")
        self.test = load_dataset(data_config, Path("."))
        self.seen: set[tuple[int, int]] = set()
        self.events: list[tuple[float, float, float]] = []

    def poll(self, search_id: int) -> None:
        best = self.storage.best_trials(search_id, limit=1)
        if not best or best[0].best_val_accuracy is None:
            return
        kept = [c for c in self.storage.list_checkpoints(best[0].id) if c.val_accuracy is not None]
        if not kept:
            return
        top = max(kept, key=lambda c: (c.val_accuracy, -c.epoch))
        if (top.trial_id, top.epoch) in self.seen:
            return
        seconds = time.monotonic() - self.start
        try:
            model = load_model(self.checkpoints.load(top.path))
        except HpsearchError:  # dropped by the keep-policy meanwhile: next poll
            return
        assert self.test.X_test is not None and self.test.y_test is not None
        accuracy = float((model.predict(self.test.X_test) == self.test.y_test).mean())
        self.seen.add((top.trial_id, top.epoch))
        self.events.append((seconds, float(top.val_accuracy or 0.0), accuracy))


def run_hpsearch_service(method: str, budget: int, space: dict[str, Any]) -> dict[str, Any]:
    """`hpsearch run` with 2 local workers on the method's spec, watched from here."""
    spec = hpsearch_spec(method, 0, budget, space)
    with tempfile.TemporaryDirectory(prefix="hpsearch-bench-") as folder:
        home = Path(folder)
        spec_path = home / "spec.json"
        spec_path.write_text(json.dumps(raw_spec(method, 0, budget, space)))
        storage = open_storage(f"sqlite:///{home / 'hpsearch.db'}")  # migrated before the run
        env = {**os.environ, "HPSEARCH_HOME": str(home)}
        env.pop("HPSEARCH_DATABASE_URL", None)
        env.pop("HPSEARCH_REDIS_URL", None)
        start = time.monotonic()
        command = [*HPSEARCH, "run", str(spec_path), "--workers", str(WORKERS), "--json"]
        log_path = home / "run.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(command, env=env, cwd=home, stdout=log,
                                       stderr=subprocess.STDOUT)  # fmt: skip
            monitor = CheckpointMonitor(storage, home, spec.base.data, start)
            while process.poll() is None:
                searches = storage.list_searches()
                if searches:
                    monitor.poll(searches[0].id)
                time.sleep(POLL_S)
        wall = time.monotonic() - start
        if process.returncode not in (0, 1):
            tail = log_path.read_text()[-2000:]
            raise RuntimeError(f"hpsearch run failed ({process.returncode}): {tail}")
        search = storage.list_searches()[0]
        monitor.poll(search.id)
        figures = _service_figures(storage, search.id)
        storage.close()
    return {"wall_s": wall, "events": monitor.events, **figures}


def _service_figures(storage: Storage, search_id: int) -> dict[str, Any]:
    """Epochs trained and worker utilization from the search's trial rows."""
    trials: list[Any] = []
    while page := storage.best_trials(search_id, limit=1000, offset=len(trials),
                                      order_by="started_at"):  # fmt: skip
        trials.extend(page)
    search = storage.get_search(search_id)
    by_id = {t.id: t for t in trials}
    epochs, busy = 0, 0.0
    finished = [t.finished_at for t in trials if t.finished_at is not None]
    for trial in trials:
        parent = by_id.get(trial.parent_trial_id) if trial.parent_trial_id else None
        epochs += (trial.last_epoch or 0) - ((parent.last_epoch or 0) if parent else 0)
        if trial.started_at is not None and trial.finished_at is not None:
            busy += (trial.finished_at - trial.started_at).total_seconds()
    span = (max(finished) - search.created_at).total_seconds() if finished else 0.0
    return {
        "epochs": epochs,
        "trials": len(trials),
        "utilization": busy / (WORKERS * span) if span > 0 else 0.0,
        "status": search.status,
        "reason": search.reason,
    }


class SharedScorer(Scorer):
    """A `Scorer` whose epoch count is shared by the processes of one study."""

    counter: Any = None

    def epoch(self, model: Any, record: dict[str, Any]) -> None:
        with self.counter.get_lock():
            self.counter.value += 1
        super().epoch(model, record)

    @property
    def spent(self) -> bool:
        return bool(self.counter.value >= self.budget)


def _optuna_process(kind: str, budget: int, space: dict[str, Any], journal: str, counter: Any,
                    start: float, log_path: str, number: int) -> None:  # fmt: skip
    import optuna
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    spec = hpsearch_spec("notes", 0, budget, PER_LAYER_SPACE)
    data = prepare_data(spec.base.data, spec.base.preprocess, Path("."))
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    max_epochs = OPTUNA_MAX_EPOCHS.get(budget, 27)
    sampler, pruner = optuna_strategy(kind, number, max_epochs)
    study = optuna.load_study(study_name=f"bench-{kind}-0", storage=storage,
                              sampler=sampler, pruner=pruner)  # fmt: skip
    scorer = SharedScorer(data, budget, start=start)
    scorer.counter = counter
    objective = optuna_objective(space, data, scorer, max_epochs, number)
    while not scorer.spent:
        study.optimize(objective, n_trials=1)
    Path(log_path).write_text(json.dumps({"events": scorer.events, "epochs": scorer.epochs}))


def run_optuna_service(kind: str, budget: int, space: dict[str, Any]) -> dict[str, Any]:
    """Optuna with 2 processes on one shared study; their logs merged."""
    import optuna

    context = multiprocessing.get_context("spawn")
    counter = context.Value("i", 0)
    with tempfile.TemporaryDirectory(prefix="optuna-bench-") as folder:
        journal = str(Path(folder) / "journal.log")
        storage = optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(journal)
        )
        make_study(kind, 0, OPTUNA_MAX_EPOCHS.get(budget, 27), storage=storage)
        start = time.monotonic()
        logs = [str(Path(folder) / f"process{n}.json") for n in range(WORKERS)]
        common = (kind, budget, space, journal, counter, start)
        processes = [
            context.Process(target=_optuna_process, args=(*common, logs[n], n))
            for n in range(WORKERS)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        wall = time.monotonic() - start
        if any(process.exitcode != 0 for process in processes):
            raise RuntimeError(f"an optuna process failed: {[p.exitcode for p in processes]}")
        events = [tuple(e) for log in logs for e in json.loads(Path(log).read_text())["events"]]
    return {"wall_s": wall, "events": events, "epochs": counter.value}


def service_comparison(
    budget: int, target: float | None, method: str, space: dict[str, Any]
) -> None:
    """Print time to accuracy, epochs, wall time and utilization of both services
    (each side loads its own data in its own processes, as a user's would)."""
    print(f"\nservice mode: budget {budget} epochs, {WORKERS} workers / processes, target "
          f"{'none' if target is None else f'{100 * target:.2f}%'} test accuracy")  # fmt: skip
    try:
        ours = run_hpsearch_service(method, budget, space)
    except ConfigError as error:
        print(f"hpsearch {method}: not run: {str(error).splitlines()[-1].split(' (got')[0]}")
        return
    theirs = run_optuna_service("optuna-tpe", budget, space)
    rows = [(f"hpsearch {method} (hpsearch run)", ours), ("optuna TPE+Hyperband x2", theirs)]
    reach = {}
    for name, figures in rows:
        reach[name] = time_to(figures["events"], target)
        final = max(figures["events"], key=lambda e: (e[1], -e[0]), default=(0, 0, 0))
        when = "not reached" if reach[name] is None else f"{reach[name]:.0f} s"
        print(f"{name:<34} time to target {when:>12}  final test {100 * final[2]:.2f}% "
              f"(val {100 * final[1]:.2f}%)  epochs {figures['epochs']}  wall "
              f"{figures['wall_s']:.0f} s")  # fmt: skip
    print(f"hpsearch worker utilization {100 * ours['utilization']:.1f}% over {ours['trials']} "
          f"trials (search {ours['status']}: {ours['reason']})")  # fmt: skip
    mine, peer = reach[rows[0][0]], reach[rows[1][0]]
    if mine is not None and peer:
        print(f"time-to-accuracy ratio hpsearch / optuna = {mine / peer:.2f} (target <= 0.50)")
