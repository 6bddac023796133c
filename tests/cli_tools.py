"""The `hpsearch` command in-process (`invoke`); the `home` fixture is in tests/conftest.py."""

from __future__ import annotations

from typer.testing import CliRunner

from hpsearch.cli import app

__all__ = ["invoke", "runner"]

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    """Run `hpsearch ARGS...`; (exit code, output)."""
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output
