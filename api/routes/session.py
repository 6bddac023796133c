"""`/session`: the dashboard's sign-in (a bearer token for a session cookie) and sign-out."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, HTTPException, Request, Response

from api.errors import ERROR_RESPONSES
from api.schemas import ErrorPublic, SessionCreate, SessionPublic
from api.session import SESSION_COOKIE, SESSION_TTL_S, issue_session

__all__ = ["router"]

router = APIRouter(
    prefix="/session",
    tags=["session"],
    responses={code: {**body, "model": ErrorPublic} for code, body in ERROR_RESPONSES.items()},
)


def _matching_token(request: Request, offered: str) -> bytes | None:
    tokens: tuple[bytes, ...] = request.app.state.api_tokens
    offered_bytes = offered.encode("utf-8", "surrogatepass")
    found = None
    for token in tokens:
        if hmac.compare_digest(offered_bytes, token):
            found = token
    return found


@router.post("")
def sign_in(body: SessionCreate, request: Request, response: Response) -> SessionPublic:
    """Exchange an API token for an HttpOnly, SameSite=Strict session cookie (401 if unknown).

    The token travels in the body only; the answer carries the CSRF token that
    unsafe requests made with the cookie must send as `X-CSRF-Token`.
    """
    token = _matching_token(request, body.token)
    if token is None:
        raise HTTPException(401, "invalid token", headers={"WWW-Authenticate": "Bearer"})
    cookie, session = issue_session(token)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=SESSION_TTL_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return SessionPublic(csrf_token=session.csrf_token, expires_at=session.expires_at)


@router.delete("", status_code=204)
def sign_out(response: Response) -> None:
    """Forget the session cookie (idempotent; needs no session)."""
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
