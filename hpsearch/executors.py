"""How queued trials reach workers: the local process pool or RQ on Redis.

The database is the truth (DESIGN.md rule 2): a trial is ready to run when its
row says `queued`. An executor only carries trial ids to workers, and both
executors end in the same `worker.trial.run_trial(trial_id)`.

- `LocalExecutor`: the laptop mode. The queue *is* the database: local worker
  processes (`worker.main.local_worker_loop`) claim queued trials directly, so
  `enqueue` has nothing to do and nothing can be lost.
- `RQExecutor`: the cluster mode (`HPSEARCH_REDIS_URL`). Each trial is one RQ
  job whose id is `trial-<trial id>`, carrying only the trial id. `lost()`
  tells which queued trials have no live job in Redis (a flushed or restarted
  Redis), so the master can enqueue them again; enqueueing twice is harmless
  because a worker claims a trial with a conditional update.

Ensemble builds travel the same way (`enqueue_ensembles`): local workers
claim queued ensemble rows from the database, RQ workers get one job per
batch of ensembles (`worker.ensembles.run_ensemble_builds`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from hpsearch.errors import QueueError

__all__ = [
    "QUEUE_NAME",
    "Executor",
    "LocalExecutor",
    "RQExecutor",
    "ensemble_job_id_for",
    "job_id_for",
    "make_executor",
]

QUEUE_NAME = "hpsearch"
_LIVE_JOB_STATUSES = {b"queued", b"deferred", b"scheduled"}
# A "started" job whose trial is still queued in the database is being claimed
# right now (the worker marks the job started, then claims the trial), or its
# worker died before claiming it. Only the second kind, older than this, is lost.
CLAIM_GRACE_S = 30.0
DEDUPE_WINDOW_S = 1.0
_MARKER_PREFIX = "hpsearch:enqueued:"


class Executor(Protocol):
    def enqueue(self, trial_ids: Sequence[int], at_front: bool = False) -> None:
        """Make these queued trials reach a worker (`at_front`: before every waiting trial)."""
        ...

    def lost(self, trial_ids: Sequence[int]) -> list[int]:
        """The queued trials among `trial_ids` that no worker will ever receive."""
        ...

    def backlog(self) -> int | None:
        """How many jobs wait for a worker, if the executor knows cheaply (else None)."""
        ...

    def enqueue_ensembles(self, ensemble_ids: Sequence[int]) -> None:
        """Make these queued ensemble builds reach a worker (one job builds them all)."""
        ...

    def ensembles_lost(self, first_ensemble_id: int) -> bool:
        """Whether the job of the batch starting at this queued ensemble is gone."""
        ...


class LocalExecutor:
    """Local worker processes poll the database for queued trials."""

    def enqueue(self, trial_ids: Sequence[int], at_front: bool = False) -> None:
        return None  # workers take retries first (`Storage.queued_trial_ids`)

    def lost(self, trial_ids: Sequence[int]) -> list[int]:
        return []

    def backlog(self) -> int | None:
        return None  # the database is the queue: ask it

    def enqueue_ensembles(self, ensemble_ids: Sequence[int]) -> None:
        return None  # local workers claim queued ensembles from the database too

    def ensembles_lost(self, first_ensemble_id: int) -> bool:
        return False


def job_id_for(trial_id: int) -> str:
    return f"trial-{trial_id}"


def ensemble_job_id_for(first_ensemble_id: int) -> str:
    return f"ensembles-{first_ensemble_id}"


class RQExecutor:
    """One RQ job per trial on the `hpsearch` queue; jobs carry only the trial id."""

    def __init__(
        self,
        redis_url: str,
        queue_name: str = QUEUE_NAME,
        claim_grace_s: float = CLAIM_GRACE_S,
        dedupe_window_s: float = DEDUPE_WINDOW_S,
    ) -> None:
        from redis import Redis
        from rq import Queue

        self.redis_url, self.claim_grace_s = redis_url, claim_grace_s
        self.dedupe_window_s = dedupe_window_s
        self.connection = Redis.from_url(redis_url, socket_connect_timeout=5, socket_timeout=30)
        self.queue = Queue(queue_name, connection=self.connection)

    def enqueue(self, trial_ids: Sequence[int], at_front: bool = False) -> None:
        """One job per trial, unless another caller enqueued it within DEDUPE_WINDOW_S.

        `at_front` (retries: a requeued or handed-back trial) pushes the jobs
        to the head of the queue, so they run before trials queued after them.

        Two masters advancing a search at the same moment both see its new
        trials; a short-lived `SET NX` marker per trial lets only one of them
        enqueue it (a duplicate would be harmless, the claim runs it once, but
        it costs a worker a dequeue).
        """
        if not trial_ids:
            return
        from redis.exceptions import RedisError

        try:
            fresh = self._first_to_enqueue(trial_ids)
            if fresh:
                jobs = [self._job_data(trial_id, at_front) for trial_id in fresh]
                self.queue.enqueue_many(jobs)
        except RedisError as error:
            raise QueueError(f"cannot enqueue trials on {self._safe_url()}: {error}") from error

    def _first_to_enqueue(self, trial_ids: Sequence[int]) -> list[int]:
        pipeline = self.connection.pipeline(transaction=False)
        window_ms = int(self.dedupe_window_s * 1000)
        for trial_id in trial_ids:
            marker = f"{_MARKER_PREFIX}{self.queue.name}:{job_id_for(trial_id)}"
            pipeline.set(marker, 1, nx=True, px=window_ms)
        first = pipeline.execute()
        return [trial_id for trial_id, won in zip(trial_ids, first, strict=True) if won]

    def _job_data(self, trial_id: int, at_front: bool = False) -> Any:
        return self.queue.prepare_data(
            "worker.trial.run_trial",
            at_front=at_front,
            args=(trial_id,),
            job_id=job_id_for(trial_id),
            timeout=-1,
            # Kept a minute after success: a duplicate delivery that ends first must
            # not delete the job hash under the delivery that runs the trial.
            result_ttl=60,
            failure_ttl=24 * 3600,
        )

    def enqueue_ensembles(self, ensemble_ids: Sequence[int]) -> None:
        """One job `ensembles-<first id>` that builds them all (their validation outputs
        are computed once); a second delivery finds them claimed and does nothing."""
        if not ensemble_ids:
            return
        from redis.exceptions import RedisError

        try:
            self.queue.enqueue_call(
                "worker.ensembles.run_ensemble_builds",
                args=(list(ensemble_ids),),
                job_id=ensemble_job_id_for(ensemble_ids[0]),
                timeout=-1,
                result_ttl=60,
                failure_ttl=24 * 3600,
            )
        except RedisError as error:
            raise QueueError(f"cannot enqueue ensembles on {self._safe_url()}: {error}") from error

    def ensembles_lost(self, first_ensemble_id: int) -> bool:
        """True when job `ensembles-<id>` is missing, finished, failed or started long ago."""
        from redis.exceptions import RedisError
        from rq.job import Job

        key = Job.key_for(ensemble_job_id_for(first_ensemble_id))
        try:
            status, started_at = self.connection.hmget(key, ["status", "started_at"])
        except RedisError as error:
            raise QueueError(f"cannot read jobs from {self._safe_url()}: {error}") from error
        assert not isinstance(status, str) and not isinstance(started_at, str)  # bytes replies
        return not self._is_live(status, started_at, datetime.now(UTC))

    def lost(self, trial_ids: Sequence[int]) -> list[int]:
        """Queued trials whose job is missing, finished, failed, or started long ago.

        A trial requeued after its worker died still has that worker's
        "started" job: the reaper enqueues it itself (see `master.reap`).
        """
        if not trial_ids:
            return []
        from redis.exceptions import RedisError
        from rq.job import Job

        try:
            pipeline = self.connection.pipeline(transaction=False)
            for trial_id in trial_ids:
                pipeline.hmget(Job.key_for(job_id_for(trial_id)), ["status", "started_at"])
            jobs = pipeline.execute()
        except RedisError as error:
            raise QueueError(f"cannot read jobs from {self._safe_url()}: {error}") from error
        now = datetime.now(UTC)
        return [
            trial_id
            for trial_id, (status, started_at) in zip(trial_ids, jobs, strict=True)
            if not self._is_live(status, started_at, now)
        ]

    def _is_live(self, status: bytes | None, started_at: bytes | None, now: datetime) -> bool:
        if status in _LIVE_JOB_STATUSES:
            return True
        if status != b"started" or not started_at:
            return False
        started = datetime.fromisoformat(started_at.decode()).replace(tzinfo=UTC)
        return (now - started).total_seconds() < self.claim_grace_s

    def backlog(self) -> int | None:
        """The length of the RQ queue (one LLEN); None when Redis does not answer."""
        from redis.exceptions import RedisError

        try:
            return int(self.queue.count)
        except RedisError:
            return None

    def _safe_url(self) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.redis_url).render_as_string(hide_password=True)


def make_executor(redis_url: str | None) -> Executor:
    """RQ when a Redis URL is configured, otherwise the local process pool."""
    return RQExecutor(redis_url) if redis_url else LocalExecutor()
