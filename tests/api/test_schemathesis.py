"""schemathesis over the app's OpenAPI schema: every operation, then stateful scenarios.

Checks: schemathesis's defaults (server errors, status codes, content types,
response schemas and headers, negative data rejection, ignored authentication,
positive data acceptance, ...). `positive_data_acceptance` is off for the
operations whose inputs are checked beyond what JSON Schema can say: a spec
checked without its data (`POST /search-specs`), a random id's search rarely
in the state a change needs (`PATCH /searches/{id}`), an upload's bytes
(`POST /datasets`), an ensemble's size against the models the search stored
(`POST /searches/{id}/ensembles`) and a sign-in token (`POST /session`).
`POST /searches` keeps it: its schema describes the real spec
(`api.openapi`), and `spec_rules.satisfy_server_rules` makes the relations
JSON Schema cannot state hold in generated bodies. Its coverage phase is
positive only: the negative one would send thousands of bodies that break one
field each (most of the run, and of the launches counted); its negative
bodies come from the fuzzing phase and the stateful scenarios. The stateful
phase follows the schema's links from a launched search to its trials.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import schemathesis
from api_helpers import AUTH, TOKEN
from factories import postgres_schema_url
from hypothesis import HealthCheck, Phase, settings
from schemathesis import GenerationMode
from schemathesis.config._operations import OperationConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance
from spec_rules import FUZZ_DATASET, satisfy_server_rules

from api.main import create_app
from hpsearch import executors
from hpsearch.executors import RQExecutor
from hpsearch.settings import Settings

pytestmark = pytest.mark.service

SEMANTIC_OPERATIONS = {
    "POST /search-specs",
    "PATCH /searches/{search_id}",
    "POST /datasets",
    "POST /searches/{search_id}/ensembles",
    "POST /session",
}
MIN_REQUESTS = 1000
MIN_LAUNCHES_ACCEPTED = 0.2  # of every POST /searches the tests send (issue 14)
LAUNCH_EXAMPLES = 40
FUZZ_EXAMPLES = 60  # per operation; the whole file stays near a minute
POSITIVE_COVERAGE_OF_LAUNCHES = OperationConfig.from_dict(
    {"include-name": "POST /searches", "phases": {"coverage": {"generation": {"mode": "positive"}}}}
)
REQUESTS: dict[str, int] = {}
LAUNCHES: dict[str, int] = {"sent": 0, "accepted": 0}
POSITIVE_LAUNCHES: dict[str, int] = {"sent": 0, "accepted": 0}
LINKED: dict[str, int] = {}
RULES: dict[str, Settings] = {}


def with_server_rules(case: Any) -> Any:
    """A positive POST /searches case with the rules JSON Schema cannot state made true."""
    positive = case.meta is None or case.meta.generation.mode.is_positive
    if case.operation.label == "POST /searches" and positive:
        case.body = satisfy_server_rules(case.body, RULES["settings"])
    return case


class CountRequests:
    """ASGI middleware counting requests per method, and POST /searches sent and accepted."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        REQUESTS[scope["method"]] = REQUESTS.get(scope["method"], 0) + 1
        launch = scope["method"] == "POST" and scope["path"].rstrip("/") == "/searches"
        LAUNCHES["sent"] += launch

        async def counted_send(message: Any) -> None:
            if launch and message["type"] == "http.response.start" and message["status"] == 201:
                LAUNCHES["accepted"] += 1
            await send(message)

        await self.app(scope, receive, counted_send)


@pytest.fixture(scope="module")
def api_schema(
    postgres_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    root: Path = tmp_path_factory.mktemp("schemathesis")
    prefix = f"apifuzz-{uuid.uuid4().hex[:10]}"
    with pytest.MonkeyPatch.context() as patch, postgres_schema_url(postgres_url) as url:
        patch.setattr(executors, "job_id_for", lambda trial_id: f"{prefix}-trial-{trial_id}")
        patch.setattr(executors, "ensemble_job_id_for", lambda first: f"{prefix}-ens-{first}")
        executor = RQExecutor(redis_url, queue_name=prefix)
        settings_ = Settings(
            home=root, database_url=url, redis_url=redis_url, data_root=root,
            checkpoint_root=root / "checkpoints", api_tokens=[TOKEN], api_master=False,
            launch_rate_per_minute=1e6, max_upload_bytes=64 * 1024, max_concurrency=4,
            max_width=128, max_layers=4, max_features=4096, max_data_bytes=2**20,
            max_trials=50 * 100_000, max_epochs=400,  # planned epochs fit 32 bits
        )  # fmt: skip
        (root / "datasets").mkdir()
        rng = np.random.default_rng(0)
        np.savez(root / FUZZ_DATASET, X=rng.normal(size=(40, 3)), y=np.arange(40) % 2)
        app = create_app(settings_, executor=executor)
        app.add_middleware(CountRequests)
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        RULES["settings"] = settings_
        schema.config.generation.update(
            modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=FUZZ_EXAMPLES
        )
        schema.config.operations.operations.append(POSITIVE_COVERAGE_OF_LAUNCHES)
        yield schema
        app.state.storage.close()
        executor.queue.delete(delete_jobs=True)
        executor.connection.close()


schema = schemathesis.pytest.from_fixture("api_schema")


FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


def test_stateful_scenarios_follow_links_from_launched_searches(api_schema: Any) -> None:
    """First, on the fresh server: a scenario's steps are drawn from earlier answers, and the
    searches the other tests launch would make those answers differ between the runs of one
    scenario (Hypothesis then stops on "inconsistent data generation")."""

    class Scenarios(api_schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": AUTH}

        def before_call(self, case: Any) -> None:
            with_server_rules(case)

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            semantic = case.operation.label in SEMANTIC_OPERATIONS
            excluded = [positive_data_acceptance] if semantic else []
            case.validate_response(response, excluded_checks=excluded, headers=AUTH)

        def after_call(self, response: Any, case: Any) -> None:
            super().after_call(response, case)
            if response.status_code < 300:
                LINKED[case.operation.label] = LINKED.get(case.operation.label, 0) + 1

    Scenarios.run(
        settings=settings(
            max_examples=25,
            stateful_step_count=6,
            derandomize=True,  # the same scenarios every run: a launch is always among them
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],  # the server's state is not replayable
        )
    )
    print(f"stateful scenarios answered 2xx: {LINKED}")
    assert LINKED.get("POST /searches", 0) > 0
    assert sum(count for label, count in LINKED.items() if "{" in label) > 0  # ids from links


@schema.exclude(method="POST", path="/searches").parametrize()
@FUZZ
def test_api_conforms(case: Any) -> None:
    excluded = [positive_data_acceptance] if case.operation.label in SEMANTIC_OPERATIONS else []
    case.call_and_validate(headers=AUTH, excluded_checks=excluded)


@schema.include(method="POST", path="/searches").parametrize()
@settings(FUZZ, max_examples=LAUNCH_EXAMPLES)
def test_launching_searches_conforms(case: Any) -> None:
    """After the other operations: every accepted launch makes listing searches slower."""
    response = with_server_rules(case).call(headers=AUTH)
    if case.meta is not None and case.meta.generation.mode.is_positive:
        POSITIVE_LAUNCHES["sent"] += 1
        POSITIVE_LAUNCHES["accepted"] += response.status_code == 201
    case.validate_response(response, headers=AUTH)


def test_schemathesis_sent_enough_requests() -> None:
    total = sum(REQUESTS.values())
    if total == 0:
        pytest.skip("run together with test_api_conforms")
    accepted = LAUNCHES["accepted"] / max(1, LAUNCHES["sent"])
    print(f"schemathesis sent {total} requests: {REQUESTS}")
    print(f"POST /searches: {LAUNCHES['accepted']} of {LAUNCHES['sent']} accepted ({accepted:.0%})")
    positive = POSITIVE_LAUNCHES
    print(f"POST /searches, positive mode: {positive['accepted']} of {positive['sent']} accepted")
    assert total >= MIN_REQUESTS
    assert accepted >= MIN_LAUNCHES_ACCEPTED
    assert positive["accepted"] == positive["sent"]  # what positive_data_acceptance checked
