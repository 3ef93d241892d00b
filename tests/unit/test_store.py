"""The compact store: float16 chunk vectors, int8 sentence vectors, schema-1 migration."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from rag.documents import read_document
from rag.errors import IndexCorrupt
from rag.retrieval import Retriever
from rag.store import (
    PAGE_SIZE,
    SCHEMA_VERSION,
    SentenceCodes,
    Store,
    decode_vectors,
    dequantize_int8,
    encode_vectors,
    quantize_int8,
)
from tests.fakes import FakeEmbedder, fake_index

SEEDS = Path(__file__).resolve().parents[2] / "seeds"


def _unit(n: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_int8_round_trip_keeps_cosines() -> None:
    v = _unit(200)
    d = dequantize_int8(*quantize_int8(v))
    cos = (v * d).sum(axis=1) / np.linalg.norm(d, axis=1)
    assert cos.min() > 0.9999
    # Scores against a query move by far less than the reader's score steps.
    assert np.abs((v - d) @ _unit(50, seed=1).T).max() < 0.005


def test_int8_of_zero_and_empty_vectors() -> None:
    codes, scales = quantize_int8(np.zeros((2, 8), dtype=np.float32))
    assert not codes.any() and (scales > 0).all()
    assert SentenceCodes.quantize(np.zeros((0, 8), dtype=np.float32)).decode().shape == (0, 8)


def test_float16_round_trip() -> None:
    v = _unit(20)
    back = decode_vectors(encode_vectors(v), 384)
    assert back.dtype == np.float32 and back.shape == v.shape
    assert np.abs(back - v).max() < 1e-3


def _v1_store(path: Path, dim: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A schema-1 store as the previous release wrote it (float32 rows, one per sentence)."""
    chunk = _unit(1, dim)[0]
    sentences = _unit(2, dim, seed=3)
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE documents (source TEXT PRIMARY KEY, doc_id TEXT NOT NULL,
            content_hash TEXT NOT NULL UNIQUE, title TEXT, published TEXT, outlet TEXT,
            url TEXT, body_start INTEGER NOT NULL, text TEXT NOT NULL,
            added_at TEXT NOT NULL DEFAULT '2026-01-01T00:00:00Z');
        CREATE TABLE chunks (id INTEGER PRIMARY KEY AUTOINCREMENT, chunk_id TEXT NOT NULL,
            source TEXT NOT NULL REFERENCES documents(source) ON DELETE CASCADE,
            ordinal INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
            n_tokens INTEGER NOT NULL, text TEXT NOT NULL, embed_hash TEXT NOT NULL);
        CREATE TABLE vectors (embed_hash TEXT PRIMARY KEY, vector BLOB NOT NULL);
        CREATE TABLE sentence_vectors (embed_hash TEXT NOT NULL, rel_start INTEGER NOT NULL,
            rel_end INTEGER NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (embed_hash, rel_start));
        INSERT INTO meta VALUES ('schema_version', '1'), ('generation', '3');
        INSERT INTO documents (source, doc_id, content_hash, body_start, text)
            VALUES ('a.txt', 'd', 'h', 0, 'xx One. Two.');
        INSERT INTO chunks (chunk_id, source, ordinal, start, "end", n_tokens, text, embed_hash)
            VALUES ('c', 'a.txt', 0, 3, 12, 3, 'One. Two.', 'e');
        """
    )
    conn.execute("INSERT INTO vectors VALUES ('e', ?)", (chunk.tobytes(),))
    conn.execute("INSERT INTO sentence_vectors VALUES ('e', 5, 9, ?)", (sentences[1].tobytes(),))
    conn.execute("INSERT INTO sentence_vectors VALUES ('e', 0, 4, ?)", (sentences[0].tobytes(),))
    conn.commit()
    conn.close()
    return chunk, sentences


def test_a_schema_1_store_is_converted_in_place(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    chunk, sentences = _v1_store(path)
    store = Store(path)
    try:
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
        assert store.generation == 3 and store.counts() == (1, 1)
        (ids, vectors), = list(store.iter_vectors(8))
        assert ids.tolist() == [1] and np.allclose(vectors[0], chunk, atol=1e-3)
        got = store.sentence_vectors_for([1], 8)[1]
        assert [(s, e) for s, e, _ in got] == [(3, 7), (8, 12)]  # document offsets, in order
        for (_, _, v), want in zip(got, sentences, strict=True):
            assert float(v @ want) > 0.99  # 8 dimensions: coarser than at 384
        tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_schema")}
        assert not any(t.endswith("_v1") for t in tables)
    finally:
        store.close()
    Store(path).close()  # opening again is a no-op


def test_a_newer_schema_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(IndexCorrupt, match="rag index build"):
        Store(path)


def test_new_store_uses_large_pages(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite")
    try:
        assert store.conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE
    finally:
        store.close()


def test_rebuilt_dense_index_equals_the_incrementally_built_one(tmp_path: Path) -> None:
    """FAISS is always filled from the stored float16 vectors, so a rebuild changes nothing."""
    docs = [read_document(p) for p in sorted(SEEDS.iterdir()) if p.is_file()]
    index = fake_index(tmp_path / "index")
    index.add_documents(docs[:1])
    index.add_documents(docs[1:])
    queries = ["government budget", "innovation centre", "new industrialization"]
    qv = FakeEmbedder()._vectors(queries)
    before = [index.snapshot.dense.search(v, 5) for v in qv]
    rebuilt = index._rebuild_derived(persist=False, quiet=True)
    assert [rebuilt.dense.search(v, 5) for v in qv] == before
    hits = Retriever(index).search("government budget", 3)
    assert hits and index._require_store().sentence_vectors_for([hits[0].id], index.embedder.dim)
    index.close()
