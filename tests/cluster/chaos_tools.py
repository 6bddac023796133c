"""What the chaos tests and bench/chaos.py share: launching, following, killing, checking.

`kill_random_worker` SIGKILLs one busy worker process, starts its replacement
and returns what the killed worker was running (from the database), so
`requeue_times` can time each of those trials until it leaves that worker.
`check_trials` is the invariant every chaos run ends with: every trial
final, epoch rows exactly 1..E, the last checkpoint at the last epoch.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from native_cluster import NativeCluster
from service_tools import wait_for

from hpsearch.db import Storage

__all__ = ["Kill", "check_trials", "kill_random_worker", "launch", "settle_kills", "wait_final"]

FINAL_SEARCH = ("completed", "failed", "cancelled")
FINAL_TRIAL = ("completed", "failed", "diverged", "cancelled")


@dataclass
class Kill:
    """A SIGKILLed worker: when, and the trials it ran (id -> seconds until requeued)."""

    killed_at: float
    worker_id: str | None
    trials: dict[int, float | None] = field(default_factory=dict)


def launch(cluster: NativeCluster, spec: dict[str, Any]) -> int:
    return int(cluster.rest("POST", "/searches", json=spec)["id"])


def kill_random_worker(
    cluster: NativeCluster, storage: Storage, search_id: int, rng: random.Random
) -> Kill | None:
    """SIGKILL a random worker that runs a trial of the search, start a replacement;
    what it was running. None (nobody killed) while no worker runs one."""
    running: dict[str, list[int]] = {}
    for trial in storage.best_trials(search_id, limit=1000):
        if trial.status == "running" and trial.worker_id is not None:
            running.setdefault(trial.worker_id, []).append(trial.id)
    by_pid = {w.pid: w.id for w in storage.list_workers(3600.0) if w.id in running}
    candidates = [p for p in cluster.running("worker") if p.pid in by_pid]
    if not candidates:
        return None
    victim = rng.choice(candidates)
    victim.kill()
    worker_id = by_pid[victim.pid]
    kill = Kill(time.monotonic(), worker_id, dict.fromkeys(running[worker_id]))
    cluster.start("worker")
    return kill


def settle_kills(storage: Storage, kills: list[Kill]) -> None:
    """Time each killed worker's trials that have left it since (requeued or reclaimed)."""
    for kill in kills:
        for trial_id, seconds in kill.trials.items():
            if seconds is None:
                trial = storage.get_trial(trial_id)
                if trial.status != "running" or trial.worker_id != kill.worker_id:
                    kill.trials[trial_id] = time.monotonic() - kill.killed_at


def wait_final(cluster: NativeCluster, search_id: int, timeout_s: float, on_tick=None) -> str:  # type: ignore[no-untyped-def]
    """Poll the search through REST until it ends; its final status."""

    def final() -> str | None:
        if on_tick is not None:
            on_tick()
        with cluster.client() as client:
            response = client.get(f"/searches/{search_id}")
        if response.status_code >= 500:  # a request cut by a database restart
            return None
        assert response.is_success, response.text
        status = response.json()["status"]
        return status if status in FINAL_SEARCH else None

    def describe() -> str:
        search = cluster.rest("GET", f"/searches/{search_id}")
        trials = cluster.rest("GET", f"/searches/{search_id}/trials", params={"limit": 1000})
        unfinished = [t for t in trials if t["status"] in ("queued", "running")]
        alive = {p.pid: p.alive() for p in cluster.processes}
        return (f"search {search_id} to end: {search['progress']}\nunfinished: {unfinished}\n"
                f"processes alive: {alive}\n{cluster.logs()}")  # fmt: skip

    return str(wait_for(final, timeout_s, describe, poll_s=0.5))


def check_trials(storage: Storage, search_id: int) -> list[Any]:
    """Every trial final; epoch rows exactly 1..last; the last checkpoint at the last epoch."""
    trials = storage.best_trials(search_id, limit=1000)
    for trial in trials:
        assert trial.status in FINAL_TRIAL, f"trial {trial.id} is stuck {trial.status}"
        epochs = [epoch.epoch for epoch in storage.trial_curves(trial.id)]
        if trial.status == "completed":
            assert epochs == list(range(1, trial.epochs + 1)), (trial.id, epochs)
        else:
            assert epochs == list(range(1, len(epochs) + 1)), (trial.id, epochs)
        checkpoint = storage.latest_checkpoint(trial.id)
        if epochs:
            assert checkpoint is not None and checkpoint.epoch == epochs[-1], (trial.id, epochs)
    return trials
