"""The master inside the API process: a background advance + reap loop.

`hpsearch serve` runs the master in the API process by default
(`HPSEARCH_API_MASTER=true`): an asyncio task started by the app's lifespan
calls, every `HPSEARCH_MASTER_TICK_S` seconds and in a worker thread, the
same synchronous functions as `hpsearch master`: `hpsearch.master.reap`
(requeue trials of silent workers, re-enqueue trials the queue lost) and
`hpsearch.master.advance` for every running search. Set
`HPSEARCH_API_MASTER=false` to run `hpsearch master` as its own process
instead (e.g. several API replicas); both may run at once, since applying
the master's decisions is idempotent. Among the API processes of one
database only the holder of its leader lock (`hpsearch.db.leader`) ticks.

The database is the truth: a restarted API process has no state to recover
and simply continues every running search on its first tick. A failing tick
(database or Redis down) is logged and retried on the next one.
"""

from __future__ import annotations

import asyncio
import logging
import os
from contextlib import suppress

from hpsearch.db import Storage
from hpsearch.db.leader import LeaderLock
from hpsearch.executors import Executor
from hpsearch.logs import log_event
from hpsearch.master import master_tick

__all__ = ["MasterLoop", "master_tick"]


class MasterLoop:
    """An asyncio task running `master_tick` every `tick_s` seconds until `stop()`.

    It ticks only while this process holds the database's `LeaderLock`, so
    among several API processes (`hpsearch serve --workers N`) exactly one
    runs the master; another takes over within a tick when it goes away.
    """

    def __init__(
        self,
        storage: Storage,
        executor: Executor,
        stale_after_s: float,
        tick_s: float,
        prune_workers_after_s: float = 3600.0,
    ) -> None:
        self.storage, self.executor = storage, executor
        self.stale_after_s, self.tick_s = stale_after_s, tick_s
        self.prune_workers_after_s = prune_workers_after_s
        self.leader = LeaderLock(storage.engine)
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="hpsearch-master")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.leader.release()

    def _tick(self) -> bool:
        """One master pass if this process leads; whether it did."""
        was_leader = self.leader.held
        if not self.leader.try_acquire():
            return False
        if not was_leader:
            log_event("master", "master.leader", pid=os.getpid())
        master_tick(self.storage, self.executor, self.stale_after_s, self.prune_workers_after_s)
        return True

    async def _run(self) -> None:
        while True:
            try:
                if await asyncio.to_thread(self._tick):
                    self.ticks += 1
            except Exception as error:  # logged, retried on the next tick
                log_event("master", "master.tick_failed", logging.WARNING,
                          error=f"{type(error).__name__}: {error}")  # fmt: skip
            await asyncio.sleep(self.tick_s)
