"""The compose topology, natively: a search launched and followed through REST end to end."""

from __future__ import annotations

from cluster_specs import spiral_search
from native_cluster import NativeCluster
from service_tools import wait_for

from hpsearch.db import open_storage

FINAL = ("completed", "failed", "cancelled")


def test_a_search_runs_end_to_end_through_rest_on_api_master_and_workers(
    cluster: NativeCluster,
) -> None:
    cluster.start_topology(workers=2)

    def alive_workers() -> int:
        return sum(w["alive"] for w in cluster.rest("GET", "/workers"))

    wait_for(lambda: alive_workers() == 2, 60, lambda: "two live workers\n" + cluster.logs())
    stages = [{"trials": 6, "epochs": 1}, {"trials": 2, "epochs": 3, "keep": 0.5}]
    launched = cluster.rest("POST", "/searches", json=spiral_search(stages))
    search_id = launched["id"]

    def finished() -> dict | None:
        search = cluster.rest("GET", f"/searches/{search_id}")
        return search if search["status"] in FINAL else None

    search = wait_for(finished, 120, lambda: "the search\n" + cluster.logs(), poll_s=0.5)
    assert search["status"] == "completed", search
    trials = cluster.rest("GET", f"/searches/{search_id}/trials")
    assert len(trials) == 8 and all(t["status"] == "completed" for t in trials)
    best = trials[0]
    detail = cluster.rest("GET", f"/trials/{best['id']}")
    assert detail["id"] == best["id"]
    checkpoint = cluster.rest("GET", f"/trials/{best['id']}/checkpoints/{best['last_epoch']}")
    assert checkpoint[:2] == b"PK"  # an .npz archive
    workers = {w["id"] for w in cluster.rest("GET", "/workers") if w["alive"]}
    assert len(workers) == 2
    # The API ran no master: the separate `hpsearch master` advanced the search.
    assert all(p.alive() for p in cluster.processes), cluster.logs()
    storage = open_storage(cluster.database_url)
    try:
        ran_by = {t.worker_id for t in storage.best_trials(search_id, limit=100)}
        assert ran_by <= workers, "the trials ran on the cluster's workers"
    finally:
        storage.close()
    # The workers share one prepared copy of the data set on the data volume.
    assert len(list((cluster.data_root / ".prepared").iterdir())) == 1
