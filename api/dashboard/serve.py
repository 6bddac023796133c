"""`hpsearch dashboard` and `hpsearch run --dashboard`: the API + pages on 127.0.0.1 with a
fresh random token, printed once (never put in a URL or a log)."""

from __future__ import annotations

import secrets
import threading
import time

import uvicorn

from api.main import create_app
from hpsearch.errors import ConfigError
from hpsearch.settings import Settings

__all__ = ["DASHBOARD_HOST", "DashboardThread", "announce", "with_fresh_token"]

DASHBOARD_HOST = "127.0.0.1"


def with_fresh_token(settings: Settings, **changes: object) -> tuple[Settings, str]:
    """`settings` whose only API token is a fresh random one, and that token."""
    token = secrets.token_urlsafe(24)
    return settings.model_copy(update={"api_tokens": [token], **changes}), token


def announce(port: int, token: str) -> str:
    """What the command prints once: where the dashboard is and the token to sign in with."""
    return (
        f"dashboard: http://{DASHBOARD_HOST}:{port}/  (sign in with this token; "
        f"it is not shown again)\n{token}"
    )


class DashboardThread:
    """uvicorn serving `create_app(settings)` in a daemon thread (beside `hpsearch run`)."""

    def __init__(self, settings: Settings, port: int) -> None:
        config = uvicorn.Config(
            create_app(settings), host=DASHBOARD_HOST, port=port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="dashboard", daemon=True)

    def start(self, timeout_s: float = 10.0) -> DashboardThread:
        """Start serving; ConfigError when the port cannot be bound within `timeout_s`."""
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(f"port: cannot serve the dashboard on {self.server.config.port}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
