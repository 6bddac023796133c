"""`/searches/{id}/trials` (leaderboards) and `/trials/{id}`: inspect, cancel, requeue, download."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from api.auth import require_token
from api.deps import CheckpointsDep, ExecutorDep, StorageDep
from api.errors import ERROR_RESPONSES
from api.schemas import MAX_ID, ErrorPublic, TrialDetailPublic, TrialPublic
from api.views import trial_detail, trial_etag, trial_public
from hpsearch.db.records import FINISHED_TRIAL_STATUSES
from hpsearch.errors import NotFoundError

__all__ = ["router"]

router = APIRouter(
    tags=["trials"],
    dependencies=[Depends(require_token)],
    responses={code: {**body, "model": ErrorPublic} for code, body in ERROR_RESPONSES.items()},
)
SearchId = Annotated[int, Path(ge=1, le=MAX_ID, description="a search id")]
TrialId = Annotated[int, Path(ge=1, le=MAX_ID, description="a trial id")]
TrialStatus = Literal["queued", "running", "completed", "diverged", "failed", "cancelled"]
Ordering = Literal[
    "result", "best_val_accuracy", "last_val_accuracy", "last_epoch", "finished_at",
    "started_at", "index",
]  # fmt: skip
CHUNK_BYTES = 1 << 16
RENDERED_DETAILS = 512  # finished trials' rendered details kept per app


@router.get("/searches/{search_id}/trials")
def list_trials(
    search_id: SearchId,
    storage: StorageDep,
    status: Annotated[
        list[TrialStatus] | None, Query(description="repeat to allow several")
    ] = None,
    stage: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    order_by: Ordering = "result",
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[TrialPublic]:
    """The search's trials, best first by `order_by`: by default "result", each trial's
    result under the search's `result` (its best or its last epoch's validation accuracy).

    Trials with no value for the ordering come last; ties break on trial id.
    """
    result = storage.get_search(search_id).result
    trials = storage.best_trials(
        search_id, limit=limit, offset=offset, status=status, stage=stage, order_by=order_by
    )
    return [trial_public(trial, result) for trial in trials]


@router.get(
    "/trials/{trial_id}",
    response_model=TrialDetailPublic,
    responses={304: {"description": "not modified (If-None-Match matched the ETag)"}},
)
def get_trial(
    trial_id: TrialId,
    storage: StorageDep,
    request: Request,
    max_points: Annotated[
        int | None, Query(ge=1, le=100_000, description="downsample the curves to this many epochs")
    ] = None,
    include_stats: Annotated[
        bool, Query(description="include per-epoch training statistics")
    ] = False,
) -> Response:
    """A trial: configuration, status and timestamps, curves, checkpoints, event history.

    Answers carry an ETag: a client sending it back in If-None-Match gets 304
    while the trial is unchanged (a finished trial's curves never change).
    Finished trials' answers are also kept rendered in the process.
    """
    trial = storage.get_trial(trial_id)
    tag = trial_etag(trial, max_points, include_stats)
    headers = {"ETag": tag, "Cache-Control": "no-cache"}
    if tag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    rendered = _rendered_of(request)
    body = rendered.get(tag)
    if body is None:
        body = trial_detail(storage, trial_id, max_points, include_stats, trial).model_dump_json()
        if trial.status in FINISHED_TRIAL_STATUSES:
            rendered.put(tag, body)
    return Response(body, media_type="application/json", headers=headers)


class _RenderedCache:
    """The newest `size` rendered details of finished trials, by ETag (thread-safe)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._bodies: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, tag: str) -> str | None:
        with self._lock:
            body = self._bodies.get(tag)
            if body is not None:
                self._bodies.move_to_end(tag)
            return body

    def put(self, tag: str, body: str) -> None:
        with self._lock:
            self._bodies[tag] = body
            while len(self._bodies) > self.size:
                self._bodies.popitem(last=False)


def _rendered_of(request: Request) -> _RenderedCache:
    """The app's cache of rendered finished-trial details (one per app: one per database)."""
    state = request.app.state
    if getattr(state, "trial_details", None) is None:
        state.trial_details = _RenderedCache(RENDERED_DETAILS)
    cache: _RenderedCache = state.trial_details
    return cache


@router.post("/trials/{trial_id}/cancel")
def cancel_trial(trial_id: TrialId, storage: StorageDep) -> TrialPublic:
    """Cancel a queued trial now, or ask a running one to stop; finished trials stay."""
    trial = storage.request_cancel_trial(trial_id)
    return trial_public(trial, storage.get_search(trial.search_id).result)


@router.post("/trials/{trial_id}/requeue")
def requeue_trial(trial_id: TrialId, storage: StorageDep, executor: ExecutorDep) -> TrialPublic:
    """Queue a failed, diverged, cancelled or running trial again (409 when completed)."""
    trial = storage.requeue_trial(trial_id, "requeued via the API")
    executor.enqueue([trial_id])
    return trial_public(trial, storage.get_search(trial.search_id).result)


@router.get(
    "/trials/{trial_id}/checkpoints/{epoch}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "the .npz"}},
)
def download_checkpoint(
    trial_id: TrialId,
    epoch: Annotated[int, Path(ge=0, le=MAX_ID)],
    storage: StorageDep,
    checkpoints: CheckpointsDep,
) -> StreamingResponse:
    """The checkpoint `.npz` of the trial's epoch (parameters, statistics, config, history)."""
    records = [record for record in storage.list_checkpoints(trial_id) if record.epoch == epoch]
    if not records:
        raise NotFoundError(f"trial {trial_id} has no checkpoint for epoch {epoch}")
    handle = checkpoints.open_bytes(records[0].path)
    name = records[0].path.rsplit("/", 1)[-1]

    def chunks() -> Iterator[bytes]:
        with handle:
            while chunk := handle.read(CHUNK_BYTES):
                yield chunk

    return StreamingResponse(
        chunks(),
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
