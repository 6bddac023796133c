"""`/searches/{id}/ensembles` and `/ensembles/{id}`: request, list, inspect, download.

The API only stores the request and hands it to the queue: a worker builds
the ensemble (`worker.ensembles`); CPU work never runs in the API process.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import StreamingResponse

from api.auth import require_token
from api.deps import CheckpointsDep, ExecutorDep, RateLimiterDep, StorageDep, TokenDep
from api.errors import ERROR_RESPONSES
from api.schemas import MAX_ID, EnsembleCreate, EnsemblePublic, ErrorPublic
from api.views import ensemble_public
from hpsearch.errors import NotFoundError
from hpsearch.master import search_spec, seed_stage_of

__all__ = ["router"]

router = APIRouter(
    tags=["ensembles"],
    dependencies=[Depends(require_token)],
    responses={code: {**body, "model": ErrorPublic} for code, body in ERROR_RESPONSES.items()},
)
SearchId = Annotated[int, Path(ge=1, le=MAX_ID, description="a search id")]
EnsembleId = Annotated[int, Path(ge=1, le=MAX_ID, description="an ensemble id")]
CHUNK_BYTES = 1 << 16
_RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {
        "model": ErrorPublic,
        "description": "launch rate limit reached for this token",
        "headers": {"Retry-After": {"schema": {"type": "string"}, "description": "seconds"}},
    }
}


@router.post("/searches/{search_id}/ensembles", status_code=201, responses=_RATE_LIMITED)
def request_ensemble(
    search_id: SearchId,
    body: EnsembleCreate,
    caller: TokenDep,
    storage: StorageDep,
    executor: ExecutorDep,
    limiter: RateLimiterDep,
) -> EnsemblePublic:
    """Queue an ensemble of the search's checkpoints for a worker to build.

    422 naming the problem, with nothing stored, for a size larger than the
    models available or a search that stored no checkpoints.
    """
    limiter.check(caller)
    seed_stage = seed_stage_of(search_spec(storage, search_id))
    record = storage.request_ensemble(search_id, body.kind, body.size, seed_stage=seed_stage)
    executor.enqueue_ensembles([record.id])
    return ensemble_public(record)


@router.get("/searches/{search_id}/ensembles")
def list_ensembles(search_id: SearchId, storage: StorageDep) -> list[EnsemblePublic]:
    """The search's ensembles in the order they were requested (the automatic ones first)."""
    return [ensemble_public(record) for record in storage.list_ensembles(search_id)]


@router.get("/ensembles/{ensemble_id}")
def get_ensemble(ensemble_id: EnsembleId, storage: StorageDep) -> EnsemblePublic:
    """An ensemble: status, members and weights, figures beside the best single model."""
    return ensemble_public(storage.get_ensemble(ensemble_id))


@router.get(
    "/ensembles/{ensemble_id}/file",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "the .npz"}},
)
def download_ensemble(
    ensemble_id: EnsembleId, storage: StorageDep, checkpoints: CheckpointsDep
) -> StreamingResponse:
    """The self-contained ensemble file (`hpsearch predict FILE DATA` reads it alone)."""
    record = storage.get_ensemble(ensemble_id)
    if record.status != "completed" or record.path is None:
        raise NotFoundError(f"ensemble {ensemble_id} has no file yet (status {record.status})")
    handle = checkpoints.open_bytes(record.path)
    name = record.path.rsplit("/", 1)[-1]

    def chunks() -> Iterator[bytes]:
        with handle:
            while chunk := handle.read(CHUNK_BYTES):
                yield chunk

    return StreamingResponse(
        chunks(),
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
