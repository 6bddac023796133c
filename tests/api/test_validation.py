"""Invalid specs and specs over the caps: 422 naming the field, no row, nothing enqueued;
the per-token launch rate limit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from api_helpers import AUTH, TOKEN, tiny_spec
from fastapi.testclient import TestClient

from hpsearch.executors import RQExecutor

pytestmark = pytest.mark.service


def with_change(path: str, value: Any) -> dict[str, Any]:
    """tiny_spec() with the dotted `path` set to `value` (list items by index).

    "space:NAME" sets the search-space entry NAME (whose name has dots itself).
    """
    spec = tiny_spec()
    if path.startswith("space:"):
        spec["space"][path.removeprefix("space:")] = value
        return spec
    node: Any = spec
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return spec


INVALID = [
    ("stages.0.epochs", 0, "epochs"),
    ("stages.0.trials", "many", "trials"),
    ("bogus", 1, "bogus"),
    ("space", {}, "space"),
    ("space:optimizer.learning_rate", {"kind": "log_uniform", "low": -1, "high": 1}, "space"),
    ("space:optimizer.nope", {"kind": "uniform", "low": 0, "high": 1}, "optimizer.nope"),
    ("base.model.activation", "swish", "activation"),
    ("budget_epochs", 1, "budget_epochs"),
    ("result", "worst", "result"),
    ("name", "bad\u0000name", "name"),
    ("base.data", {"source": "npz", "path": "missing.npz"}, "missing.npz"),
]
OVER_CAPS = [
    ("stages.1.epochs", 5000, ["body", "stages", 1, "epochs"]),
    ("stages.0.trials", 20_000, ["body", "stages"]),
    ("base.batch_size", 60_000, ["body", "batch_size"]),
    ("base.model.hidden_sizes", [16] * 20, ["body", "model", "hidden_sizes"]),
    ("base.model.hidden_sizes", [100_000], ["body", "model", "hidden_sizes", 0]),
    ("base.model.hidden_sizes", [8000, 8000, 8000], ["body", "model"]),
    ("space:model.hidden_sizes.0", {"kind": "log_int", "low": 8, "high": 50_000},
     ["body", "model", "hidden_sizes", 0]),
    ("base.data", {"source": "spiral", "num_classes": 1000, "points_per_class": 1_000_000},
     ["body", "base", "data", "points_per_class"]),
    ("base.data", {"source": "blobs", "num_features": 100_000},
     ["body", "base", "data", "num_features"]),
]  # fmt: skip


def assert_nothing_written(client: TestClient, executor: RQExecutor) -> None:
    assert client.get("/searches").json() == []
    assert executor.queue.count == 0


@pytest.mark.parametrize(("path", "value", "named"), INVALID)
def test_invalid_specs_are_refused_naming_the_field(
    client: TestClient, executor: RQExecutor, path: str, value: Any, named: str
) -> None:
    spec = tiny_spec(space=value) if path == "space" else with_change(path, value)
    response = client.post("/searches", json=spec)
    assert response.status_code == 422, response.text
    assert named in str(response.json()["detail"])
    assert_nothing_written(client, executor)


@pytest.mark.parametrize(("path", "value", "loc"), OVER_CAPS)
def test_specs_over_the_caps_are_refused(
    client: TestClient, executor: RQExecutor, path: str, value: Any, loc: list[Any]
) -> None:
    spec = with_change(path, value)
    response = client.post("/searches", json=spec)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == loc
    assert_nothing_written(client, executor)


def test_a_bad_data_file_is_refused_with_the_loaders_reason(
    client: TestClient, executor: RQExecutor
) -> None:
    root = client.app.state.settings.data_root  # type: ignore[attr-defined]
    X = np.ones((20, 3))
    X[2, 2] = np.inf  # row 2 falls in the seeded validation split
    np.savez(root / "inf.npz", X=X, y=np.arange(20) % 2)
    spec = with_change("base.data", {"source": "npz", "path": "inf.npz"})
    response = client.post("/searches", json=spec)
    assert response.status_code == 422, response.text
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", "base", "data", "path"]
    assert "inf.npz: X_val contains 1 NaN or infinite values" in problem["msg"]
    assert_nothing_written(client, executor)


def test_non_json_and_non_object_bodies(client: TestClient, executor: RQExecutor) -> None:
    assert client.post("/searches", content=b"{not json").status_code == 422
    assert client.post("/searches", json=[1, 2]).status_code == 422
    assert_nothing_written(client, executor)


def test_launch_rate_limit_per_token(make_client: Callable[..., TestClient]) -> None:
    other = "second-token-91d2"
    client = make_client(launch_rate_per_minute=2.0, api_tokens=[TOKEN, other])
    for _ in range(2):
        assert client.post("/searches", json=tiny_spec()).status_code == 201
    limited = client.post("/searches", json=tiny_spec())
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 30
    # Invalid launches count too, and other tokens have their own bucket.
    headers = {"Authorization": f"Bearer {other}"}
    assert client.post("/searches", json=tiny_spec(), headers=headers).status_code == 201
    assert client.post("/searches", json=tiny_spec(), headers=AUTH).status_code == 429
    assert len(client.get("/searches").json()) == 3


def test_unknown_query_parameters_are_refused(client: TestClient) -> None:
    response = client.get("/searches", params={"stauts": "failed"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "stauts"]
    assert client.get("/searches", params={"status": "failed"}).status_code == 200
