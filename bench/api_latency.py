"""Latency of the dashboard's two hot queries through the REST API, under 50 concurrent clients.

Setup: a fresh PostgreSQL schema holding one search of 10,000 completed trials
x 50 epoch rows (500,000 rows, inserted server-side with generate_series),
served by `hpsearch serve --workers N` as deployed (its own processes, master
off). This process runs CLIENTS concurrent clients (asyncio, one keep-alive
connection each), each with at most one request in flight, in two modes:
- dashboard: each client sends one request every INTERVAL_S seconds (random
  phase), like 50 open dashboards refreshing;
- saturated: each client sends its next request as soon as the last one
  answered (closed loop): the server's throughput, latency = queueing.

Measured, REQUESTS requests each (after a warm-up):
- best runs: `GET /searches/{id}/trials?limit=50` (best validation accuracy first)
- curves:    `GET /trials/{random id}` (config, 50 epochs of curves, checkpoints)
Printed: p50 / p95 / p99 latency, throughput, errors (non-200) and dropped
connections (transport errors), the CPU time per request of the server's
processes, of their PostgreSQL backends (its connections carry
application_name API_APPLICATION; the database must be local) and of this
client, and as the peer the same storage call made
directly (`Storage.best_trials`, `Storage.trial_page`, serial, no HTTP) with
the ratio of the two p50s. Target: p95 < 50 ms.

The clients are a minimal HTTP/1.1 client over asyncio streams (`HttpClient`:
prebuilt GETs, Content-Length or chunked bodies), not httpx: the load runs on
the same machine as the server, and a full client library cost as much CPU
per request as the server itself (4-5.5 ms against 3.7-5.3 ms on 2 cores), so
it capped the throughput measured and, with --running, took CPU from
training; the dashboards it stands for are browsers on other machines. Its
own CPU per request is still printed, so what it costs stays visible.

Run: python bench/api_latency.py [--database-url URL] [--clients 50] [--requests 2000]
(default URL: HPSEARCH_TEST_POSTGRES_URL or postgresql+psycopg://postgres@127.0.0.1:5432/test)

`--running` measures instead against a RUNNING search, deployed as
docker-compose.yml does: `hpsearch serve --workers N` (master off), one
`hpsearch master` advancing the search and 2 local worker processes training
on the same machine. For DURATION_S each:
training alone (epochs/s committed), 50 clients at dashboard pace (one
request a second each, best runs and a random trial's curves alternately),
50 closed-loop clients, training alone again. Printed: req/s, p50/p95/p99,
errors (non-200) and dropped connections (transport errors), and training
epochs/s under load as a ratio of the mean of the two quiet windows, which
bracket it, in the same run (the machine may be shared), and the CPU time per
request of the server, of its PostgreSQL backends and of this client.
Targets: dashboard p95 < 200 ms, 0 errors, training slowed <= 15%; closed
loop 0 dropped connections and >= 2x 109-165 req/s.
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
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, NullPool, create_engine, text
from sqlalchemy.engine import make_url

from hpsearch.db import NewTrial, Storage, open_storage
from hpsearch.executors import LocalExecutor
from hpsearch.master import create_search
from hpsearch.search import parse_search_spec

TOKEN = "bench-token"
API_APPLICATION = "hpsearch-bench-api"  # application_name of the API's database connections
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` and its children, living or reaped (Linux)."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += sum(int(value) for value in fields[11:15]) / CLOCK_TICKS
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (FileNotFoundError, ProcessLookupError):
        return total
    return total + sum(cpu_seconds(int(child)) for child in children)


@dataclass
class Service:
    """`hpsearch serve` (and its local workers): its base URL, root process, and its
    PostgreSQL backends (the connections named API_APPLICATION, found through `monitor`)."""

    base: str
    process: subprocess.Popen[bytes]
    monitor: Engine

    def cpu_s(self) -> float:
        return cpu_seconds(self.process.pid)

    def backend_cpu_s(self) -> dict[int, float]:
        """CPU seconds by pid of the API's PostgreSQL backends (local server, Linux)."""
        with self.monitor.connect() as connection:
            pids = connection.execute(
                text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
                {"name": API_APPLICATION},
            ).scalars()
            return {pid: cpu_seconds(pid) for pid in pids}


@contextmanager
def serve(database_url: str, home: str, api_workers: int, workers: int = 0) -> Iterator[Service]:
    """`hpsearch serve --workers N` as deployed (docker-compose.yml: HPSEARCH_API_MASTER=false);
    with `workers`, also `hpsearch master` and that many `hpsearch worker --local`."""
    port = free_port()
    named = make_url(database_url).update_query_dict({"application_name": API_APPLICATION})
    env = os.environ | {
        "HPSEARCH_DATABASE_URL": database_url, "HPSEARCH_API_TOKENS": f'["{TOKEN}"]',
        "HPSEARCH_HOME": home, "HPSEARCH_REDIS_URL": "", "HPSEARCH_LOG_LEVEL": "warning",
        "HPSEARCH_API_MASTER": "false",
    }  # fmt: skip
    hpsearch = [sys.executable, "-c", "from hpsearch.cli import app; app(prog_name='hpsearch')"]
    command = [*hpsearch, "serve", "--port", str(port), "--workers", str(api_workers)]
    api_url = named.render_as_string(hide_password=False)
    processes = [subprocess.Popen(command, env=env | {"HPSEARCH_DATABASE_URL": api_url})]
    if workers:
        processes.append(subprocess.Popen([*hpsearch, "master"], env=env))
        processes += [subprocess.Popen([*hpsearch, "worker", "--local"], env=env)
                      for _ in range(workers)]  # fmt: skip
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
        monitor = create_engine(database_url, poolclass=NullPool)
        yield Service(base, processes[0], monitor)
        monitor.dispose()
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


@dataclass
class Load:
    """What the clients of one load window saw, and the CPU it cost."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    dropped: int = 0
    wall_s: float = 0.0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    database_cpu_s: float = 0.0

    def line(self, name: str) -> str:
        count = max(1, len(self.latencies))
        p50, p95, p99 = (percentile(self.latencies, q) * 1000 for q in (50, 95, 99))
        return (f"{name:<22} {len(self.latencies) / self.wall_s:6.0f} req/s  p50 {p50:6.1f} ms  "
                f"p95 {p95:6.1f} ms  p99 {p99:6.1f} ms  errors {self.errors}  dropped "
                f"{self.dropped}  CPU/req: server {1000 * self.server_cpu_s / count:4.2f} ms, "
                f"its postgres {1000 * self.database_cpu_s / count:4.2f} ms, "
                f"client {1000 * self.client_cpu_s / count:4.2f} ms")  # fmt: skip


class HttpClient:
    """One keep-alive HTTP/1.1 connection that sends prebuilt GETs (the load generator).

    Minimal on purpose: a GET with Host and Authorization, then the status
    line, the headers and exactly Content-Length bytes of body (or the chunks
    of a `Transfer-Encoding: chunked` body). Anything else (no length, a
    reset, EOF or a timeout mid-answer) raises DroppedError and the next
    request opens a new connection.
    """

    def __init__(self, host: str, port: int, timeout_s: float = 30.0) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self._stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, request: bytes) -> int:
        """Send one prebuilt request (`request_bytes`) and read its answer: the status code."""
        try:
            return await asyncio.wait_for(self._exchange(request), self.timeout_s)
        except (OSError, EOFError, asyncio.IncompleteReadError, TimeoutError, ValueError) as error:
            self.close()
            raise DroppedError(f"{type(error).__name__}: {error}") from error

    async def _exchange(self, request: bytes) -> int:
        if self._stream is None:
            self._stream = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._stream
        writer.write(request)
        status_line = await reader.readline()
        if not status_line:
            raise EOFError("the server closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        headers: dict[bytes, bytes] = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n"):
            if not line:
                raise EOFError("the server closed the connection inside the headers")
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            while size := int((await reader.readline()).split(b";", 1)[0], 16):
                await reader.readexactly(size + 2)  # the chunk and its CRLF
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # trailers
        elif b"content-length" in headers:
            await reader.readexactly(int(headers[b"content-length"]))
        elif status not in (204, 304):
            raise ValueError("an answer with neither Content-Length nor chunked encoding")
        if headers.get(b"connection", b"").lower() == b"close":
            self.close()
        return status

    def close(self) -> None:
        if self._stream is not None:
            self._stream[1].close()
            self._stream = None


class DroppedError(Exception):
    """A connection reset, closed or timed out in the middle of a request."""


def request_bytes(host: str, path: str) -> bytes:
    """A keep-alive GET of `path` with the bench's bearer token."""
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Accept: application/json\r\n\r\n").encode("ascii")  # fmt: skip


async def load(
    service: Service,
    paths: Callable[[], str],
    clients: int,
    interval_s: float = 0.0,
    requests: int | None = None,
    duration_s: float | None = None,
) -> Load:
    """GETs from `clients` clients (one connection each): `requests` in all, or for `duration_s`.

    Each client has one request in flight and starts one every `interval_s`
    (0: as soon as the last one answered). A non-200 answer is an error; a
    dropped connection is counted and reopened.
    """
    result = Load()
    url = httpx.URL(service.base)
    host, port = url.host, url.port or 80
    end = time.perf_counter() + (duration_s if duration_s is not None else 1e9)

    async def one_client(count: float) -> None:
        client = HttpClient(host, port)
        await asyncio.sleep(random.uniform(0, interval_s))
        try:
            while count > 0 and time.perf_counter() < end:
                count -= 1
                request = request_bytes(f"{host}:{port}", paths())
                started = time.perf_counter()
                try:
                    result.errors += await client.get(request) != 200
                except DroppedError:
                    result.dropped += 1
                result.latencies.append(time.perf_counter() - started)
                await asyncio.sleep(max(0.0, interval_s - (time.perf_counter() - started)))
        finally:
            client.close()

    if requests is None:
        counts = [float("inf")] * clients
    else:
        counts = [requests // clients + (i < requests % clients) for i in range(clients)]
    backends_s = service.backend_cpu_s()
    server_s, client_s, started = service.cpu_s(), time.process_time(), time.perf_counter()
    await asyncio.gather(*(one_client(count) for count in counts))
    result.wall_s = time.perf_counter() - started
    result.server_cpu_s = service.cpu_s() - server_s
    result.client_cpu_s = time.process_time() - client_s
    result.database_cpu_s = sum(cpu_s - backends_s.get(pid, 0.0)
                                for pid, cpu_s in service.backend_cpu_s().items())  # fmt: skip
    return result


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


def report(name: str, result: Load, direct_s: float) -> None:
    p50 = percentile(result.latencies, 50) * 1000
    p95 = percentile(result.latencies, 95) * 1000
    print(f"{result.line(name)}  | direct storage call p50 {direct_s * 1000:5.2f} ms "
          f"(HTTP p50 / direct = {p50 / (direct_s * 1000):4.1f}x)  "
          f"target p95 < 50 ms: {'met' if p95 < 50 else 'MISSED'}")  # fmt: skip


RUNNING_SPEC = {
    "name": "bench-running", "seed": 0, "concurrency": 4,
    "base": {"data": {"source": "spiral", "num_classes": 3, "points_per_class": 300},
             "model": {"hidden_sizes": [128, 128]}, "batch_size": 100},
    "space": {"optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-4, "high": 1e-2}},
    "stages": [{"trials": 4000, "epochs": 5}],  # outlasts the four windows
}  # fmt: skip


def epochs_committed(storage: Storage, search_id: int) -> int:
    with storage.engine.connect() as connection:
        return int(connection.execute(text(
            "SELECT count(*) FROM epoch_metrics m JOIN trials t ON t.id = m.trial_id "
            "WHERE t.search_id = :s"), {"s": search_id}).scalar_one())  # fmt: skip


def training_rate(storage: Storage, search_id: int, work: Callable[[], Any]) -> tuple[float, Any]:
    """Epochs/s committed for the search while `work()` runs; and what it returned."""
    before, started = epochs_committed(storage, search_id), time.perf_counter()
    result = work()
    rate = (epochs_committed(storage, search_id) - before) / (time.perf_counter() - started)
    return rate, result


def running_main(args: argparse.Namespace) -> None:
    with fresh_schema(args.database_url) as url, tempfile.TemporaryDirectory() as home:
        storage = open_storage(url)
        spec = parse_search_spec(RUNNING_SPEC, source="bench")
        search_id = create_search(storage, spec, LocalExecutor())
        with serve(url, home, args.server_workers, workers=2) as service:
            time.sleep(5)  # workers load the data and start training
            ids = [t.id for t in storage.best_trials(search_id, limit=200)]
            routes = [f"/searches/{search_id}/trials?limit=50"]

            def next_path() -> str:  # best runs and a trial's curves, alternately at random
                return random.choice([routes[0], f"/trials/{random.choice(ids)}"])

            quiet = lambda: time.sleep(args.duration_s)  # noqa: E731
            rates = {"quiet before": training_rate(storage, search_id, quiet)[0]}
            for mode, interval_s in (("dashboard", 1.0), ("closed loop", 0.0)):
                run = lambda i=interval_s: asyncio.run(  # noqa: E731
                    load(service, next_path, args.clients, i, duration_s=args.duration_s)
                )
                rates[mode], result = training_rate(storage, search_id, run)
                print(f"{result.line(mode)}  ({len(result.latencies)} requests)")
            rates["quiet after"] = training_rate(storage, search_id, quiet)[0]
        quiet_rate = (rates["quiet before"] + rates["quiet after"]) / 2
        print("training epochs/s: " + ", ".join(f"{k} {v:.1f}" for k, v in rates.items()))
        for mode in ("dashboard", "closed loop"):
            print(f"training under {mode} load: {rates[mode] / quiet_rate:.2f} x its quiet rate "
                  f"(slowed {100 * (1 - rates[mode] / quiet_rate):.0f}%)")  # fmt: skip
        if storage.get_search(search_id).status == "running":
            storage.request_cancel_search(search_id)
        storage.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--interval-s", type=float, default=1.0, help="dashboard refresh")
    parser.add_argument("--server-workers", type=int, default=1, help="hpsearch serve --workers")
    parser.add_argument("--running", action="store_true", help="against a running search")
    parser.add_argument("--duration-s", type=float, default=60.0, help="--running: per window")
    args = parser.parse_args()
    if args.running:
        running_main(args)
        return
    with fresh_schema(args.database_url) as url, tempfile.TemporaryDirectory() as home:
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
                       lambda: storage.trial_page(rng.choice(trial_ids))),
        }  # fmt: skip
        print(f"{args.clients} concurrent clients, {args.requests} requests per query and mode, "
              f"server: hpsearch serve --workers {args.server_workers}, client: this process "
              f"(asyncio HTTP/1.1), {os.cpu_count()} CPUs")  # fmt: skip
        with serve(url, home, args.server_workers) as service:
            for name, (paths, direct) in queries.items():
                asyncio.run(load(service, paths, args.clients, requests=200))  # warm-up
                direct_s = direct_p50(direct)
                for mode, interval_s in (("dashboard", args.interval_s), ("saturated", 0.0)):
                    result = asyncio.run(
                        load(service, paths, args.clients, interval_s, requests=args.requests)
                    )
                    report(f"{name} ({mode})", result, direct_s)
        storage.close()


if __name__ == "__main__":
    main()
