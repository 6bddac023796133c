"""Fixtures of the browser tests: one real `hpsearch serve`, one real RQ worker and one real
search on PostgreSQL and Redis, shared by the module; Debian's Chromium through Playwright.

Chromium is launched by its executable path (HPSEARCH_TEST_CHROMIUM, default
/usr/bin/chromium); no browser is ever downloaded. Screenshots go to
test-artifacts/dashboard/ (ignored by git).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories import postgres_schema_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))
from service_tools import HPSEARCH, REPO_ROOT, Service, redis_database, wait_for

from hpsearch.db import Storage, open_storage

CHROMIUM = os.environ.get("HPSEARCH_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
ARTIFACTS = REPO_ROOT / "test-artifacts" / "dashboard"
TOKEN = "browser-test-token-8c1e"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Dashboard:
    """The running server, its database, the search it runs and what the pages reported."""

    base_url: str
    storage: Storage
    api: httpx.Client
    search_id: int
    server_log: Path
    service: Service
    problems: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"


def browser_spec(trials: int) -> dict[str, Any]:
    """One stage of 2-epoch trials on the 8x8 digits (images: first-layer weights show)."""
    return {
        "name": "browser-test",
        "seed": 2,
        "concurrency": 1,
        "base": {"data": {"source": "digits"}, "model": {"hidden_sizes": [16]}, "batch_size": 64},
        "space": {
            "optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-3, "high": 1e-1},
            "model.keep_prob": {"kind": "uniform", "low": 0.6, "high": 1.0},
        },
        "stages": [{"trials": trials, "epochs": 2}],
    }


@pytest.fixture(scope="module")
def dashboard(
    postgres_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Dashboard]:
    home = tmp_path_factory.mktemp("dashboard")
    with postgres_schema_url(postgres_url) as database_url, redis_database(redis_url) as redis:
        # Generous staleness: a loaded CI machine must not requeue the trials under test.
        service = Service(home=home, database_url=database_url, redis_url=redis, stale_after_s=60)
        port = free_port()
        env = service.env(
            HPSEARCH_API_TOKENS=json.dumps([TOKEN]),
            HPSEARCH_MASTER_TICK_S="0.2",
            HPSEARCH_LAUNCH_RATE_PER_MINUTE="1000",
        )
        log_path = home / "serve.log"
        with log_path.open("wb") as log:
            server = subprocess.Popen(
                [*HPSEARCH, "serve", "--port", str(port)],
                cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        storage = open_storage(database_url)
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        try:
            wait_for(lambda: _answers(api), 60, "hpsearch serve to answer /health")
            service.start_worker()
            response = api.post("/searches", json=browser_spec(trials=2000))  # cancelled early
            assert response.status_code == 201, response.text
            yield Dashboard(str(api.base_url).rstrip("/"), storage, api,
                            response.json()["id"], log_path, service)  # fmt: skip
        finally:
            service.stop_workers()
            server.terminate()
            server.wait(timeout=30)
            api.close()
            storage.close()
            assert TOKEN not in log_path.read_text(errors="replace"), "token in the server log"


def _answers(api: httpx.Client) -> bool:
    try:
        return api.get("/health").status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def watch(page: Any, problems: list[str]) -> Any:
    """Record console errors, page errors, failed requests and HTTP errors of `page`."""
    page.on(
        "console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def failed(request: Any) -> None:
        if request.failure != "net::ERR_ABORTED":  # a poll cut short by a navigation
            problems.append(f"failed: {request.url} {request.failure}")

    page.on("requestfailed", failed)
    page.on(
        "response",
        lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None,
    )
    return page


@pytest.fixture(scope="module")
def page(browser: Any, dashboard: Dashboard) -> Iterator[Any]:
    """One signed-out page of one browser context, watched for problems."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield watch(context.new_page(), dashboard.problems)
    context.close()


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
