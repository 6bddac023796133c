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
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel

__all__ = ["NOT_MODIFIED", "etag_json"]

NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "unchanged since the ETag sent in If-None-Match"}
}


def etag_json(request: Request, body: BaseModel) -> Response:
    """`body` as JSON with a strong ETag of its bytes, or 304 when If-None-Match has it."""
    response = JSONResponse(jsonable_encoder(body))
    etag = '"' + hashlib.sha256(response.body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    offered = {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}
    if etag in offered or "*" in offered:
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    return response
