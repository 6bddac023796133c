"""The dashboard's HTML pages (not part of the OpenAPI schema) and its static files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import plotly
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from api.schemas import MAX_ID
from api.session import SESSION_COOKIE, Session, read_session
from hpsearch.db import Storage
from hpsearch.errors import NotFoundError

__all__ = ["STATIC_ROOT", "router"]

STATIC_ROOT = Path(__file__).parent / "static"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
_SAFE_NEXT = re.compile(r"^/(?!/)[A-Za-z0-9/_.\-]*$")
_STATIC_NAME = re.compile(r"^[a-z_]+\.(js|css)$")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_templates = Environment(
    loader=PackageLoader("api.dashboard", "templates"),
    autoescape=select_autoescape(["html"]),
)
router = APIRouter(include_in_schema=False)


def _session(request: Request) -> Session | None:
    """The visitor's session; a keyless one when the server runs --insecure without tokens."""
    tokens: tuple[bytes, ...] = request.app.state.api_tokens
    if not tokens and request.app.state.insecure:
        return Session(token_id="insecure", csrf_token="", expires_at=0)
    return read_session(request.cookies.get(SESSION_COOKIE), tokens)


def _render(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = _templates.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def _page(request: Request, template: str, **context: Any) -> Response:
    """The page for a signed-in visitor, else a redirect to the sign-in page."""
    session = _session(request)
    if session is None:
        return RedirectResponse(f"/sign-in?next={request.url.path}", status_code=303)
    return _render(template, csrf_token=session.csrf_token, signed_in=True, **context)


def _not_found(request: Request, message: str) -> Response:
    return _render("error.html", 404, message=message, csrf_token="", signed_in=True)


def _checked_id(text: str, noun: str) -> int:
    """The id in a page's path; NotFoundError naming it when it is not a valid id."""
    if not (text.isdigit() and 1 <= int(text) <= MAX_ID):
        raise NotFoundError(f"{noun} {text[:40]!r} does not exist (ids are whole numbers >= 1)")
    return int(text)


@router.get("/sign-in")
def sign_in_page(request: Request) -> Response:
    target = request.query_params.get("next", "/")
    return _render("sign_in.html", next=target if _SAFE_NEXT.match(target) else "/")


@router.get("/")
def searches_page(request: Request) -> Response:
    return _page(request, "searches.html", page="searches")


@router.get("/ui/searches/{search_id}")
def search_page(request: Request, search_id: str) -> Response:
    if _session(request) is None:
        return _page(request, "search.html")
    storage: Storage = request.app.state.storage
    try:
        search = storage.get_search(_checked_id(search_id, "search"))
    except NotFoundError as error:
        return _not_found(request, str(error))
    return _page(request, "search.html", page="search", search_id=search.id, name=search.name)


@router.get("/ui/trials/{trial_id}")
def trial_page(request: Request, trial_id: str) -> Response:
    if _session(request) is None:
        return _page(request, "trial.html")
    storage: Storage = request.app.state.storage
    try:
        trial = storage.get_trial(_checked_id(trial_id, "trial"))
    except NotFoundError as error:
        return _not_found(request, str(error))
    return _page(request, "trial.html", page="trial", trial=trial)


@router.get("/ui/workers")
def workers_page(request: Request) -> Response:
    return _page(request, "workers.html", page="workers")


@router.get("/static/plotly.min.js")
def plotly_js() -> Response:
    return FileResponse(PLOTLY_JS, media_type="text/javascript", headers=_STATIC_CACHE)


_STATIC_CACHE = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    path = STATIC_ROOT / name
    if not _STATIC_NAME.match(name) or not path.is_file():
        return Response("not found", status_code=404, media_type="text/plain")
    kind = "text/javascript" if name.endswith(".js") else "text/css"
    return FileResponse(path, media_type=kind, headers={"Cache-Control": "no-cache"})
