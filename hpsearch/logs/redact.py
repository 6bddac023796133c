"""Credentials are never written to a log line.

`redact(text)` replaces the value of every query-string parameter whose name
looks like a credential (`token`, `access_token`, `api_key`, `password`,
`secret`, `auth`, `session`, `signature`, ...) and every `Bearer <token>` with
`***`. `RedactCredentials` is a `logging.Filter` that applies it to a
record's message and its arguments before any formatter sees them; attach it
to any handler (`handler.addFilter(RedactCredentials())`). `uvicorn_log_config()`
is uvicorn's default logging configuration with the filter on both of its
handlers, so the access log (`"GET /searches?token=*** HTTP/1.1" 401`) is
redacted too.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

__all__ = ["REDACTED", "RedactCredentials", "redact", "uvicorn_log_config"]

REDACTED = "***"
_CREDENTIAL_PARAMETER = re.compile(
    r"(?P<name>(?:^|[?&;])[^=&;\s\"'?]*?"
    r"(?:token|key|secret|passw|pwd|auth|session|signature|sig|credential)"
    r"[^=&;\s\"'?]*=)(?P<value>[^&;\s\"']*)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<name>\bBearer\s+)(?P<value>[^\s\"',;]+)", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with credential values in query strings and bearer tokens replaced by ***."""
    if "=" in text:
        text = _CREDENTIAL_PARAMETER.sub(_masked, text)
    if "earer" in text:
        text = _BEARER.sub(_masked, text)
    return text


def _masked(match: re.Match[str]) -> str:
    return match.group("name") + (REDACTED if match.group("value") else "")


def _redacted(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class RedactCredentials(logging.Filter):
    """Redact the message and string arguments of every record (see the module doc)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _redacted(value) for key, value in record.args.items()}
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's `LOGGING_CONFIG` with `RedactCredentials` on every handler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_credentials"] = {"()": RedactCredentials}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_credentials")
    return config
