"""JSON answers with an ETag: 304 when the client already holds the same body.

The dashboard polls its figures' routes every few seconds with
`fetch(url, {cache: "no-cache"})`: the browser revalidates with
`If-None-Match`, an unchanged figure costs a 304 with no body, and the page
redraws only when the ETag changed.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel

__all__ = ["NOT_MODIFIED", "etag_json"]

NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "unchanged since the ETag sent in If-None-Match"}
}


def etag_json(request: Request, body: BaseModel) -> Response:
    """`body` as JSON with a strong ETag of its bytes, or 304 when If-None-Match has it."""
    content = body.model_dump_json().encode("utf-8")
    etag = '"' + hashlib.sha256(content).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    offered = {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}
    if etag in offered or "*" in offered:
        return Response(status_code=304, headers=headers)
    return Response(content, media_type="application/json", headers=headers)
