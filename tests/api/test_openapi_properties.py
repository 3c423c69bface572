"""Schemathesis: cases generated from the service's own ``/openapi.json``, against a live one.

On both stacks, whatever a case sends, the answer is never a 500, its status is one the schema
declares, and its content type is the declared one; and a request the schema calls valid is
not refused as malformed (positive data acceptance: no 400 or 422 for it), except where the
schema cannot say what is valid (SEMANTIC). The run is bounded (a few cases per operation) so
that it fits the test suite; ``REMOTEFIT_SCHEMATHESIS_EXAMPLES`` raises it for a longer hunt.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    status_code_conformance,
)

from tests.services import Service

EXAMPLES = int(os.environ.get("REMOTEFIT_SCHEMATHESIS_EXAMPLES", "15"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]
# Operations whose valid requests the schema cannot describe, so that a request it generates as
# valid may rightly be refused; each description says what is checked beyond the schema.
SEMANTIC = {
    # The model JSON must build in Keras (its layers, their configs, how they connect), and
    # the arrays named or given inline must fit it.
    "POST /v1/jobs": "a model Keras can build, and arrays that fit it",
    "POST /v1/models/inspect": "a model Keras can build",
    # The file must be one of arrays in the format its name's extension says.
    "POST /v1/datasets": "a readable .npz/.npy/.h5/.csv file",
    # x must have the trained model's input shape (or name arrays of a dataset that do).
    "POST /v1/jobs/{job_id}/predict": "x of the trained model's input shape",
    # A sweep's base is a whole job (as POST /v1/jobs), and its targets must resolve in it.
    "POST /v1/sweeps": "a base job Keras can build, and targets that resolve in it",
}


def _operations(service: Service) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def _hunt(service: Service, operation: Any, checks: list[Any]) -> None:
    # A stream of every job's events never ends: it is read for a second, then cut (a 4xx
    # comes at once). The other streams end with their job, which here is never one that runs.
    timeout = 1 if operation.label == "GET /v1/events" else 30

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Any) -> None:
        # The service is open (no users): a drawn token would only ever be refused (401)
        # before the route runs, and every case would test the authentication alone.
        (case.headers or {}).pop("Authorization", None)
        case.call_and_validate(base_url=service.url, checks=checks, timeout=timeout)

    run()


def test_no_generated_request_breaks_the_service(service: Service) -> None:
    failures: dict[str, str] = {}
    labels = set()
    for operation in _operations(service):
        labels.add(operation.label)
        checks = CHECKS if operation.label in SEMANTIC else [*CHECKS, positive_data_acceptance]
        try:
            _hunt(service, operation, checks)
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # every operation is tried; all failures are reported
            failures[operation.label] = str(error)[:2000]
    assert set(SEMANTIC) <= labels, set(SEMANTIC) - labels
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    with service.client() as client:
        assert client.get("/readyz").status_code == 200
