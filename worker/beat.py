"""The worker's heartbeat thread: one per process, beating every `heartbeat_s`.

Each beat refreshes the heartbeat of the trial the worker runs (if any) and
the worker's own row (idle or busy, and its current trial), so `/workers`
stays right while a worker sits idle between trials. A beat's answer turns a
cancel request, or lost ownership after a requeue, into flags the training
loop polls between iterations. Nothing here runs on the trial's own thread:
starting or ending a trial only swaps the watched `TrialWatch`. The thread
ends with `stop()` or once its storage is closed.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from hpsearch.errors import NotFoundError
from hpsearch.logs import log_event

__all__ = ["TrialWatch", "WorkerBeat"]


@dataclass
class TrialWatch:
    """The flags of one running trial, set by the beat thread or by the worker.

    `stopping` is the worker's own flag (set by SIGTERM): the trial stops and
    is handed back.
    """

    trial_id: int
    cancel: threading.Event = field(default_factory=threading.Event)
    lost: threading.Event = field(default_factory=threading.Event)
    stopping: threading.Event = field(default_factory=threading.Event)

    def should_stop(self) -> bool:
        return self.cancel.is_set() or self.lost.is_set() or self.stopping.is_set()


class WorkerBeat:
    """A daemon thread beating the watched trial and the worker row every `interval_s`."""

    def __init__(
        self, storage: Any, worker_id: str, interval_s: float, host: str = "", pid: int = 0
    ) -> None:
        self.storage, self.worker_id, self.interval_s = storage, worker_id, interval_s
        self.host, self.pid = host, pid
        self._current: TrialWatch | None = None
        self._reported_busy = False
        self._failing_since: float | None = None  # monotonic time of the first missed beat
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-beat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stopped.set()
        self._wake.set()
        self._thread.join(timeout_s)

    def watch(self, trial: TrialWatch | None) -> None:
        """Beat for `trial` from now on (None: the worker is idle).

        The worker row is refreshed at the next beat, except that a worker
        that last reported idle is reported busy at once.
        """
        self._current = trial
        if trial is not None and not self._reported_busy:
            self._wake.set()

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if self._stopped.is_set() or getattr(self.storage, "closed", False):
                return
            try:
                self.beat()
            except Exception as error:  # a missed beat is retried; the reaper decides
                self._missed(error)
                continue
            self._recovered()

    def _missed(self, error: Exception) -> None:
        if isinstance(error, NotFoundError):  # pruned while cut off: register again
            with suppress(Exception):
                self.storage.register_worker(self.worker_id, self.host, self.pid)
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            log_event("worker", "worker.connection_lost", logging.WARNING,
                      worker_id=self.worker_id, to="database", error=_short(error))  # fmt: skip

    def _recovered(self) -> None:
        if self._failing_since is not None:
            log_event("worker", "worker.reconnected", worker_id=self.worker_id, to="database",
                      after_s=round(time.monotonic() - self._failing_since, 3))  # fmt: skip
            self._failing_since = None

    def beat(self) -> None:
        """One beat: the watched trial's heartbeat, then the worker row."""
        trial = self._current
        if trial is not None:
            answer = self.storage.heartbeat(trial.trial_id, self.worker_id)
            if answer.cancel_requested:
                trial.cancel.set()
            if not answer.owned:
                trial.lost.set()
        busy = trial is not None
        self.storage.worker_heartbeat(
            self.worker_id, trial.trial_id if trial else None, "busy" if busy else "idle"
        )
        self._reported_busy = busy


def _short(error: BaseException) -> str:
    """The first line of an error, with its type."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"
