"""`rag migrate --to URL`: copy an embedded index folder into PostgreSQL without re-embedding.

Stored vectors, sentence vectors, chunk ids and offsets are copied as they are; keyword
terms are computed from the chunk texts. Everything happens in one transaction, and the
counts and corpus hash are compared before it commits, so a failed or partial copy leaves
the database as it was.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rag.backends.pgschema import POSTINGS_SQL, SCHEMA_LOCK, WRITE_LOCK, schema
from rag.backends.postgres import chunk_terms, redact
from rag.errors import IndexNotFound, RagError
from rag.index import STORE_FILE
from rag.store import Store, decode_vectors, dequantize_int8

BATCH = 2000


def migrate(folder: Path, url: str, progress: Callable[[str], None] = lambda _m: None
            ) -> dict[str, Any]:
    """Copy the index at `folder` into the (empty) database at `url`; returns verified counts."""
    import psycopg
    from pgvector.psycopg import register_vector

    if not (folder / STORE_FILE).exists():
        raise IndexNotFound(f"no index at {folder}: give --index the folder to migrate")
    store = Store(folder / STORE_FILE)
    try:
        config_json = store.get_meta("config")
        if config_json is None:
            raise RagError(f"the index at {folder} is empty: nothing to migrate")
        dim = int(json.loads(config_json)["dim"])
        try:
            conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise IndexNotFound(
                f"cannot connect to {redact(url)} ({str(exc).strip().splitlines()[0]}); check "
                "--to and that the server is running"
            ) from None
        with conn:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", [SCHEMA_LOCK])
                for statement in schema(dim):
                    conn.execute(statement)
            register_vector(conn)
            with conn.transaction():
                cur = conn.cursor()
                cur.execute("SELECT pg_advisory_xact_lock(%s)", [WRITE_LOCK])
                held = cur.execute("SELECT count(*) FROM rag_documents").fetchone()
                if held and held[0]:
                    raise RagError(
                        f"{redact(url)} already holds an index of {held[0]} articles; migrate "
                        "into an empty database (or drop the rag_* tables first)"
                    )
                counts = _copy(store, cur, config_json, dim, progress)
                _verify(store, cur, counts)
    finally:
        store.close()
    return {"location": redact(url), **counts}


def _copy(store: Store, cur: Any, config_json: str, dim: int,
          progress: Callable[[str], None]) -> dict[str, int]:
    src = store.conn
    cur.execute("INSERT INTO rag_meta VALUES ('config', %s) ON CONFLICT (key) DO UPDATE "
                "SET value = excluded.value", [config_json])
    docs = src.execute(
        """SELECT source, doc_id, content_hash, title, published, outlet, url, body_start, text,
                  added_at FROM documents"""
    ).fetchall()
    cur.executemany("INSERT INTO rag_documents VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    docs)
    progress(f"copied {len(docs)} articles")
    n_vectors = 0
    for rows in _batches(src.execute("SELECT embed_hash, vector FROM vectors")):
        # The folder keeps float16 (store schema 2); pgvector columns are float32.
        vecs = decode_vectors(b"".join(b for _, b in rows), dim)
        cur.executemany("INSERT INTO rag_vectors VALUES (%s, %s)",
                        [(h, v) for (h, _), v in zip(rows, vecs, strict=True)])
        n_vectors += len(rows)
    progress(f"copied {n_vectors} vectors")
    n_sentences = 0
    for rows in _batches(src.execute(
            "SELECT embed_hash, spans, scales, codes FROM sentence_vectors")):
        flat = []
        for h, spans_blob, scales_blob, codes_blob in rows:
            spans = np.frombuffer(spans_blob, dtype=np.int32).reshape(-1, 2)
            scales = np.frombuffer(scales_blob, dtype=np.float32)
            codes = np.frombuffer(codes_blob, dtype=np.int8).reshape(len(scales), dim)
            for (a, b), v in zip(spans, dequantize_int8(codes, scales), strict=True):
                flat.append((h, int(a), int(b), v.tobytes()))
        cur.executemany("INSERT INTO rag_sentence_vectors VALUES (%s, %s, %s, %s)", flat)
        n_sentences += len(flat)
    n_chunks = 0
    for rows in _batches(src.execute(
            """SELECT id, chunk_id, source, ordinal, start, "end", n_tokens, text, embed_hash
               FROM chunks ORDER BY id""")):
        terms = chunk_terms([r[7] for r in rows])
        cur.executemany(
            """INSERT INTO rag_chunks (id, chunk_id, source, ordinal, start, "end", n_tokens,
                                       text, embed_hash, terms, n_terms)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, CAST(%s AS tsvector), %s)""",
            [(*r, t, n) for r, (t, n) in zip(rows, terms, strict=True)],
        )
        n_chunks += len(rows)
    cur.execute(POSTINGS_SQL, [[d[0] for d in docs]])
    progress(f"copied {n_chunks} chunks")
    # Chunk ids were copied as they are: new chunks must continue after the largest one.
    cur.execute("""SELECT setval(pg_get_serial_sequence('rag_chunks', 'id'),
                                 greatest((SELECT max(id) FROM rag_chunks), 1))""")
    cur.execute("UPDATE rag_meta SET value = (value::bigint + 1)::text WHERE key = 'generation'")
    return {"documents": len(docs), "chunks": n_chunks, "vectors": n_vectors,
            "sentence_vectors": n_sentences}


def _batches(cursor: Any) -> Any:
    while rows := cursor.fetchmany(BATCH):
        yield rows


def _verify(store: Store, cur: Any, counts: dict[str, int]) -> None:
    """Compare counts and the corpus hash with the source, before the transaction commits."""
    src = store.conn
    expected = {
        "documents": src.execute("SELECT count(*) FROM documents").fetchone()[0],
        "chunks": src.execute("SELECT count(*) FROM chunks").fetchone()[0],
        "vectors": src.execute("SELECT count(*) FROM vectors").fetchone()[0],
        # One row per chunk text holds all its sentences: one float32 scale each.
        "sentence_vectors": src.execute(
            "SELECT coalesce(sum(length(scales) / 4), 0) FROM sentence_vectors").fetchone()[0],
    }
    row = cur.execute(
        """SELECT (SELECT count(*) FROM rag_documents), (SELECT count(*) FROM rag_chunks),
                  (SELECT count(*) FROM rag_vectors), (SELECT count(*) FROM rag_sentence_vectors)"""
    ).fetchone()
    stored = dict(zip(expected, map(int, row), strict=True))
    digest = hashlib.sha256()
    for source, content_hash in cur.execute(
            'SELECT source, content_hash FROM rag_documents ORDER BY source COLLATE "C"'):
        digest.update(f"{source}\0{content_hash}\n".encode())
    if stored != expected or counts != expected or digest.hexdigest() != store.corpus_hash():
        raise RagError(
            f"migration check failed (source {expected}, copied {stored}); nothing was "
            "committed: the database is unchanged"
        )
