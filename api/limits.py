"""Request limits: a body-size cap (413) and a per-token launch rate limit (429).

`BodySizeLimit` is a plain ASGI middleware: a declared `Content-Length` over
the cap is refused before the body is read; a body streamed without one is
counted as it arrives and refused the moment it passes the cap. Uploads
(`POST /datasets`) have their own, larger cap.

`LaunchRateLimiter` is a token bucket per API token: `rate_per_minute`
launches, bursting up to the same number; an empty bucket answers 429 with
`Retry-After` (whole seconds until the next launch is allowed).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodySizeLimit", "LaunchRateLimiter", "body_too_large"]


def body_too_large(limit_bytes: int) -> HTTPException:
    return HTTPException(413, f"request body is larger than {limit_bytes} bytes")


class BodySizeLimit:
    """Cap request bodies: `upload_bytes` for paths in `upload_paths`, else `json_bytes`."""

    def __init__(
        self, app: ASGIApp, json_bytes: int, upload_bytes: int, upload_paths: frozenset[str]
    ) -> None:
        self.app, self.json_bytes, self.upload_bytes = app, json_bytes, upload_bytes
        self.upload_paths = upload_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"].rstrip("/") or "/"
        limit = self.upload_bytes if path in self.upload_paths else self.json_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _send_413(send, limit)
            return
        await self.app(scope, _counting(receive, limit), send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _counting(receive: Receive, limit: int) -> Receive:
    received = 0

    async def counted() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise body_too_large(limit)
        return message

    return counted


async def _send_413(send: Send, limit: int) -> None:
    body = f'{{"detail":"request body is larger than {limit} bytes"}}'.encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class LaunchRateLimiter:
    """A token bucket per caller; `acquire(caller)` returns 0 or the seconds to wait."""

    def __init__(self, rate_per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not rate_per_minute > 0:
            raise ValueError(f"rate_per_minute must be positive; got {rate_per_minute!r}")
        self.rate_per_s = rate_per_minute / 60.0
        self.capacity = max(1.0, rate_per_minute)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, caller: str) -> float:
        """Take one launch from `caller`'s bucket: 0.0 if allowed, else seconds until allowed."""
        with self._lock:
            now = self.clock()
            level, stamp = self._buckets.get(caller, (self.capacity, now))
            level = min(self.capacity, level + (now - stamp) * self.rate_per_s)
            if level >= 1.0:
                self._buckets[caller] = (level - 1.0, now)
                return 0.0
            self._buckets[caller] = (level, now)
            return (1.0 - level) / self.rate_per_s

    def check(self, caller: str) -> None:
        """Raise 429 with Retry-After when `caller` has no launch left."""
        wait_s = self.acquire(caller)
        if wait_s > 0:
            retry_after = str(max(1, math.ceil(wait_s)))
            raise HTTPException(
                429,
                f"launch rate limit reached; retry in {retry_after} s",
                headers={"Retry-After": retry_after},
            )
