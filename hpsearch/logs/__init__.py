"""Structured log events: one line per state change, key=value or JSON.

    from hpsearch.logs import log_event
    log_event("worker", "trial.claimed", trial_id=42, worker_id=w, attempt=1)

writes, once `configure_logging()` ran in the process (every entry point
calls it: `hpsearch serve|master|worker|run`, worker processes):

    ts=2026-12-01T12:00:00.123Z level=info logger=hpsearch.worker event=trial.claimed
    trial_id=42 worker_id=... attempt=1          (one line)

or, with `HPSEARCH_LOG_FORMAT=json`, one JSON object per line with the same
keys. Records that are not events (uvicorn, RQ, warnings) are written the
same way with their text in `msg`. `HPSEARCH_LOG_LEVEL` sets the level
(`debug` adds one `epoch.committed` line per epoch).

Filters: `configure_logging(filters=[...])` (or `add_log_filter`) attaches
`logging.Filter`s to the one handler, so they see every line the process
writes (`hpsearch.logs.redact.RedactCredentials`, which masks credentials in query
strings and bearer tokens, is always attached).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from types import FrameType
from typing import IO, Any

from hpsearch.logs.redact import RedactCredentials

__all__ = [
    "LOG_FORMATS",
    "EventFormatter",
    "add_log_filter",
    "configure_logging",
    "log_event",
    "stop_on_signals",
]

LOG_FORMATS = ("kv", "json")
_EVENT_FIELDS = "hpsearch_event"
_HANDLER_NAME = "hpsearch"
_BARE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:/@+")


def log_event(logger: str | logging.Logger, event: str, level: int = logging.INFO,
              **fields: Any) -> None:  # fmt: skip
    """Log `event` with `fields` under `logger` (a name is prefixed with `hpsearch.`)."""
    if isinstance(logger, str):
        logger = logging.getLogger(
            logger if logger.startswith("hpsearch") else f"hpsearch.{logger}"
        )
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={_EVENT_FIELDS: fields})


def _kv_value(value: Any) -> str:
    if isinstance(value, datetime):
        value = _iso(value)
    elif isinstance(value, float):
        value = f"{value:.6g}"
    elif value is None or isinstance(value, bool):
        value = json.dumps(value)
    text = str(value)
    if text and all(character in _BARE for character in text):
        return text
    return json.dumps(text, ensure_ascii=False)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_safe(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


class EventFormatter(logging.Formatter):
    """Renders a record as `key=value ...` (kv) or one JSON object (json)."""

    def __init__(self, output: str = "kv") -> None:
        if output not in LOG_FORMATS:
            raise ValueError(f"log format must be one of {list(LOG_FORMATS)}; got {output!r}")
        super().__init__()
        self.output = output

    def fields_of(self, record: logging.LogRecord) -> dict[str, Any]:
        """The ordered fields of one line: ts, level, logger, then event and its fields."""
        fields: dict[str, Any] = {
            "ts": _iso(datetime.fromtimestamp(record.created, UTC)),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        event_fields: Mapping[str, Any] | None = getattr(record, _EVENT_FIELDS, None)
        if event_fields is None:
            fields["msg"] = record.getMessage()
        else:
            fields["event"] = record.msg
            fields.update(event_fields)
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        return fields

    def format(self, record: logging.LogRecord) -> str:
        fields = self.fields_of(record)
        if self.output == "json":
            return json.dumps({k: _json_safe(v) for k, v in fields.items()}, ensure_ascii=False)
        return " ".join(f"{key}={_kv_value(value)}" for key, value in fields.items())


def configure_logging(
    output: str | None = None,
    level: str | int | None = None,
    filters: Iterable[logging.Filter] = (),
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Route every log record of this process to one structured handler on stderr.

    `output` (kv | json) and `level` default to HPSEARCH_LOG_FORMAT and
    HPSEARCH_LOG_LEVEL. Calling it again replaces the handler (keeping the
    filters attached to the old one). Returns the handler.
    """
    from hpsearch.settings import Settings

    if output is None or level is None:
        settings = Settings()
        output = output or settings.log_format
        level = level or settings.log_level
    root = logging.getLogger()
    old = [h for h in root.handlers if h.get_name() == _HANDLER_NAME]
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(EventFormatter(output))
    for existing in old:
        for kept in existing.filters:
            handler.addFilter(kept)
        root.removeHandler(existing)
    for extra in filters:
        handler.addFilter(extra)
    if not any(isinstance(kept, RedactCredentials) for kept in handler.filters):
        handler.addFilter(RedactCredentials())  # credentials never reach a log line
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler


def add_log_filter(log_filter: logging.Filter) -> None:
    """Attach `log_filter` to the structured handler (configured first if needed)."""
    handlers = [h for h in logging.getLogger().handlers if h.get_name() == _HANDLER_NAME]
    handler = handlers[0] if handlers else configure_logging()
    handler.addFilter(log_filter)


def stop_on_signals(stopping: threading.Event, logger: str, **fields: Any) -> None:
    """SIGTERM / SIGINT log `<logger>.stopping` and set `stopping` (main thread only:
    Python handles signals there). A process that must stop on SIGTERM needs this
    in a container, where it is PID 1: the kernel ignores a signal PID 1 has no
    handler for, so `docker stop` would wait out its grace period and SIGKILL it."""

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log_event(logger, f"{logger}.stopping", **fields, signal=signal.Signals(signum).name)
        stopping.set()

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, request_stop)
