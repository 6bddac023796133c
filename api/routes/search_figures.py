"""`/searches/{id}/points|curves|timeline`: a search's figures, aggregated for the dashboard."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from api.auth import require_token
from api.deps import StorageDep
from api.errors import ERROR_RESPONSES
from api.etag import NOT_MODIFIED, etag_json
from api.figure_schemas import CurveListPublic, CurvePublic, SearchPointsPublic, TimelinePublic
from api.figures import search_points, timeline
from api.schemas import MAX_ID, ErrorPublic
from hpsearch.db.convert import utc_now
from hpsearch.db.records import result_accuracy

__all__ = ["router"]

router = APIRouter(
    prefix="/searches/{search_id}",
    tags=["searches"],
    dependencies=[Depends(require_token)],
    responses={
        **{code: {**body, "model": ErrorPublic} for code, body in ERROR_RESPONSES.items()},
        **NOT_MODIFIED,
    },
)
SearchId = Annotated[int, Path(ge=1, le=MAX_ID, description="a search id")]


@router.get("/points", response_model=SearchPointsPublic)
def get_points(
    search_id: SearchId,
    request: Request,
    storage: StorageDep,
    max_points: Annotated[int, Query(ge=10, le=20_000)] = 500,
) -> Response:
    """Each trial's stage, status, best validation accuracy and parameters, as columns.

    Over `max_points` trials, the best quarter and an even spread of the rest
    are kept (`total` says how many there are).
    """
    total, kept = storage.sampled_points(search_id, max_points)
    return etag_json(request, SearchPointsPublic(**search_points(kept, total=total)))


@router.get("/curves", response_model=list[CurvePublic])
def get_curves(
    search_id: SearchId,
    request: Request,
    storage: StorageDep,
    top: Annotated[int, Query(ge=1, le=20)] = 5,
) -> Response:
    """Validation accuracy per epoch of the `top` trials with the best results (the
    search's `result`: best or last epoch)."""
    board = storage.leaderboard(search_id, limit=top)
    best = [trial for trial in board.trials if result_accuracy(trial, board.result) is not None]
    curves = storage.validation_curves([trial.id for trial in best])
    body = [
        CurvePublic(
            trial_id=trial.id,
            stage=trial.stage,
            best_val_accuracy=trial.best_val_accuracy,
            epoch=[epoch for epoch, _ in curves[trial.id]],
            val_accuracy=[value for _, value in curves[trial.id]],
        )
        for trial in best
    ]
    return etag_json(request, CurveListPublic(body))


@router.get("/timeline", response_model=TimelinePublic)
def get_timeline(
    search_id: SearchId,
    request: Request,
    storage: StorageDep,
    max_bars: Annotated[int, Query(ge=1, le=5000)] = 300,
) -> Response:
    """The search's trials per worker over time, and each worker's share of time busy."""
    now = utc_now()
    bars = storage.recent_trials(search_id, max_bars)
    body = timeline(bars, storage.worker_spans(search_id, now), now)
    return etag_json(request, TimelinePublic(**body))
