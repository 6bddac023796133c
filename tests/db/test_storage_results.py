"""A search's `result` ("best" | "last") in storage, on SQLite and PostgreSQL: the last
epoch's accuracy per trial, the leaderboard, the best trial, the ensembles' candidates."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from factories import database_url, new_trials
from sqlalchemy import text

from hpsearch.db import Storage, create_db_engine, open_storage
from hpsearch.db.migrate import alembic_config, current_revision, head_revision
from hpsearch.db.records import CandidateCheckpoint
from worker.ensembles import build_pool

# Trial 0 peaks at epoch 3 and ends worse; trial 1 is steady. Best: 0 > 1 > 2; last: 1 > 2 > 0.
CURVES = ([0.5, 0.6, 0.9, 0.7], [0.5, 0.8, 0.8, 0.8], [0.6, 0.7, 0.75, 0.75])


def _search_with_curves(storage: Storage, result: str) -> tuple[int, list[int]]:
    """Three completed trials with CURVES, a checkpoint at every epoch."""
    search = storage.create_search("s", {}, seed=0, result=result)
    trials = storage.add_trials(search.id, new_trials(len(CURVES), epochs=4))
    for trial, curve in zip(trials, CURVES, strict=True):
        storage.claim_trial(trial.id, "w")
        for epoch, accuracy in enumerate(curve, start=1):
            finish = "completed" if epoch == len(curve) else None
            storage.commit_epoch(trial.id, "w", epoch, {"val_accuracy": accuracy},
                                 f"k/{trial.id}_{epoch}", finish)  # fmt: skip
    return search.id, [trial.id for trial in trials]


def test_each_trial_keeps_its_last_epochs_accuracy_beside_its_best(storage: Storage) -> None:
    search_id, ids = _search_with_curves(storage, "best")
    stored = [storage.get_trial(trial_id) for trial_id in ids]
    assert [(t.best_val_accuracy, t.last_val_accuracy, t.last_epoch) for t in stored] == [
        (0.9, 0.7, 4), (0.8, 0.8, 4), (0.75, 0.75, 4),
    ]  # fmt: skip
    views = {view.trial_id: view for view in storage.search_state(search_id)}
    assert views[ids[0]].last_val_accuracy == 0.7 and views[ids[0]].best_val_accuracy == 0.9


def test_a_replayed_epoch_and_a_non_finite_last_epoch(storage: Storage) -> None:
    search = storage.create_search("s", {}, seed=0)
    (trial,) = storage.add_trials(search.id, new_trials(1))
    storage.claim_trial(trial.id, "w")
    storage.record_epoch(trial.id, "w", 1, {"val_accuracy": 0.8})
    storage.record_epoch(trial.id, "w", 2, {"val_accuracy": 0.6})
    storage.record_epoch(trial.id, "w", 1, {"val_accuracy": 0.8})  # a retried commit
    assert storage.get_trial(trial.id).last_val_accuracy == 0.6
    storage.record_epoch(trial.id, "w", 3, {"val_accuracy": math.nan})
    stored = storage.get_trial(trial.id)
    assert (stored.best_val_accuracy, stored.last_val_accuracy, stored.last_epoch) == (0.8, None, 3)
    storage.discard_epochs_after(trial.id, "w", 2)
    stored = storage.get_trial(trial.id)
    assert (stored.best_val_accuracy, stored.last_val_accuracy, stored.last_epoch) == (0.8, 0.6, 2)
    storage.discard_epochs_after(trial.id, "w", 0)
    assert storage.get_trial(trial.id).last_val_accuracy is None


@pytest.mark.parametrize(("result", "order"), [("best", [0, 1, 2]), ("last", [1, 2, 0])])
def test_the_leaderboard_and_the_best_trial_follow_the_searchs_result(
    storage: Storage, result: str, order: list[int]
) -> None:
    search_id, ids = _search_with_curves(storage, result)
    assert storage.get_search(search_id).result == result
    assert [t.id for t in storage.best_trials(search_id)] == [ids[i] for i in order]
    board = storage.leaderboard(search_id, limit=2, offset=1)
    assert board.result == result and board.trials == storage.best_trials(search_id)[1:]
    page = storage.trial_page(ids[0])
    assert page.result == result and page.trial == storage.get_trial(ids[0])
    assert [epoch.val_accuracy for epoch in page.curves] == CURVES[0]
    assert storage.get_search(search_id).best_trial_id == ids[order[0]]  # running: computed
    assert storage.search_snapshot(search_id).search.best_trial_id == ids[order[0]]
    by_best = storage.best_trials(search_id, order_by="best_val_accuracy")
    assert [t.id for t in by_best] == ids
    by_last = storage.best_trials(search_id, order_by="last_val_accuracy")
    assert [t.id for t in by_last] == [ids[1], ids[2], ids[0]]
    total, points = storage.sampled_points(search_id, 4)
    assert total == 3 and [p.trial_id for p in points] == ids
    assert [p.result_val_accuracy for p in points] == [
        best if result == "best" else last for best, last in ((0.9, 0.7), (0.8, 0.8), (0.75, 0.75))
    ]
    assert [p.best_val_accuracy for p in storage.trial_points(search_id)] == [0.9, 0.8, 0.75]
    storage.complete_search(search_id, "done", [])
    assert storage.get_search(search_id).best_trial_id == ids[order[0]]  # stored at the end


@pytest.mark.parametrize(
    ("result", "members"),
    [
        # "best": each trial's member is its best checkpoint; the library holds any checkpoints.
        # (Ties: the newest checkpoint first.)
        ("best", {"top_k": [(0, 3), (1, 4), (2, 4)], "greedy": [(0, 3), (1, 4), (1, 3)],
                  "seeds": [(0, 3), (1, 4)]}),
        # "last": each trial's member is its last checkpoint, trials ranked by their last epoch.
        ("last", {"top_k": [(1, 4), (2, 4), (0, 4)], "greedy": [(1, 4), (2, 4), (0, 4)],
                  "seeds": [(1, 4), (0, 4)]}),
    ],
)  # fmt: skip
def test_the_ensembles_take_each_trials_result_checkpoint(
    storage: Storage, result: str, members: dict[str, list[tuple[int, int]]]
) -> None:
    search_id, ids = _search_with_curves(storage, result)
    candidates = storage.ensemble_candidates(search_id)
    trial_of = {trial_id: i for i, trial_id in enumerate(ids)}

    def load(candidate: CandidateCheckpoint) -> Any:  # the candidate stands for its member
        return candidate

    def chosen(kind: str, size: int, seeds: frozenset[int] = frozenset()) -> list[tuple[int, int]]:
        pool = build_pool(kind, size, candidates, load, 3, set(seeds), result)
        picked = {"top_k": pool.per_configuration, "greedy": pool.library, "seeds": pool.seeds}
        return [(trial_of[c.trial_id], c.epoch) for c in picked[kind]]

    assert chosen("top_k", 3) == members["top_k"]
    assert chosen("greedy", 3) == members["greedy"]
    assert chosen("seeds", 2, frozenset({ids[0], ids[1]})) == members["seeds"]
    snapshots = build_pool("snapshots", 2, candidates, load, 3, set(), result)
    best_trial = ids[0] if result == "best" else ids[1]
    assert {c.trial_id for c in snapshots.best_trial} == {best_trial}
    availability = storage.ensemble_availability(search_id, None)
    assert availability.best_trial_checkpoints == 4 and availability.configurations == 3


def test_a_bad_result_is_refused_naming_it_and_nothing_is_stored(storage: Storage) -> None:
    with pytest.raises(ValueError, match="result must be one of best, last; got 'worst'"):
        storage.create_search("s", {}, seed=0, result="worst")
    assert storage.list_searches() == []


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_database_of_revision_0004_upgrades_and_backfills_the_last_accuracy(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    postgres_url = request.getfixturevalue("postgres_url") if kind == "postgresql" else None
    with database_url(kind, tmp_path, postgres_url) as url:
        engine = create_db_engine(url)
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "0004")
            connection.execute(text(
                "INSERT INTO searches (id, name, spec, status, seed, created_at, concurrency) "
                "VALUES (1, 'old', '{}', 'completed', 0, CURRENT_TIMESTAMP, 1)"
            ))  # fmt: skip
            for trial_id, last_epoch, best in ((1, 3, 0.9), (2, 2, 0.8), (3, None, None)):
                connection.execute(text(
                    "INSERT INTO trials (id, search_id, stage, \"index\", params, config, "
                    "train_seed, epochs, status, attempts, max_attempts, enqueued_at, "
                    "best_val_accuracy, last_epoch, cancel_requested) VALUES (:id, 1, 0, :id, "
                    "'{}', '{}', 0, 3, 'completed', 1, 4, CURRENT_TIMESTAMP, :best, :last, false)"
                ).bindparams(id=trial_id, best=best, last=last_epoch))  # fmt: skip
            epochs = [(1, 1, 0.5), (1, 2, 0.9), (1, 3, 0.7), (2, 1, 0.8), (2, 2, None)]
            for trial_id, epoch, accuracy in epochs:
                connection.execute(text(
                    "INSERT INTO epoch_metrics (trial_id, epoch, val_accuracy, stats, created_at) "
                    "VALUES (:trial, :epoch, :accuracy, '{}', CURRENT_TIMESTAMP)"
                ).bindparams(trial=trial_id, epoch=epoch, accuracy=accuracy))  # fmt: skip
        engine.dispose()
        storage = open_storage(url)
        try:
            assert current_revision(storage.engine) == head_revision()
            (old,) = storage.list_searches()
            assert old.result == "best"
            trials = [storage.get_trial(trial_id) for trial_id in (1, 2, 3)]
            assert [(t.best_val_accuracy, t.last_val_accuracy) for t in trials] == [
                (0.9, 0.7), (0.8, None), (None, None),
            ]  # fmt: skip
            assert [t.id for t in storage.best_trials(old.id)] == [1, 2, 3]
        finally:
            storage.close()
