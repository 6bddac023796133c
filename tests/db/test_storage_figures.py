"""Contract tests of the dashboard's queries (hpsearch.db.figures), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from factories import new_trials
from sqlalchemy import update

from hpsearch.db import Storage
from hpsearch.db.models import TrialRow
from hpsearch.errors import NotFoundError

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _set(storage: Storage, trial_id: int, **values: object) -> None:
    with storage.engine.begin() as connection:
        connection.execute(update(TrialRow).where(TrialRow.id == trial_id).values(**values))


def _search_with_history(storage: Storage) -> tuple[int, list[int]]:
    """Trials: 1 done by w1 (0-10 s), 2 done by w1 (20-30 s), 3 running on w2 since 25 s,
    4 a promotion of 1 that trained from epoch 2 to 5, 5 queued."""
    search = storage.create_search("s", {}, seed=0)
    ids = [t.id for t in storage.add_trials(search.id, new_trials(3))]
    (child,) = storage.add_trials(search.id, new_trials(1, stage=1, parent_trial_id=ids[0]))
    (queued,) = storage.add_trials(search.id, new_trials(1, stage=1, start=1))
    seconds = lambda s: T0 + timedelta(seconds=s)  # noqa: E731
    _set(storage, ids[0], worker_id="w1", status="completed", started_at=seconds(0),
         finished_at=seconds(10), last_epoch=2, best_val_accuracy=0.5)  # fmt: skip
    _set(storage, ids[1], worker_id="w1", status="completed", started_at=seconds(20),
         finished_at=seconds(30), last_epoch=1, best_val_accuracy=0.9)  # fmt: skip
    _set(storage, ids[2], worker_id="w2", status="running", started_at=seconds(25), last_epoch=None)
    _set(storage, child.id, worker_id="w1", status="completed", started_at=seconds(31),
         finished_at=seconds(33), last_epoch=5, best_val_accuracy=0.7)  # fmt: skip
    return search.id, [*ids, child.id, queued.id]


def test_points_and_recent_trials(storage: Storage) -> None:
    search_id, ids = _search_with_history(storage)
    points = storage.trial_points(search_id)
    assert [p.trial_id for p in points] == ids
    assert points[1].params == {"learning_rate": 0.01, "index": 1}
    assert points[3].started_at == T0 + timedelta(seconds=31)
    assert [p.best_val_accuracy for p in points] == [0.5, 0.9, None, 0.7, None]
    recent = storage.recent_trials(search_id, 2)
    assert [p.trial_id for p in recent] == [ids[2], ids[3]]  # started at 25 s, then 31 s
    with pytest.raises(NotFoundError):
        storage.trial_points(search_id + 100)


def test_sampled_points_keep_everything_that_fits(storage: Storage) -> None:
    search_id, ids = _search_with_history(storage)
    total, points = storage.sampled_points(search_id, 5)
    assert total == 5 and [p.trial_id for p in points] == ids
    assert points == storage.trial_points(search_id)
    with pytest.raises(NotFoundError):
        storage.sampled_points(search_id + 100, 5)


def test_sampled_points_keep_the_best_quarter_and_an_even_spread_in_id_order(
    storage: Storage,
) -> None:
    search = storage.create_search("s", {}, seed=0)
    ids = [t.id for t in storage.add_trials(search.id, new_trials(100))]
    accuracy = {trial_id: (i * 37 % 100) / 100 for i, trial_id in enumerate(ids)}
    accuracy[ids[0]] = None  # never scored: last in the ranking, kept only by the spread
    for trial_id, value in accuracy.items():
        _set(storage, trial_id, best_val_accuracy=value)
    total, points = storage.sampled_points(search.id, 20)
    kept = [p.trial_id for p in points]
    assert total == 100 and len(kept) == 20 and kept == sorted(kept)
    ranked = sorted((i for i in ids if accuracy[i] is not None), key=lambda i: -accuracy[i])
    assert set(ranked[:5]) <= set(kept)  # the best quarter of 20
    rest = [i for i in ids if i not in ranked[:5]]
    positions = [rest.index(i) for i in kept if i in rest]
    assert positions[0] == 0 and len(positions) == 15
    gaps = {b - a for a, b in pairwise(positions)}
    assert gaps <= {len(rest) // 15, len(rest) // 15 + 1}  # evenly spread over the rest


def test_worker_spans_sum_busy_seconds_and_count_running_trials_until_now(
    storage: Storage,
) -> None:
    search_id, _ = _search_with_history(storage)
    spans = storage.worker_spans(search_id, now=T0 + timedelta(seconds=40))
    assert [(s.worker_id, s.trials) for s in spans] == [("w1", 3), ("w2", 1)]
    assert spans[0].busy_s == pytest.approx(10 + 10 + 2, abs=1e-3)
    assert spans[1].busy_s == pytest.approx(15, abs=1e-3)
    assert (spans[0].first_start, spans[0].last_end) == (T0, T0 + timedelta(seconds=33))


def test_epochs_trained_counts_only_what_each_promotion_added(storage: Storage) -> None:
    search_id, _ = _search_with_history(storage)
    assert storage.epochs_trained(search_id) == 2 + 1 + 0 + (5 - 2)


def test_learned_version_changes_with_the_stages_and_the_completed_results_only(
    storage: Storage,
) -> None:
    search_id, ids = _search_with_history(storage)
    first = storage.learned_version(search_id)
    assert storage.learned_version(search_id) == first
    _set(storage, ids[2], best_val_accuracy=0.95, last_epoch=1)  # running: not a result yet
    assert storage.learned_version(search_id) == first
    _set(storage, ids[2], status="completed", finished_at=T0 + timedelta(seconds=40))
    second = storage.learned_version(search_id)
    assert second != first
    storage.record_stage(search_id, 0, {"learning_rate": {"kind": "uniform", "low": 0, "high": 1}})
    assert storage.learned_version(search_id) not in (first, second)
    other, _ = _search_with_history(storage)
    assert storage.learned_version(other) != storage.learned_version(search_id)
    with pytest.raises(NotFoundError):
        storage.learned_version(search_id + 100)
