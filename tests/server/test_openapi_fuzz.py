"""Schema-driven fuzzing (schemathesis) of every operation in /openapi.json: no 5xx, no hang,
responses as documented.

Runs schemathesis' Python API directly (its pytest plugin does not support this pytest yet):
every operation gets ``MAX_EXAMPLES`` generated requests, each checked by schemathesis' default
checks (server errors, status codes, content types, response schemas, ...) except
``positive_data_acceptance``: an OpenAPI schema cannot say "the bytes of an image", so random
bytes are schema-valid, and refusing them (415) is exactly what the server must do.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 12


def test_every_operation_conforms_to_its_schema(client):
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 13
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def run(case):
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
