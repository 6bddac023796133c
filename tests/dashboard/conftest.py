"""Fixtures of the browser tests: one real `hpsearch serve`, one real RQ worker and one real
search on PostgreSQL and Redis, shared by the module; Debian's Chromium through Playwright.

Chromium is launched by its executable path (HPSEARCH_TEST_CHROMIUM, default
/usr/bin/chromium); no browser is ever downloaded.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_tools import (
    CHROMIUM,
    CHROMIUM_ARGS,
    TOKEN,
    Dashboard,
    answers,
    browser_spec,
    free_port,
    watch,
)
from factories import postgres_schema_url
from service_tools import HPSEARCH, Service, redis_database, wait_for

from hpsearch.db import open_storage


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
            wait_for(lambda: answers(api), 60, "hpsearch serve to answer /health")
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page(browser: Any, dashboard: Dashboard) -> Iterator[Any]:
    """One signed-out page of one browser context, watched for problems."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield watch(context.new_page(), dashboard.problems)
    context.close()
