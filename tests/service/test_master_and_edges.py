"""Concurrent masters, cancel requests, unreachable services, and bad specs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections import Counter
from pathlib import Path

import pytest
from service_tools import CLI_MASTER, HPSEARCH, Service, parse, spiral_spec, wait_for

from hpsearch.db import Storage, TrialRecord, open_storage
from hpsearch.executors import LocalExecutor
from hpsearch.master import AdvanceResult, advance, create_search

STAGES = [{"trials": 6, "epochs": 1}, {"trials": 3, "epochs": 2, "keep": 0.5}]


def _concurrent_advances(url: str, search_id: int, count: int) -> list[AdvanceResult]:
    """`count` threads, each with its own engine, call `advance` at the same moment."""
    storages = [open_storage(url) for _ in range(count)]
    barrier = threading.Barrier(count)
    results: list[AdvanceResult | BaseException] = [RuntimeError("not run")] * count

    def body(position: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[position] = advance(storages[position], search_id, LocalExecutor())
        except BaseException as error:  # reported below
            results[position] = error

    threads = [threading.Thread(target=body, args=(p,)) for p in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for storage in storages:
        storage.close()
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    return [r for r in results if isinstance(r, AdvanceResult)]


def _complete(storage: Storage, trial: TrialRecord) -> None:
    """Play a worker: claim, commit the trial's epochs with a made-up accuracy, finish."""
    assert storage.claim_trial(trial.id, "test-worker") is not None
    first = (
        1 if trial.parent_trial_id is None else storage.get_trial(trial.parent_trial_id).epochs + 1
    )
    for epoch in range(first, trial.epochs + 1):
        accuracy = 0.1 + 0.05 * ((trial.index * 7 + epoch) % 11)
        storage.record_epoch(trial.id, "test-worker", epoch, {"val_accuracy": accuracy})
    assert storage.finish_trial(trial.id, "test-worker", "completed") is not None


def test_concurrent_advances_never_duplicate_trials(rq_service: Service) -> None:
    storage = open_storage(rq_service.database_url)
    try:
        spec = parse(spiral_spec(STAGES, concurrency=3))
        search = storage.create_search(spec.name, spec.model_dump(mode="json"), seed=spec.seed,
                                       concurrency=spec.concurrency)  # fmt: skip
        storage.register_worker("test-worker", "localhost", 1)
        for _ in range(20):
            _concurrent_advances(rq_service.database_url, search.id, 4)
            trials = storage.best_trials(search.id, limit=100, order_by="index")
            keys = Counter((trial.stage, trial.index) for trial in trials)
            assert max(keys.values()) == 1
            queued = [trial for trial in trials if trial.status == "queued"]
            assert len(queued) <= spec.concurrency
            if storage.get_search(search.id).status != "running":
                break
            for trial in queued:
                _complete(storage, trial)
        assert storage.get_search(search.id).status == "completed"
        by_stage = Counter(trial.stage for trial in storage.best_trials(search.id, limit=100))
        assert by_stage == {0: 6, 1: 3}
        assert [stage.stage for stage in storage.list_stages(search.id)] == [0, 1]
    finally:
        storage.close()


def test_a_cancel_request_stops_a_running_trial_within_one_epoch(local_service: Service) -> None:
    local_service.heartbeat_s = 0.1
    storage = open_storage(local_service.database_url)
    try:
        raw = spiral_spec([{"trials": 1, "epochs": 40}], concurrency=1, hidden_sizes=(1024, 1024),
                          points_per_class=30)  # fmt: skip
        search_id = create_search(storage, parse(raw), LocalExecutor())
        (trial,) = storage.best_trials(search_id)
        local_service.start_worker()
        wait_for(lambda: (storage.get_trial(trial.id).last_epoch or 0) >= 2, 60, "two epochs")
        storage.request_cancel_trial(trial.id)
        epoch_at_request = storage.get_trial(trial.id).last_epoch or 0
        wait_for(lambda: storage.get_trial(trial.id).status == "cancelled", 20, "the cancel")
        cancelled = storage.get_trial(trial.id)
        assert (cancelled.last_epoch or 0) <= epoch_at_request + 1, (epoch_at_request, cancelled)
        assert (cancelled.failure_kind, cancelled.attempts) == ("cancel", 1), cancelled
    finally:
        storage.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_master_stops_cleanly_on_sigterm_and_sigint(
    local_service: Service, signum: signal.Signals
) -> None:
    """`docker stop` sends SIGTERM to the master as PID 1, which has no default action
    there: without its own handler the master ignored it and was SIGKILLed 10 s later."""
    master = local_service.start_worker(code=CLI_MASTER, HPSEARCH_LOG_FORMAT="json")

    def events() -> list[str]:
        lines = [json.loads(line) for line in master.log().splitlines() if line.startswith("{")]
        return [str(line.get("event")) for line in lines]

    wait_for(lambda: "master.started" in events(), 60, lambda: f"the master up\n{master.log()}")
    os.kill(master.pid, signum)
    assert master.process.wait(timeout=10) == 0, master.log()
    assert events()[-2:] == ["master.stopping", "master.stopped"], master.log()


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"HPSEARCH_REDIS_URL": "redis://127.0.0.1:1/0"}, 'connection_lost to="Redis'),
        (
            {"HPSEARCH_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"},
            'connection_lost to="the database"',
        ),
    ],
)
def test_a_worker_without_its_services_says_so_and_retries(
    local_service: Service, broken: dict[str, str], message: str
) -> None:
    code = "from hpsearch.cli import app; app(['worker'], prog_name='hpsearch')"
    worker = local_service.start_worker(code, **broken)
    wait_for(lambda: worker.log().count(message) >= 2, 30, f"two {message!r} lines", 0.1)
    assert worker.process.poll() is None, "it retries instead of exiting"
    assert "Traceback" not in worker.log()
    assert "retry_in_s=" in worker.log()
    worker.kill()


@pytest.mark.parametrize(
    ("spec_text", "suffix", "named"),
    [
        ('{"name": "bad", "space": {}, "stages": [{"trials": 2, "epochs": 1}]}', ".json", "space"),
        ("name = 'bad'\nstages = [{trials = 0, epochs = 1}]\n[space.\"optimizer.nonsense\"]\n"
         "kind = 'uniform'\nlow = 0.1\nhigh = 0.2\n", ".toml", "nonsense"),
        ("name = 'bad\n", ".toml", "bad"),
    ],
)  # fmt: skip
def test_an_invalid_spec_gets_a_clear_error_and_writes_nothing(
    local_service: Service, spec_text: str, suffix: str, named: str
) -> None:
    spec_path = local_service.home / f"bad{suffix}"
    spec_path.write_text(spec_text)
    command = [*HPSEARCH, "run", str(spec_path)]
    done = subprocess.run(command, cwd=local_service.home, env=local_service.env(),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "error" in done.stderr and named in done.stderr
    assert "Traceback" not in done.stderr
    database = Path(local_service.database_url.removeprefix("sqlite:///"))
    if database.exists():
        storage = open_storage(local_service.database_url)
        try:
            assert storage.list_searches() == []
        finally:
            storage.close()
