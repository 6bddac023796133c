"""JSON answers with an ETag: 304 when the client already holds the same body.

The dashboard polls its figures' routes every few seconds with
`fetch(url, {cache: "no-cache"})`: the browser revalidates with
`If-None-Match`, an unchanged figure costs a 304 with no body, and the page
redraws only when the ETag changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel

__all__ = ["NOT_MODIFIED", "etag_json", "etag_versioned"]

NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "unchanged since the ETag sent in If-None-Match"}
}


def _tag(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def _not_modified(request: Request, etag: str) -> Response | None:
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    offered = {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}
    if etag in offered or "*" in offered:
        return Response(status_code=304, headers=headers)
    return None


def _json(content: bytes, etag: str) -> Response:
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    return Response(content, media_type="application/json", headers=headers)


def etag_json(request: Request, body: BaseModel) -> Response:
    """`body` as JSON with a strong ETag of its bytes, or 304 when If-None-Match has it."""
    content = body.model_dump_json().encode("utf-8")
    etag = _tag(content)
    return _not_modified(request, etag) or _json(content, etag)


def etag_versioned(request: Request, version: str, build: Callable[[], BaseModel]) -> Response:
    """The JSON of `build()` with an ETag of `version` (a string that changes whenever the
    body can): 304 when If-None-Match has it, without building the body."""
    etag = _tag(f"{request.url.path}\0{version}".encode())
    return _not_modified(request, etag) or _json(build().model_dump_json().encode("utf-8"), etag)
