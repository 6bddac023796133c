"""`/searches`: launch, list, inspect and steer searches."""

from __future__ import annotations

import json
import tomllib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from api.auth import require_token
from api.deps import (
    ExecutorDep,
    RateLimiterDep,
    SettingsDep,
    StorageDep,
    TokenDep,
)
from api.errors import ERROR_RESPONSES
from api.etag import NOT_MODIFIED, etag_versioned
from api.limits import LaunchRateLimiter
from api.schemas import (
    MAX_ID,
    ErrorPublic,
    SearchCreate,
    SearchDetailPublic,
    SearchLearnedPublic,
    SearchPublic,
    SearchUpdate,
    SpecUpload,
)
from api.views import search_detail, search_public
from hpsearch.admission import admit_search
from hpsearch.db import Storage
from hpsearch.errors import ConfigError
from hpsearch.executors import Executor
from hpsearch.master import advance, create_search, search_learned
from hpsearch.search import SearchSpec, parse_search_spec
from hpsearch.settings import Settings

__all__ = ["router", "upload_router"]

router = APIRouter(
    prefix="/searches",
    tags=["searches"],
    dependencies=[Depends(require_token)],
    responses={code: {**body, "model": ErrorPublic} for code, body in ERROR_RESPONSES.items()},
)
# `POST /search-specs` (a spec file's text) lives outside /searches/ so no method of
# /searches/{search_id} can shadow it.
upload_router = APIRouter(
    tags=["searches"],
    dependencies=[Depends(require_token)],
    responses={code: {**body, "model": ErrorPublic} for code, body in ERROR_RESPONSES.items()},
)
SearchId = Annotated[int, Path(ge=1, le=MAX_ID, description="a search id")]
_RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {
        "model": ErrorPublic,
        "description": "launch rate limit reached for this token",
        "headers": {"Retry-After": {"schema": {"type": "string"}, "description": "seconds"}},
    }
}


def reject_nul(value: Any, where: str = "body") -> None:
    """Raise ConfigError naming the field when a string (or key) holds a NUL character."""
    if isinstance(value, str) and "\x00" in value:
        raise ConfigError(f"{where}: must not contain NUL characters")
    if isinstance(value, dict):
        for key, item in value.items():
            reject_nul(str(key), where)
            reject_nul(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            reject_nul(item, f"{where}.{index}")


@router.post("", status_code=201, responses=_RATE_LIMITED)
def launch_search(
    spec: SearchCreate,
    caller: TokenDep,
    storage: StorageDep,
    executor: ExecutorDep,
    settings: SettingsDep,
    limiter: RateLimiterDep,
) -> SearchDetailPublic:
    """Launch a search from a spec (the same document as a search TOML file, in JSON).

    The spec is validated in full before anything is written: an invalid spec,
    one over the server's caps, or one whose data set is missing or malformed
    (read with the workers' loader) is a 422 naming the field.
    """
    return _launch(spec, caller, storage, executor, settings, limiter)


@upload_router.post("/search-specs", status_code=201, responses=_RATE_LIMITED)
def upload_search(
    upload: SpecUpload,
    caller: TokenDep,
    storage: StorageDep,
    executor: ExecutorDep,
    settings: SettingsDep,
    limiter: RateLimiterDep,
) -> SearchDetailPublic:
    """Launch a search from a spec file's text (TOML, or JSON for a `.json` file).

    The dashboard's upload form sends the file here; it is parsed and then
    validated exactly like `POST /searches` (422 naming the field, nothing stored).
    """
    return _launch(_parse_upload(upload), caller, storage, executor, settings, limiter)


def _parse_upload(upload: SpecUpload) -> SearchSpec:
    """The validated spec of an uploaded file; ConfigError names the field (under content)."""
    name = upload.filename.lower()
    try:
        if name.endswith(".json"):
            raw = json.loads(upload.content)
        elif name.endswith(".toml"):
            raw = tomllib.loads(upload.content)
        else:
            raise ConfigError("filename: must end in .toml or .json")
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"content: invalid {name.rsplit('.', 1)[-1].upper()}: {error}") from error
    if not isinstance(raw, dict):
        raise ConfigError("content: a search spec must be a table (a JSON object)")
    reject_nul(raw, "content")
    try:
        return parse_search_spec(raw, source="content")
    except ConfigError as error:
        lines = [line.strip().removeprefix("<root>") for line in str(error).splitlines()[1:]]
        raise ConfigError(
            "\n".join(f"content.{line}".replace(".:", ":") for line in lines)
        ) from error


def _launch(
    spec: SearchSpec,
    caller: str,
    storage: Storage,
    executor: Executor,
    settings: Settings,
    limiter: LaunchRateLimiter,
) -> SearchDetailPublic:
    limiter.check(caller)
    raw = spec.model_dump(mode="json")
    for key, value in raw.items():
        reject_nul(value, key)
    admit_search(spec, settings)
    # The master (this process's background loop, or `hpsearch master`) runs the sanity
    # gate and starts the first trials: no training in the request path.
    search_id = create_search(storage, spec, executor, start=not spec.sanity_gate)
    return search_detail(storage, search_id)


@router.get("")
def list_searches(
    storage: StorageDep,
    status: Literal["running", "paused", "completed", "cancelled", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[SearchPublic]:
    """Searches, newest first, with their status and progress (trials per status)."""
    searches = storage.list_searches(limit=limit, offset=offset, status=status)
    return [search_public(storage, search) for search in searches]


@router.get("/{search_id}")
def get_search(search_id: SearchId, storage: StorageDep) -> SearchDetailPublic:
    """A search: its spec, stages with their ranges and border warnings, its best trial."""
    return search_detail(storage, search_id)


@router.get("/{search_id}/learned", response_model=SearchLearnedPublic, responses=NOT_MODIFIED)
def get_search_learned(search_id: SearchId, request: Request, storage: StorageDep) -> Response:
    """What the search learned so far: each stage's ranges and each parameter's importance.

    The ETag follows the stages and the completed trials, so an unchanged search
    answers 304 without reading its trials again."""
    return etag_versioned(
        request,
        storage.learned_version(search_id),
        lambda: SearchLearnedPublic.model_validate(search_learned(storage, search_id)),
    )


@router.post("/{search_id}/cancel")
def cancel_search(search_id: SearchId, storage: StorageDep) -> SearchDetailPublic:
    """Cancel the search: queued trials end now, running ones stop at their next heartbeat."""
    storage.request_cancel_search(search_id, "cancelled via the API")
    return search_detail(storage, search_id)


@router.post("/{search_id}/pause")
def pause_search(search_id: SearchId, storage: StorageDep) -> SearchDetailPublic:
    """Pause: running trials finish, queued ones wait, nothing new starts."""
    storage.set_search_status(search_id, "paused")
    return search_detail(storage, search_id)


@router.post("/{search_id}/resume")
def resume_search(
    search_id: SearchId, storage: StorageDep, executor: ExecutorDep
) -> SearchDetailPublic:
    """Resume a paused search: its queued trials are enqueued again and it advances."""
    storage.set_search_status(search_id, "running")
    _restart(storage, executor, search_id)
    return search_detail(storage, search_id)


@router.patch("/{search_id}")
def update_search(
    search_id: SearchId,
    update: SearchUpdate,
    storage: StorageDep,
    executor: ExecutorDep,
) -> SearchDetailPublic:
    """Change the epoch budget and/or concurrency of a running or paused search."""
    search = storage.get_search(search_id)
    raw = dict(search.spec)
    if update.budget_epochs is not None:
        raw["budget_epochs"] = update.budget_epochs
    if update.concurrency is not None:
        raw["concurrency"] = update.concurrency
    parse_search_spec(raw, source=f"search {search_id}")
    storage.update_search_limits(search_id, update.budget_epochs, update.concurrency)
    if storage.get_search(search_id).status == "running":
        advance(storage, search_id, executor)
    return search_detail(storage, search_id)


def _restart(storage: Storage, executor: Executor, search_id: int) -> None:
    executor.enqueue(storage.queued_trial_ids(search_id))
    advance(storage, search_id, executor)
