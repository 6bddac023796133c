"""The FastAPI application: `create_app(settings)`, served by `hpsearch serve`.

    uvicorn --factory api.main:create_app        (settings from HPSEARCH_* variables)
    hpsearch serve --workers N                   (N processes of `serve_app`)

Routers, one per resource: `/searches`, `/searches/{id}/trials` and
`/trials`, `/searches/{id}/ensembles` and `/ensembles`, the figures of a
search and a trial (`/searches/{id}/points`, `/curves`, `/timeline`,
`/trials/{id}/figures`), `/datasets`, `/workers`, `/health`, `/session`
(browser sign-in); OpenAPI at `/docs` and `/openapi.json` (public, as
`/health`: the schema holds no data; see `api.openapi`). The dashboard's
pages (`api.dashboard`) are served under `/`. Every route but `/health` and
`/session` needs a bearer token or a session cookie (`api.auth`,
`api.session`); bodies are capped (`api.limits`); errors map to status codes as
`api.errors` says. The storage is opened when the app is created; the
lifespan starts the in-process master (`api.background`) and closes the
storage at shutdown. A process serves HPSEARCH_API_CONCURRENCY requests at
once (threads, each with a pooled database connection); the rest wait in
line, so that a crowd of clients queues instead of taking the CPU from
training.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from anyio import to_thread
from fastapi import Depends, FastAPI

from api.auth import check_serve_security
from api.background import MasterLoop
from api.dashboard import router as dashboard_router
from api.errors import install_error_handlers
from api.limits import BodySizeLimit, LaunchRateLimiter
from api.openapi import add_links, describe_search_spec
from api.routes import (
    datasets,
    ensembles,
    health,
    search_figures,
    searches,
    session,
    trial_figures,
    trials,
    workers,
)
from api.strict import reject_unknown_query
from hpsearch.checkpoints import FileSystemCheckpointStorage
from hpsearch.db import open_storage
from hpsearch.executors import Executor, make_executor
from hpsearch.logs import configure_logging
from hpsearch.settings import Settings

__all__ = ["SERVE_INSECURE_ENV", "create_app", "serve_app"]

API_VERSION = "1"
# Set by `hpsearch serve --insecure` (after its own checks) for the processes it starts.
SERVE_INSECURE_ENV = "HPSEARCH_SERVE_INSECURE"


def create_app(
    settings: Settings | None = None,
    *,
    executor: Executor | None = None,
    insecure: bool = False,
) -> FastAPI:
    """The API over `settings` (default: from the environment).

    `executor` overrides the one made from `settings.redis_url` (tests use a
    private queue). Raises ConfigError when no API token is configured and
    `insecure` is not set; StorageError when the database cannot be opened.
    """
    settings = settings or Settings()
    if not insecure:
        check_serve_security(settings.api_tokens, "", insecure=False)
    # A connection per request thread, plus the master's tick and its leader lock.
    storage = open_storage(settings.resolved_database_url, settings.api_concurrency + 2)
    executor = executor or make_executor(settings.redis_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Routes are synchronous: they run in anyio's thread pool, sized here.
        to_thread.current_default_thread_limiter().total_tokens = settings.api_concurrency
        loop = None
        if settings.api_master:
            loop = MasterLoop(storage, executor, settings.stale_after_s, settings.master_tick_s,
                              settings.worker_prune_after_s)  # fmt: skip
            loop.start()
        app.state.master = loop
        try:
            yield
        finally:
            if loop is not None:
                await loop.stop()
            storage.close()

    app = FastAPI(
        title="hpsearch",
        version=API_VERSION,
        summary="Coarse-to-fine hyperparameter search for NumPy MLPs",
        lifespan=lifespan,
        dependencies=[Depends(reject_unknown_query)],
    )
    app.state.settings = settings
    app.state.storage = storage
    app.state.executor = executor
    app.state.checkpoints = FileSystemCheckpointStorage(settings.resolved_checkpoint_root)
    app.state.launch_limiter = LaunchRateLimiter(settings.launch_rate_per_minute)
    app.state.api_tokens = tuple(t.encode("utf-8") for t in settings.api_tokens if t.strip())
    app.state.insecure = insecure
    app.state.master = None
    _describe_openapi(app, settings)
    install_error_handlers(app)
    for module in (
        searches,
        search_figures,
        trials,
        trial_figures,
        ensembles,
        datasets,
        workers,
        health,
        session,
    ):
        app.include_router(module.router)
    app.include_router(searches.upload_router)
    app.include_router(dashboard_router)
    app.add_middleware(
        BodySizeLimit,
        json_bytes=settings.max_json_bytes,
        upload_bytes=settings.max_upload_bytes,
        upload_paths=frozenset({"/datasets"}),
    )
    return app


def serve_app() -> FastAPI:
    """The app of one `hpsearch serve` process (uvicorn's factory, once per process).

    Logs are structured (`hpsearch.logs`); the process lowers its CPU
    priority by HPSEARCH_API_NICE so that reading the API never starves the
    training workers on a shared machine.
    """
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    if settings.api_nice:
        os.nice(settings.api_nice)
    return create_app(settings, insecure=os.environ.get(SERVE_INSECURE_ENV) == "1")


def _describe_openapi(app: FastAPI, settings: Settings) -> None:
    """Serve the generated schema with the real search spec and links (`api.openapi`)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            describe_search_spec(schema, settings)
            add_links(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
