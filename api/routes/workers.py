"""`/workers`: registered worker processes, alive or stale, and what they run."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.auth import require_token
from api.deps import SettingsDep, StorageDep
from api.errors import ERROR_RESPONSES
from api.figure_schemas import WorkerActivityPublic
from api.figures import worker_activity
from api.schemas import ErrorPublic, WorkerPublic
from hpsearch.db.convert import utc_now

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


@router.get("/activity")
def list_worker_activity(storage: StorageDep, settings: SettingsDep) -> list[WorkerActivityPublic]:
    """Every registered worker with its trials done and share of time busy since it started."""
    now = utc_now()
    workers = storage.list_workers(settings.stale_after_s, now=now)
    spans = storage.worker_trial_spans([worker.id for worker in workers])
    activity = worker_activity(spans, {worker.id: worker.started_at for worker in workers}, now)
    return [
        WorkerActivityPublic(
            id=worker.id,
            alive=worker.alive,
            status=worker.status,
            current_trial_id=worker.current_trial_id,
            trials_done=activity[worker.id]["trials_done"],
            busy_share=activity[worker.id]["busy_share"],
        )
        for worker in workers
    ]
