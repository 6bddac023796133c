"""Ensembles through the REST API: built by a worker when a search ends, requested,
listed, downloaded and predicted with; bad requests store nothing. Real PostgreSQL + Redis."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from api_helpers import FINISHED, tiny_spec, wait_for
from fastapi.testclient import TestClient

from hpsearch.checkpoints import checkpoint_from_bytes
from hpsearch.ensembles import ensemble_from_checkpoint

pytestmark = pytest.mark.service
DEFAULT_KINDS = ["top_k", "snapshots", "polyak", "greedy"]


def all_built(ensembles: list[dict[str, Any]]) -> bool:
    return bool(ensembles) and all(e["status"] in ("completed", "failed") for e in ensembles)


def test_ensembles_are_built_when_the_search_ends_and_served(
    client: TestClient, worker: Callable[..., Any]
) -> None:
    base = tiny_spec()["base"]
    base["data"] = {**base["data"], "test_fraction": 0.2}
    spec = tiny_spec(base=base)
    search = client.post("/searches", json=spec).json()
    worker()
    wait_for(client, f"/searches/{search['id']}", lambda body: body["status"] in FINISHED)
    path = f"/searches/{search['id']}/ensembles"
    ensembles = wait_for(client, path, all_built)
    assert [e["kind"] for e in ensembles] == DEFAULT_KINDS
    for ensemble in ensembles:
        assert ensemble["status"] == "completed", ensemble["error"]
        assert ensemble["test_accuracy"] is not None and ensemble["diversity"] is not None
        assert (
            ensemble["best_single"]["val_accuracy"] == ensembles[0]["best_single"]["val_accuracy"]
        )
        assert sum(m["weight"] for m in ensemble["members"]) == pytest.approx(1.0)
        assert ensemble["name"].startswith(f"val{ensemble['val_accuracy']:.4f}"[:8])
    greedy = ensembles[-1]
    assert greedy["val_accuracy"] >= greedy["best_single"]["val_accuracy"]
    assert client.get(f"/ensembles/{greedy['id']}").json() == greedy
    download = client.get(greedy["download_url"])
    assert download.status_code == 200
    rebuilt = ensemble_from_checkpoint(checkpoint_from_bytes(download.content, "download"))
    assert rebuilt.kind == "greedy"
    assert np.allclose(rebuilt.weights, [m["weight"] for m in greedy["members"]])

    created = client.post(path, json={"kind": "top_k", "size": 2})
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "queued" and created.json()["download_url"] is None
    built = wait_for(client, f"/ensembles/{created.json()['id']}",
                     lambda e: e["status"] in ("completed", "failed"))  # fmt: skip
    assert built["status"] == "completed" and len(built["members"]) == 2


def test_bad_ensemble_requests_are_refused_and_store_nothing(client: TestClient) -> None:
    search = client.post("/searches", json=tiny_spec()).json()
    path = f"/searches/{search['id']}/ensembles"
    no_checkpoints = client.post(path, json={"kind": "top_k"})
    assert no_checkpoints.status_code == 422
    assert "stored no checkpoints" in no_checkpoints.text
    unknown = client.post(path, json={"kind": "bagging"})
    assert unknown.status_code == 422 and "kind" in unknown.text
    too_small = client.post(path, json={"kind": "greedy", "size": 0})
    assert too_small.status_code == 422 and "size" in too_small.text
    assert client.get(path).json() == []
    assert client.post("/searches/999999/ensembles", json={"kind": "top_k"}).status_code == 404
    assert client.get("/ensembles/999999").status_code == 404
    assert client.get("/ensembles/999999/file").status_code == 404
    assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
