"""Live index updates: API writes, writes by another process, concurrent readers."""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rag.documents import document_from_text
from rag.index import Index, check_consistency
from rag.settings import Settings
from tests.api.test_contract import check_answer_json
from tests.support import build_seed_index, synthetic_article

pytestmark = pytest.mark.integration


def passage_sources(client: TestClient, question: str, **extra: Any) -> set[str]:
    """Sources of the passages /ask retrieves for `question`."""
    response = client.post("/ask", json={"question": question, **extra})
    assert response.status_code == 200, response.text
    return {p["source"] for p in response.json()["passages"]}


def wait_for(condition: Any, timeout: float = 10.0) -> float:
    """Seconds until `condition()` held; fails after `timeout`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.1)
    return time.monotonic() - started


def self_consistent(data: dict[str, Any]) -> str | None:
    """Answer JSON invariants checkable without another request (articles may be deleted)."""
    if (data["answer"] is None) != (not data["answerable"]):
        return "answer is null exactly when answerable is false"
    if data["answer"] is not None and not any(data["answer"] in c["quote"] for c in
                                              data["citations"]):
        return "answer not in any quote"
    for c in data["citations"]:
        for p in data["passages"]:
            inside = p["source"] == c["source"] and p["start"] <= c["start"] <= c["end"] <= p["end"]
            if inside and p["text"][c["start"] - p["start"] : c["end"] - p["start"]] != c["quote"]:
                return f"quote {c['quote']!r} is not its passage's text"
    return None


def test_added_document_is_answerable_at_once_and_gone_after_delete(
    client: TestClient, auth: dict[str, str]
) -> None:
    tag = "ferry" + secrets.token_hex(3)
    response = client.post(
        "/documents", json={"text": synthetic_article(tag), "source": f"{tag}.txt"}, headers=auth
    )
    assert response.status_code == 201, response.text
    question = f"How many passengers did the harbour ferry {tag} carry on its first day?"
    data = client.post("/ask", json={"question": question}).json()
    check_answer_json(client, data)
    assert f"{tag}.txt" in {p["source"] for p in data["passages"]}
    if data["answerable"]:
        assert data["citations"][0]["source"] == f"{tag}.txt"
    assert client.delete(f"/documents/{tag}.txt", headers=auth).status_code == 204
    data = client.post("/ask", json={"question": question}).json()
    assert f"{tag}.txt" not in {p["source"] for p in data["passages"]}
    assert all(c["source"] != f"{tag}.txt" for c in data["citations"])


def test_write_by_another_process_is_picked_up(
    client: TestClient, app: Any, settings: Settings
) -> None:
    """A second Index handle on the same folder stands in for `rag add` from the CLI."""
    qa = app.state.service.qa
    # Same embedder object (saves loading it twice); own store connection and own file lock.
    other = Index(settings.index_dir, qa.index.embedder, qa.index.chunker,
                  factory=settings.faiss_factory, notify=lambda _: None).open()
    tag = "cli" + secrets.token_hex(3)
    source = f"{tag}.txt"
    try:
        before = client.get("/readyz").json()["generation"]
        other.add_documents([document_from_text(synthetic_article(tag), source)],
                            lock_timeout=30)
        waited = wait_for(lambda: client.get("/readyz").json()["generation"] > before)
        assert waited < 5.0
        assert source in passage_sources(client, f"harbour ferry {tag}", mode="bm25")
        other.remove([source], lock_timeout=30)
        wait_for(lambda: source not in passage_sources(client, f"ferry {tag}", mode="bm25"))
        assert check_consistency(other)["documents"] == client.get("/readyz").json()["documents"]
    finally:
        other.close()


def test_concurrent_asks_during_writes_never_fail(
    client: TestClient, auth: dict[str, str]
) -> None:
    errors: list[str] = []
    stop = threading.Event()
    asked = [0]
    questions = [
        "How much will the Hong Kong government earmark for the innovation center?",
        "Where will the facility be built?",
        "What is the capital of France?",
        "harbour ferry passengers",
    ]

    def reader(offset: int) -> None:
        i = offset
        while not stop.is_set():
            try:
                response = client.post("/ask", json={"question": questions[i % len(questions)]})
            except Exception as exc:  # TestClient re-raises server errors: count them
                errors.append(f"ask raised {exc!r}")
                continue
            i += 1
            if response.status_code != 200:
                errors.append(f"ask {response.status_code}: {response.text}")
                continue
            problem = self_consistent(response.json())
            if problem:
                errors.append(problem)
            asked[0] += 1

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    sources = []
    try:
        for n in range(6):
            tag = f"conc{n}" + secrets.token_hex(3)
            response = client.post(
                "/documents", json={"text": synthetic_article(tag), "source": f"{tag}.txt"},
                headers=auth,
            )
            if response.status_code != 201:
                errors.append(f"add {response.status_code}: {response.text}")
            sources.append(f"{tag}.txt")
            if n % 2:
                removed = client.delete(f"/documents/{sources.pop(0)}", headers=auth)
                if removed.status_code != 204:
                    errors.append(f"delete {removed.status_code}: {removed.text}")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not errors, errors[:5]
    assert asked[0] >= 4
    listed = {d["source"] for d in client.get("/documents").json()["documents"]}
    assert set(sources) <= listed
    for source in sources:
        assert client.delete(f"/documents/{source}", headers=auth).status_code == 204


def test_server_without_an_index_is_live_but_not_ready_until_one_appears(
    tmp_path: Path, settings: Settings
) -> None:
    from api.app import create_app

    folder = tmp_path / "later"
    app = create_app(settings.model_copy(update={"index_dir": folder, "reload_interval_s": 0.2}))
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        not_ready = client.get("/readyz")
        assert not_ready.status_code == 503 and "rag index build" in not_ready.json()["detail"]
        assert client.post("/ask", json={"question": "anything?"}).status_code == 503
        assert client.get("/documents").status_code == 503
        assert "rag_ready 0.0" in client.get("/metrics").text
        build_seed_index(folder)
        wait_for(lambda: client.get("/readyz").status_code == 200, timeout=60)
        assert client.get("/documents").json()["total"] >= 2


def test_write_while_another_process_holds_the_lock_is_503_and_reads_go_on(
    client: TestClient, auth: dict[str, str], settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import api.routes
    from rag.index import WriterLock

    monkeypatch.setattr(api.routes, "LOCK_TIMEOUT_S", 0.3)
    lock = WriterLock(settings.index_dir)
    lock.acquire()
    try:
        response = client.post(
            "/documents", json={"text": synthetic_article("locked" + secrets.token_hex(3))},
            headers=auth,
        )
        assert response.status_code == 503, response.text
        assert "locked" in response.json()["detail"] and response.headers["retry-after"]
        asked = client.post("/ask", json={"question": "Where will the facility be built?"})
        assert asked.status_code == 200
    finally:
        lock.release()
