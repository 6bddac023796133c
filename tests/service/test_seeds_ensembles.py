"""A search with `seeds`: its K seed trials run through RQ workers, one survives its
worker's SIGKILL (requeued, resumed from its checkpoint), and the ensembles a worker
builds when the search ends are served by the API. Real PostgreSQL and Redis."""

from __future__ import annotations

from fastapi.testclient import TestClient
from service_tools import Service, drive_search, epochs_of, parse, spiral_spec, wait_for

from api.main import create_app
from hpsearch.db import Storage
from hpsearch.executors import RQExecutor
from hpsearch.master import advance, create_search, reap

SEEDS = 2
EPOCHS = 8
# Epochs dominated by writing a ~12 MB checkpoint, so a kill lands mid-trial.
BIG = {"hidden_sizes": (1024, 1024), "points_per_class": 30}


def test_seed_trials_run_on_rq_workers_survive_a_kill_and_feed_the_api(
    rq_service: Service, rq_storage: Storage
) -> None:
    assert rq_service.redis_url is not None
    executor = RQExecutor(rq_service.redis_url)
    workers = [rq_service.start_worker() for _ in range(2)]
    raw = spiral_spec([{"trials": 2, "epochs": EPOCHS}], concurrency=2, **BIG,
                      ensembles={"kinds": ["seeds", "greedy"], "seeds": SEEDS})  # fmt: skip
    spec = parse(raw)
    search_id = create_search(rq_storage, spec, executor)
    seed_stage = len(spec.stages)

    def a_seed_trial_mid_way() -> int | None:
        reap(rq_storage, executor, rq_service.stale_after_s)
        advance(rq_storage, search_id, executor)
        for trial in rq_storage.best_trials(search_id, stage=seed_stage, status="running"):
            checkpoint = rq_storage.latest_checkpoint(trial.id)
            if checkpoint is not None and 2 <= checkpoint.epoch < EPOCHS - 1:
                return trial.id
        return None

    victim = wait_for(a_seed_trial_mid_way, 120, "a seed trial with two checkpoints")
    owner = rq_storage.get_trial(victim).worker_id or ""
    doomed = next(w for w in workers if f"-{w.pid}-" in owner)
    doomed.kill()
    rq_service.start_worker()
    assert drive_search(rq_storage, executor, rq_service, search_id, timeout_s=180) == "completed"

    seeds = rq_storage.best_trials(search_id, stage=seed_stage)
    assert len(seeds) == SEEDS and all(t.status == "completed" for t in seeds)
    best_config = next(t for t in rq_storage.best_trials(search_id, stage=0))
    assert {t.train_seed for t in seeds} | {best_config.train_seed} == {
        *{t.train_seed for t in seeds},
        best_config.train_seed,
    } and len({t.train_seed for t in seeds}) == SEEDS
    resumed = rq_storage.get_trial(victim)
    assert resumed.attempts == 2 and epochs_of(rq_storage, resumed) == list(range(1, EPOCHS + 1))
    assert sum(t.epochs for t in rq_storage.best_trials(search_id)) <= spec.budget

    wait_for(lambda: rq_storage.pending_ensembles(search_id) == 0, 120, "the ensemble builds")
    settings = rq_service.settings().model_copy(
        update={"api_tokens": ["service-token"], "api_master": False}
    )
    with TestClient(create_app(settings, executor=executor),
                    headers={"Authorization": "Bearer service-token"}) as client:  # fmt: skip
        listed = client.get(f"/searches/{search_id}/ensembles").json()
    by_kind = {e["kind"]: e for e in listed}
    assert set(by_kind) == {"seeds", "greedy"}, listed
    assert all(e["status"] == "completed" for e in listed), listed
    members = by_kind["seeds"]["members"]
    assert sorted(m["trial_id"] for m in members) == sorted(t.id for t in seeds)
    assert by_kind["seeds"]["figures"]["extra_epochs"] == SEEDS * EPOCHS
