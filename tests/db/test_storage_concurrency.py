"""Many processes on one database: no duplicates, no lost claims, no "database is locked"."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import storage_procs
from factories import database_url, make_storage, new_trials

from hpsearch.db import open_storage

SPAWN = multiprocessing.get_context("spawn")


def _run_processes(target: Callable[..., None], arguments: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Start one spawned process per argument tuple (+ barrier, results); return their values."""
    barrier = SPAWN.Barrier(len(arguments))
    results = SPAWN.Queue()
    processes = [SPAWN.Process(target=target, args=(*args, barrier, results)) for args in arguments]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    errors = [detail for _, status, detail in outcomes if status != "ok"]
    assert errors == [], "\n".join(errors)
    assert [p.exitcode for p in processes] == [0] * len(processes)
    return [value for _, _, value in outcomes]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_eight_processes_adding_distinct_trials_store_all_of_them(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    postgres_url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    with database_url(backend, tmp_path, postgres_url) as url:
        migrator = _run_processes(storage_procs.migrate_after_barrier, [(url,)] * 2)
        assert migrator == [True, True]
        storage = open_storage(url)
        try:
            search = storage.create_search("race", {}, seed=0)
            arguments = [(url, search.id, 20 * p, 20) for p in range(8)]
            added = _run_processes(storage_procs.add_trials_after_barrier, arguments)
            state = storage.search_state(search.id)
        finally:
            storage.close()
    assert len(state) == 160
    assert sorted(v.index for v in state) == list(range(160))
    assert sorted(i for ids in added for i in ids) == sorted(v.trial_id for v in state)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_eight_processes_adding_the_same_trials_store_them_once(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    postgres_url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    with make_storage(backend, tmp_path, postgres_url) as storage:
        url = storage.engine.url.render_as_string(hide_password=False)
        search = storage.create_search("race", {}, seed=0)
        outcomes = _run_processes(
            storage_procs.add_trials_after_barrier,
            [(url, search.id, 0, 20)] * 8,
        )
        state = storage.search_state(search.id)
    assert len(state) == 20
    assert outcomes == [[v.trial_id for v in state]] * 8


def test_four_sqlite_workers_in_a_tight_loop_never_see_a_locked_database(tmp_path: Path) -> None:
    with make_storage("sqlite", tmp_path) as storage:
        url = storage.engine.url.render_as_string(hide_password=False)
        search = storage.create_search("busy", {}, seed=0)
        trial_ids = [t.id for t in storage.add_trials(search.id, new_trials(40))]
        for worker in range(4):
            storage.register_worker(f"w{worker}", "localhost", worker)
        # Each worker walks the trials from a different start, so all of them write at once.
        arguments = [
            (url, f"w{worker}", trial_ids[10 * worker :] + trial_ids[: 10 * worker])
            for worker in range(4)
        ]
        ran = _run_processes(storage_procs.run_trials_in_a_loop, arguments)
        counts = storage.trial_counts(search.id)
        curves = [storage.trial_curves(trial_id) for trial_id in trial_ids]
    assert sorted(i for ids in ran for i in ids) == trial_ids
    assert counts["completed"] == 40
    assert all([e.epoch for e in curve] == [0, 1, 2] for curve in curves)
