"""Schemathesis: cases generated from the service's own ``/openapi.json``, against a live one.

On both stacks, whatever a case sends, the answer is never a 500, its status is one the schema
declares, and its content type is the declared one. The run is bounded (a few cases per
operation) so that it fits the test suite; ``REMOTEFIT_SCHEMATHESIS_EXAMPLES`` raises it for a
longer hunt.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from tests.services import Service

EXAMPLES = int(os.environ.get("REMOTEFIT_SCHEMATHESIS_EXAMPLES", "15"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]


def _operations(service: Service) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def test_no_generated_request_breaks_the_service(service: Service) -> None:
    failures: dict[str, str] = {}
    for operation in _operations(service):

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: Any) -> None:
            case.call_and_validate(base_url=service.url, checks=CHECKS, timeout=30)

        try:
            run()
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # every operation is tried; all failures are reported
            failures[operation.label] = str(error)[:2000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    with service.client() as client:
        assert client.get("/readyz").status_code == 200
