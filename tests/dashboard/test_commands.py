"""`hpsearch dashboard` and `hpsearch run --dashboard`: 127.0.0.1, a fresh token printed once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import httpx
from browser_tools import free_port
from service_tools import HPSEARCH, wait_for, write_spec


def start(args: list[str], home: Path) -> tuple[subprocess.Popen[str], str, str]:
    """The command, its base URL and the token it printed (second line of stdout)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPSEARCH_")}
    env |= {"HPSEARCH_HOME": str(home / "home"), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [*HPSEARCH, *args], cwd=home, env=env, text=True,
        stdout=subprocess.PIPE, stderr=(home / "stderr.log").open("w"),
        preexec_fn=_default_sigint,
    )  # fmt: skip
    assert process.stdout is not None
    announcement, token = process.stdout.readline(), process.stdout.readline().strip()
    assert announcement.startswith("dashboard: http://127.0.0.1:"), announcement
    return process, announcement.split()[1].rstrip("/"), token


def _default_sigint() -> None:
    """SIGINT as a terminal's Ctrl-C delivers it: a suite started in the background by a
    shell without job control inherits SIGINT ignored, and so would the command."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def signed_in_client(base: str, token: str) -> httpx.Client:
    client = httpx.Client(base_url=base)
    wait_for(lambda: _healthy(client), 60, "the dashboard to answer")
    assert client.get("/searches").status_code == 401
    assert client.post("/session", json={"token": token}).status_code == 200
    return client


def _healthy(client: httpx.Client) -> bool:
    try:
        return client.get("/health").status_code == 200
    except httpx.HTTPError:
        return False


def test_dashboard_serves_the_default_sqlite_database_with_a_fresh_token(tmp_path: Path) -> None:
    process, base, token = start(["dashboard", "--port", str(free_port())], tmp_path)
    try:
        assert len(token) >= 32
        client = signed_in_client(base, token)
        assert client.get("/searches").json() == []
        assert client.get("/").status_code == 200
        assert (tmp_path / "home" / "hpsearch.db").exists()
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert token not in (tmp_path / "stderr.log").read_text()


def test_run_dashboard_serves_the_running_search(tmp_path: Path) -> None:
    spec = {
        "name": "run-dashboard", "seed": 1, "concurrency": 1,
        "base": {"data": {"source": "spiral", "num_classes": 3, "points_per_class": 20}},
        "space": {"optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-3, "high": 1e-1}},
        "stages": [{"trials": 2, "epochs": 1}],
    }  # fmt: skip
    path = write_spec(tmp_path / "spec.json", spec)
    port = free_port()
    process, base, token = start(
        ["run", str(path), "--workers", "1", "--dashboard", "--dashboard-port", str(port)], tmp_path
    )
    try:
        client = signed_in_client(base, token)
        wait_for(
            lambda: client.get("/searches").json()[0]["status"] == "completed", 120, "the search"
        )
        assert json.loads(client.get("/searches/1/points").text)["total"] == 2
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert token not in (tmp_path / "stderr.log").read_text()
