"""Browser sessions: a bearer token exchanged once for an HttpOnly cookie, plus CSRF tokens.

`POST /session` checks a token like the bearer scheme does and answers with a
cookie `hpsearch_session` (HttpOnly, SameSite=Strict, Path=/, Secure when
served over https). The cookie holds no token, only

    v1.<token_id>.<expires_unix>.<nonce>.<mac>    mac = HMAC-SHA256(token, "v1.<id>.<exp>.<nonce>")

so the server keeps no session table (several `serve` processes agree) and a
token removed from HPSEARCH_API_TOKENS ends its sessions. The CSRF token of a
session is HMAC-SHA256(token, "csrf.<nonce>"): pages carry it in a
`<meta name="csrf-token">`, scripts send it as `X-CSRF-Token`, and a request
authenticated by the cookie with an unsafe method (POST, PATCH, PUT, DELETE)
is refused (403) without it or when the browser says it is cross-site
(`Sec-Fetch-Site: cross-site`, or an `Origin` that is not this host).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from fastapi import HTTPException, Request

__all__ = [
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "SESSION_TTL_S",
    "Session",
    "check_csrf",
    "issue_session",
    "read_session",
]

SESSION_COOKIE = "hpsearch_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_TTL_S = 12 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_VERSION = "v1"


@dataclass(frozen=True)
class Session:
    """A verified session: the token id of its token and its CSRF token."""

    token_id: str
    csrf_token: str
    expires_at: int


def _mac(token: bytes, message: str) -> str:
    return hmac.new(token, message.encode("ascii"), hashlib.sha256).hexdigest()


def _token_id(token: bytes) -> str:
    return hashlib.sha256(token).hexdigest()[:12]


def issue_session(token: bytes, now: float | None = None) -> tuple[str, Session]:
    """A fresh cookie value for `token` and the session it stands for."""
    expires_at = int(now if now is not None else time.time()) + SESSION_TTL_S
    nonce = secrets.token_hex(16)
    body = f"{_VERSION}.{_token_id(token)}.{expires_at}.{nonce}"
    cookie = f"{body}.{_mac(token, body)}"
    return cookie, Session(_token_id(token), _mac(token, f"csrf.{nonce}"), expires_at)


def read_session(
    cookie: str | None, tokens: tuple[bytes, ...], now: float | None = None
) -> Session | None:
    """The session of a cookie value, or None when it is absent, forged, expired or revoked."""
    if not cookie:
        return None
    parts = cookie.split(".")
    if len(parts) != 5 or parts[0] != _VERSION or not parts[2].isdigit():
        return None
    _, token_id, expires, nonce, mac = parts
    if int(expires) < (now if now is not None else time.time()):
        return None
    body = f"{_VERSION}.{token_id}.{expires}.{nonce}"
    for token in tokens:
        if _token_id(token) == token_id and hmac.compare_digest(_mac(token, body), mac):
            return Session(token_id, _mac(token, f"csrf.{nonce}"), int(expires))
    return None


def _cross_site(request: Request) -> bool:
    if request.headers.get("sec-fetch-site", "same-origin") == "cross-site":
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False
    return origin.split("://", 1)[-1] != request.headers.get("host", "")


def check_csrf(request: Request, session: Session) -> None:
    """403 for an unsafe cookie-authenticated request that is cross-site or lacks the token."""
    if request.method in SAFE_METHODS:
        return
    if _cross_site(request):
        raise HTTPException(403, "cross-site request refused")
    offered = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(offered.encode("utf-8", "replace"), session.csrf_token.encode()):
        raise HTTPException(403, f"missing or invalid {CSRF_HEADER} header")
