"""Contract tests for the trial event history and the worker registry, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from factories import new_trials

from hpsearch.db import Storage, open_storage
from hpsearch.db.convert import utc_now
from hpsearch.db.leader import LeaderLock
from hpsearch.errors import NotFoundError


def _one_trial(storage: Storage) -> int:
    search = storage.create_search("s", {}, seed=0)
    (trial,) = storage.add_trials(search.id, new_trials(1))
    return trial.id


def _history(storage: Storage, trial_id: int) -> list[tuple[str, str, int, str | None]]:
    return [(e.event, e.status, e.attempt, e.worker_id) for e in storage.trial_events(trial_id)]


def test_every_state_change_of_a_trial_is_an_event(storage: Storage) -> None:
    trial_id = _one_trial(storage)
    storage.claim_trial(trial_id, "w1")
    storage.finish_trial(trial_id, "w1", "failed", "boom", failure_kind="oom")  # retried
    storage.claim_trial(trial_id, "w2")
    storage.commit_epoch(trial_id, "w2", 1, {"val_accuracy": 0.5}, finish="completed")
    assert _history(storage, trial_id) == [
        ("created", "queued", 0, None),
        ("claimed", "running", 1, "w1"),
        ("requeued", "queued", 1, "w1"),
        ("claimed", "running", 2, "w2"),
        ("completed", "completed", 2, "w2"),
    ]
    events = storage.trial_events(trial_id)
    assert events[2].reason == "boom"
    assert [e.at for e in events] == sorted(e.at for e in events)
    assert all(e.at.tzinfo is not None for e in events)


def test_reaping_a_silent_worker_records_who_died_and_why(storage: Storage) -> None:
    trial_id = _one_trial(storage)
    storage.claim_trial(trial_id, "doomed")
    (reaped,) = storage.reap_stale(1.0, now=utc_now() + timedelta(seconds=5))
    assert reaped.status == "queued"
    last = storage.trial_events(trial_id)[-1]
    assert (last.event, last.status, last.worker_id, last.attempt) == (
        "reaped", "queued", "doomed", 1)  # fmt: skip
    assert last.reason is not None and "worker doomed silent for" in last.reason


def test_a_handed_back_trial_is_queued_at_once_keeps_its_epochs_and_its_retries(
    storage: Storage,
) -> None:
    trial_id = _one_trial(storage)
    claimed = storage.claim_trial(trial_id, "w1")
    assert claimed is not None
    storage.commit_epoch(trial_id, "w1", 1, {"val_accuracy": 0.4})
    back = storage.hand_back_trial(trial_id, "w1", "worker w1 stopping (SIGTERM)")
    assert back is not None
    assert (back.status, back.worker_id, back.last_epoch) == ("queued", None, 1)
    assert (back.attempts, back.max_attempts) == (0, claimed.max_attempts)
    assert [e.epoch for e in storage.trial_curves(trial_id)] == [1]
    assert _history(storage, trial_id)[-1] == ("handed_back", "queued", 1, "w1")
    assert storage.hand_back_trial(trial_id, "w1", "again") is None  # no longer its trial
    assert storage.queued_trial_ids()[0] == trial_id


def test_retries_come_first_in_the_queue(storage: Storage) -> None:
    search = storage.create_search("s", {}, seed=0)
    first, second, third = (t.id for t in storage.add_trials(search.id, new_trials(3)))
    storage.claim_trial(third, "w")
    storage.finish_trial(third, "w", "failed", "flaky", failure_kind="infrastructure")
    assert storage.queued_trial_ids() == [third, first, second]


def test_cancels_and_manual_requeues_are_events(storage: Storage) -> None:
    search = storage.create_search("s", {}, seed=0)
    queued, running = (t.id for t in storage.add_trials(search.id, new_trials(2)))
    storage.claim_trial(running, "w")
    storage.request_cancel_trial(running)
    storage.request_cancel_trial(running)  # asked twice: one event
    storage.finish_trial(running, "w", "cancelled")
    storage.requeue_trial(running, "by hand")
    storage.request_cancel_search(search.id)
    assert [e[0] for e in _history(storage, running)] == [
        "created", "claimed", "cancel_requested", "cancelled", "requeued", "cancelled"]  # fmt: skip
    assert _history(storage, queued)[-1] == ("cancelled", "cancelled", 0, None)
    assert [e.trial_id for e in storage.search_events(search.id, limit=2)] == [queued, running]
    with pytest.raises(NotFoundError):
        storage.trial_events(424242)


def test_workers_deregister_die_and_are_pruned(storage: Storage) -> None:
    start = utc_now()
    for worker_id in ("stops", "dies", "lives"):
        storage.register_worker(worker_id, "host", 1, now=start)
    storage.deregister_worker("stops", now=start)
    storage.worker_heartbeat("lives", now=start + timedelta(seconds=9))
    dead, pruned = storage.reap_workers(5.0, 3600.0, now=start + timedelta(seconds=10))
    assert (dead, pruned) == (["dies"], 0)
    rows = {w.id: (w.status, w.alive) for w in storage.list_workers(60.0, now=start)}
    assert rows == {"stops": ("stopped", False), "dies": ("dead", False), "lives": ("idle", True)}
    storage.worker_heartbeat("dies", None, "busy", now=start + timedelta(seconds=11))
    assert {w.id: w.status for w in storage.list_workers(60.0)}["dies"] == "busy"
    later = start + timedelta(hours=2)
    storage.worker_heartbeat("lives", now=later)
    # "dies" fell silent again 2 h ago: marked dead and pruned in the same pass, as is "stops".
    assert storage.reap_workers(5.0, 3600.0, now=later) == (["dies"], 2)
    assert [w.id for w in storage.list_workers(60.0)] == ["lives"]
    assert storage.reap_workers(5.0, 3600.0, now=later + timedelta(hours=2)) == (["lives"], 1)
    with pytest.raises(ValueError, match="prune_after_s"):
        storage.reap_workers(5.0, 0.0)


def test_the_leader_lock_has_one_holder_and_passes_on_when_released(storage: Storage) -> None:
    other = open_storage(storage.engine.url.render_as_string(hide_password=False))
    first, second = LeaderLock(storage.engine), LeaderLock(other.engine)
    try:
        assert first.try_acquire() and first.held
        assert first.try_acquire()  # still ours
        assert not second.try_acquire() and not second.held
        first.release()
        assert second.try_acquire() and not first.try_acquire()
    finally:
        first.release()
        second.release()
        other.close()
