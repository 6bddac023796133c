"""How hpsearch errors become HTTP responses.

    NotFoundError, CheckpointError          404  {"detail": "..."}
    ConflictError                           409  {"detail": "..."}
    ConfigError, DataError, ValueError      422  {"detail": [{"loc": [...], "msg": "...", ...}]}
    StorageError, QueueError                503  {"detail": "..."}  (database / Redis unavailable)

422 bodies have FastAPI's own validation-error shape, so every 422 of the API
reads the same: `loc` names the offending field, e.g. ["body", "stages", 0,
"epochs"], taken from the "field.path: message" lines of hpsearch's errors.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from hpsearch.errors import (
    CheckpointError,
    ConflictError,
    NotFoundError,
    QueueError,
    StorageError,
)

__all__ = ["ERROR_RESPONSES", "field_errors", "install_error_handlers", "unprocessable"]

logger = logging.getLogger("api")
_FIELD_LINE = re.compile(r"^([A-Za-z_][\w.\[\]-]*): (.+)$")

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "the body cannot be decoded"},
    401: {"description": "missing or invalid bearer token"},
    404: {"description": "no such resource"},
    409: {"description": "the resource's state forbids the operation"},
    413: {"description": "request body too large"},
    503: {"description": "database or Redis unavailable"},
}


def field_errors(message: str, root: str = "body") -> list[dict[str, Any]]:
    """Validation-error entries from a message of "field.path: problem" lines.

    A line without a field path is reported at `[root]`.
    """
    entries = []
    for line in message.strip().splitlines():
        match = _FIELD_LINE.match(line.strip())
        if match:
            parts = [int(p) if p.isdigit() else p for p in re.split(r"[.\[\]]+", match[1]) if p]
            entries.append({"loc": [root, *parts], "msg": match[2], "type": "value_error"})
    if not entries:
        entries.append({"loc": [root], "msg": message.strip(), "type": "value_error"})
    return entries


def unprocessable(message: str, root: str = "body") -> JSONResponse:
    return JSONResponse({"detail": field_errors(message, root)}, status_code=422)


def _detail(status_code: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status_code)


async def _not_found(request: Request, error: Exception) -> JSONResponse:
    return _detail(404, str(error))


async def _conflict(request: Request, error: Exception) -> JSONResponse:
    return _detail(409, str(error))


async def _invalid(request: Request, error: Exception) -> JSONResponse:
    return unprocessable(str(error))


async def _unavailable(request: Request, error: Exception) -> JSONResponse:
    # Storage and queue errors already hide passwords; the request's headers are never logged.
    logger.warning("%s %s failed: %s", request.method, request.url.path, error)
    return _detail(503, f"service unavailable: {type(error).__name__}")


async def _http_error(request: Request, error: Exception) -> Response:
    """FastAPI's own handling, except that a 405 lists every method of the path in `Allow`.

    (Starlette names only the methods of the first route that matched the path.)
    """
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 405:
        allowed = set()
        for route in request.app.router.routes:
            match, _ = route.matches({**request.scope, "method": "\x00"})
            if match == Match.PARTIAL and getattr(route, "methods", None):
                allowed |= set(route.methods)
        error.headers = {**(error.headers or {}), "Allow": ", ".join(sorted(allowed))}
    return await http_exception_handler(request, error)


def install_error_handlers(app: FastAPI) -> None:
    """Register the mapping above on `app` (most specific classes first)."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(NotFoundError, _not_found)
    app.add_exception_handler(CheckpointError, _not_found)
    app.add_exception_handler(ConflictError, _conflict)
    app.add_exception_handler(StorageError, _unavailable)
    app.add_exception_handler(QueueError, _unavailable)
    app.add_exception_handler(ValueError, _invalid)
