"""Latency of the dashboard's two hot queries through the REST API, under 50 concurrent clients.

Setup: a fresh PostgreSQL schema holding one search of 10,000 completed trials
x 50 epoch rows (500,000 rows, inserted server-side with generate_series),
served by `uvicorn api.main:create_app --factory` in its own process(es)
(master off). This process runs CLIENTS concurrent clients (httpx, asyncio),
each with at most one request in flight, in two modes:
- dashboard: each client sends one request every INTERVAL_S seconds (random
  phase), like 50 open dashboards refreshing;
- saturated: each client sends its next request as soon as the last one
  answered (closed loop): the server's throughput, latency = queueing.

Measured, REQUESTS requests each (after a warm-up):
- best runs: `GET /searches/{id}/trials?limit=50` (best validation accuracy first)
- curves:    `GET /trials/{random id}` (config, 50 epochs of curves, checkpoints)
Printed: p50 / p95 / p99 latency, throughput, and as the peer the same storage
call made directly (`Storage.best_trials`, `Storage.trial_curves`, serial, no
HTTP) with the ratio of the two p50s. Target: p95 < 50 ms.

Run: python bench/api_latency.py [--database-url URL] [--clients 50] [--requests 2000]
(default URL: HPSEARCH_TEST_POSTGRES_URL or postgresql+psycopg://postgres@127.0.0.1:5432/test)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from hpsearch.db import NewTrial, Storage, open_storage

TOKEN = "bench-token"
TRIALS = 10_000
EPOCHS = 50
DEFAULT_URL = os.environ.get(
    "HPSEARCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    """A URL whose connections use a new schema, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def populate(storage: Storage) -> tuple[int, list[int]]:
    """One search of TRIALS completed trials with EPOCHS epoch rows each."""
    search = storage.create_search("bench", {"name": "bench"}, seed=0, concurrency=8)
    rng = random.Random(0)
    ids: list[int] = []
    for start in range(0, TRIALS, 1000):
        batch = [
            NewTrial(
                stage=0, index=i, train_seed=i, epochs=EPOCHS,
                params={"optimizer.learning_rate": 10 ** rng.uniform(-5, -1),
                        "model.l2": 10 ** rng.uniform(-6, -1)},
                config={"epochs": EPOCHS, "model": {"hidden_sizes": [100]}},
            )
            for i in range(start, start + 1000)
        ]  # fmt: skip
        ids += [trial.id for trial in storage.add_trials(search.id, batch)]
    with storage.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO epoch_metrics (trial_id, epoch, train_loss, val_loss, "
                "train_accuracy, val_accuracy, ema_val_accuracy, learning_rate, stats, created_at) "
                "SELECT t.id, e, 2.3 / e, 2.4 / e, random(), random(), NULL, 0.001, "
                'CAST(\'{"dead_fraction": {"layer1": 0.1}}\' AS JSON), now() '
                "FROM trials t CROSS JOIN generate_series(1, :epochs) AS e "
                "WHERE t.search_id = :search"
            ),
            {"epochs": EPOCHS, "search": search.id},
        )
        connection.execute(
            text(
                "UPDATE trials SET status = 'completed', attempts = 1, last_epoch = :epochs, "
                "finished_at = now(), best_val_accuracy = m.best FROM (SELECT trial_id, "
                "max(val_accuracy) AS best FROM epoch_metrics GROUP BY trial_id) m "
                "WHERE m.trial_id = trials.id"
            ),
            {"epochs": EPOCHS},
        )
        connection.execute(text("ANALYZE"))
    return search.id, ids


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def api_server(database_url: str, workers: int = 1) -> Iterator[str]:
    """`uvicorn --factory api.main:create_app` in a child process; yields its base URL."""
    port = free_port()
    env = os.environ | {
        "HPSEARCH_DATABASE_URL": database_url,
        "HPSEARCH_API_TOKENS": f'["{TOKEN}"]',
        "HPSEARCH_API_MASTER": "false",
        "HPSEARCH_REDIS_URL": "",
    }
    command = [sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory",
               "--port", str(port), "--log-level", "warning", "--no-access-log",
               "--workers", str(workers)]  # fmt: skip
    process = subprocess.Popen(command, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise RuntimeError("the API server did not start")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


async def load(
    base: str, paths: Callable[[], str], clients: int, requests: int, interval_s: float = 0.0
) -> tuple[list[float], float]:
    """Latencies (s) of `requests` GETs spread over `clients` clients; wall time.

    Each client starts a request every `interval_s` (0: as soon as the last one answered).
    """
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits) as client:

        async def one_client(count: int) -> None:
            await asyncio.sleep(random.uniform(0, interval_s))
            for _ in range(count):
                started = time.perf_counter()
                response = await client.get(paths())
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise RuntimeError(f"{response.status_code}: {response.text[:200]}")
                await asyncio.sleep(max(0.0, interval_s - (time.perf_counter() - started)))

        per_client = [requests // clients + (i < requests % clients) for i in range(clients)]
        started = time.perf_counter()
        await asyncio.gather(*(one_client(count) for count in per_client))
        return latencies, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def direct_p50(call: Callable[[], Any], repeats: int = 200) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def report(name: str, latencies: list[float], wall_s: float, direct_s: float) -> bool:
    p50, p95, p99 = (percentile(latencies, q) * 1000 for q in (50, 95, 99))
    print(f"{name:<22} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  p99 {p99:6.1f} ms  "
          f"{len(latencies) / wall_s:6.0f} req/s  | direct storage call p50 "
          f"{direct_s * 1000:5.2f} ms (HTTP p50 / direct = {p50 / (direct_s * 1000):4.1f}x)  "
          f"target p95 < 50 ms: {'met' if p95 < 50 else 'MISSED'}")  # fmt: skip
    return p95 < 50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--interval-s", type=float, default=1.0, help="dashboard refresh")
    parser.add_argument("--server-workers", type=int, default=1, help="uvicorn processes")
    args = parser.parse_args()
    with fresh_schema(args.database_url) as url:
        storage = open_storage(url)
        started = time.perf_counter()
        search_id, trial_ids = populate(storage)
        elapsed_s = time.perf_counter() - started
        print(f"populated {TRIALS} trials x {EPOCHS} epochs in {elapsed_s:.1f} s")
        rng = random.Random(1)
        best_path = f"/searches/{search_id}/trials?limit=50"
        queries = {
            "best runs": (lambda: best_path,
                          lambda: storage.best_trials(search_id, limit=50)),
            "curves": (lambda: f"/trials/{rng.choice(trial_ids)}",
                       lambda: storage.trial_curves(rng.choice(trial_ids))),
        }  # fmt: skip
        print(f"{args.clients} concurrent clients, {args.requests} requests per query and mode, "
              f"server: uvicorn ({args.server_workers} process(es)), client: this process "
              f"(httpx + asyncio), {os.cpu_count()} CPUs")  # fmt: skip
        with api_server(url, args.server_workers) as base:
            for name, (paths, direct) in queries.items():
                asyncio.run(load(base, paths, args.clients, min(200, args.requests)))  # warm-up
                direct_s = direct_p50(direct)
                for mode, interval_s in (("dashboard", args.interval_s), ("saturated", 0.0)):
                    latencies, wall_s = asyncio.run(
                        load(base, paths, args.clients, args.requests, interval_s)
                    )
                    report(f"{name} ({mode})", latencies, wall_s, direct_s)
        storage.close()


if __name__ == "__main__":
    main()
