"""docker-compose.yml as the tests read it: services, the interpolation of `${...}`.

`interpolate` follows the Compose specification's rules for the forms the
file uses: `${VAR}`, `${VAR:-default}`, `${VAR:?message}` (an error naming
the variable when it is unset or empty, which stops `docker compose up`)
and `$$` for a literal `$`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "COMPOSE_PATH",
    "ENV_EXAMPLE_PATH",
    "HPSEARCH_SERVICES",
    "InterpolationError",
    "interpolate",
    "load_compose",
    "read_env_file",
    "referenced_variables",
    "service_environment",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_PATH = REPO_ROOT / "docker-compose.yml"
ENV_EXAMPLE_PATH = REPO_ROOT / ".env.example"
HPSEARCH_SERVICES = ("api", "master", "worker")
_REFERENCE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:[-?])(?P<arg>[^}]*))?\}"
)


class InterpolationError(ValueError):
    """A `${VAR:?message}` whose variable is unset or empty: the message names it."""


def load_compose(path: Path = COMPOSE_PATH) -> dict[str, Any]:
    """The compose file as YAML data (merge keys `<<` resolved), not interpolated."""
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def interpolate(value: Any, variables: dict[str, str]) -> Any:
    """`value` (str, list or dict, recursively) with every `${...}` replaced."""
    if isinstance(value, dict):
        return {key: interpolate(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, variables) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        given = variables.get(name, "")
        if op == ":?" and not given:
            raise InterpolationError(f"required variable {name} is missing a value: {arg}")
        if op == ":-" and not given:
            return arg
        return given

    return _REFERENCE.sub(replace, value)


def referenced_variables(data: Any) -> set[str]:
    """Every variable name the compose data refers to with `${...}`."""
    return {m.group("name") for m in _REFERENCE.finditer(yaml.safe_dump(data)) if m.group("name")}


def service_environment(
    compose: dict[str, Any], service: str, variables: dict[str, str]
) -> dict[str, str]:
    """The interpolated `environment:` of one service, as strings."""
    environment = compose["services"][service].get("environment", {})
    return {key: str(value) for key, value in interpolate(environment, variables).items()}


def read_env_file(path: Path = ENV_EXAMPLE_PATH) -> dict[str, str]:
    """KEY=value lines of a .env file (quotes around a value removed, comments skipped)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values
