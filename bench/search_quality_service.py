"""Service mode of bench/search_quality.py: hpsearch's real service vs Optuna with 2 processes.

For each of `--service-seeds` seeds (each side runs its own seed s, hpsearch
first, then Optuna, back to back so that both share the machine's load):

- hpsearch: `hpsearch run SPEC.json --workers 2` in a subprocess (SQLite and
  checkpoints under a temp HPSEARCH_HOME). This process polls the database
  every POLL_S seconds for the trial with the best validation accuracy, loads
  its best checkpoint and scores it on MNIST-1D's test split; the event's time
  is that checkpoint's commit (its row's created_at), not the poll's.
- Optuna: 2 spawned processes sharing one study (a JournalFileStorage) and an
  epoch counter; each logs the test accuracy of its best-validation epoch at
  every improvement, and the logs are merged into one best-so-far timeline.

Every time is counted from the launch (before the subprocess or the processes
start). Printed per seed and as medians: time to accuracy (when the best-
validation model's test accuracy first reaches the target, by default Optuna
TPE+Hyperband's median from the quality table), over Optuna's whole wall time
(the issue's target: <= 0.5) and over Optuna's own time to the target; epochs,
wall times; hpsearch's worker utilization, busy worker-seconds (the trial rows'
finished_at - started_at) over 2 x the time from the search's creation to its
last finished trial (target >= 95%), with where the idle worker-seconds went:
before a worker's first trial, between its trials, after its last trial.
"""

from __future__ import annotations

import itertools
import json
import math
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
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

    def __init__(self, storage: Storage, home: Path, data_config: Any, launch: datetime) -> None:
        self.storage, self.launch = storage, launch
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
        try:
            model = load_model(self.checkpoints.load(top.path))
        except HpsearchError:  # dropped by the keep-policy meanwhile: next poll
            return
        assert self.test.X_test is not None and self.test.y_test is not None
        accuracy = float((model.predict(self.test.X_test) == self.test.y_test).mean())
        self.seen.add((top.trial_id, top.epoch))
        committed = (top.created_at - self.launch).total_seconds()
        self.events.append((committed, float(top.val_accuracy or 0.0), accuracy))


def run_hpsearch_service(method: str, seed: int, budget: int, space: dict[str, Any]
                         ) -> dict[str, Any]:  # fmt: skip
    """`hpsearch run` with 2 local workers on the method's spec, watched from here."""
    spec = hpsearch_spec(method, seed, budget, space)
    with tempfile.TemporaryDirectory(prefix="hpsearch-bench-") as folder:
        home = Path(folder)
        spec_path = home / "spec.json"
        spec_path.write_text(json.dumps(raw_spec(method, seed, budget, space)))
        storage = open_storage(f"sqlite:///{home / 'hpsearch.db'}")  # migrated before the run
        env = {**os.environ, "HPSEARCH_HOME": str(home)}
        env.pop("HPSEARCH_DATABASE_URL", None)
        env.pop("HPSEARCH_REDIS_URL", None)
        start, launch = time.monotonic(), datetime.now(UTC)
        command = [*HPSEARCH, "run", str(spec_path), "--workers", str(WORKERS), "--json"]
        log_path = home / "run.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(command, env=env, cwd=home, stdout=log,
                                       stderr=subprocess.STDOUT)  # fmt: skip
            monitor = CheckpointMonitor(storage, home, spec.base.data, launch)
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
        figures = _service_figures(storage, search.id, launch)
        storage.close()
    return {"wall_s": wall, "events": monitor.events, **figures}


def _service_figures(storage: Storage, search_id: int, launch: datetime) -> dict[str, Any]:
    """Epochs trained, worker utilization and its idle worker-seconds, from the trial rows."""
    trials: list[Any] = []
    while page := storage.best_trials(search_id, limit=1000, offset=len(trials),
                                      order_by="started_at"):  # fmt: skip
        trials.extend(page)
    search = storage.get_search(search_id)
    by_id = {t.id: t for t in trials}
    epochs = 0
    for trial in trials:
        parent = by_id.get(trial.parent_trial_id) if trial.parent_trial_id else None
        epochs += (trial.last_epoch or 0) - ((parent.last_epoch or 0) if parent else 0)
    ran = [t for t in trials if t.started_at is not None and t.finished_at is not None]
    end = max((t.finished_at for t in ran), default=search.created_at)
    span = (end - search.created_at).total_seconds()
    idle = {"start": 0.0, "between": 0.0, "end": 0.0}
    busy = 0.0
    by_worker: dict[str, list[Any]] = {}
    for trial in ran:
        busy += (trial.finished_at - trial.started_at).total_seconds()
        by_worker.setdefault(trial.worker_id or "?", []).append(trial)
    for mine in by_worker.values():  # started_at order
        idle["start"] += (mine[0].started_at - search.created_at).total_seconds()
        idle["between"] += sum((b.started_at - a.finished_at).total_seconds()
                               for a, b in itertools.pairwise(mine))  # fmt: skip
        idle["end"] += (end - mine[-1].finished_at).total_seconds()
    idle["start"] += span * max(0, WORKERS - len(by_worker))  # a worker that ran nothing
    return {
        "epochs": epochs,
        "trials": len(trials),
        "utilization": busy / (WORKERS * span) if span > 0 else 0.0,
        "idle": idle,
        "search_s": (end - launch).total_seconds(),
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


def _optuna_process(kind: str, seed: int, budget: int, space: dict[str, Any], journal: str,
                    counter: Any, start: float, log_path: str, number: int) -> None:  # fmt: skip
    import optuna
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    spec = hpsearch_spec("notes", 0, budget, PER_LAYER_SPACE)
    data = prepare_data(spec.base.data, spec.base.preprocess, Path("."))
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    max_epochs = OPTUNA_MAX_EPOCHS.get(budget, 27)
    process_seed = seed * WORKERS + number  # each process samples with its own seed
    sampler, pruner = optuna_strategy(kind, process_seed, max_epochs)
    study = optuna.load_study(study_name=f"bench-{kind}-{seed}", storage=storage,
                              sampler=sampler, pruner=pruner)  # fmt: skip
    scorer = SharedScorer(data, budget, start=start)
    scorer.counter = counter
    objective = optuna_objective(space, data, scorer, max_epochs, process_seed)
    while not scorer.spent:
        study.optimize(objective, n_trials=1)
    Path(log_path).write_text(json.dumps({"events": scorer.events, "epochs": scorer.epochs}))


def run_optuna_service(kind: str, seed: int, budget: int, space: dict[str, Any]
                       ) -> dict[str, Any]:  # fmt: skip
    """Optuna with 2 processes on one shared study; their logs merged."""
    import optuna

    context = multiprocessing.get_context("spawn")
    counter = context.Value("i", 0)
    with tempfile.TemporaryDirectory(prefix="optuna-bench-") as folder:
        journal = str(Path(folder) / "journal.log")
        storage = optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(journal)
        )
        make_study(kind, seed, OPTUNA_MAX_EPOCHS.get(budget, 27), storage=storage)
        start = time.monotonic()
        logs = [str(Path(folder) / f"process{n}.json") for n in range(WORKERS)]
        common = (kind, seed, budget, space, journal, counter, start)
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


def service_comparison(budget: int, target: float | None, method: str, space: dict[str, Any],
                       seeds: int = 3) -> None:  # fmt: skip
    """Print, per seed and as medians, time to accuracy, epochs, wall time and utilization of
    both services (each side loads its own data in its own processes, as a user's would)."""
    print(f"\nservice mode: budget {budget} epochs, {WORKERS} workers / processes, {seeds} seeds,"
          f" target {'none' if target is None else f'{100 * target:.2f}%'} test accuracy "
          "(times from launch, on a shared machine)")  # fmt: skip
    runs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for seed in range(seeds):
        try:
            ours = run_hpsearch_service(method, seed, budget, space)
        except ConfigError as error:
            print(f"hpsearch {method}: not run: {str(error).splitlines()[-1].split(' (got')[0]}")
            return
        theirs = run_optuna_service("optuna-tpe", seed, budget, space)
        for figures in (ours, theirs):
            figures["reach_s"] = time_to(figures["events"], target)
        _print_seed(seed, method, ours, theirs)
        runs.append((ours, theirs))
    _print_medians(runs)


def _print_seed(seed: int, method: str, ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    for name, figures in ((f"hpsearch {method} (run)", ours), ("optuna TPE+HB x2", theirs)):
        final = max(figures["events"], key=lambda e: (e[1], -e[0]), default=(0, 0, 0))
        reach = figures["reach_s"]
        when = "not reached" if reach is None else f"{reach:.0f} s"
        print(f"seed {seed} {name:<22} time to target {when:>11}  final test "
              f"{100 * final[2]:.2f}% (val {100 * final[1]:.2f}%)  epochs {figures['epochs']}"
              f"  wall {figures['wall_s']:.0f} s", flush=True)  # fmt: skip
    idle = ours["idle"]
    print(f"seed {seed} hpsearch utilization {100 * ours['utilization']:.1f}% over "
          f"{ours['trials']} trials, last trial ended at {ours['search_s']:.0f} s; idle "
          f"worker-seconds: {idle['start']:.1f} before the first trial, {idle['between']:.1f} "
          f"between trials, {idle['end']:.1f} after the last (search {ours['status']}: "
          f"{ours['reason']})", flush=True)  # fmt: skip


def _ratio(mine: float | None, peer: float | None) -> float | None:
    """mine / peer; inf when hpsearch never reached the target, None when the peer did not."""
    if not peer:
        return None
    return math.inf if mine is None else mine / peer


def _print_medians(runs: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    def show(values: list[float | None]) -> str:
        known = [v for v in values if v is not None]
        each = ", ".join("n/a" if v is None else "not reached" if v == math.inf else f"{v:.2f}"
                         for v in values)  # fmt: skip
        median = statistics.median(known) if known else None
        return f"[{each}], median {'n/a' if median is None else f'{median:.2f}'}"

    over_wall = [_ratio(ours["reach_s"], theirs["wall_s"]) for ours, theirs in runs]
    over_reach = [_ratio(ours["reach_s"], theirs["reach_s"]) for ours, theirs in runs]
    print(f"hpsearch time to target / optuna wall time (the issue's target <= 0.50): "
          f"{show(over_wall)}")  # fmt: skip
    print(f"hpsearch time to target / optuna time to target (n/a: optuna did not reach it): "
          f"{show(over_reach)}")  # fmt: skip
    walls = [ours["wall_s"] / theirs["wall_s"] for ours, theirs in runs]
    print(f"wall time hpsearch / optuna for the whole budget (hpsearch's includes its "
          f"ensembles): {show(list(walls))}")  # fmt: skip
    utilization = [100 * ours["utilization"] for ours, _ in runs]
    print(f"hpsearch worker utilization % (target >= 95): {show(list(utilization))}")
