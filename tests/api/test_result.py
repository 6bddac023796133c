"""The spec's `result` through the API: the same hand-made epochs (one trial peaks at
epoch 3 and ends worse) rank the trials differently under "best" and "last"."""

from __future__ import annotations

from typing import Any

import pytest
from api_helpers import tiny_spec, wait_for
from fastapi.testclient import TestClient

from hpsearch.db import open_storage

pytestmark = pytest.mark.service

CURVES = ([0.5, 0.6, 0.9, 0.7], [0.5, 0.8, 0.8, 0.8], [0.6, 0.7, 0.75, 0.75])


def _search_with_curves(client: TestClient, database_url: str, result: str) -> dict[str, Any]:
    """A 3-trial, 4-epoch search whose trials commit CURVES (claimed by hand, no worker)."""
    spec = tiny_spec(f"result-{result}", result=result, concurrency=3,
                     stages=[{"trials": 3, "epochs": 4}])  # fmt: skip
    response = client.post("/searches", json=spec)
    assert response.status_code == 201, response.text
    search = response.json()
    assert search["result"] == result
    listing = f"/searches/{search['id']}/trials"
    trials = wait_for(client, listing, lambda body: len(body) == 3)
    storage = open_storage(database_url)
    try:
        for trial in sorted(trials, key=lambda t: t["index"]):
            assert storage.claim_trial(trial["id"], "by-hand") is not None
            for epoch, accuracy in enumerate(CURVES[trial["index"]], start=1):
                finish = "completed" if epoch == 4 else None
                metrics = {"val_accuracy": accuracy}
                path = f"k/{trial['id']}_{epoch}"
                storage.commit_epoch(trial["id"], "by-hand", epoch, metrics, path, finish)
    finally:
        storage.close()
    return wait_for(client, f"/searches/{search['id']}", lambda b: b["status"] == "completed")


@pytest.mark.parametrize(("result", "order"), [("best", [0, 1, 2]), ("last", [1, 2, 0])])
def test_the_leaderboard_and_best_trial_follow_the_result(
    client: TestClient, database_url: str, result: str, order: list[int]
) -> None:
    done = _search_with_curves(client, database_url, result)
    assert done["result"] == result
    trials = client.get(f"/searches/{done['id']}/trials").json()
    assert [trial["index"] for trial in trials] == order
    peaked = next(trial for trial in trials if trial["index"] == 0)
    assert (peaked["best_val_accuracy"], peaked["last_val_accuracy"]) == (0.9, 0.7)
    assert peaked["result_val_accuracy"] == (0.9 if result == "best" else 0.7)
    assert done["best_trial"]["index"] == order[0]
    assert done["best_trial"]["result_val_accuracy"] == trials[0]["result_val_accuracy"]
    by_best = client.get(f"/searches/{done['id']}/trials", params={"order_by": "best_val_accuracy"})
    assert [trial["index"] for trial in by_best.json()] == [0, 1, 2]
    detail = client.get(f"/trials/{peaked['id']}").json()
    assert detail["result_val_accuracy"] == peaked["result_val_accuracy"]
    curves = client.get(f"/searches/{done['id']}/curves", params={"top": 1}).json()
    assert [curve["trial_id"] for curve in curves] == [trials[0]["id"]]
