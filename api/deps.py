"""Dependencies of the routes, as `Annotated` aliases.

The app's lifespan puts one `Storage`, one executor and one checkpoint
storage on `app.state`; the routes receive them through these aliases and
talk to the database only through the storage API.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.auth import require_token
from api.limits import LaunchRateLimiter
from hpsearch.checkpoints import FileSystemCheckpointStorage
from hpsearch.db import Storage
from hpsearch.executors import Executor
from hpsearch.settings import Settings

__all__ = [
    "CheckpointsDep",
    "ExecutorDep",
    "RateLimiterDep",
    "SettingsDep",
    "StorageDep",
    "TokenDep",
]


async def get_storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    return storage


async def get_executor(request: Request) -> Executor:
    executor: Executor = request.app.state.executor
    return executor


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_checkpoints(request: Request) -> FileSystemCheckpointStorage:
    checkpoints: FileSystemCheckpointStorage = request.app.state.checkpoints
    return checkpoints


async def get_rate_limiter(request: Request) -> LaunchRateLimiter:
    limiter: LaunchRateLimiter = request.app.state.launch_limiter
    return limiter


StorageDep = Annotated[Storage, Depends(get_storage)]
ExecutorDep = Annotated[Executor, Depends(get_executor)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CheckpointsDep = Annotated[FileSystemCheckpointStorage, Depends(get_checkpoints)]
RateLimiterDep = Annotated[LaunchRateLimiter, Depends(get_rate_limiter)]
TokenDep = Annotated[str, Depends(require_token)]
