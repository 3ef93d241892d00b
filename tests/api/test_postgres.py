"""The HTTP API contract again, on PostgreSQL + pgvector: the same tests, another backend.

This module's `settings`, `app` and `client` fixtures replace the session ones (which use
the embedded index folder), so every test imported below runs against a database.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from rag.documents import document_from_text
from rag.pipeline import make_index
from rag.settings import Settings
from tests.api.conftest import TOKEN
from tests.api.test_contract import (  # noqa: F401 - collected here again, on PostgreSQL
    test_add_document_errors,
    test_add_json_document_derives_a_source_then_reports_unchanged_then_removes,
    test_add_without_title_uses_a_content_hash_source,
    test_ask_modes,
    test_ask_off_topic_abstains,
    test_ask_on_topic_returns_answer_json,
    test_ask_rejects_bad_input_with_422,
    test_document_size_limit_is_413,
    test_get_document_errors,
    test_get_document_returns_stored_text,
    test_healthz_and_readyz,
    test_list_documents,
    test_metrics_exposes_requests_latency_index_size_and_outcomes,
    test_upload_a_file,
    test_writes_are_403_when_no_token_is_configured,
    test_writes_need_a_bearer_token,
)
from tests.api.test_live_updates import (  # noqa: F401
    passage_sources,
    test_added_document_is_answerable_at_once_and_gone_after_delete,
    test_concurrent_asks_during_writes_never_fail,
)
from tests.support import synthetic_article

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings(pg_server: Any, pg_seed_template: str) -> Settings:
    """Settings of an app on a private copy of the seed database."""
    url = pg_server.create_database(f"rag_api_{secrets.token_hex(4)}", template=pg_seed_template)
    return Settings(database_url=url, api_token=TOKEN, reload_interval_s=0.3)


@pytest.fixture(scope="module")
def app(settings: Settings) -> FastAPI:
    """The real app over PostgreSQL."""
    from api.app import create_app

    return create_app(settings)


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    """A TestClient with the lifespan running."""
    with TestClient(app) as test_client:
        yield test_client


def test_readyz_counts_the_database(client: TestClient) -> None:
    body = client.get("/readyz").json()
    assert body["status"] == "ready" and body["documents"] == 2 and body["chunks"] > 10


def test_a_write_by_another_replica_is_served_by_the_next_request(
    client: TestClient, settings: Settings, app: Any
) -> None:
    """Another handle on the database stands in for a second API replica or `rag add`."""
    qa = app.state.service.qa
    other = make_index(settings, notify=lambda _m: None)
    other.embedder, other.chunker = qa.index.embedder, qa.index.chunker  # one model load
    other.open()
    tag = "replica" + secrets.token_hex(3)
    try:
        before = client.get("/documents").json()["generation"]
        other.add_documents([document_from_text(synthetic_article(tag), f"{tag}.txt")],
                            lock_timeout=30)
        # No waiting for a reload: every request reads the database.
        assert f"{tag}.txt" in passage_sources(client, f"harbour ferry {tag}", mode="bm25")
        assert client.get("/documents").json()["generation"] == before + 1
        other.remove([f"{tag}.txt"], lock_timeout=30)
        assert f"{tag}.txt" not in passage_sources(client, f"ferry {tag}", mode="bm25")
    finally:
        other.close()
