"""`/workers`: registered worker processes, alive or stale, and what they run."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.auth import require_token
from api.deps import SettingsDep, StorageDep
from api.errors import ERROR_RESPONSES
from api.schemas import ErrorPublic, WorkerPublic

__all__ = ["router"]

router = APIRouter(
    prefix="/workers",
    tags=["workers"],
    dependencies=[Depends(require_token)],
    responses={code: {**body, "model": ErrorPublic} for code, body in ERROR_RESPONSES.items()},
)


@router.get("")
def list_workers(storage: StorageDep, settings: SettingsDep) -> list[WorkerPublic]:
    """Every registered worker; `alive` is false once silent for HPSEARCH_STALE_AFTER_S."""
    return [
        WorkerPublic.model_validate(worker, from_attributes=True)
        for worker in storage.list_workers(settings.stale_after_s)
    ]
