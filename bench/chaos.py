"""The long chaos run: a 50-trial search on the native compose topology under worker kills.

    python bench/chaos.py [--trials 50] [--epochs 400] [--workers 4] [--kill-every-s 20]
                          [--heartbeat-s 2] [--stale-after-s 10]

Starts a private PostgreSQL cluster and a private redis-server (never the
shared ones), the API, one master and N workers exactly as docker-compose.yml
configures them (tests/cluster/native_cluster.py), launches the search
through REST, and SIGKILLs a random busy worker about every `--kill-every-s`
seconds (uniform 0.75x-1.25x), starting a replacement each time, until the
search ends. The heartbeat settings default to the compose file's.

Prints: kills survived, trials final / stuck, epochs lost (epoch rows
committed before a kill that are gone or changed at the end, plus completed
trials whose rows are not exactly 1..E), and kill-to-requeue time (from the
SIGKILL until each trial the killed worker ran has left it: requeued by the
master's reaper or claimed by another worker), median and max, against the
configured stale_after_s (the floor of that time).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # service_tools
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "cluster"))

from chaos_tools import FINAL_TRIAL, kill_random_worker, launch, settle_kills
from cluster_specs import spiral_search
from compose_file import load_compose, service_environment
from native_cluster import TEST_VARIABLES, NativeCluster
from private_services import PrivatePostgres, PrivateRedis

from hpsearch.db import Storage, open_storage


def epoch_rows(storage: Storage, search_id: int) -> dict[tuple[int, int], float | None]:
    return {
        (trial.id, epoch.epoch): epoch.val_accuracy
        for trial in storage.best_trials(search_id, limit=1000)
        for epoch in storage.trial_curves(trial.id)
    }


def run(arguments: argparse.Namespace, home: Path) -> None:
    postgres = PrivatePostgres()
    flags = [str(flag) for flag in load_compose()["services"]["redis"]["command"][1:]]
    redis = PrivateRedis(home / "redis", flags)
    try:
        variables = TEST_VARIABLES | {
            "HPSEARCH_HEARTBEAT_S": str(arguments.heartbeat_s),
            "HPSEARCH_STALE_AFTER_S": str(arguments.stale_after_s),
        }
        postgres.create_database("hpsearch_chaos", "hpsearch", variables["POSTGRES_PASSWORD"])
        cluster = NativeCluster(postgres, redis, home / "cluster", "hpsearch_chaos", variables)
        try:
            cluster.start_topology(arguments.workers)
            storage = open_storage(cluster.database_url)
            chaos(arguments, cluster, storage)
            storage.close()
        finally:
            cluster.stop()
    finally:
        redis.stop()
        postgres.drop()


def chaos(arguments: argparse.Namespace, cluster: NativeCluster, storage: Storage) -> None:
    stages = [{"trials": arguments.trials, "epochs": arguments.epochs}]
    spec = spiral_search(stages, concurrency=arguments.workers + 2, hidden_sizes=(256, 256),
                         points_per_class=400)  # fmt: skip
    search_id = launch(cluster, spec)
    rng, kills, committed = random.Random(arguments.seed), [], {}
    started = time.monotonic()
    next_kill = started + arguments.kill_every_s
    while storage.get_search(search_id).status == "running":
        if time.monotonic() - started > arguments.timeout_s:
            print(f"gave up after {arguments.timeout_s:.0f} s")
            break
        settle_kills(storage, kills)
        if time.monotonic() >= next_kill:
            committed |= epoch_rows(storage, search_id)
            kill = kill_random_worker(cluster, storage, search_id, rng)
            if kill is not None:
                kills.append(kill)
                next_kill = time.monotonic() + arguments.kill_every_s * rng.uniform(0.75, 1.25)
        time.sleep(0.2)
    settle_kills(storage, kills)
    report(storage, search_id, kills, committed, time.monotonic() - started, arguments)


def report(storage, search_id, kills, committed, wall_s, arguments) -> None:  # type: ignore[no-untyped-def]
    trials = storage.best_trials(search_id, limit=1000)
    final = [t for t in trials if t.status in FINAL_TRIAL]
    after = epoch_rows(storage, search_id)
    lost = sum(1 for key, value in committed.items() if after.get(key, "gone") != value)
    rows_of = {t.id: [e for (i, e) in sorted(after) if i == t.id] for t in trials}
    complete = {t.id: list(range(1, t.epochs + 1)) for t in trials if t.status == "completed"}
    broken = [trial_id for trial_id, rows in complete.items() if rows_of[trial_id] != rows]
    requeue_s = [s for kill in kills for s in kill.trials.values() if s is not None]
    unsettled = sum(1 for kill in kills for s in kill.trials.values() if s is None)
    print(f"search {storage.get_search(search_id).status} in {wall_s:.0f} s; "
          f"{arguments.workers} workers, stale_after_s={arguments.stale_after_s}")  # fmt: skip
    print(f"kills survived: {len(kills)} (each of a worker running a trial)")
    print(f"trials final: {len(final)}/{arguments.trials}, stuck: {arguments.trials - len(final)}, "
          f"by status: {dict(Counter(t.status for t in trials))}")  # fmt: skip
    for trial in trials:
        if trial.status == "failed":
            print(f"  failed trial {trial.id} ({trial.failure_kind}): {trial.error}")
    print(f"epochs lost: {lost} committed rows changed or gone; "
          f"{len(broken)} completed trials without rows 1..E")  # fmt: skip
    if requeue_s:
        median = statistics.median(requeue_s)
        print(f"kill-to-requeue: median {median:.1f} s, max {max(requeue_s):.1f} s "
              f"({median / arguments.stale_after_s:.2f}x stale_after_s); "
              f"never requeued: {unsettled}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=400)  # ~4 min on 2 idle cores: ~10 kills
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--kill-every-s", type=float, default=20.0)
    required = {"POSTGRES_PASSWORD": "-", "HPSEARCH_API_TOKENS": "-"}  # only to interpolate
    worker = service_environment(load_compose(), "worker", required)  # the compose defaults
    parser.add_argument("--heartbeat-s", type=float, default=float(worker["HPSEARCH_HEARTBEAT_S"]))
    parser.add_argument("--stale-after-s", type=float,
                        default=float(worker["HPSEARCH_STALE_AFTER_S"]))  # fmt: skip
    parser.add_argument("--timeout-s", type=float, default=1800.0)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hpsearch-chaos-") as folder:
        run(arguments, Path(folder))


if __name__ == "__main__":
    main()
