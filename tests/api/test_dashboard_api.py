"""The dashboard's server side over real PostgreSQL and Redis: sign-in cookies, CSRF,
spec uploads, figure routes with ETags, and pages for bad ids and signed-out visitors."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from api_helpers import FINISHED, TOKEN, tiny_spec, wait_for
from fastapi.testclient import TestClient

from api.session import CSRF_HEADER, SESSION_COOKIE

pytestmark = pytest.mark.service


def signed_in(client: TestClient) -> str:
    """Drop the bearer header, sign in with the token; returns the CSRF token."""
    client.headers.pop("Authorization")
    response = client.post("/session", json={"token": TOKEN})
    assert response.status_code == 200, response.text
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and TOKEN not in cookie
    return str(response.json()["csrf_token"])


def test_sign_in_refuses_a_wrong_token_and_sign_out_ends_the_session(client: TestClient) -> None:
    client.headers.pop("Authorization")
    assert client.post("/session", json={"token": "not-it"}).status_code == 401
    assert client.get("/searches").status_code == 401
    client.headers["Authorization"] = f"Bearer {TOKEN}"
    signed_in(client)
    assert client.get("/searches").status_code == 200
    assert client.delete("/session").status_code == 204
    assert client.get("/searches").status_code == 401


def test_cookie_requests_that_change_state_need_the_csrf_token_and_same_site(
    client: TestClient,
) -> None:
    search_id = client.post("/searches", json=tiny_spec()).json()["id"]
    csrf = signed_in(client)
    cancel = f"/searches/{search_id}/cancel"
    assert client.post(cancel).status_code == 403
    assert client.post(cancel, headers={CSRF_HEADER: "forged"}).status_code == 403
    cross_site = {CSRF_HEADER: csrf, "Sec-Fetch-Site": "cross-site"}
    assert client.post(cancel, headers=cross_site).status_code == 403
    other_origin = {CSRF_HEADER: csrf, "Origin": "http://evil.example"}
    assert client.post(cancel, headers=other_origin).status_code == 403
    assert client.get(f"/searches/{search_id}").json()["status"] == "running"
    response = client.post(cancel, headers={CSRF_HEADER: csrf, "Origin": "http://testserver"})
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


def upload(client: TestClient, filename: str, content: str) -> Any:
    return client.post("/search-specs", json={"filename": filename, "content": content})


def test_spec_uploads_name_the_bad_field_and_store_nothing(client: TestClient) -> None:
    bad_field = tiny_spec(stages=[{"trials": 0, "epochs": 1}])
    cases = [
        ("spec.toml", "name = [", ["body", "content"]),
        ("spec.json", json.dumps(bad_field), ["body", "content", "stages", 0, "trials"]),
        ("spec.yaml", "{}", ["body", "filename"]),
    ]
    for filename, content, location in cases:
        response = upload(client, filename, content)
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == location
    assert client.get("/searches").json() == []
    toml = """
        name = "from-toml"
        [base.data]
        source = "spiral"
        [space."optimizer.learning_rate"]
        kind = "log_uniform"
        low = 1e-3
        high = 1e-1
        [[stages]]
        trials = 1
        epochs = 1
    """
    response = upload(client, "spec.toml", toml)
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "from-toml"


def test_figure_routes_aggregate_the_search_and_answer_304_when_unchanged(
    client: TestClient, worker: Callable[..., Any]
) -> None:
    search = client.post("/searches", json=tiny_spec()).json()
    before = client.get(f"/searches/{search['id']}/learned").headers["ETag"]
    worker()
    done = wait_for(client, f"/searches/{search['id']}", lambda body: body["status"] in FINISHED)
    assert done["progress"]["epochs_trained"] == 4 * 1 + 2 * (3 - 1)  # promotions add 2 each
    base = f"/searches/{search['id']}"
    points = client.get(f"{base}/points")
    assert points.status_code == 200
    body = points.json()
    assert body["total"] == body["shown"] == 6
    assert len(body["params"]["optimizer.learning_rate"]) == 6
    again = client.get(f"{base}/points", headers={"If-None-Match": points.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""
    curves = client.get(f"{base}/curves", params={"top": 2}).json()
    assert [len(c["epoch"]) for c in curves] == [len(c["val_accuracy"]) for c in curves]
    assert curves[0]["best_val_accuracy"] >= curves[1]["best_val_accuracy"]
    timeline = client.get(f"{base}/timeline").json()
    assert timeline["total"] == 6 and len(timeline["workers"]) == 1
    trial_id = curves[0]["trial_id"]
    figures = client.get(f"/trials/{trial_id}/figures").json()
    assert figures["epoch"] == curves[0]["epoch"]  # a promotion records only its own epochs
    assert figures["val_accuracy"] == curves[0]["val_accuracy"]
    assert set(figures["update_ratios"]) == {"W1", "b1", "W2", "b2"}
    assert figures["first_layer_image"] is False  # the spiral is not an image
    assert client.get(f"/trials/{trial_id}/first-layer.png").status_code == 404
    activity = client.get("/workers/activity").json()
    assert sum(worker["trials_done"] for worker in activity) == 6
    learned = client.get(f"{base}/learned", headers={"If-None-Match": before})
    assert learned.status_code == 200 and learned.headers["ETag"] != before
    assert learned.json()["stages"][0]["stage"] == 0
    again = client.get(f"{base}/learned", headers={"If-None-Match": learned.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""


def test_pages_redirect_signed_out_visitors_and_name_ids_that_do_not_exist(
    client: TestClient,
) -> None:
    client.headers.pop("Authorization")
    response = client.get("/ui/searches/1", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=/ui/searches/1"
    assert "sign-in-form" in client.get("/sign-in").text
    client.headers["Authorization"] = f"Bearer {TOKEN}"
    signed_in(client)
    for path, message in [
        ("/ui/searches/999999", "search 999999 does not exist"),
        ("/ui/trials/999999", "trial 999999 does not exist"),
        ("/ui/trials/abc", "trial &#39;abc&#39; does not exist"),
    ]:
        page = client.get(path)
        assert page.status_code == 404 and message in page.text, page.text
    page = client.get("/")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    scripts = re.findall(r'src="(/static/[0-9a-f]{12}/[a-z_]+\.js)"', page.text)
    assert scripts, page.text
    for path in [*scripts, scripts[0].replace("searches.js", "plotly.min.js")]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert "immutable" in response.headers["cache-control"]
    version = scripts[0].split("/")[2]
    assert client.get(scripts[0].replace(version, "0" * 12)).status_code == 404
    assert client.get(f"/static/{version}/..%2Fpages.py").status_code == 404
    assert SESSION_COOKIE in client.cookies
