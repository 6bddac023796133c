"""schemathesis over the app's OpenAPI schema: positive and negative requests to every operation.

Checks: schemathesis's defaults (server errors, status codes, content types,
response schemas and headers, negative data rejection, ignored authentication,
...) except `positive_data_acceptance` on the operations whose inputs are
checked beyond what JSON Schema can say: a spec's space names and ranges
against the training config (`POST /searches`, `POST /search-specs`,
`PATCH /searches/{id}`), an upload's bytes (`POST /datasets`), an ensemble's
size against the models the search stored (`POST /searches/{id}/ensembles`)
and a sign-in token (`POST /session`: a schema-valid random token is rightly
a 401); there a schema-valid but meaningless document is rightly refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from api_helpers import AUTH, TOKEN
from factories import postgres_schema_url
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.main import create_app
from hpsearch import executors
from hpsearch.executors import RQExecutor
from hpsearch.settings import Settings

pytestmark = pytest.mark.service

SEMANTIC_OPERATIONS = {
    "POST /searches",
    "POST /search-specs",
    "PATCH /searches/{search_id}",
    "POST /datasets",
    "POST /searches/{search_id}/ensembles",
    "POST /session",
}
MIN_REQUESTS = 1000
REQUESTS: dict[str, int] = {}


class CountRequests:
    """ASGI middleware counting requests per path template-free path."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            REQUESTS[scope["method"]] = REQUESTS.get(scope["method"], 0) + 1
        await self.app(scope, receive, send)


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
            launch_rate_per_minute=1e6, max_upload_bytes=64 * 1024,
        )  # fmt: skip
        app = create_app(settings_, executor=executor)
        app.add_middleware(CountRequests)
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        schema.config.generation.update(
            modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=90
        )
        yield schema
        app.state.storage.close()
        executor.queue.delete(delete_jobs=True)
        executor.connection.close()


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=90,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms(case: Any) -> None:
    excluded = [positive_data_acceptance] if case.operation.label in SEMANTIC_OPERATIONS else []
    case.call_and_validate(headers=AUTH, excluded_checks=excluded)


def test_schemathesis_sent_enough_requests() -> None:
    total = sum(REQUESTS.values())
    if total == 0:
        pytest.skip("run together with test_api_conforms")
    print(f"schemathesis sent {total} requests: {REQUESTS}")
    assert total >= MIN_REQUESTS
