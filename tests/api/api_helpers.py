"""Constants and helpers shared by the API tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rq.job import Job

from hpsearch.executors import RQExecutor

__all__ = ["AUTH", "FINISHED", "TOKEN", "finished_jobs", "tiny_spec", "wait_for"]

TOKEN = "test-token-3f9a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FINISHED = {"completed", "cancelled", "failed"}


def tiny_spec(name: str = "api-tiny", **overrides: Any) -> dict[str, Any]:
    """A spiral search of 4 one-epoch trials, then the best 2 promoted to 3 epochs."""
    spec: dict[str, Any] = {
        "name": name,
        "concurrency": 2,
        "seed": 1,
        "asynchronous": False,
        "base": {
            "data": {"source": "spiral", "num_classes": 3, "points_per_class": 30},
            "model": {"hidden_sizes": [16]},
            "batch_size": 32,
        },
        "space": {"optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-3, "high": 1e-1}},
        "stages": [
            {"trials": 4, "epochs": 1},
            {"trials": 2, "epochs": 3, "keep": 2, "refine": "promote"},
        ],
    }
    spec.update(overrides)
    return spec


def wait_for(
    client: TestClient, path: str, predicate: Callable[[Any], bool], timeout_s: float = 60.0
) -> Any:
    """GET `path` until `predicate(json)` holds; fail after `timeout_s` (a liveness bound)."""
    deadline = time.monotonic() + timeout_s
    body: Any = None
    while time.monotonic() < deadline:
        response = client.get(path)
        assert response.status_code == 200, response.text
        body = response.json()
        if predicate(body):
            return body
        time.sleep(0.05)
    pytest.fail(f"{path} never satisfied the condition; last body: {body}")


def finished_jobs(executor: RQExecutor) -> list[Any]:
    """What the jobs a worker finished returned (`run_trial`: a trial's end or "skipped"),
    oldest first; finished jobs are kept a minute (`RQExecutor`)."""
    registry = executor.queue.finished_job_registry
    jobs = Job.fetch_many(registry.get_job_ids(), connection=executor.connection)
    return [job.return_value() for job in jobs if job is not None]
