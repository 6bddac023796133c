"""The OpenAPI document: public, it describes the real search spec; and the server
bugs schemathesis found with it (each was a 500 or a refused valid spec)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from api_helpers import tiny_spec
from fastapi.testclient import TestClient

from hpsearch.executors import RQExecutor

pytestmark = pytest.mark.service

NO_TOKEN = {"Authorization": ""}


def launch_schema(client: TestClient) -> dict[str, Any]:
    schema = client.get("/openapi.json", headers=NO_TOKEN).json()
    return dict(schema["components"]["schemas"])


def test_docs_and_schema_are_public_and_describe_the_spec(client: TestClient) -> None:
    assert client.get("/docs", headers=NO_TOKEN).status_code == 200
    components = launch_schema(client)
    spec = components["SearchCreate"]["properties"]
    space = spec["space"]["properties"]
    kinds = [v["properties"]["kind"]["const"] for v in space["optimizer.learning_rate"]["oneOf"]]
    assert kinds == ["log_uniform", "uniform", "choice"]
    assert "model.hidden_sizes.*" in space and "model.depth" in space
    (stages,) = [b for b in spec["stages"]["anyOf"] if b.get("type") == "array"]
    assert stages["prefixItems"][0]["properties"]["refine"]["const"] == "resample"
    assert components["EnsembleSpec"]["properties"]["kinds"]["uniqueItems"] is True
    settings = client.app.state.settings  # type: ignore[attr-defined]
    (max_epochs,) = [b for b in spec["max_epochs"]["anyOf"] if b.get("type") == "integer"]
    assert max_epochs["maximum"] == settings.max_epochs
    assert spec["budget_epochs"]["anyOf"][0]["maximum"] == 2**31 - 1
    assert not re.match(spec["name"]["pattern"], "\n")  # storage refuses a blank name
    assert not re.match(spec["name"]["pattern"], "a\x00b")


UNHASHABLE_KIND = {"kind": ["uniform"], "low": 0.01, "high": 0.1}
LIMIT_A_LIST = {"kind": "uniform", "low": 0.01, "high": 0.1, "limit_low": []}
REFUSED = [  # each answered 500, or was accepted, before
    ({"space": {"optimizer.learning_rate": UNHASHABLE_KIND}}, "kind"),
    ({"budget_epochs": 2**31}, "budget_epochs"),
    ({"space": {"optimizer.learning_rate": LIMIT_A_LIST}}, "limit_low must be a finite number"),
    ({"ensembles": {"kinds": ["top_k", "top_k"]}}, "each kind at most once"),
]


@pytest.mark.parametrize(("change", "named"), REFUSED)
def test_bad_specs_fuzzing_found_are_refused_naming_the_field(
    client: TestClient, executor: RQExecutor, change: dict[str, Any], named: str
) -> None:
    response = client.post("/searches", json=tiny_spec(**change))
    assert response.status_code == 422, response.text
    assert named in str(response.json()["detail"])
    assert client.get("/searches").json() == [] and executor.queue.count == 0


def test_concurrency_above_the_servers_cap_is_refused(make_client: Any) -> None:
    client = make_client(max_concurrency=3)
    response = client.post("/searches", json=tiny_spec(concurrency=4))
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "concurrency"]
    assert client.post("/searches", json=tiny_spec(concurrency=3)).status_code == 201


def test_a_searched_depth_over_no_hidden_layer_is_launched(client: TestClient) -> None:
    spec = tiny_spec()
    spec["base"]["model"]["hidden_sizes"] = []
    spec["space"]["model.depth"] = {"kind": "int", "low": 1, "high": 3}
    response = client.post("/searches", json=spec)
    assert response.status_code == 201, response.text


def test_whole_number_floats_are_counts_and_depths(client: TestClient) -> None:
    spec = tiny_spec()
    spec["stages"][1]["keep"] = 2.0  # JSON has one number type: 2.0 is the count 2
    spec["space"]["model.depth"] = {"kind": "choice", "values": [1.0, 2.0]}
    response = client.post("/searches", json=spec)
    assert response.status_code == 201, response.text
    assert response.json()["spec"]["stages"][1]["keep"] == 2
