"""Process bodies for the concurrency tests (importable by spawned children)."""

from __future__ import annotations

import traceback
from typing import Any

from factories import new_trials

from hpsearch.db import open_storage


def _report(results: Any, name: str, body: Any) -> None:
    try:
        results.put((name, "ok", body()))
    except BaseException:
        results.put((name, "error", traceback.format_exc()))


def add_trials_after_barrier(
    url: str, search_id: int, start: int, count: int, barrier: Any, results: Any
) -> None:
    """Open the storage (migrating if needed), wait for the others, add trials start..+count."""

    def body() -> list[int]:
        storage = open_storage(url)
        try:
            barrier.wait(timeout=60)
            return [t.id for t in storage.add_trials(search_id, new_trials(count, start=start))]
        finally:
            storage.close()

    _report(results, f"adder-{start}", body)


def migrate_after_barrier(url: str, barrier: Any, results: Any) -> None:
    def body() -> bool:
        barrier.wait(timeout=60)
        open_storage(url).close()
        return True

    _report(results, "migrator", body)


def run_trials_in_a_loop(
    url: str, worker_id: str, trial_ids: list[int], barrier: Any, results: Any
) -> None:
    """Claim every trial it can and run it: heartbeat, 3 epochs, a checkpoint, finish."""

    def body() -> list[int]:
        storage = open_storage(url)
        ran = []
        try:
            barrier.wait(timeout=60)
            for trial_id in trial_ids:
                if storage.claim_trial(trial_id, worker_id) is None:
                    continue
                for epoch in range(3):
                    assert storage.heartbeat(trial_id, worker_id).owned
                    metrics = {"val_accuracy": 0.1 * epoch, "stats": {"worker": worker_id}}
                    storage.record_epoch(trial_id, worker_id, epoch, metrics)
                    storage.worker_heartbeat(worker_id, trial_id, "busy")
                storage.record_checkpoint(trial_id, 2, f"{worker_id}/t{trial_id}.npz", 0.2)
                storage.reap_stale(60.0)
                assert storage.finish_trial(trial_id, worker_id, "completed") is not None
                ran.append(trial_id)
            return ran
        finally:
            storage.close()

    _report(results, worker_id, body)
