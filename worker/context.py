"""The per-process state of a worker: settings, storage, checkpoints, executor, identity.

Created lazily once per process (engines and Redis connections do not survive
a fork) and reused across trials, together with the data cache of
`hpsearch.data.prepare_data_cached` (memory-mapped from the shared prepared
store). BLAS is pinned to one thread per worker: N workers on N cores beat
N workers fighting over N×N BLAS threads.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from hpsearch.checkpoints import FileSystemCheckpointStorage
from hpsearch.db import Storage, open_storage
from hpsearch.executors import Executor, make_executor
from hpsearch.logs import log_event
from hpsearch.settings import Settings, get_settings
from worker.beat import WorkerBeat

__all__ = ["WorkerContext", "close_context", "get_context", "make_context", "pin_blas_threads"]


@dataclass
class WorkerContext:
    settings: Settings
    storage: Storage
    checkpoints: FileSystemCheckpointStorage
    executor: Executor
    worker_id: str
    # search id -> (queue depth under which a finished trial advances, when read)
    queue_thresholds: dict[int, tuple[int, float]] = field(default_factory=dict)
    # (keep_best, keep_last) of each search's checkpoints: its stored spec never changes
    keep_policies: dict[int, tuple[int, int]] = field(default_factory=dict)
    advancer: Any = None  # worker.trial._Advancer, started on the first finished trial
    beat: WorkerBeat | None = None  # the heartbeat thread of this process
    # Set when the worker is asked to stop (SIGTERM): its trial is handed back at once.
    stopping: threading.Event = field(default_factory=threading.Event)


_context: WorkerContext | None = None
_blas_limits: object | None = None


def pin_blas_threads() -> None:
    """Limit every BLAS/OpenMP pool of this process to one thread (kept for its lifetime)."""
    global _blas_limits
    if _blas_limits is None:
        from threadpoolctl import threadpool_limits

        _blas_limits = threadpool_limits(limits=1)


def make_context(settings: Settings | None = None) -> WorkerContext:
    """Open storage and queue for this process, register it as a worker, start its beat."""
    settings = settings or get_settings()
    pin_blas_threads()
    storage = open_storage(settings.resolved_database_url)
    root = settings.resolved_checkpoint_root
    root.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    worker_id = f"{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    storage.register_worker(worker_id, host, os.getpid())
    beat = WorkerBeat(storage, worker_id, settings.heartbeat_s, host, os.getpid())
    beat.start()
    log_event("worker", "worker.started", worker_id=worker_id, host=host, pid=os.getpid(),
              queue="rq" if settings.redis_url else "database")  # fmt: skip
    return WorkerContext(
        settings=settings,
        storage=storage,
        checkpoints=FileSystemCheckpointStorage(root),
        executor=make_executor(settings.redis_url),
        worker_id=worker_id,
        beat=beat,
    )


def close_context(context: WorkerContext, reason: str = "stopped") -> None:
    """Stop the beat and deregister the worker (its row becomes `stopped`)."""
    if context.beat is not None:
        context.beat.stop()
    try:
        context.storage.deregister_worker(context.worker_id)
    except Exception as error:  # the reaper marks it dead instead
        log_event("worker", "worker.deregister_failed", worker_id=context.worker_id,
                  error=f"{type(error).__name__}: {error}")  # fmt: skip
    log_event("worker", "worker.stopped", worker_id=context.worker_id, reason=reason)


def get_context() -> WorkerContext:
    """This process's context, created on first use (and again after a fork)."""
    global _context
    if _context is None or _context.worker_id.split("-")[-2] != str(os.getpid()):
        _context = make_context()
    return _context
