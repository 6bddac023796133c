"""`/searches/{id}/trials` (leaderboards) and `/trials/{id}`: inspect, cancel, requeue, download."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.auth import require_token
from api.deps import CheckpointsDep, ExecutorDep, StorageDep
from api.errors import ERROR_RESPONSES
from api.etag import NOT_MODIFIED, RenderedCache, etag_bytes
from api.schemas import MAX_ID, ErrorPublic, TrialDetailPublic, TrialPublic
from api.views import trial_detail, trial_etag, trial_list_json, trial_public
from hpsearch.db import Storage
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
RENDERED_BYTES = 32 << 20  # completed trials' rendered details kept per app


@router.get(
    "/searches/{search_id}/trials", response_model=list[TrialPublic], responses=NOT_MODIFIED
)
def list_trials(
    search_id: SearchId,
    storage: StorageDep,
    request: Request,
    status: Annotated[
        list[TrialStatus] | None, Query(description="repeat to allow several")
    ] = None,
    stage: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    order_by: Ordering = "result",
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> Response:
    """The search's trials, best first by `order_by`: by default "result", each trial's
    result under the search's `result` (its best or its last epoch's validation accuracy).

    Trials with no value for the ordering come last; ties break on trial id.
    Answers carry an ETag (304 to a client that holds the same page).
    """
    board = storage.leaderboard(search_id, limit, offset, status, stage, order_by)
    return etag_bytes(request, trial_list_json(board.trials, board.result))


@router.get(
    "/trials/{trial_id}",
    response_model=TrialDetailPublic,
    responses={304: {"description": "not modified (If-None-Match matched the ETag)"}},
)
async def get_trial(
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
    while the trial is unchanged. A completed trial never changes (it cannot
    be requeued), so its answers are kept rendered in the process and served
    without reading the database (nor leaving the event loop).
    """
    key = (trial_id, max_points, include_stats)
    offered = request.headers.get("if-none-match", "")
    rendered = _rendered_of(request)
    answer: tuple[str, str | None] | None = rendered.get(key)
    if answer is None:  # the database and the rendering run in the routes' thread pool
        answer = await run_in_threadpool(_render_trial, storage, rendered, key, offered)
    tag, body = answer
    if body is None or tag in offered:
        return Response(status_code=304, headers=_etag_headers(tag))
    return Response(body, media_type="application/json", headers=_etag_headers(tag))


def _render_trial(
    storage: Storage, rendered: RenderedCache, key: tuple[int, int | None, bool], offered: str
) -> tuple[str, str | None]:
    """(ETag, body) of `GET /trials/{id}` read from the database; body None when the ETag
    is in `offered` (If-None-Match). A completed trial's answer is kept in `rendered`."""
    trial_id, max_points, include_stats = key
    page = storage.trial_page(trial_id)
    tag = trial_etag(page.trial, max_points, include_stats)
    if tag in offered:
        return tag, None
    body = trial_detail(page, max_points, include_stats).model_dump_json()
    if page.trial.status == "completed":
        rendered.put(key, tag, body)
    return tag, body


def _etag_headers(tag: str) -> dict[str, str]:
    return {"ETag": tag, "Cache-Control": "no-cache"}


def _rendered_of(request: Request) -> RenderedCache:
    """The app's cache of rendered completed-trial details (one per app: one per database)."""
    state = request.app.state
    if getattr(state, "trial_details", None) is None:
        state.trial_details = RenderedCache(RENDERED_BYTES)
    cache: RenderedCache = state.trial_details
    return cache


@router.post("/trials/{trial_id}/cancel")
def cancel_trial(trial_id: TrialId, storage: StorageDep) -> TrialPublic:
    """Cancel a queued trial now, or ask a running one to stop; finished trials stay."""
    trial = storage.request_cancel_trial(trial_id)
    return trial_public(trial, storage.search_result(trial.search_id))


@router.post("/trials/{trial_id}/requeue")
def requeue_trial(trial_id: TrialId, storage: StorageDep, executor: ExecutorDep) -> TrialPublic:
    """Queue a failed, diverged, cancelled or running trial again (409 when completed)."""
    trial = storage.requeue_trial(trial_id, "requeued via the API")
    executor.enqueue([trial_id])
    return trial_public(trial, storage.search_result(trial.search_id))


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
