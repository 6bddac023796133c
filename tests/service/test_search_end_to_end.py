"""A whole staged search on the spiral: local mode (`hpsearch run`) and RQ mode."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from service_tools import (
    HPSEARCH,
    Service,
    drive_search,
    epochs_of,
    parse,
    spiral_spec,
    wait_for,
    write_spec,
)

from hpsearch.db import Storage, open_storage
from hpsearch.executors import RQExecutor
from hpsearch.master import create_search

STAGES = [{"trials": 4, "epochs": 1}, {"trials": 2, "epochs": 2, "keep": 0.5}]


def _assert_all_stages_ran(storage: Storage, search_id: int, stages: list[dict]) -> None:
    trials = storage.best_trials(search_id, limit=1000, order_by="index")
    assert storage.get_search(search_id).status == "completed"
    assert [stage.stage for stage in storage.list_stages(search_id)] == list(range(len(stages)))
    for number, stage in enumerate(stages):
        of_stage = [trial for trial in trials if trial.stage == number]
        assert sorted(trial.index for trial in of_stage) == list(range(stage["trials"]))
        assert {trial.status for trial in of_stage} == {"completed"}
        assert {trial.epochs for trial in of_stage} == {stage["epochs"]}
        for trial in of_stage:
            first = 1 if trial.parent_trial_id is None else storage.get_trial(
                trial.parent_trial_id).epochs + 1  # fmt: skip
            assert epochs_of(storage, trial) == list(range(first, trial.epochs + 1))
            assert trial.last_epoch == trial.epochs


def _hpsearch_run(service: Service, spec_path: Path, workers: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*HPSEARCH, "run", str(spec_path), "--workers", str(workers), "--json"],
        cwd=service.home, env=service.env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_local_mode_runs_every_stage_with_the_right_trial_counts(local_service: Service) -> None:
    spec_path = write_spec(local_service.home / "spec.json", spiral_spec(STAGES))
    done = _hpsearch_run(local_service, spec_path, workers=2)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] == "completed"
    assert summary["counts"]["completed"] == 6
    assert Path(summary["best_checkpoint"]).is_file()
    # `hpsearch run` ends once a worker built the default ensembles, printed beside the best
    # single model; their files sit among the checkpoints.
    kinds = [(e["kind"], e["status"]) for e in summary["ensembles"]]
    assert kinds == [(k, "completed") for k in ("top_k", "snapshots", "polyak", "greedy")]
    assert all(Path(e["path"]).is_file() for e in summary["ensembles"])
    assert {e["best_single"]["val_accuracy"] for e in summary["ensembles"]} == {
        max(e["best_single"]["val_accuracy"] for e in summary["ensembles"])
    }
    assert summary["events"][-1]["event"] in ("completed", "diverged")  # the trial history
    storage = open_storage(local_service.database_url)
    try:
        _assert_all_stages_ran(storage, summary["search_id"], STAGES)
    finally:
        storage.close()
    best_id = summary["leaderboard"][0]["trial_id"]
    shown = subprocess.run(
        [*HPSEARCH, "status", str(summary["search_id"]), "--trial", str(best_id), "--json"],
        cwd=local_service.home, env=local_service.env(), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    history = json.loads(shown.stdout)["events"]
    assert [e["event"] for e in history] == ["created", "claimed", "completed"]
    assert history[1]["worker_id"] == history[2]["worker_id"] and history[2]["attempt"] == 1


def test_sqlite_with_four_local_workers_is_never_locked(local_service: Service) -> None:
    stages = [{"trials": 16, "epochs": 1}, {"trials": 4, "epochs": 2, "keep": 0.25}]
    spec_path = write_spec(local_service.home / "spec.json", spiral_spec(stages, concurrency=4))
    done = _hpsearch_run(local_service, spec_path, workers=4)
    assert done.returncode == 0, done.stderr
    assert "locked" not in done.stderr.lower()
    storage = open_storage(local_service.database_url)
    try:
        search_id = json.loads(done.stdout)["search_id"]
        _assert_all_stages_ran(storage, search_id, stages)
        errors = [t.error for t in storage.best_trials(search_id, limit=100) if t.error]
        assert errors == []
    finally:
        storage.close()


def test_rq_mode_runs_every_stage_with_two_rq_workers(
    rq_service: Service, rq_storage: Storage
) -> None:
    for _ in range(2):
        rq_service.start_worker()
    wait_for(lambda: len(rq_storage.list_workers(60.0)) == 2, 60, "two registered workers")
    assert rq_service.redis_url is not None
    executor = RQExecutor(rq_service.redis_url)
    search_id = create_search(rq_storage, parse(spiral_spec(STAGES)), executor)
    assert drive_search(rq_storage, executor, rq_service, search_id) == "completed"
    _assert_all_stages_ran(rq_storage, search_id, STAGES)
    workers = {t.worker_id for t in rq_storage.best_trials(search_id, limit=100)}
    assert len(workers) == 2, "both RQ workers should have run trials"
    assert "Traceback" not in rq_service.logs()
