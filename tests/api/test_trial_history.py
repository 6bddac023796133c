"""A trial's event history and ETag on GET /trials/{id} (a completed trial's answer kept
rendered), the leaderboard's ETag; one master among several API apps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from api_helpers import FINISHED, tiny_spec, wait_for
from fastapi.testclient import TestClient
from sqlalchemy import event

pytestmark = pytest.mark.service


def test_a_finished_trial_shows_its_history_and_answers_304_to_its_etag(
    client: TestClient, worker: Callable[..., Any]
) -> None:
    search = client.post("/searches", json=tiny_spec()).json()
    worker()
    wait_for(client, f"/searches/{search['id']}", lambda body: body["status"] in FINISHED)
    (best,) = client.get(f"/searches/{search['id']}/trials", params={"limit": 1}).json()
    response = client.get(f"/trials/{best['id']}")
    assert response.status_code == 200
    events = response.json()["events"]
    assert [e["event"] for e in events] == ["created", "claimed", "completed"]
    assert [e["status"] for e in events] == ["queued", "running", "completed"]
    assert events[1]["worker_id"] == events[2]["worker_id"] is not None
    assert [e["attempt"] for e in events] == [0, 1, 1]
    tag = response.headers["etag"]
    again = client.get(f"/trials/{best['id']}", headers={"If-None-Match": tag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", tag)
    other = client.get(f"/trials/{best['id']}", params={"max_points": 1})
    assert other.headers["etag"] != tag and len(other.json()["curves"]) == 1
    statements: list[str] = []
    engine = client.app.state.storage.engine  # type: ignore[attr-defined]
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    kept = client.get(f"/trials/{best['id']}")  # rendered once, kept: no database read
    assert (kept.json(), kept.headers["etag"], statements) == (response.json(), tag, [])
    requeued = client.post(f"/trials/{best['id']}/requeue")
    assert requeued.status_code == 409  # a completed trial stays as it is
    assert client.get(f"/trials/{best['id']}", headers={"If-None-Match": tag}).status_code == 304


def test_a_leaderboard_page_answers_304_to_its_etag(client: TestClient) -> None:
    search = client.post("/searches", json=tiny_spec()).json()
    path = f"/searches/{search['id']}/trials"
    wait_for(client, path, lambda body: len(body) >= 2)  # queued once the sanity gate passed
    page = client.get(path, params={"limit": 2})
    assert page.status_code == 200 and len(page.json()) == 2
    tag = page.headers["etag"]
    same = client.get(
        f"/searches/{search['id']}/trials", params={"limit": 2}, headers={"If-None-Match": tag}
    )
    assert (same.status_code, same.content) == (304, b"")
    client.post(f"/trials/{page.json()[0]['id']}/cancel")
    changed = client.get(
        f"/searches/{search['id']}/trials", params={"limit": 2}, headers={"If-None-Match": tag}
    )
    assert changed.status_code == 200 and changed.headers["etag"] != tag


def test_only_one_of_several_api_processes_runs_the_master(
    make_client: Callable[..., TestClient],
) -> None:
    clients = [make_client(), make_client(), make_client()]
    loops = [c.app.state.master for c in clients]  # type: ignore[attr-defined]

    def some_ticked(_: Any) -> bool:
        return sum(loop.ticks > 0 for loop in loops) >= 1

    wait_for(clients[0], "/health", some_ticked)
    assert sum(loop.leader.held for loop in loops) == 1
    assert sum(loop.ticks > 0 for loop in loops) == 1
