"""The container healthcheck: `python -m hpsearch.cluster.health [--url URL]`.

With `--url` (the API container) it asks the API's `/health`, which checks
the database and Redis from inside the server; without it (master, worker)
it checks that the configured database and Redis answer. Exit status 0 when
healthy, 1 otherwise, with one line per problem on stderr.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request

from hpsearch.settings import Settings

__all__ = ["main", "probe_api", "probe_services"]

TIMEOUT_S = 4.0


def probe_api(url: str, timeout_s: float = TIMEOUT_S) -> list[str]:
    """The problems the API at `url` reports (an empty list: healthy)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        return [f"{url} answered {error.code}: {error.read(500).decode(errors='replace')}"]
    except OSError as error:
        return [f"{url} does not answer: {error}"]
    return [] if status == 200 else [f"{url} answered {status}"]


def probe_services(settings: Settings, timeout_s: float = TIMEOUT_S) -> list[str]:
    """The problems reaching the configured database and Redis (empty: both answer)."""
    from sqlalchemy import text

    from hpsearch.db.engine import create_db_engine, safe_url

    problems = []
    engine = create_db_engine(settings.resolved_database_url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:  # reported, not raised: a healthcheck says what is wrong
        problems.append(f"database {safe_url(engine.url)}: {type(error).__name__}")
    finally:
        engine.dispose()
    if settings.redis_url:
        from redis import Redis

        try:
            Redis.from_url(settings.redis_url, socket_timeout=timeout_s).ping()
        except Exception as error:  # reported, not raised
            problems.append(f"redis: {type(error).__name__}: {error}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hpsearch.cluster.health")
    parser.add_argument("--url", help="the API's /health URL (else: database and Redis)")
    arguments = parser.parse_args(argv)
    problems = probe_api(arguments.url) if arguments.url else probe_services(Settings())
    for problem in problems:
        print(f"unhealthy: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
