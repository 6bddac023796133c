"""docker-compose.yml, Dockerfile, .env.example and the lock file, checked against the code.

The variable names come from `hpsearch.settings.Settings` (its fields and its
env prefix), never from a list copied here.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib

import pytest
from compose_file import (
    COMPOSE_PATH,
    ENV_EXAMPLE_PATH,
    HPSEARCH_SERVICES,
    REPO_ROOT,
    InterpolationError,
    interpolate,
    load_compose,
    read_env_file,
    referenced_variables,
    service_environment,
)
from native_cluster import HPSEARCH

from hpsearch.settings import Settings

COMPOSE = load_compose()
SERVICES = COMPOSE["services"]
EXAMPLE = read_env_file()
PREFIX = Settings.model_config["env_prefix"]
SETTING_VARIABLES = {f"{PREFIX}{name}".upper(): name for name in Settings.model_fields}
# Settings the cluster cannot run without (the laptop defaults do not fit a cluster).
CLUSTER_SETTINGS = ("database_url", "redis_url", "data_root", "checkpoint_root", "prepared_root")


def settings_from(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The Settings a process with exactly this HPSEARCH_* environment reads."""
    for name in [n for n in os.environ if n.startswith(PREFIX)]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return Settings()


def variable(setting: str) -> str:
    """The environment variable of a Settings field, spelled as pydantic-settings reads it."""
    assert setting in Settings.model_fields, setting
    return f"{PREFIX}{setting}".upper()


def test_the_topology_has_its_five_services_and_four_named_volumes() -> None:
    assert set(SERVICES) == {"postgres", "redis", "api", "master", "worker"}
    assert set(COMPOSE["volumes"]) == {"pgdata", "redis-data", "checkpoints", "datasets"}
    assert "pgdata:/var/lib/postgresql/data" in SERVICES["postgres"]["volumes"]
    assert "redis-data:/data" in SERVICES["redis"]["volumes"]


@pytest.mark.parametrize("service", HPSEARCH_SERVICES)
def test_every_hpsearch_variable_is_a_setting_and_the_cluster_ones_are_set(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = service_environment(COMPOSE, service, EXAMPLE)
    unknown = [name for name in environment if name not in SETTING_VARIABLES]
    assert not unknown, f"{service} sets variables hpsearch/settings.py does not read: {unknown}"
    for setting in CLUSTER_SETTINGS:
        assert variable(setting) in environment, f"{service} lacks {variable(setting)}"
    settings = settings_from(environment, monkeypatch)
    assert settings.resolved_database_url.startswith("postgresql+psycopg://hpsearch:")
    assert "@postgres:5432/hpsearch" in settings.resolved_database_url
    assert settings.redis_url == "redis://redis:6379/0"


@pytest.mark.parametrize("service", HPSEARCH_SERVICES)
def test_the_shared_volumes_are_mounted_where_the_settings_point(service: str) -> None:
    environment = service_environment(COMPOSE, service, EXAMPLE)
    mounts = dict(volume.split(":", 1)[::-1] for volume in SERVICES[service]["volumes"])
    assert mounts[environment[variable("checkpoint_root")]] == "checkpoints"
    assert mounts[environment[variable("data_root")]] == "datasets"
    prepared = environment[variable("prepared_root")]
    assert prepared.startswith(environment[variable("data_root")] + "/"), "on the data volume"


def test_the_api_takes_tokens_and_leaves_the_master_to_its_own_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_from(service_environment(COMPOSE, "api", EXAMPLE), monkeypatch)
    assert settings.api_tokens and not settings.api_master
    assert SERVICES["api"]["command"][0] == "serve"
    assert SERVICES["master"]["command"] == ["master"]
    assert SERVICES["worker"]["command"] == ["worker"]
    for service in ("master", "worker"):
        assert variable("api_tokens") not in service_environment(COMPOSE, service, EXAMPLE)


def test_every_service_has_a_healthcheck_and_waits_for_healthy_dependencies() -> None:
    tests = {name: " ".join(service["healthcheck"]["test"]) for name, service in SERVICES.items()}
    assert tests["postgres"].startswith("CMD pg_isready")
    assert tests["redis"] == "CMD redis-cli ping"
    assert "hpsearch.cluster.health --url http://127.0.0.1:8000/health" in tests["api"]
    for service in HPSEARCH_SERVICES:
        depends = SERVICES[service]["depends_on"]
        assert depends == {"postgres": {"condition": "service_healthy"},
                           "redis": {"condition": "service_healthy"}}  # fmt: skip


def test_redis_keeps_an_append_only_file_and_never_evicts() -> None:
    command = " ".join(SERVICES["redis"]["command"])
    assert "--appendonly yes" in command and "--maxmemory-policy noeviction" in command


def test_each_worker_has_resource_limits_and_scales() -> None:
    worker = interpolate(SERVICES["worker"], EXAMPLE)
    limits = worker["deploy"]["resources"]["limits"]
    assert float(limits["cpus"]) > 0 and re.fullmatch(r"\d+[kmg]", limits["memory"])
    assert "container_name" not in worker and "ports" not in worker  # --scale worker=8 works


def test_env_example_defines_exactly_the_variables_the_compose_file_uses() -> None:
    assert referenced_variables(COMPOSE) == set(EXAMPLE)
    assert ".env" in (REPO_ROOT / ".gitignore").read_text().split()


@pytest.mark.parametrize(
    ("missing", "service"),
    [
        ("POSTGRES_PASSWORD", "api"),
        ("POSTGRES_PASSWORD", "postgres"),
        ("HPSEARCH_API_TOKENS", "api"),
    ],
)
def test_a_start_without_a_secret_refuses_naming_it(missing: str, service: str) -> None:
    for empty in ({}, {missing: ""}):
        variables = {k: v for k, v in EXAMPLE.items() if k != missing} | empty
        with pytest.raises(InterpolationError, match=missing):
            interpolate(SERVICES[service], variables)


def test_the_api_refuses_to_serve_without_a_token_naming_the_setting(tmp_path) -> None:
    environment = {"PATH": "/usr/bin:/bin", "HPSEARCH_HOME": str(tmp_path),
                   variable("api_tokens"): "[]"}  # fmt: skip
    command = [*HPSEARCH, *SERVICES["api"]["command"]]
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert variable("api_tokens") in result.stderr and not list(tmp_path.iterdir())


def test_the_dockerfile_runs_hpsearch_as_a_non_root_user_from_the_lock_file() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim$", dockerfile, re.M)
    users = re.findall(r"^USER (\S+)$", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert "pip install --no-deps --require-hashes -r requirements.lock" in dockerfile
    assert 'ENTRYPOINT ["hpsearch"]' in dockerfile and "HEALTHCHECK" in dockerfile
    for service in HPSEARCH_SERVICES:
        assert SERVICES[service]["build"] == "."


def test_the_lock_file_pins_every_runtime_dependency_with_hashes() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    lock = (REPO_ROOT / "requirements.lock").read_text()
    pinned = {_normalized(m) for m in re.findall(r"^([A-Za-z0-9_.\-]+)==", lock, re.M)}
    required = {_normalized(re.split(r"[\s<>=!~\[;]", dep, maxsplit=1)[0])
                for dep in project["dependencies"]}  # fmt: skip
    assert required <= pinned, f"relock: {sorted(required - pinned)} missing from the lock"
    blocks = re.split(
        r"\n(?=[A-Za-z0-9])", lock.split("\n", 1)[1] if lock.startswith("#") else lock
    )
    assert all("--hash=sha256:" in block for block in blocks if "==" in block)


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_compose_file_is_where_the_design_says() -> None:
    assert COMPOSE_PATH.parent == REPO_ROOT and ENV_EXAMPLE_PATH.parent == REPO_ROOT
