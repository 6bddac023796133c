"""Ensemble builds survive a flushed Redis: the master enqueues queued builds whose job is gone."""

from __future__ import annotations

import pytest
from redis import Redis
from rq import Queue
from service_tools import Service

from hpsearch import master
from hpsearch.db import Storage
from hpsearch.executors import QUEUE_NAME, RQExecutor, ensemble_job_id_for
from hpsearch.master import reap


def test_queued_builds_whose_job_redis_lost_are_enqueued_again(
    rq_service: Service, rq_storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert rq_service.redis_url is not None
    executor = RQExecutor(rq_service.redis_url)
    search = rq_storage.create_search("s", {}, seed=0)
    first, second = rq_storage.create_ensembles(search.id, [("top_k", 2), ("greedy", 9)])
    executor.enqueue_ensembles([first.id, second.id])
    assert not executor.ensembles_lost(first.id)
    monkeypatch.setattr(master, "CLAIM_GRACE_S", 0.0)
    queue = Queue(QUEUE_NAME, connection=Redis.from_url(rq_service.redis_url))
    reap(rq_storage, executor, rq_service.stale_after_s)
    assert queue.count == 1  # the live job is not duplicated

    Redis.from_url(rq_service.redis_url).flushdb()
    assert executor.ensembles_lost(first.id)
    reap(rq_storage, executor, rq_service.stale_after_s)
    (job,) = queue.get_jobs()
    assert job.id == ensemble_job_id_for(first.id) and job.args == ([first.id, second.id],)
    assert rq_storage.queued_ensembles(older_than_s=0.0) == {search.id: [first.id, second.id]}
