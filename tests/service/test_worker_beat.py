"""The worker's beat thread: the trial's heartbeat, cancel/lost flags, and an idle worker row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import new_trials
from service_tools import wait_for

from hpsearch.db import Storage, WorkerRecord, open_storage
from worker.beat import TrialWatch, WorkerBeat

INTERVAL_S = 0.05


@pytest.fixture
def sqlite_storage(tmp_path: Path) -> Iterator[Storage]:
    storage = open_storage(f"sqlite:///{tmp_path / 'beat.db'}")
    try:
        yield storage
    finally:
        storage.close()


def _row(storage: Storage) -> WorkerRecord:
    (row,) = storage.list_workers(stale_after_s=60.0)
    return row


def test_the_beat_reports_busy_then_idle_and_keeps_an_idle_worker_alive(
    sqlite_storage: Storage,
) -> None:
    storage = sqlite_storage
    search = storage.create_search("s", {}, seed=0)
    (trial_id,) = storage.insert_new_trials(search.id, new_trials(1))
    storage.register_worker("w", "host", 1)
    assert storage.claim_trial(trial_id, "w") is not None
    beat = WorkerBeat(storage, "w", INTERVAL_S)
    beat.start()
    try:
        beat.watch(TrialWatch(trial_id))
        wait_for(lambda: _row(storage).status == "busy", 5.0, "the worker reported busy")
        assert _row(storage).current_trial_id == trial_id
        beat.watch(None)
        idle = wait_for(
            lambda: (row := _row(storage)).status == "idle" and row, 5.0, "an idle worker row"
        )
        assert idle.current_trial_id is None
        # While idle, the row is still refreshed (so /workers keeps it alive).
        wait_for(
            lambda: _row(storage).last_heartbeat > idle.last_heartbeat, 5.0, "an idle heartbeat"
        )
    finally:
        beat.stop()


def test_the_beat_turns_cancel_and_lost_ownership_into_flags(sqlite_storage: Storage) -> None:
    storage = sqlite_storage
    search = storage.create_search("s", {}, seed=0)
    first, second = storage.insert_new_trials(search.id, new_trials(2))
    storage.register_worker("w", "host", 1)
    for trial_id in (first, second):
        assert storage.claim_trial(trial_id, "w") is not None
    beat = WorkerBeat(storage, "w", INTERVAL_S)
    beat.start()
    try:
        watch = TrialWatch(first)
        beat.watch(watch)
        storage.request_cancel_trial(first)
        wait_for(watch.cancel.is_set, 5.0, "the cancel flag")
        assert watch.should_stop() and not watch.lost.is_set()
        other = TrialWatch(second)
        beat.watch(other)
        storage.requeue_trial(second, "taken away")
        wait_for(other.lost.is_set, 5.0, "the lost flag")
        assert not other.cancel.is_set()
    finally:
        beat.stop()


def test_the_beat_stops_when_its_storage_closes(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'beat.db'}")
    storage.register_worker("w", "host", 1)
    beat = WorkerBeat(storage, "w", INTERVAL_S)
    beat.start()
    storage.close()
    wait_for(lambda: not beat._thread.is_alive(), 5.0, "the beat thread to end")
