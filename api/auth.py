"""Bearer-token authentication.

Tokens come from `HPSEARCH_API_TOKENS` (a JSON list). Every route but
`/health` requires `Authorization: Bearer <token>` or the dashboard's session
cookie (`api.session`: exchanged for a token at `POST /session`, with a CSRF
check on unsafe methods); a missing or unknown token gets 401 with
`WWW-Authenticate: Bearer`. Tokens are compared in constant
time and never logged or echoed: the rest of the API knows a caller only by
`token_id`, the first 12 hex digits of the token's SHA-256.

The server refuses to start without a token unless it is explicitly run
insecure (`hpsearch serve --insecure`) on a loopback host.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.session import SESSION_COOKIE, check_csrf, read_session
from hpsearch.errors import ConfigError

__all__ = [
    "INSECURE_TOKEN_ID",
    "LOOPBACK_HOSTS",
    "bearer_scheme",
    "check_serve_security",
    "require_token",
    "token_id",
]

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
INSECURE_TOKEN_ID = "insecure"
bearer_scheme = HTTPBearer(auto_error=False, description="a token from HPSEARCH_API_TOKENS")


def token_id(token: str) -> str:
    """A short, non-reversible name of a token (for rate limits and logs)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:12]


def check_serve_security(tokens: Sequence[str], host: str, insecure: bool) -> None:
    """Raise ConfigError unless tokens are configured, or `insecure` on a loopback host."""
    if any(token.strip() for token in tokens):
        return
    if not insecure:
        raise ConfigError(
            "api_tokens: no API token configured; set HPSEARCH_API_TOKENS='[\"...\"]' "
            "or run `hpsearch serve --insecure --host 127.0.0.1` for local use"
        )
    if host not in LOOPBACK_HOSTS:
        raise ConfigError(f"host: --insecure is only allowed on 127.0.0.1, not on {host!r}")


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> str:
    """The caller's token id; raises 401 for a missing or unknown bearer token or session.

    Without an Authorization header the session cookie is tried; an unsafe
    request it authenticates must pass `api.session.check_csrf` (else 403).
    """
    tokens: tuple[bytes, ...] = request.app.state.api_tokens
    if not tokens and request.app.state.insecure:
        return INSECURE_TOKEN_ID
    if credentials is None:
        session = read_session(request.cookies.get(SESSION_COOKIE), tokens)
        if session is None:
            raise _unauthorized("missing bearer token")
        check_csrf(request, session)
        return session.token_id
    if credentials.scheme.lower() != "bearer":
        raise _unauthorized("missing bearer token")
    offered = credentials.credentials.encode("utf-8", "surrogatepass")
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(offered, token)
    if not matched:
        raise _unauthorized("invalid bearer token")
    return token_id(credentials.credentials)
