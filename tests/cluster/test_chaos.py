"""The chaos suite, on the native compose topology (bounded; bench/chaos.py is the long run).

Workers SIGKILLed through a 50-trial search, Redis restarted and flushed,
PostgreSQL restarted, the API and the master killed and restarted, the
checkpoint volume full. Every run ends with the invariants of
`chaos_tools.check_trials`.
"""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaos_tools import check_trials, kill_random_worker, launch, settle_kills, wait_final
from cluster_specs import spiral_search
from native_cluster import NativeCluster
from service_tools import wait_for

from hpsearch.checkpoints import is_temporary_name, load_checkpoint
from hpsearch.db import Storage, open_storage

REQUEUE_BOUND_S = 20.0
KILLS = 5  # at most; at least 3 land before the search ends, one per 0.5-1.5 s
# (bench/chaos.py: one about every 20 s)


@pytest.fixture
def storage(cluster: NativeCluster) -> Iterator[Storage]:
    cluster.start("api")  # applies the migrations first
    opened = open_storage(cluster.database_url)
    try:
        yield opened
    finally:
        opened.close()


def _completed(storage: Storage, search_id: int) -> int:
    return storage.trial_counts(search_id).get("completed", 0)


def test_random_worker_kills_through_a_50_trial_search_lose_nothing(
    cluster: NativeCluster, storage: Storage
) -> None:
    cluster.start("master")
    for _ in range(3):
        cluster.start("worker")
    spec = spiral_search(
        [{"trials": 50, "epochs": 12}], concurrency=6, hidden_sizes=(256, 256), points_per_class=400
    )
    search_id = launch(cluster, spec)
    rng, kills, next_kill = random.Random(13), [], time.monotonic() + 1.0

    def tick() -> None:
        nonlocal next_kill
        settle_kills(storage, kills)
        if time.monotonic() >= next_kill and len(kills) < KILLS:
            kill = kill_random_worker(cluster, storage, search_id, rng)
            if kill is not None:
                kills.append(kill)
                next_kill = time.monotonic() + rng.uniform(0.5, 1.5)

    assert wait_final(cluster, search_id, 240, tick) == "completed"
    wait_for(lambda: settle_kills(storage, kills) or all(
        s is not None for k in kills for s in k.trials.values()), REQUEUE_BOUND_S,
        "every killed worker's trials to be requeued")  # fmt: skip
    trials = check_trials(storage, search_id)
    statuses = sorted(t.status for t in trials)
    # Diverged is the trial's own outcome (a high learning rate), not the chaos's.
    failed = [(t.id, t.attempts, t.failure_kind, t.error) for t in trials if t.status == "failed"]
    assert len(trials) == 50 and set(statuses) <= {"completed", "diverged"}, failed
    requeue_s = [s for kill in kills for s in kill.trials.values() if s is not None]
    assert len(kills) >= 3 and len(requeue_s) >= len(kills), "every kill hit a running trial"
    assert max(requeue_s) <= REQUEUE_BOUND_S
    print(f"kills={len(kills)} trials_hit={len(requeue_s)} requeue_max_s={max(requeue_s):.1f}")


def test_redis_restarted_and_then_flushed_mid_search_the_search_completes(
    cluster: NativeCluster, storage: Storage
) -> None:
    cluster.start("master")
    for _ in range(2):
        cluster.start("worker")
    trials = 30
    search_id = launch(
        cluster,
        spiral_search([{"trials": trials, "epochs": 10}], concurrency=4, points_per_class=600),
    )
    events: list[tuple[str, int]] = []

    def tick() -> None:
        # Each fault right after the first trials that follow the last one, whatever the speed.
        done = _completed(storage, search_id)
        if not events and done >= 2:
            cluster.redis.restart()
            events.append(("restart", done))
        elif len(events) == 1 and done > events[0][1]:
            cluster.redis.flush()
            events.append(("flush", done))

    assert wait_final(cluster, search_id, 180, tick) == "completed", cluster.logs()
    assert [name for name, _ in events] == ["restart", "flush"], events
    assert all(done < trials for _, done in events), f"a fault came after the search: {events}"
    assert _completed(storage, search_id) == trials
    check_trials(storage, search_id)
    assert len(cluster.running("worker")) == 2, cluster.logs()


def test_postgresql_restarted_mid_search_everyone_reconnects_and_no_epoch_is_lost(
    cluster: NativeCluster, storage: Storage
) -> None:
    cluster.start("master")
    for _ in range(2):
        cluster.start("worker")
    search_id = launch(cluster, spiral_search([{"trials": 12, "epochs": 4}], concurrency=4))
    wait_for(lambda: _completed(storage, search_id) >= 3, 120, "three finished trials")
    committed = _epoch_rows(storage, search_id)
    cluster.postgres.restart()
    storage.engine.dispose()  # the test's own connections were cut too
    assert wait_final(cluster, search_id, 180) == "completed", cluster.logs()
    after = _epoch_rows(storage, search_id)
    assert committed.items() <= after.items(), "an epoch committed before the restart changed"
    check_trials(storage, search_id)
    assert cluster.api_answers() and len(cluster.running("master")) == 1, cluster.logs()
    assert len(cluster.running("worker")) == 2, cluster.logs()


def test_the_api_and_the_master_killed_and_restarted_mid_search_the_search_continues(
    cluster: NativeCluster, storage: Storage
) -> None:
    master = cluster.start("master")
    for _ in range(2):
        cluster.start("worker")
    stages = [{"trials": 8, "epochs": 1}, {"trials": 3, "epochs": 3, "keep": 0.5}]
    search_id = launch(cluster, spiral_search(stages, concurrency=4))
    wait_for(lambda: _completed(storage, search_id) >= 2, 120, "two finished trials")
    (api,) = cluster.running("api")
    api.kill()
    master.kill()
    cluster.start("master")
    cluster.start("api")
    assert wait_final(cluster, search_id, 180) == "completed", cluster.logs()
    assert len(check_trials(storage, search_id)) == 11


def test_a_full_checkpoint_volume_fails_the_trial_saying_so_and_the_worker_serves_on(
    cluster: NativeCluster, storage: Storage
) -> None:
    volume = cluster.checkpoint_root
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(volume)], check=True)
    try:
        cluster.start("master")
        worker = cluster.start("worker")
        big = spiral_search([{"trials": 1, "epochs": 2}], concurrency=1,
                            hidden_sizes=(1024, 1024), points_per_class=20)  # fmt: skip
        failed_id = launch(cluster, big)
        wait_final(cluster, failed_id, 120)  # its only trial failed: how it ends is edge's
        (trial,) = storage.best_trials(failed_id)
        assert trial.status == "failed", (trial, cluster.logs())
        assert "No space left on device" in (trial.error or ""), trial.error
        small_id = launch(cluster, spiral_search([{"trials": 3, "epochs": 2}], concurrency=3))
        assert wait_final(cluster, small_id, 120) == "completed", cluster.logs()
        assert worker.alive() and len(cluster.processes) == 3, "the same worker served on"
        check_trials(storage, small_id)
        _assert_only_complete_checkpoints(volume)
    finally:
        cluster.stop()
        subprocess.run(["umount", str(volume)], check=False)


def _epoch_rows(storage: Storage, search_id: int) -> dict[tuple[int, int], float | None]:
    return {
        (trial.id, epoch.epoch): epoch.val_accuracy
        for trial in storage.best_trials(search_id, limit=1000)
        for epoch in storage.trial_curves(trial.id)
    }


def _assert_only_complete_checkpoints(root: Path) -> None:
    names = [path for path in root.rglob("*") if path.is_file()]
    assert not [p for p in names if is_temporary_name(p.name)], "a temporary file was left"
    for path in names:
        load_checkpoint(path)  # a half-written file under a final name raises
