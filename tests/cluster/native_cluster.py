"""The compose topology started natively: API, master and workers as processes on loopback.

Each process gets exactly the environment docker-compose.yml gives its
service (interpolated from the test's `.env` variables), with the container
addresses translated to loopback ones: the `postgres` and `redis` hosts
become the private servers, `/data` and `/checkpoints` folders of the test.
The commands are the compose `command:` lists, run by `hpsearch` (this
interpreter's), the API's host and port swapped for 127.0.0.1 and a free port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from compose_file import load_compose, service_environment
from private_services import PrivatePostgres, PrivateRedis, free_port
from service_tools import wait_for

__all__ = ["HPSEARCH", "TEST_VARIABLES", "ClusterProcess", "NativeCluster"]

HPSEARCH = [sys.executable, "-c", "from hpsearch.cli import app; app(prog_name='hpsearch')"]
TOKEN = "cluster-test-token-0123456789"
TEST_VARIABLES = {
    "POSTGRES_PASSWORD": "cluster-test-password",
    "HPSEARCH_API_TOKENS": f'["{TOKEN}"]',
    "HPSEARCH_HEARTBEAT_S": "0.3",
    "HPSEARCH_STALE_AFTER_S": "1.5",
}


@dataclass
class ClusterProcess:
    service: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


@dataclass
class NativeCluster:
    postgres: PrivatePostgres
    redis: PrivateRedis
    home: Path
    database: str
    variables: dict[str, str] = field(default_factory=lambda: dict(TEST_VARIABLES))
    processes: list[ClusterProcess] = field(default_factory=list)
    api_port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.compose = load_compose()
        self.data_root.mkdir(parents=True, exist_ok=True)
        self.checkpoint_root.mkdir(parents=True, exist_ok=True)

    @property
    def data_root(self) -> Path:
        return self.home / "data"

    @property
    def checkpoint_root(self) -> Path:
        return self.home / "checkpoints"

    def environment(self, service: str) -> dict[str, str]:
        """The compose service's environment, translated to this host's addresses."""
        password = self.variables["POSTGRES_PASSWORD"]
        replacements = {
            "@postgres:5432/hpsearch": f"@127.0.0.1:{self.postgres.port}/{self.database}",
            "redis://redis:6379/0": self.redis.url,
        }
        folders = {"/data": self.data_root, "/checkpoints": self.checkpoint_root}
        translated = {}
        for key, value in service_environment(self.compose, service, self.variables).items():
            for old, new in replacements.items():
                value = value.replace(old, new)
            for old_folder, new_folder in folders.items():
                if value == old_folder or value.startswith(old_folder + "/"):
                    value = str(new_folder) + value[len(old_folder) :]
            translated[key] = value
        assert password in translated.get("HPSEARCH_DATABASE_URL", password)
        return translated

    @property
    def database_url(self) -> str:
        return self.environment("worker")["HPSEARCH_DATABASE_URL"]

    def command(self, service: str) -> list[str]:
        arguments = [str(a) for a in self.compose["services"][service]["command"]]
        swaps = {"0.0.0.0": "127.0.0.1", "8000": str(self.api_port)}
        return [*HPSEARCH, *(swaps.get(a, a) for a in arguments)]

    def start(self, service: str, environment: dict[str, str] | None = None) -> ClusterProcess:
        """Start one process of `service` (api, master or worker) as compose would."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("HPSEARCH_")}
        env |= self.environment(service) | (environment or {}) | {"PYTHONUNBUFFERED": "1"}
        log_path = self.home / f"{service}-{len(self.processes)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(self.command(service), cwd=self.home, env=env,
                                       stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        started = ClusterProcess(service, process, log_path)
        self.processes.append(started)
        if service == "api":
            wait_for(self.api_answers, 90, lambda: "the API's /health\n" + self.logs())
        return started

    def start_topology(self, workers: int) -> None:
        self.start("api")
        self.start("master")
        for _ in range(workers):
            self.start("worker")

    def running(self, service: str) -> list[ClusterProcess]:
        return [p for p in self.processes if p.service == service and p.alive()]

    def api_answers(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    def rest(self, method: str, path: str, **kwargs: Any) -> Any:
        """One REST call; the JSON body of a 2xx answer (AssertionError otherwise)."""
        with self.client() as client:
            response = client.request(method, path, **kwargs)
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.headers.get("content-type", "").startswith(
            "application/json") else response.content  # fmt: skip

    def logs(self) -> str:
        return "\n".join(f"--- {p.log_path.name}\n{p.log_path.read_text(errors='replace')[-3000:]}"
                         for p in self.processes)  # fmt: skip

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
