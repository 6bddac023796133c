"""Helpers of the browser tests: the running dashboard's handle, its search spec, page
watchers and screenshots (under test-artifacts/dashboard/, ignored by git)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from service_tools import REPO_ROOT, Service

from hpsearch.db import Storage

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


def answers(api: httpx.Client) -> bool:
    try:
        return api.get("/health").status_code == 200
    except httpx.HTTPError:
        return False


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


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
