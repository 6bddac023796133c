"""JSON answers with an ETag: 304 when the client already holds the same body.

The dashboard polls its figures' routes every few seconds with
`fetch(url, {cache: "no-cache"})`: the browser revalidates with
`If-None-Match`, an unchanged figure costs a 304 with no body, and the page
redraws only when the ETag changed. `RenderedCache` keeps answers that can
never change (a completed trial's detail) rendered, with their ETags.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel

__all__ = ["NOT_MODIFIED", "RenderedCache", "etag_bytes", "etag_json", "etag_versioned"]

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
    return etag_bytes(request, body.model_dump_json().encode("utf-8"))


def etag_bytes(request: Request, content: bytes) -> Response:
    """JSON `content` with a strong ETag of its bytes, or 304 when If-None-Match has it."""
    etag = _tag(content)
    return _not_modified(request, etag) or _json(content, etag)


def etag_versioned(request: Request, version: str, build: Callable[[], BaseModel]) -> Response:
    """The JSON of `build()` with an ETag of `version` (a string that changes whenever the
    body can): 304 when If-None-Match has it, without building the body."""
    etag = _tag(f"{request.url.path}\0{version}".encode())
    return _not_modified(request, etag) or _json(build().model_dump_json().encode("utf-8"), etag)


class RenderedCache:
    """(ETag, body) by key, the most recently used kept up to `max_bytes` of bodies.

    Thread-safe (routes run in a thread pool).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.held_bytes = max_bytes, 0
        self._entries: OrderedDict[Hashable, tuple[str, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> tuple[str, str] | None:
        """(ETag, body) kept for `key`, or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: Hashable, tag: str, body: str) -> None:
        """Keep `body` under `key`, dropping the least recently used past `max_bytes`."""
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self.held_bytes -= len(previous[1])
            self._entries[key] = (tag, body)
            self.held_bytes += len(body)
            while self.held_bytes > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self.held_bytes -= len(dropped)

    def __len__(self) -> int:
        return len(self._entries)
