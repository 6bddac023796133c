"""`/health`: database and Redis status; the only route that needs no token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ExecutorDep, StorageDep
from api.schemas import HealthPublic

__all__ = ["router"]

router = APIRouter(tags=["health"])


def _database_status(storage: Any) -> str:
    try:
        storage.list_searches(limit=1)
    except Exception as error:  # reported, not raised: this route says what is wrong
        return f"error: {type(error).__name__}"
    return "ok"


def _redis_status(executor: Any) -> str:
    connection = getattr(executor, "connection", None)
    if connection is None:
        return "not configured"
    try:
        connection.ping()
    except Exception as error:  # reported, not raised
        return f"error: {type(error).__name__}"
    return "ok"


@router.get("/health", responses={503: {"model": HealthPublic, "description": "degraded"}})
def health(storage: StorageDep, executor: ExecutorDep) -> HealthPublic:
    """`ok` (200) when the database answers and Redis, if configured, too; else 503."""
    database, redis = _database_status(storage), _redis_status(executor)
    healthy = database == "ok" and redis in ("ok", "not configured")
    body = HealthPublic(status="ok" if healthy else "degraded", database=database, redis=redis)
    if not healthy:
        return JSONResponse(body.model_dump(), status_code=503)  # type: ignore[return-value]
    return body
