"""Contract tests for searches and stages, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import UTC

import pytest
from factories import new_trials

from hpsearch.db import SEARCH_TRANSITIONS, Storage
from hpsearch.errors import ConflictError, NotFoundError


def test_create_and_get_search_round_trip(storage: Storage) -> None:
    spec = {"dataset": "spiral", "stages": [{"trials": 4}], "nested": {"a": 1.5}}
    created = storage.create_search("spiral", spec, seed=7, budget_epochs=40, concurrency=2)
    fetched = storage.get_search(created.id)
    assert fetched == created
    assert (fetched.name, fetched.spec, fetched.seed) == ("spiral", spec, 7)
    assert (fetched.status, fetched.budget_epochs, fetched.concurrency) == ("running", 40, 2)
    assert fetched.created_at.tzinfo == UTC
    assert fetched.finished_at is None and fetched.best_trial_id is None


def test_records_are_frozen(storage: Storage) -> None:
    search = storage.create_search("s", {}, seed=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        search.status = "failed"  # type: ignore[misc]


def test_large_seed_is_stored_exactly(storage: Storage) -> None:
    search = storage.create_search("s", {}, seed=2**63 - 1)
    assert storage.get_search(search.id).seed == 2**63 - 1


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"name": ""}, "name"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**63}, "seed"),
        ({"concurrency": 0}, "concurrency"),
        ({"budget_epochs": 0}, "budget_epochs"),
    ],
)
def test_create_search_rejects_bad_arguments(storage: Storage, kwargs: dict, argument: str) -> None:
    arguments = {"name": "s", "spec": {}, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=argument):
        storage.create_search(**arguments)
    assert storage.list_searches() == []


def test_missing_search_raises_not_found(storage: Storage) -> None:
    with pytest.raises(NotFoundError, match="search 999"):
        storage.get_search(999)
    with pytest.raises(NotFoundError):
        storage.set_search_status(999, "paused")


def test_list_searches_newest_first_with_pagination(storage: Storage) -> None:
    ids = [storage.create_search(f"s{i}", {}, seed=i).id for i in range(5)]
    assert [s.id for s in storage.list_searches()] == ids[::-1]
    assert [s.id for s in storage.list_searches(limit=2, offset=1)] == ids[3:1:-1]
    storage.set_search_status(ids[0], "paused")
    assert [s.id for s in storage.list_searches(status="paused")] == [ids[0]]
    with pytest.raises(ValueError, match="limit"):
        storage.list_searches(limit=0)


@pytest.mark.parametrize(
    ("start", "target"),
    [(s, t) for s in SEARCH_TRANSITIONS for t in SEARCH_TRANSITIONS if s != t],
)
def test_search_transitions_follow_the_table(storage: Storage, start: str, target: str) -> None:
    search = storage.create_search("s", {}, seed=0)
    if start != "running":
        if start not in SEARCH_TRANSITIONS["running"]:
            pytest.skip(f"{start} is not reachable from running")
        storage.set_search_status(search.id, start)
    if target in SEARCH_TRANSITIONS[start]:
        assert storage.set_search_status(search.id, target, reason="why").status == target
    else:
        with pytest.raises(ConflictError, match=f"is {start}; it cannot become {target}"):
            storage.set_search_status(search.id, target)
        assert storage.get_search(search.id).status == start


def test_finishing_a_search_freezes_finished_at_and_best_trial(storage: Storage) -> None:
    search = storage.create_search("s", {}, seed=0)
    trials = storage.add_trials(search.id, new_trials(2))
    for trial, accuracy in zip(trials, [0.4, 0.9], strict=True):
        storage.claim_trial(trial.id, "w")
        storage.record_epoch(trial.id, "w", 0, {"val_accuracy": accuracy})
        storage.finish_trial(trial.id, "w", "completed")
    assert storage.get_search(search.id).best_trial_id == trials[1].id
    finished = storage.set_search_status(search.id, "completed", reason="all stages done")
    assert finished.finished_at is not None and finished.finished_at.tzinfo == UTC
    assert (finished.best_trial_id, finished.reason) == (trials[1].id, "all stages done")


def test_setting_the_same_status_is_a_no_op(storage: Storage) -> None:
    search = storage.create_search("s", {}, seed=0)
    assert storage.set_search_status(search.id, "running").status == "running"
    with pytest.raises(ValueError, match="status"):
        storage.set_search_status(search.id, "exploded")


def test_update_search_limits(storage: Storage) -> None:
    search = storage.create_search("s", {}, seed=0, budget_epochs=10, concurrency=1)
    updated = storage.update_search_limits(search.id, concurrency=4)
    assert (updated.budget_epochs, updated.concurrency) == (10, 4)
    updated = storage.update_search_limits(search.id, budget_epochs=99)
    assert (updated.budget_epochs, updated.concurrency) == (99, 4)
    with pytest.raises(ValueError, match="concurrency"):
        storage.update_search_limits(search.id, concurrency=0)
    storage.set_search_status(search.id, "cancelled")
    with pytest.raises(ConflictError, match="final"):
        storage.update_search_limits(search.id, concurrency=2)


def test_record_stage_is_idempotent_and_first_write_wins(storage: Storage) -> None:
    search = storage.create_search("s", {}, seed=0)
    space = {"learning_rate": {"low": 1e-4, "high": 1e-1, "log": True}}
    first = storage.record_stage(search.id, 0, space, ["lr at border"])
    again = storage.record_stage(search.id, 0, {"other": 1}, [])
    assert again == first
    assert (first.space, first.warnings) == (space, ["lr at border"])
    storage.record_stage(search.id, 1, {"x": 2})
    assert [s.stage for s in storage.list_stages(search.id)] == [0, 1]
    with pytest.raises(NotFoundError):
        storage.record_stage(12345, 0, space)


def test_search_snapshot_reads_search_stages_and_trials_together(storage: Storage) -> None:
    search = storage.create_search("s", {"k": 1}, seed=3, concurrency=2)
    storage.record_stage(search.id, 1, {"x": {"kind": "uniform"}}, ["w"])
    storage.record_stage(search.id, 0, {"x": {"kind": "choice"}})
    trials = storage.add_trials(search.id, new_trials(2))
    storage.claim_trial(trials[1].id, "w")
    storage.record_epoch(trials[1].id, "w", 1, {"val_accuracy": 0.4})
    snapshot = storage.search_snapshot(search.id)
    assert snapshot.search == storage.get_search(search.id)
    assert snapshot.search.best_trial_id == trials[1].id
    assert snapshot.stages == storage.list_stages(search.id)
    assert [stage.stage for stage in snapshot.stages] == [0, 1]
    assert snapshot.trials == storage.search_state(search.id)
    assert [(t.index, t.status, t.best_val_accuracy) for t in snapshot.trials] == [
        (0, "queued", None),
        (1, "running", 0.4),
    ]
    storage.set_search_status(search.id, "cancelled")
    assert storage.search_snapshot(search.id).search == storage.get_search(search.id)
    with pytest.raises(NotFoundError, match="search 424242"):
        storage.search_snapshot(424242)
