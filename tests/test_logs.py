"""Structured log lines: key=value by default, JSON when asked, filters see every line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from hpsearch.logs import add_log_filter, configure_logging, log_event


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_an_event_is_one_key_value_line(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging("kv", "info", stream=stream)
    log_event("worker", "trial.requeued", trial_id=7, reason="worker w1 silent for 5 s", ok=None)
    log_event("worker", "epoch.committed", logging.DEBUG, trial_id=7)  # below the level
    (line,) = stream.getvalue().splitlines()
    assert line.startswith("ts=") and line.endswith("ok=null")
    assert " level=info logger=hpsearch.worker event=trial.requeued trial_id=7 " in line
    assert 'reason="worker w1 silent for 5 s"' in line


def test_json_lines_and_a_filter_that_redacts(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging("json", "debug", stream=stream)

    class Redact(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.msg = str(record.msg).replace("s3cret", "***")
            return True

    add_log_filter(Redact())
    configure_logging("json", "debug", stream=stream)  # reconfigured: the filter stays
    log_event("worker", "epoch.committed", logging.DEBUG, trial_id=3, val_accuracy=0.5)
    logging.getLogger("uvicorn.access").info("GET /x?token=s3cret 200")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["event"] == "epoch.committed" and first["val_accuracy"] == 0.5
    assert (first["level"], first["trial_id"]) == ("debug", 3)
    assert second["msg"] == "GET /x?token=*** 200" and "event" not in second
    with pytest.raises(ValueError, match="log format"):
        configure_logging("xml", "info")
