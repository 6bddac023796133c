"""Credentials in query strings and bearer tokens never reach a log line."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from hpsearch.logs.redact import RedactCredentials, redact, uvicorn_log_config

SECRET = "s3cr3t-Value_42"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"GET /searches?token={SECRET} HTTP/1.1", "GET /searches?token=*** HTTP/1.1"),
        (f"/x?a=1&access_token={SECRET}&b=2", "/x?a=1&access_token=***&b=2"),
        (f"/x?API_KEY={SECRET}", "/x?API_KEY=***"),
        (f"/x?password={SECRET};next=1", "/x?password=***;next=1"),
        (f"Authorization: Bearer {SECRET}", "Authorization: Bearer ***"),
        ("/x?token=", "/x?token="),
        ("/searches?status=failed&limit=5", "/searches?status=failed&limit=5"),
    ],
)
def test_redact_masks_credential_values_only(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_filter_redacts_message_and_arguments_before_formatting() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", f"/trials/1?token={SECRET}", "1.1", 401), None,
    )  # fmt: skip
    assert RedactCredentials().filter(record)
    assert record.getMessage() == '127.0.0.1:5 - "GET /trials/1?token=*** HTTP/1.1" 401'
    named = logging.LogRecord("x", logging.INFO, __file__, 1, "url=%(url)s", None, None)
    named.args = {"url": f"/?secret={SECRET}"}
    RedactCredentials().filter(named)
    assert named.getMessage() == "url=/?secret=***"


def test_uvicorn_config_puts_the_filter_on_every_handler() -> None:
    config = uvicorn_log_config()
    assert set(config["handlers"]) == {"default", "access"}
    for handler in config["handlers"].values():
        assert "redact_credentials" in handler["filters"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_hpsearch_serve_access_log_never_shows_a_query_token(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "HPSEARCH_HOME": str(tmp_path),
        "HPSEARCH_DATA_ROOT": str(tmp_path),
        "HPSEARCH_API_TOKENS": '["a-real-token-0123"]',
        "HPSEARCH_API_MASTER": "false",
        "HPSEARCH_LOG_LEVEL": "info",  # access lines; in-process `hpsearch run` tests set warning
    }
    hpsearch = [sys.executable, "-c", "from hpsearch.cli import app; app()"]
    server = subprocess.Popen(
        [*hpsearch, "serve", "--port", str(port)], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and server.poll() is None, "serve did not start"
                time.sleep(0.2)
        refused = httpx.get(f"{base}/searches", params={"token": SECRET}, timeout=10)
        assert refused.status_code in (401, 422)  # no bearer token, an unknown parameter
        httpx.get(f"{base}/health", params={"access_token": SECRET}, timeout=10)
        time.sleep(1.0)  # let a loaded server write its access lines before it is stopped
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert "GET /searches?token=*** HTTP/1.1" in output, output
    assert "GET /health?access_token=*** HTTP/1.1" in output
    assert SECRET not in output
