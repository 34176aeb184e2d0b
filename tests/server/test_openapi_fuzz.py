"""Schema-driven fuzzing (schemathesis) of every operation in /openapi.json: no 5xx, no hang,
responses as documented.

Runs schemathesis' Python API directly (its pytest plugin does not support this pytest yet):
each operation gets ``MAX_EXAMPLES`` generated requests, each checked by schemathesis' default
checks (server errors, status codes, content types, response schemas, ...) except
``positive_data_acceptance``: an OpenAPI schema cannot say "the bytes of an image", so random
bytes are schema-valid, and refusing them (415) is exactly what the server must do.
"""

from __future__ import annotations

from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402

from capsight.server.app import create_app  # noqa: E402
from capsight.server.settings import ServerSettings  # noqa: E402

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 12


def _operations() -> list[str]:
    spec = create_app(ServerSettings(job_dir=Path("/nonexistent"), ui=False)).openapi()
    return sorted(f"{m.upper()} {p}" for p, ops in spec["paths"].items() for m in ops)


@pytest.mark.parametrize("label", _operations())
def test_operation_conforms_to_its_schema(client, label):
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    method, path = label.split(" ", 1)
    operation = schema[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    def run(case):
        case.call_and_validate(excluded_checks=[positive_data_acceptance])

    run()


def test_the_fuzzer_sees_every_endpoint():
    ops = _operations()
    for expected in ("POST /v1/captions", "POST /v1/videos", "GET /v1/jobs/{job_id}",
                     "GET /v1/jobs/{job_id}/events", "DELETE /v1/jobs/{job_id}",
                     "GET /v1/models", "POST /get_captions", "POST /get_image_caption",
                     "POST /get_video_captions", "GET /healthz", "GET /readyz"):  # fmt: skip
        assert expected in ops
