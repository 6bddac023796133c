"""The dashboard's HTML pages (not part of the OpenAPI schema) and its static files."""

from __future__ import annotations

import hashlib
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

__all__ = ["STATIC_PREFIX", "STATIC_ROOT", "router"]

STATIC_ROOT = Path(__file__).parent / "static"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _static_version() -> str:
    """A digest of the static files and of the plotly.js served with them: a new one after
    any change, so their URLs can be cached as immutable."""
    digest = hashlib.sha256(plotly.__version__.encode())
    digest.update(str(PLOTLY_JS.stat().st_size).encode())
    for path in sorted(STATIC_ROOT.iterdir()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


# Pages name every static file under this prefix and the modules import each other by
# relative URL, so one page load fetches each file at most once per version; repeat
# visits take them (and V8's code cache of plotly.min.js) from the browser's cache.
STATIC_VERSION = _static_version()
STATIC_PREFIX = f"/static/{STATIC_VERSION}"
_SAFE_NEXT = re.compile(r"^/(?!/)[A-Za-z0-9/_.\-]*$")
_STATIC_NAME = re.compile(r"^[a-z_]+(\.min)?\.(js|css)$")
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
    html = _templates.get_template(template).render(static=STATIC_PREFIX, **context)
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


_STATIC_CACHE = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
}


@router.get("/static/{version}/{name}")
def static_file(version: str, name: str) -> Response:
    """A static file of this version (immutable: its URL changes with its content)."""
    path = PLOTLY_JS if name == PLOTLY_JS.name else STATIC_ROOT / name
    if version != STATIC_VERSION or not _STATIC_NAME.match(name) or not path.is_file():
        return Response("not found", status_code=404, media_type="text/plain")
    kind = "text/css" if name.endswith(".css") else "text/javascript"
    return FileResponse(path, media_type=kind, headers=_STATIC_CACHE)
