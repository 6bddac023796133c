"""`/trials/{id}/figures` and `/trials/{id}/first-layer.png`: a trial's babysitting figures."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Path, Query, Request, Response

from api.auth import require_token
from api.deps import CheckpointsDep, StorageDep
from api.errors import ERROR_RESPONSES
from api.etag import NOT_MODIFIED, etag_json
from api.figure_schemas import TrialFiguresPublic
from api.figures import epoch_figures
from api.images import mosaic, png_bytes
from api.schemas import MAX_ID, ErrorPublic
from hpsearch.checkpoints import FileSystemCheckpointStorage
from hpsearch.data.builtin import DIGITS_IMAGE_SHAPE
from hpsearch.data.cifar import CIFAR_IMAGE_SHAPE
from hpsearch.db import Storage
from hpsearch.errors import NotFoundError
from hpsearch.nn.stats import first_layer_images

__all__ = ["router"]

router = APIRouter(
    prefix="/trials/{trial_id}",
    tags=["trials"],
    dependencies=[Depends(require_token)],
    responses={
        **{code: {**body, "model": ErrorPublic} for code, body in ERROR_RESPONSES.items()},
        **NOT_MODIFIED,
    },
)
TrialId = Annotated[int, Path(ge=1, le=MAX_ID, description="a trial id")]


IMAGE_SHAPES = {"digits": DIGITS_IMAGE_SHAPE, "cifar10": CIFAR_IMAGE_SHAPE}


def _image_shape(config: dict[str, Any]) -> tuple[int, int, int] | None:
    """(C, H, W) when the trial trains on the pixels of a built-in image set, else None."""
    preprocess = config.get("preprocess") or {}
    if preprocess.get("pca_components") or preprocess.get("whiten"):
        return None
    return IMAGE_SHAPES.get(str((config.get("data") or {}).get("source")))


def _image_input(storage: Storage, trial_id: int) -> bool:
    return _image_shape(storage.get_trial(trial_id).config) is not None


@router.get("/figures", response_model=TrialFiguresPublic)
def get_figures(trial_id: TrialId, request: Request, storage: StorageDep) -> Response:
    """Loss per iteration (decimated) and per epoch, accuracies, update/weight ratios,
    dead-ReLU fractions and activation/gradient histograms per layer across epochs."""
    figures = epoch_figures(storage.trial_curves(trial_id))
    has_image = _image_input(storage, trial_id) and storage.latest_checkpoint(trial_id) is not None
    body = TrialFiguresPublic(trial_id=trial_id, first_layer_image=has_image, **figures)
    return etag_json(request, body)


def _first_layer_pixels(
    storage: Storage, checkpoints: FileSystemCheckpointStorage, trial_id: int, epoch: int | None
) -> np.ndarray:
    kept = [c for c in storage.list_checkpoints(trial_id) if epoch is None or c.epoch <= epoch]
    if not kept:
        raise NotFoundError(f"trial {trial_id} has no checkpoint at or before that epoch")
    shape = _image_shape(storage.get_trial(trial_id).config)
    weights = checkpoints.load(kept[-1].path).params["W1"]
    if shape is None or weights.shape[0] != int(np.prod(shape)):
        raise NotFoundError(f"trial {trial_id}: the network's input is not an image")
    return mosaic(first_layer_images(weights, shape))


@router.get(
    "/first-layer.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "the mosaic"}},
)
def get_first_layer_image(
    trial_id: TrialId,
    storage: StorageDep,
    checkpoints: CheckpointsDep,
    epoch: Annotated[
        int | None, Query(ge=0, le=MAX_ID, description="latest checkpoint at or before it")
    ] = None,
) -> Response:
    """The first layer's weights, one tile per hidden unit (at most 64), from the latest
    checkpoint (at or before `epoch`); 404 when the input is not an image or there is no
    such checkpoint."""
    pixels = _first_layer_pixels(storage, checkpoints, trial_id, epoch)
    return Response(
        png_bytes(pixels), media_type="image/png", headers={"Cache-Control": "private, no-cache"}
    )
