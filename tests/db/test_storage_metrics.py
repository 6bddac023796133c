"""Contract tests for epochs, checkpoints, leaderboards and workers, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from factories import new_trials
from sqlalchemy import event

from hpsearch.db import Storage
from hpsearch.errors import ConflictError, NotFoundError

METRICS = {
    "train_loss": 0.9,
    "val_loss": 1.1,
    "train_accuracy": 0.6,
    "val_accuracy": 0.55,
    "ema_val_accuracy": 0.5,
    "learning_rate": 1e-3,
    "stats": {"update_ratio": {"W1": 1e-3}, "dead_relu": [0.1, 0.2], "loss_history": [2.3, 1.9]},
}


def _running_trial(storage: Storage, worker_id: str = "w") -> int:
    search = storage.create_search("s", {}, seed=0)
    (trial,) = storage.add_trials(search.id, new_trials(1))
    assert storage.claim_trial(trial.id, worker_id) is not None
    return trial.id


def test_record_epoch_stores_metrics_and_moves_the_trial(storage: Storage) -> None:
    trial_id = _running_trial(storage)
    record = storage.record_epoch(trial_id, "w", 0, METRICS)
    assert record.trial_id == trial_id and record.epoch == 0
    assert {name: getattr(record, name) for name in METRICS} == METRICS
    assert record.created_at is not None and record.created_at.tzinfo == UTC
    storage.record_epoch(trial_id, "w", 1, METRICS | {"val_accuracy": 0.7})
    storage.record_epoch(trial_id, "w", 2, METRICS | {"val_accuracy": 0.6})
    trial = storage.get_trial(trial_id)
    assert (trial.best_val_accuracy, trial.last_epoch) == (0.7, 2)
    curves = storage.trial_curves(trial_id)
    assert [(e.epoch, e.val_accuracy) for e in curves] == [(0, 0.55), (1, 0.7), (2, 0.6)]


def test_record_epoch_duplicates(storage: Storage) -> None:
    trial_id = _running_trial(storage)
    first = storage.record_epoch(trial_id, "w", 3, METRICS)
    assert storage.record_epoch(trial_id, "w", 3, dict(METRICS)) == first
    assert len(storage.trial_curves(trial_id)) == 1
    with pytest.raises(ConflictError, match="epoch 3 with other values"):
        storage.record_epoch(trial_id, "w", 3, METRICS | {"val_loss": 9.0})
    assert storage.trial_curves(trial_id)[0].val_loss == 1.1


def test_record_epoch_stores_non_finite_values_as_none(storage: Storage) -> None:
    trial_id = _running_trial(storage)
    metrics = {"train_loss": math.inf, "val_loss": math.nan, "stats": {"history": [1.0, math.nan]}}
    record = storage.record_epoch(trial_id, "w", 0, metrics)
    assert (record.train_loss, record.val_loss, record.stats) == (
        None,
        None,
        {"history": [1.0, None]},
    )
    assert storage.record_epoch(trial_id, "w", 0, metrics) == record


def test_record_epoch_refuses_strangers_and_bad_input(storage: Storage) -> None:
    trial_id = _running_trial(storage)
    with pytest.raises(ConflictError, match="not running under intruder"):
        storage.record_epoch(trial_id, "intruder", 0, METRICS)
    with pytest.raises(ValueError, match="unknown keys"):
        storage.record_epoch(trial_id, "w", 0, {"val_acc": 0.5})
    with pytest.raises(ValueError, match="epoch"):
        storage.record_epoch(trial_id, "w", -1, METRICS)
    with pytest.raises(NotFoundError):
        storage.record_epoch(999999, "w", 0, METRICS)
    storage.finish_trial(trial_id, "w", "completed")
    with pytest.raises(ConflictError):
        storage.record_epoch(trial_id, "w", 0, METRICS)
    assert storage.trial_curves(trial_id) == []


def test_discard_epochs_after_recomputes_progress(storage: Storage) -> None:
    trial_id = _running_trial(storage)
    for epoch, accuracy in enumerate([0.5, 0.6, 0.9, 0.8]):
        storage.record_epoch(trial_id, "w", epoch, {"val_accuracy": accuracy})
    assert storage.discard_epochs_after(trial_id, "w", 1) == 2
    trial = storage.get_trial(trial_id)
    assert (trial.best_val_accuracy, trial.last_epoch) == (0.6, 1)
    assert [e.epoch for e in storage.trial_curves(trial_id)] == [0, 1]


def test_checkpoints(storage: Storage) -> None:
    trial_id = _running_trial(storage)
    assert storage.latest_checkpoint(trial_id) is None
    storage.record_checkpoint(trial_id, 1, "s/val0.5000_t000001_e001.npz", 0.5)
    second = storage.record_checkpoint(trial_id, 2, "s/val0.6000_t000001_e002.npz", 0.6)
    assert storage.latest_checkpoint(trial_id) == second
    replaced = storage.record_checkpoint(trial_id, 2, "s/val0.6100_t000001_e002.npz", 0.61)
    assert (replaced.id, replaced.path, replaced.val_accuracy) == (
        second.id,
        "s/val0.6100_t000001_e002.npz",
        0.61,
    )
    rows = storage.list_checkpoints(trial_id)
    assert [c.epoch for c in rows] == [1, 2]
    assert storage.delete_checkpoint_rows([rows[1].id]) == 1
    assert storage.latest_checkpoint(trial_id) == rows[0]
    assert storage.delete_checkpoint_rows([]) == 0
    with pytest.raises(NotFoundError):
        storage.record_checkpoint(999999, 0, "x.npz", 0.1)
    with pytest.raises(ValueError, match="path"):
        storage.record_checkpoint(trial_id, 0, "", 0.1)


def _leaderboard(storage: Storage) -> tuple[int, list[int]]:
    """Trials with best accuracies [0.3, 0.9, None, 0.9, 0.5] over stages [0, 0, 0, 1, 1]."""
    search = storage.create_search("s", {}, seed=0)
    trials = storage.add_trials(search.id, new_trials(3) + new_trials(2, stage=1, start=3))
    for trial, accuracy in zip(trials, [0.3, 0.9, None, 0.9, 0.5], strict=True):
        storage.claim_trial(trial.id, "w")
        if accuracy is not None:
            storage.record_epoch(trial.id, "w", 0, {"val_accuracy": accuracy})
        storage.finish_trial(trial.id, "w", "completed" if trial.index != 4 else "diverged")
    return search.id, [t.id for t in trials]


def test_best_trials_ordering_filters_and_pagination(storage: Storage) -> None:
    search_id, ids = _leaderboard(storage)
    assert [t.id for t in storage.best_trials(search_id)] == [
        ids[1],
        ids[3],
        ids[4],
        ids[0],
        ids[2],
    ]
    assert [t.id for t in storage.best_trials(search_id, limit=2, offset=1)] == [ids[3], ids[4]]
    assert storage.best_trials(search_id, limit=2, offset=5) == []
    completed = storage.best_trials(search_id, status="completed")
    assert [t.id for t in completed] == [ids[1], ids[3], ids[0], ids[2]]
    assert [t.id for t in storage.best_trials(search_id, stage=1)] == [ids[3], ids[4]]
    by_index = storage.best_trials(search_id, order_by="index", status=["completed", "diverged"])
    assert [t.index for t in by_index] == [0, 1, 2, 3, 4]
    assert storage.get_search(search_id).best_trial_id == ids[1]


@pytest.mark.parametrize("result", ["best", "last"])
@pytest.mark.parametrize("read", ["best_trials", "get_search"])
def test_the_best_trials_are_read_in_index_order(storage: Storage, read: str, result: str) -> None:
    """A leaderboard page, and a running search's best trial, need no sort: the index
    of the search's result has their order."""
    search = storage.create_search("s", {}, seed=0, result=result)
    trials = storage.add_trials(search.id, new_trials(3))
    for trial, accuracy in zip(trials, [0.3, None, 0.9], strict=True):
        storage.claim_trial(trial.id, "w")
        if accuracy is not None:
            storage.record_epoch(trial.id, "w", 0, {"val_accuracy": accuracy})
    statements: list[tuple[str, Any]] = []

    def capture(connection: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "ORDER BY" in statement:
            statements.append((statement, parameters))

    event.listen(storage.engine, "before_cursor_execute", capture)
    try:
        if read == "best_trials":
            storage.best_trials(search.id, limit=2)
        else:
            assert storage.get_search(search.id).status == "running"
    finally:
        event.remove(storage.engine, "before_cursor_execute", capture)
    ((statement, parameters),) = statements
    with storage.engine.connect() as connection:
        if storage.engine.dialect.name == "postgresql":
            connection.exec_driver_sql("SET enable_sort = off")  # a sort only if it must
            plan = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters).all()
        else:
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
    text = "\n".join(str(row) for row in plan)
    assert f"ix_trials_search_{result}" in text
    assert "Sort" not in text and "TEMP B-TREE" not in text, text


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 10_000}, "limit"),
        ({"offset": -1}, "offset"),
        ({"status": "done"}, "status"),
        ({"order_by": "val_loss"}, "order_by"),
    ],
)
def test_best_trials_rejects_bad_arguments(storage: Storage, kwargs: dict, argument: str) -> None:
    search = storage.create_search("s", {}, seed=0)
    with pytest.raises(ValueError, match=argument):
        storage.best_trials(search.id, **kwargs)


def test_workers_register_heartbeat_and_go_stale(storage: Storage) -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    registered = storage.register_worker("host-1:42", "host-1", 42, now=start)
    assert (registered.status, registered.alive, registered.started_at) == ("idle", True, start)
    storage.register_worker("host-2:7", "host-2", 7, now=start)
    later = start + timedelta(seconds=8)
    busy = storage.worker_heartbeat("host-1:42", current_trial_id=5, status="busy", now=later)
    assert (busy.current_trial_id, busy.last_heartbeat) == (5, later)
    workers = storage.list_workers(stale_after_s=5.0, now=later + timedelta(seconds=1))
    assert [(w.id, w.alive) for w in workers] == [("host-1:42", True), ("host-2:7", False)]
    storage.worker_heartbeat("host-1:42", status="stopped", now=later)
    assert not any(w.alive for w in storage.list_workers(5.0, now=later))
    again = storage.register_worker("host-1:42", "host-1", 43, now=later)
    assert (again.pid, again.status, again.current_trial_id) == (43, "idle", None)
    with pytest.raises(NotFoundError):
        storage.worker_heartbeat("ghost")
    with pytest.raises(ValueError, match="status"):
        storage.worker_heartbeat("host-1:42", status="asleep")


def test_trial_page_reads_the_trial_with_its_curves_checkpoints_and_events(
    storage: Storage,
) -> None:
    trial_id = _running_trial(storage)
    storage.commit_epoch(trial_id, "w", 1, METRICS, checkpoint_path="s/a_e001.npz")
    storage.commit_epoch(trial_id, "w", 2, METRICS, checkpoint_path="s/a_e002.npz")
    page = storage.trial_page(trial_id)
    assert page.trial == storage.get_trial(trial_id)
    assert page.curves == storage.trial_curves(trial_id) and len(page.curves) == 2
    assert page.checkpoints == storage.list_checkpoints(trial_id) and len(page.checkpoints) == 2
    assert [e.event for e in page.events] == ["created", "claimed"]
    assert page.events == storage.trial_events(trial_id)
    with pytest.raises(NotFoundError, match="trial 999999"):
        storage.trial_page(999999)
    for read in (storage.trial_curves, storage.list_checkpoints, storage.trial_events):
        with pytest.raises(NotFoundError, match="trial 999999"):
            read(999999)


def test_commit_epoch_stores_epoch_and_checkpoint_together(storage: Storage) -> None:
    trial_id = _running_trial(storage)
    commit = storage.commit_epoch(trial_id, "w", 1, METRICS, checkpoint_path="s/a_e001.npz")
    assert (commit.status, commit.cancel_requested, commit.epoch) == ("running", False, 1)
    (checkpoint,) = storage.list_checkpoints(trial_id)
    assert (checkpoint.id, checkpoint.epoch, checkpoint.path) == (
        commit.checkpoint_id,
        1,
        "s/a_e001.npz",
    )
    assert checkpoint.val_accuracy == 0.55
    assert [e.epoch for e in storage.trial_curves(trial_id)] == [1]
    trial = storage.get_trial(trial_id)
    assert (trial.last_epoch, trial.best_val_accuracy, trial.status) == (1, 0.55, "running")
    # A retry of the same commit is a no-op; other values are a conflict that changes nothing.
    again = storage.commit_epoch(trial_id, "w", 1, dict(METRICS), checkpoint_path="s/a_e001.npz")
    assert again == commit
    with pytest.raises(ConflictError, match="other values"):
        storage.commit_epoch(
            trial_id, "w", 1, METRICS | {"val_accuracy": 0.9}, "s/b.npz", "completed"
        )
    assert storage.get_trial(trial_id).status == "running"
    assert [c.path for c in storage.list_checkpoints(trial_id)] == ["s/a_e001.npz"]


def test_commit_epoch_can_finish_the_trial(storage: Storage) -> None:
    trial_id = _running_trial(storage)
    storage.commit_epoch(trial_id, "w", 1, METRICS | {"val_accuracy": 0.7})
    commit = storage.commit_epoch(trial_id, "w", 2, METRICS, "s/e002.npz", finish="completed")
    assert commit.status == "completed" and commit.checkpoint_id is not None
    trial = storage.get_trial(trial_id)
    assert (trial.status, trial.error, trial.failure_kind) == ("completed", None, None)
    assert (trial.last_epoch, trial.best_val_accuracy) == (2, 0.7)
    assert trial.finished_at is not None
    with pytest.raises(ConflictError, match="not running under w"):
        storage.commit_epoch(trial_id, "w", 3, METRICS)


def test_commit_epoch_finish_follows_the_retry_budget(storage: Storage) -> None:
    trial_id = _running_trial(storage)  # attempt 1 of 4, an "oom" failure has 1 retry
    commit = storage.commit_epoch(trial_id, "w", 1, METRICS, None, "failed", "boom", "oom")
    assert commit.status == "queued"
    trial = storage.get_trial(trial_id)
    assert (trial.status, trial.worker_id, trial.error, trial.failure_kind) == (
        "queued", None, "boom", "oom",
    )  # fmt: skip
    assert storage.claim_trial(trial_id, "w") is not None  # attempt 2: no retry left
    commit = storage.commit_epoch(trial_id, "w", 1, METRICS, None, "failed", "boom", "oom")
    assert commit.status == "failed"
    assert storage.get_trial(trial_id).finished_at is not None


def test_commit_epoch_reports_cancel_requests_and_refuses_strangers(storage: Storage) -> None:
    trial_id = _running_trial(storage)
    storage.request_cancel_trial(trial_id)
    assert storage.commit_epoch(trial_id, "w", 1, METRICS).cancel_requested is True
    commit = storage.commit_epoch(trial_id, "w", 2, METRICS, finish="cancelled", error="asked")
    trial = storage.get_trial(trial_id)
    assert (commit.status, trial.status, trial.failure_kind, trial.error) == (
        "cancelled", "cancelled", "cancel", "asked",
    )  # fmt: skip
    other = _running_trial(storage)
    with pytest.raises(ConflictError, match="not running under intruder"):
        storage.commit_epoch(other, "intruder", 1, METRICS, "s/x.npz")
    assert storage.list_checkpoints(other) == [] and storage.trial_curves(other) == []
    with pytest.raises(NotFoundError):
        storage.commit_epoch(999999, "w", 1, METRICS)
    with pytest.raises(ValueError, match="finish"):
        storage.commit_epoch(other, "w", 1, METRICS, finish="queued")
    with pytest.raises(ValueError, match="checkpoint_path"):
        storage.commit_epoch(other, "w", 1, METRICS, checkpoint_path="")
    with pytest.raises(ValueError, match="epoch"):
        storage.commit_epoch(other, "w", -1, METRICS)


def test_commit_epoch_drops_pruned_checkpoint_rows_of_its_trial_only(storage: Storage) -> None:
    trial_id = _running_trial(storage)
    other = _running_trial(storage)
    first = storage.commit_epoch(trial_id, "w", 1, METRICS, "s/e1.npz").checkpoint_id
    foreign = storage.commit_epoch(other, "w", 1, METRICS, "s/o1.npz").checkpoint_id
    assert first is not None and foreign is not None
    storage.commit_epoch(
        trial_id, "w", 2, METRICS, "s/e2.npz", drop_checkpoint_ids=[first, foreign]
    )
    assert [c.path for c in storage.list_checkpoints(trial_id)] == ["s/e2.npz"]
    assert [c.path for c in storage.list_checkpoints(other)] == ["s/o1.npz"]
