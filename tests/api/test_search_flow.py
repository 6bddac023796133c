"""Launch -> trials run by a worker -> best runs in order -> cancel; pause, resume, restart,
budget change and requeue; the master in its own process as deployed. Real `hpsearch
worker` and `hpsearch master` processes, PostgreSQL and Redis."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from api_helpers import FINISHED, finished_jobs, tiny_spec, wait_for
from fastapi.testclient import TestClient

from hpsearch.checkpoints import checkpoint_from_bytes
from hpsearch.executors import RQExecutor

pytestmark = pytest.mark.service


def launch(client: TestClient, spec: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/searches", json=spec)
    assert response.status_code == 201, response.text
    return response.json()


def finished(body: dict[str, Any]) -> bool:
    return body["status"] in FINISHED


def test_launch_run_rank_and_download(client: TestClient, worker: Callable[..., Any]) -> None:
    search = launch(client, tiny_spec())
    assert search["status"] == "running"
    assert search["progress"]["planned"] == 6
    process = worker()  # the API's master runs the sanity gate, then queues stage 0
    done = wait_for(client, f"/searches/{search['id']}", finished)
    assert done["status"] == "completed"
    assert done["stages"][0]["space"]["optimizer.learning_rate"]["high"] == 0.1
    assert done["progress"]["completed"] == 6
    assert len(done["stages"]) == 2

    trials = client.get(f"/searches/{search['id']}/trials").json()
    accuracies = [trial["best_val_accuracy"] for trial in trials]
    assert len(trials) == 6
    assert accuracies == sorted(accuracies, reverse=True)
    assert done["best_trial"]["id"] == trials[0]["id"]

    stage1 = client.get(f"/searches/{search['id']}/trials", params={"stage": 1}).json()
    assert {trial["stage"] for trial in stage1} == {1}
    assert len(stage1) == 2
    by_index = client.get(
        f"/searches/{search['id']}/trials", params={"order_by": "index", "limit": 2, "offset": 1}
    ).json()
    assert [trial["index"] for trial in by_index] == [0, 1]

    promoted = stage1[0]
    detail = client.get(f"/trials/{promoted['id']}").json()
    # A promoted trial continues its parent's checkpoint: it records epochs 2 and 3.
    assert [epoch["epoch"] for epoch in detail["curves"]] == [2, 3]
    assert detail["parent_trial_id"] is not None
    assert detail["config"]["epochs"] == 3
    assert detail["curves"][0]["stats"] is None
    thinned = client.get(f"/trials/{promoted['id']}", params={"max_points": 1}).json()
    assert [epoch["epoch"] for epoch in thinned["curves"]] == [3]
    assert thinned["epochs_recorded"] == 2
    with_stats = client.get(f"/trials/{promoted['id']}", params={"include_stats": True}).json()
    assert isinstance(with_stats["curves"][-1]["stats"], dict)

    checkpoint = detail["checkpoints"][-1]
    download = client.get(checkpoint["download_url"])
    assert download.status_code == 200
    loaded = checkpoint_from_bytes(download.content, source="download")
    assert loaded.epoch == checkpoint["epoch"]
    assert client.get(f"/trials/{promoted['id']}/checkpoints/99").status_code == 404

    (listed,) = client.get("/workers").json()
    assert listed["pid"] == process.pid
    assert listed["current_trial_id"] in {None} | {trial["id"] for trial in trials}


def test_cancel_search_and_trial_requeue(client: TestClient, worker: Callable[..., Any]) -> None:
    search = launch(client, tiny_spec(concurrency=1))
    # The API's master runs the sanity gate within a tick, then queues stage 0.
    trials = wait_for(client, f"/searches/{search['id']}/trials", lambda body: len(body) > 0)
    assert [trial["status"] for trial in trials] == ["queued"]
    first = trials[0]["id"]

    cancelled = client.post(f"/trials/{first}/cancel").json()
    assert cancelled["status"] == "cancelled"
    requeued = client.post(f"/trials/{first}/requeue")
    assert requeued.status_code == 200, requeued.text
    assert requeued.json()["status"] == "queued"

    worker()
    trial = wait_for(client, f"/trials/{first}", lambda body: body["status"] == "completed")
    assert trial["attempts"] == 1
    assert client.post(f"/trials/{first}/requeue").status_code == 409

    stopped = client.post(f"/searches/{search['id']}/cancel").json()
    assert stopped["status"] == "cancelled"
    wait_for(
        client,
        f"/searches/{search['id']}",
        lambda body: body["progress"]["queued"] + body["progress"]["running"] == 0,
    )
    assert client.post(f"/searches/{search['id']}/resume").status_code == 409
    assert client.patch(f"/searches/{search['id']}", json={"concurrency": 3}).status_code == 409


def test_pause_resume_across_an_api_restart(
    make_client: Callable[..., TestClient], worker: Callable[..., Any], executor: RQExecutor
) -> None:
    first = make_client()
    search = launch(first, tiny_spec())
    # Stage 0 is queued (and enqueued) once the master's sanity gate passed; then pause.
    wait_for(first, f"/searches/{search['id']}/trials", lambda body: len(body) == 2)
    paused = first.post(f"/searches/{search['id']}/pause").json()
    assert paused["status"] == "paused"
    assert first.post(f"/searches/{search['id']}/pause").json()["status"] == "paused"
    process = worker()
    # The worker receives the queued jobs but may not claim trials of a paused search.
    deadline = time.monotonic() + 60
    while len(finished_jobs(executor)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert finished_jobs(executor) == ["skipped", "skipped"], process.log()
    body = first.get(f"/searches/{search['id']}").json()
    assert body["progress"]["running"] + body["progress"]["completed"] == 0
    first.__exit__(None, None, None)  # the API process stops mid-search

    second = make_client()
    resumed = second.post(f"/searches/{search['id']}/resume").json()
    assert resumed["status"] == "running"
    done = wait_for(second, f"/searches/{search['id']}", finished)
    assert done["status"] == "completed"
    assert done["progress"]["completed"] == 6
    trials = second.get(f"/searches/{search['id']}/trials").json()
    assert {trial["worker_id"].split("-")[-2] for trial in trials} == {str(process.pid)}


def test_budget_change_ends_the_search_early(
    client: TestClient, worker: Callable[..., Any]
) -> None:
    search = launch(client, tiny_spec(concurrency=1))
    assert search["budget_epochs"] == 4 + 2 * 2
    too_small = client.patch(f"/searches/{search['id']}", json={"budget_epochs": 3})
    assert too_small.status_code == 422
    assert "budget_epochs" in too_small.text
    changed = client.patch(f"/searches/{search['id']}", json={"budget_epochs": 4, "concurrency": 2})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["budget_epochs"], changed.json()["concurrency"]) == (4, 2)
    worker()
    done = wait_for(client, f"/searches/{search['id']}", finished)
    assert done["status"] == "completed"
    assert done["progress"]["total"] == 4
    assert "budget" in (done["reason"] or "")


def test_an_automatic_plan_runs_and_reports_what_it_learned(
    client: TestClient, worker: Callable[..., Any]
) -> None:
    spec = tiny_spec("api-auto", asynchronous=True, budget_epochs=14)
    del spec["stages"]
    spec["space"]["model.hidden_sizes.*"] = {"kind": "log_int", "low": 4, "high": 32}
    search = launch(client, spec)
    assert search["progress"]["planned"] == 4  # rungs 1/3: 3 trials, 1 promoted
    worker()
    done = wait_for(client, f"/searches/{search['id']}", finished)
    assert done["status"] == "completed" and done["progress"]["epochs_trained"] == 14
    learned = client.get(f"/searches/{search['id']}/learned").json()
    assert learned["stages"][0]["ranges"]["optimizer.learning_rate"] == [1e-3, 1e-1]
    assert set(learned["importance"]) == {"optimizer.learning_rate", "model.hidden_sizes.*"}
    assert all(0.0 <= share <= 1.0 for share in learned["importance"].values())


def test_the_master_runs_in_its_own_process_as_deployed(
    make_client: Callable[..., TestClient],
    worker: Callable[..., Any],
    master: Callable[..., Any],
) -> None:
    """HPSEARCH_API_MASTER=false: the API only stores and reads; `hpsearch master` runs
    the sanity gate, queues the stages and promotes, `hpsearch worker` trains."""
    client = make_client(api_master=False)
    assert client.app.state.master is None  # type: ignore[attr-defined]
    search = launch(client, tiny_spec("api-deployed"))  # the sanity gate is on
    assert search["progress"]["total"] == 0  # the master creates trials after the gate
    worker()
    master()
    done = wait_for(client, f"/searches/{search['id']}", finished)
    outcome = (done["status"], done["progress"]["completed"], len(done["stages"]))
    assert outcome == ("completed", 6, 2), done["reason"]
