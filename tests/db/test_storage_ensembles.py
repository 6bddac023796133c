"""Contract tests for ensemble rows and their candidates, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from factories import database_url, new_trials
from sqlalchemy import text

from hpsearch.db import Storage, create_db_engine, open_storage
from hpsearch.db.convert import utc_now
from hpsearch.db.migrate import alembic_config, current_revision, head_revision
from hpsearch.errors import ConflictError, NotFoundError


def test_ensembles_are_queued_claimed_once_and_finished(storage: Storage) -> None:
    search = storage.create_search("s", {}, seed=0)
    greedy, top = storage.create_ensembles(search.id, [("greedy", 50), ("top_k", 3)])
    assert (greedy.status, greedy.kind, greedy.size, greedy.members) == ("queued", "greedy", 50, [])
    assert storage.queued_ensemble_ids(search.id) == [greedy.id, top.id]
    assert storage.pending_ensembles(search.id) == 2
    claimed = storage.claim_ensemble(greedy.id, "w1")
    assert claimed is not None and claimed.status == "running" and claimed.attempts == 1
    assert storage.claim_ensemble(greedy.id, "w2") is None
    with pytest.raises(ConflictError):
        storage.finish_ensemble(greedy.id, "w2", figures={})
    members = [{"trial_id": 1, "epoch": 3, "weight": 1.0}]
    done = storage.finish_ensemble(
        greedy.id, "w1", members=members, path="search_000001/x.npz",
        figures={"val_accuracy": 0.9, "test_accuracy": float("nan")},
    )  # fmt: skip
    assert done.status == "completed" and done.val_accuracy == 0.9 and done.test_accuracy is None
    assert done.members == members and done.finished_at is not None
    assert storage.get_ensemble(greedy.id) == done
    assert [e.id for e in storage.list_ensembles(search.id)] == [greedy.id, top.id]
    assert storage.pending_ensembles(search.id) == 1
    with pytest.raises(NotFoundError, match="ensemble 999"):
        storage.get_ensemble(999)


def test_a_failed_build_keeps_its_error(storage: Storage) -> None:
    search = storage.create_search("s", {}, seed=0)
    (row,) = storage.create_ensembles(search.id, [("polyak", 5)])
    storage.claim_ensemble(row.id, "w")
    failed = storage.finish_ensemble(row.id, "w", error="no checkpoints")
    assert failed.status == "failed" and failed.error == "no checkpoints" and failed.path is None


def test_a_build_of_a_silent_worker_is_requeued_then_failed(storage: Storage) -> None:
    search = storage.create_search("s", {}, seed=0)
    (row,) = storage.create_ensembles(search.id, [("greedy", 50)])
    storage.register_worker("alive", "h", 1)
    for attempt in range(1, 4):
        assert storage.claim_ensemble(row.id, "gone") is not None
        assert storage.requeue_stale_ensembles(60.0) != []
        expected = "queued" if attempt < 3 else "failed"
        assert storage.get_ensemble(row.id).status == expected
    (other,) = storage.create_ensembles(search.id, [("top_k", 2)])
    storage.claim_ensemble(other.id, "alive")
    assert storage.requeue_stale_ensembles(60.0) == []
    later = utc_now() + timedelta(seconds=120)
    assert [e.id for e in storage.requeue_stale_ensembles(60.0, now=later)] == [other.id]


def test_candidates_are_the_checkpoints_best_first(storage: Storage) -> None:
    search = storage.create_search("s", {}, seed=0)
    trials = storage.add_trials(search.id, new_trials(2))
    for trial, accuracies in zip(trials, ([0.5, 0.7], [0.6, None]), strict=True):
        storage.claim_trial(trial.id, "w")
        for epoch, accuracy in enumerate(accuracies, start=1):
            metrics = {"val_accuracy": accuracy, "stats": {}}
            storage.commit_epoch(trial.id, "w", epoch, metrics, f"k/{trial.id}_{epoch}")
    candidates = storage.ensemble_candidates(search.id)
    assert [(c.trial_id, c.epoch) for c in candidates] == [
        (trials[0].id, 2), (trials[1].id, 1), (trials[0].id, 1), (trials[1].id, 2),
    ]  # fmt: skip
    assert candidates[0].params == trials[0].params and candidates[0].stage == 0
    assert len(storage.ensemble_candidates(search.id, limit=2)) == 2
    only = storage.ensemble_candidates(search.id, trial_ids=[trials[1].id])
    assert {c.trial_id for c in only} == {trials[1].id}
    assert storage.trials_of_stage(search.id, 0) == [(t.id, "running") for t in trials]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_database_of_revision_0001_upgrades_in_place(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    postgres_url = request.getfixturevalue("postgres_url") if kind == "postgresql" else None
    with database_url(kind, tmp_path, postgres_url) as url:
        engine = create_db_engine(url)
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "0001")
            connection.execute(
                text("INSERT INTO searches (name, spec, status, seed, created_at, concurrency) "
                     "VALUES ('old', '{}', 'completed', 0, CURRENT_TIMESTAMP, 1)")
            )  # fmt: skip
        engine.dispose()
        storage = open_storage(url)
        try:
            (old,) = storage.list_searches()
            assert old.name == "old" and storage.list_ensembles(old.id) == []
            assert current_revision(storage.engine) == head_revision()
        finally:
            storage.close()
