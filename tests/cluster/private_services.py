"""PostgreSQL and Redis servers of this test run alone, to restart, flush and kill.

Nothing here touches the shared servers (PostgreSQL on 5432, anyone's Redis):
`PrivatePostgres` creates its own Debian cluster `chaos_<pid>_<n>` on a free
port (`pg_createcluster`, trust authentication; the wrappers run initdb as
the postgres user) and drops it at the end; `PrivateRedis` runs a
redis-server on a free port with the compose file's own flags, its AOF in a
folder of its own.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
from pathlib import Path

import psycopg
from service_tools import wait_for

__all__ = ["PrivatePostgres", "PrivateRedis", "free_port"]

PG_VERSION = "15"
_CLUSTERS = itertools.count()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivatePostgres:
    """A PostgreSQL 15 cluster of this process, on 127.0.0.1:<port>."""

    def __init__(self) -> None:
        self.name = f"chaos_{os.getpid()}_{next(_CLUSTERS)}"
        self.port = free_port()
        _run("pg_createcluster", PG_VERSION, self.name, "-p", str(self.port),
             "-o", "max_connections=200",
             "--", "--auth=trust")  # fmt: skip
        try:
            self.start()
        except BaseException:
            self.drop()
            raise

    def _ctl(self, action: str) -> None:
        _run("pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, self.name, action)

    def start(self) -> None:
        self._ctl("start")
        wait_for(self.answers, 60, f"PostgreSQL {self.name} to accept connections")

    def restart(self) -> None:
        """`pg_ctlcluster ... restart` (fast shutdown: every connection is cut)."""
        self._ctl("restart")
        wait_for(self.answers, 60, f"PostgreSQL {self.name} to come back")

    def answers(self) -> bool:
        try:
            with psycopg.connect(self.admin_dsn, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    @property
    def admin_dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def create_database(self, name: str, owner: str, password: str) -> None:
        """A fresh database `name` owned by the login role `owner` (created if missing)."""
        with psycopg.connect(self.admin_dsn, autocommit=True) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (owner,)
            ).fetchone()
            if not exists:
                connection.execute(f"CREATE ROLE \"{owner}\" LOGIN PASSWORD '{password}'")
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')

    def drop(self) -> None:
        subprocess.run(["pg_dropcluster", "--stop", PG_VERSION, self.name],
                       check=False, capture_output=True, timeout=120)  # fmt: skip


class PrivateRedis:
    """A redis-server of this process, started with `flags` (the compose file's)."""

    def __init__(self, folder: Path, flags: list[str]) -> None:
        self.folder, self.flags, self.port = folder, flags, free_port()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = ["redis-server", *self.flags, "--port", str(self.port), "--bind", "127.0.0.1",
                   "--dir", str(self.folder), "--save", ""]  # fmt: skip
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self.answers, 30, f"redis-server on port {self.port}")

    def answers(self) -> bool:
        from redis import Redis

        try:
            return bool(Redis.from_url(self.url, socket_timeout=1).ping())
        except Exception:  # any connection failure means not yet
            return False

    def stop(self) -> None:
        """SIGTERM: redis-server finishes its AOF and exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)

    def restart(self) -> None:
        self.stop()
        self.start()

    def flush(self) -> None:
        from redis import Redis

        Redis.from_url(self.url).flushall()


def _run(*command: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stdout}{result.stderr}")
