"""Contract tests for the trial lifecycle, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from factories import new_trials

from hpsearch.db import RETRY_BUDGETS, NewTrial, Storage, TrialHeartbeat
from hpsearch.errors import ConflictError, NotFoundError


def _search_with_trials(storage: Storage, count: int = 3) -> tuple[int, list[int]]:
    search = storage.create_search("s", {}, seed=0)
    return search.id, [t.id for t in storage.add_trials(search.id, new_trials(count))]


def test_add_trials_stores_queued_trials_in_input_order(storage: Storage) -> None:
    search = storage.create_search("s", {}, seed=0)
    wanted = new_trials(3, stage=1, start=5)[::-1]
    stored = storage.add_trials(search.id, wanted)
    assert [(t.stage, t.index) for t in stored] == [(1, 7), (1, 6), (1, 5)]
    first = stored[0]
    assert (first.status, first.attempts, first.max_attempts) == ("queued", 0, 4)
    assert (first.params, first.train_seed, first.epochs) == (wanted[0].params, 1007, 3)
    assert first.enqueued_at.tzinfo == UTC and first.worker_id is None
    assert storage.get_trial(first.id) == first


def test_add_trials_is_idempotent_and_existing_rows_win(storage: Storage) -> None:
    search = storage.create_search("s", {}, seed=0)
    first = storage.add_trials(search.id, new_trials(3))
    changed = [NewTrial(0, 1, {"other": True}, {}, 99, 9), *new_trials(2, start=3)]
    second = storage.add_trials(search.id, changed)
    assert second[0] == first[1]
    assert len(storage.search_state(search.id)) == 5
    assert storage.add_trials(search.id, new_trials(3)) == first
    assert storage.add_trials(search.id, []) == []


def test_add_trials_rejects_bad_input_and_writes_nothing(storage: Storage) -> None:
    search = storage.create_search("s", {}, seed=0)
    with pytest.raises(ValueError, match="repeat"):
        storage.add_trials(search.id, new_trials(2) + new_trials(1))
    with pytest.raises(ValueError, match=r"trials\[1\]\.epochs"):
        storage.add_trials(search.id, [*new_trials(1), NewTrial(0, 1, {}, {}, 0, 0)])
    with pytest.raises(TypeError, match="params"):
        storage.add_trials(search.id, [NewTrial(0, 0, {"f": object()}, {}, 0, 1)])
    assert storage.search_state(search.id) == []
    with pytest.raises(NotFoundError):
        storage.add_trials(424242, new_trials(1))
    storage.set_search_status(search.id, "cancelled")
    with pytest.raises(ConflictError, match="takes no trials"):
        storage.add_trials(search.id, new_trials(1))


def test_a_trial_is_claimed_once(storage: Storage) -> None:
    _, (trial_id, *_) = _search_with_trials(storage)
    claimed = storage.claim_trial(trial_id, "worker-a")
    assert claimed is not None
    assert (claimed.status, claimed.worker_id, claimed.attempts) == ("running", "worker-a", 1)
    assert claimed.started_at is not None and claimed.heartbeat_at is not None
    assert storage.claim_trial(trial_id, "worker-b") is None
    assert storage.get_trial(trial_id).worker_id == "worker-a"
    with pytest.raises(NotFoundError):
        storage.claim_trial(999999, "worker-a")
    with pytest.raises(ValueError, match="worker_id"):
        storage.claim_trial(trial_id, "")


def test_trials_of_a_paused_search_are_not_claimed(storage: Storage) -> None:
    search_id, (trial_id, *_) = _search_with_trials(storage)
    storage.set_search_status(search_id, "paused")
    assert storage.claim_trial(trial_id, "w") is None
    assert storage.queued_trial_ids(search_id) == []
    storage.set_search_status(search_id, "running")
    assert trial_id in storage.queued_trial_ids(search_id)
    assert storage.claim_trial(trial_id, "w") is not None


def test_heartbeat_reports_ownership_and_cancel_requests(storage: Storage) -> None:
    _, (trial_id, *_) = _search_with_trials(storage)
    assert storage.heartbeat(trial_id, "w") == TrialHeartbeat(owned=False, cancel_requested=False)
    storage.claim_trial(trial_id, "w")
    assert storage.heartbeat(trial_id, "w") == TrialHeartbeat(owned=True, cancel_requested=False)
    assert storage.heartbeat(trial_id, "intruder").owned is False
    storage.request_cancel_trial(trial_id)
    assert storage.heartbeat(trial_id, "w") == TrialHeartbeat(owned=True, cancel_requested=True)
    with pytest.raises(NotFoundError):
        storage.heartbeat(999999, "w")


def test_finish_trial_only_by_its_running_owner(storage: Storage) -> None:
    _, (trial_id, *_) = _search_with_trials(storage)
    assert storage.finish_trial(trial_id, "w", "completed") is None
    storage.claim_trial(trial_id, "w")
    assert storage.finish_trial(trial_id, "other", "completed") is None
    finished = storage.finish_trial(trial_id, "w", "completed")
    assert finished is not None
    assert (finished.status, finished.failure_kind, finished.error) == ("completed", None, None)
    assert finished.finished_at is not None
    assert storage.finish_trial(trial_id, "w", "failed") is None
    with pytest.raises(ValueError, match="status"):
        storage.finish_trial(trial_id, "w", "queued")


@pytest.mark.parametrize(
    ("status", "failure_kind", "expected_kind"),
    [("diverged", None, "divergence"), ("cancelled", None, "cancel"), ("failed", None, "error")],
)
def test_finish_trial_default_failure_kinds(
    storage: Storage, status: str, failure_kind: str | None, expected_kind: str
) -> None:
    _, (trial_id, *_) = _search_with_trials(storage)
    storage.claim_trial(trial_id, "w")
    finished = storage.finish_trial(
        trial_id, "w", status, error="reason", failure_kind=failure_kind
    )
    assert finished is not None
    assert (finished.status, finished.failure_kind, finished.error) == (
        status,
        expected_kind,
        "reason",
    )


@pytest.mark.parametrize("failure_kind", sorted(RETRY_BUDGETS))
def test_failed_attempts_are_retried_within_their_budget(
    storage: Storage, failure_kind: str
) -> None:
    _, (trial_id, *_) = _search_with_trials(storage)
    statuses = []
    for _ in range(6):
        if storage.claim_trial(trial_id, "w") is None:
            break
        finished = storage.finish_trial(trial_id, "w", "failed", "boom", failure_kind)
        assert finished is not None and finished.failure_kind == failure_kind
        statuses.append(finished.status)
    budget = RETRY_BUDGETS[failure_kind]
    assert statuses == ["queued"] * budget + ["failed"]
    assert storage.get_trial(trial_id).attempts == budget + 1


def test_cancel_trial(storage: Storage) -> None:
    _, (queued_id, running_id, done_id) = _search_with_trials(storage)
    cancelled = storage.request_cancel_trial(queued_id)
    assert (cancelled.status, cancelled.failure_kind) == ("cancelled", "cancel")
    storage.claim_trial(running_id, "w")
    flagged = storage.request_cancel_trial(running_id)
    assert (flagged.status, flagged.cancel_requested) == ("running", True)
    storage.claim_trial(done_id, "w")
    storage.finish_trial(done_id, "w", "completed")
    assert storage.request_cancel_trial(done_id).status == "completed"
    failed = storage.finish_trial(running_id, "w", "failed", failure_kind="infrastructure")
    assert failed is not None and failed.status == "failed", "a cancelled trial is not retried"


def test_cancel_search(storage: Storage) -> None:
    search_id, (queued_id, running_id, done_id) = _search_with_trials(storage)
    storage.claim_trial(running_id, "w")
    storage.claim_trial(done_id, "w")
    storage.finish_trial(done_id, "w", "completed")
    assert storage.request_cancel_search(search_id, reason="user") == 2
    search = storage.get_search(search_id)
    assert (search.status, search.reason) == ("cancelled", "user")
    assert storage.get_trial(queued_id).status == "cancelled"
    assert storage.get_trial(running_id).cancel_requested is True
    assert storage.get_trial(done_id).status == "completed"
    assert storage.request_cancel_search(search_id) == 1
    other = storage.create_search("t", {}, seed=0)
    storage.set_search_status(other.id, "completed")
    with pytest.raises(ConflictError):
        storage.request_cancel_search(other.id)


def test_requeue_trial_by_hand(storage: Storage) -> None:
    _, (trial_id, done_id, _) = _search_with_trials(storage)
    storage.claim_trial(trial_id, "w")
    requeued = storage.requeue_trial(trial_id, "operator asked")
    assert (requeued.status, requeued.worker_id, requeued.error) == (
        "queued",
        None,
        "operator asked",
    )
    assert storage.heartbeat(trial_id, "w").owned is False
    assert storage.finish_trial(trial_id, "w", "completed") is None
    assert storage.claim_trial(trial_id, "w2") is not None
    storage.claim_trial(done_id, "w")
    storage.finish_trial(done_id, "w", "completed")
    with pytest.raises(ConflictError, match="cannot be requeued"):
        storage.requeue_trial(done_id, "again")


def test_requeue_gives_an_exhausted_trial_one_more_attempt(storage: Storage) -> None:
    search = storage.create_search("s", {}, seed=0)
    (trial,) = storage.add_trials(search.id, new_trials(1, max_attempts=1))
    storage.claim_trial(trial.id, "w")
    storage.finish_trial(trial.id, "w", "failed", failure_kind="infrastructure")
    assert storage.get_trial(trial.id).status == "failed"
    assert storage.requeue_trial(trial.id, "retry").max_attempts == 2
    assert storage.claim_trial(trial.id, "w") is not None


def test_reap_stale_requeues_then_fails_after_the_budget(storage: Storage) -> None:
    _, (trial_id, *_) = _search_with_trials(storage)
    outcomes = []
    for _attempt in range(RETRY_BUDGETS["infrastructure"] + 1):
        claimed = storage.claim_trial(trial_id, "w1")
        assert claimed is not None and claimed.heartbeat_at is not None
        assert storage.reap_stale(10.0, now=claimed.heartbeat_at + timedelta(seconds=5)) == []
        reaped = storage.reap_stale(10.0, now=claimed.heartbeat_at + timedelta(seconds=30))
        assert [t.id for t in reaped] == [trial_id]
        outcomes.append(reaped[0].status)
    assert outcomes == ["queued", "queued", "queued", "failed"]
    failed = storage.get_trial(trial_id)
    assert failed.failure_kind == "infrastructure" and "out of retries" in (failed.error or "")
    assert storage.claim_trial(trial_id, "w1") is None
    with pytest.raises(ValueError, match="stale_after_s"):
        storage.reap_stale(0)


def test_reap_stale_leaves_trials_with_a_recent_heartbeat(storage: Storage) -> None:
    _, (stale_id, fresh_id, _) = _search_with_trials(storage)
    stale = storage.claim_trial(stale_id, "w1")
    storage.claim_trial(fresh_id, "w2")
    storage.heartbeat(fresh_id, "w2")
    fresh_beat = storage.get_trial(fresh_id).heartbeat_at
    assert stale is not None and stale.heartbeat_at is not None and fresh_beat is not None
    gap_s = (fresh_beat - stale.heartbeat_at).total_seconds()
    assert gap_s > 0
    reaped = storage.reap_stale(gap_s / 2, now=fresh_beat)
    assert [t.id for t in reaped] == [stale_id]
    assert storage.get_trial(fresh_id).status == "running"


def test_reap_stale_cancels_a_silent_trial_that_was_asked_to_stop(storage: Storage) -> None:
    _, (trial_id, *_) = _search_with_trials(storage)
    claimed = storage.claim_trial(trial_id, "w")
    assert claimed is not None and claimed.heartbeat_at is not None
    storage.request_cancel_trial(trial_id)
    (reaped,) = storage.reap_stale(1.0, now=claimed.heartbeat_at + timedelta(seconds=60))
    assert (reaped.status, reaped.failure_kind) == ("cancelled", "cancel")


def test_queued_trial_ids_and_search_state(storage: Storage) -> None:
    search_id, ids = _search_with_trials(storage, 4)
    other_id, other_ids = _search_with_trials(storage, 1)
    storage.claim_trial(ids[0], "w")
    assert storage.queued_trial_ids(search_id) == ids[1:]
    assert storage.queued_trial_ids() == ids[1:] + other_ids
    state = storage.search_state(search_id)
    assert [(v.trial_id, v.stage, v.index, v.status) for v in state] == [
        (ids[0], 0, 0, "running"),
        (ids[1], 0, 1, "queued"),
        (ids[2], 0, 2, "queued"),
        (ids[3], 0, 3, "queued"),
    ]
    counts = storage.trial_counts(search_id)
    assert (counts["running"], counts["queued"], counts["completed"]) == (1, 3, 0)
    with pytest.raises(NotFoundError):
        storage.search_state(other_id + 100)


def test_insert_new_trials_reports_only_the_rows_it_created(storage: Storage) -> None:
    search = storage.create_search("s", {}, seed=0)
    first = storage.insert_new_trials(search.id, new_trials(2))
    assert len(first) == 2
    assert [(t.trial_id, t.index) for t in storage.search_state(search.id)] == [
        (first[0], 0),
        (first[1], 1),
    ]
    wanted = new_trials(2, start=1)[::-1]  # index 2 is new, index 1 exists
    (created,) = storage.insert_new_trials(search.id, wanted)
    assert storage.get_trial(created).index == 2
    assert storage.insert_new_trials(search.id, new_trials(3)) == []
    assert storage.insert_new_trials(search.id, []) == []


def test_insert_new_trials_rejects_bad_input_and_finished_searches(storage: Storage) -> None:
    search = storage.create_search("s", {}, seed=0)
    with pytest.raises(ValueError, match="repeat"):
        storage.insert_new_trials(search.id, new_trials(1) + new_trials(1))
    with pytest.raises(NotFoundError, match="search 424242"):
        storage.insert_new_trials(424242, new_trials(1))
    storage.set_search_status(search.id, "completed")
    with pytest.raises(ConflictError, match="takes no trials"):
        storage.insert_new_trials(search.id, new_trials(1))
    assert storage.search_state(search.id) == []


def test_search_state_of_a_missing_search_raises(storage: Storage) -> None:
    with pytest.raises(NotFoundError, match="search 424242"):
        storage.search_state(424242)
