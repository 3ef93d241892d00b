"""Property-based fuzzing of the OpenAPI schema (schemathesis) against the real server."""

from __future__ import annotations

import collections
import json
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from rag.index import check_consistency
from tests.api.conftest import ARTIFACTS, TOKEN
from tests.support import LiveServer

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 25  # per operation and generation mode: ~1 minute on 2 cores
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def fuzz_operation(
    operation: Any, mode: Any, url: str, statuses: dict[str, collections.Counter[int]],
    failures: list[str],
) -> None:
    """Send MAX_EXAMPLES generated requests to one operation; record statuses and failures."""

    @settings(
        max_examples=MAX_EXAMPLES, deadline=None, database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def exercise(case: Any) -> None:
        # Writes carry the token so fuzzing reaches the parsing and indexing code.
        response = case.call(
            base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
        )
        statuses[operation.label][response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except BaseExceptionGroup as group:  # collect every operation's findings
            for failure in group.exceptions:
                title = getattr(failure, "title", type(failure).__name__)
                message = " ".join(str(getattr(failure, "message", "")).split())
                curl = case.as_curl_command(headers={})
                failures.append(
                    f"{operation.label} [{mode.value}] {title}: {message[:300]}\n"
                    f"    e.g. {curl[:400]}"
                )
            raise

    try:
        exercise()
    except BaseExceptionGroup:
        pass  # recorded in `failures`; hypothesis re-raises the shrunk example
    except Unsatisfiable:
        pass  # no invalid input exists for an operation without parameters


def test_openapi_fuzzing_finds_no_server_errors(live_server: LiveServer) -> None:
    schema = schemathesis.openapi.from_url(f"{live_server.url}/openapi.json")
    statuses: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    failures: list[str] = []
    for result in schema.get_all_operations():
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            fuzz_operation(result.ok(), mode, live_server.url, statuses, failures)
    summary = {
        label: dict(sorted(counter.items())) for label, counter in sorted(statuses.items())
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "fuzz-summary.json").write_text(json.dumps(summary, indent=2))
    total = sum(sum(c.values()) for c in statuses.values())
    print(f"\nfuzzing: {total} requests over {len(statuses)} operations: {summary}")
    assert not failures, "\n\n".join(dict.fromkeys(failures))
    assert all(status < 500 for counter in statuses.values() for status in counter)
    assert len(statuses) >= 7
    # The server is still up and its index is whole.
    assert httpx.get(f"{live_server.url}/readyz").status_code == 200


def test_index_is_consistent_after_fuzzing(live_server: LiveServer) -> None:
    from rag.pipeline import make_index
    from rag.settings import Settings

    index = make_index(Settings(index_dir=live_server.index_dir)).open()
    try:
        counts = check_consistency(index)
    finally:
        index.close()
    assert counts["documents"] == httpx.get(f"{live_server.url}/readyz").json()["documents"]
