"""The durable store: documents, chunks and vectors in one SQLite file (the source of truth).

FAISS and BM25 files are derived from it and can always be rebuilt from it without
re-embedding. Every change is one SQLite transaction that also bumps `generation`, so a
crash leaves either the old or the new state, never a mix.

Vectors are stored compactly (schema 2): chunk vectors as float16 (FAISS is always built
from these, so a rebuilt index equals a delta-updated one), sentence vectors as int8 with
one float32 scale per vector, all sentences of a chunk text in one row. A schema-1 store
is converted in place when opened.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.chunking import Chunk
from rag.documents import Document
from rag.errors import IndexCorrupt

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    source TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL,
    content_hash TEXT NOT NULL UNIQUE,
    title TEXT, published TEXT, outlet TEXT, url TEXT,
    body_start INTEGER NOT NULL,
    text TEXT NOT NULL,
    added_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,   -- FAISS id; never reused
    chunk_id TEXT NOT NULL,
    source TEXT NOT NULL REFERENCES documents(source) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    n_tokens INTEGER NOT NULL,
    text TEXT NOT NULL,
    embed_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_source ON chunks(source);
CREATE INDEX IF NOT EXISTS chunks_embed ON chunks(embed_hash);
-- float16 chunk vectors: what FAISS is (re)built from without re-embedding.
CREATE TABLE IF NOT EXISTS vectors (embed_hash TEXT PRIMARY KEY, vector BLOB NOT NULL);
-- Sentence vectors pooled from the chunk's own forward pass, one row per chunk text:
-- spans int32 (start, end) pairs relative to the chunk, codes int8 (n, dim), scales
-- float32 (n,) with vector ~= codes * scale.
CREATE TABLE IF NOT EXISTS sentence_vectors (
    embed_hash TEXT PRIMARY KEY, spans BLOB NOT NULL, scales BLOB NOT NULL,
    codes BLOB NOT NULL
);
"""
# 16 KiB pages: a row of float16 and int8 vectors is 1-3 KB, and on 4 KiB pages only one
# or two fit a page, wasting up to a third of the file (dbstat on a `rag bench` store).
PAGE_SIZE = 16384


def encode_vectors(vectors: np.ndarray) -> bytes:
    """Chunk vectors as stored: float16 (cosine to float32 > 0.99999, half the bytes)."""
    return np.ascontiguousarray(vectors, dtype=np.float16).tobytes()


def decode_vectors(blob: bytes, dim: int) -> np.ndarray:
    """float32 vectors from a float16 blob."""
    return np.frombuffer(blob, dtype=np.float16).reshape(-1, dim).astype(np.float32)


def quantize_int8(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-vector int8 codes and float32 scales: vector ~= codes * scale."""
    v = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    scales = np.abs(v).max(axis=1, initial=0.0) / 127.0
    scales = np.where(scales > 0, scales, 1.0).astype(np.float32)
    codes = np.clip(np.rint(v / scales[:, None]), -127, 127).astype(np.int8)
    return codes, scales


def dequantize_int8(codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """float32 vectors from int8 codes and per-vector scales."""
    return codes.astype(np.float32) * scales[:, None]


@dataclass(frozen=True)
class SentenceCodes:
    """The sentence vectors of one chunk text as stored: int8 codes and per-vector scales.

    The index quantizes each embedding batch at once, so a build never holds the float32
    sentence vectors of the whole corpus (4x the bytes) until its transaction.
    """

    codes: np.ndarray  # int8, (n, dim)
    scales: np.ndarray  # float32, (n,)

    @classmethod
    def quantize(cls, vectors: np.ndarray) -> SentenceCodes:
        """Quantize float vectors (n, dim)."""
        return cls(*quantize_int8(vectors))

    def __len__(self) -> int:
        return len(self.scales)

    def decode(self) -> np.ndarray:
        """float32 vectors (n, dim)."""
        return dequantize_int8(self.codes, self.scales)


@dataclass(frozen=True)
class StoredChunk:
    """A chunk row joined with its document's metadata."""

    id: int
    chunk_id: str
    source: str
    ordinal: int
    start: int
    end: int
    text: str
    title: str | None
    published: str | None
    body_start: int = 0  # where its document's body begins (text before it is the header)


@dataclass(frozen=True)
class DocumentInfo:
    """An indexed article without its text."""

    source: str
    title: str | None
    published: str | None
    outlet: str | None
    url: str | None
    content_hash: str
    chunks: int
    chars: int
    added_at: str


class Store:
    """SQLite-backed store of documents, chunks and the embedding cache."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            conn = self.conn
            # The page size only takes on a new, empty file (before WAL is switched on).
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            # WAL: readers keep a consistent snapshot while a writer commits.
            conn.execute("PRAGMA journal_mode = WAL")
            # A big write grows the WAL to its size; cut it back after each checkpoint.
            conn.execute(f"PRAGMA journal_size_limit = {8 << 20}")
            fresh = conn.execute(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'meta'"
            ).fetchone()[0] == 0
            if not fresh:
                version = int(self.get_meta("schema_version") or SCHEMA_VERSION)
                if version == 1:
                    _migrate_v1(conn)
            conn.executescript(_SCHEMA)
            conn.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
            )
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")
            conn.commit()
            conn.execute("SELECT count(*) FROM chunks").fetchone()
            version = int(self.get_meta("schema_version") or SCHEMA_VERSION)
        except sqlite3.DatabaseError as exc:
            raise IndexCorrupt(
                f"the store {path} is unreadable ({exc}); move the index folder aside and run "
                "'rag index build'"
            ) from None
        if version != SCHEMA_VERSION:
            raise IndexCorrupt(
                f"the store {path} has schema version {version}, this program reads "
                f"{SCHEMA_VERSION}; run 'rag index build' into a new --index folder"
            )

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (SQLite connections must not be shared across threads)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=30, check_same_thread=False, isolation_level=None
            )
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = FULL")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    def get_meta(self, key: str) -> str | None:
        """A value from the meta table."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    @staticmethod
    def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
        """Set a meta value (inside a transaction)."""
        conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees one committed state."""
        conn = self.conn
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: commit on success, roll back on any error; bumps `generation`."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'"
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------ reads

    @property
    def generation(self) -> int:
        """Number of committed writes so far."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0

    def counts(self) -> tuple[int, int]:
        """(documents, chunks)."""
        docs = self.conn.execute("SELECT count(*) FROM documents").fetchone()[0]
        chunks = self.conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return int(docs), int(chunks)

    def corpus_hash(self) -> str:
        """A hash over every article's content hash, in source order."""
        import hashlib

        digest = hashlib.sha256()
        for source, content_hash in self.conn.execute(
            "SELECT source, content_hash FROM documents ORDER BY source"
        ):
            digest.update(f"{source}\0{content_hash}\n".encode())
        return digest.hexdigest()

    def document_hash(self, source: str) -> str | None:
        """The stored content hash of `source`, or None when it is not indexed."""
        row = self.conn.execute(
            "SELECT content_hash FROM documents WHERE source = ?", (source,)
        ).fetchone()
        return row[0] if row else None

    def source_of_hash(self, content_hash: str) -> str | None:
        """The source id that holds this exact text, if any."""
        row = self.conn.execute(
            "SELECT source FROM documents WHERE content_hash = ?", (content_hash,)
        ).fetchone()
        return row[0] if row else None

    def document_meta(self, source: str) -> tuple[Any, ...] | None:
        """(title, published, url, outlet, body_start) of `source`, or None."""
        row = self.conn.execute(
            "SELECT title, published, url, outlet, body_start FROM documents WHERE source = ?",
            (source,),
        ).fetchone()
        return tuple(row) if row else None

    def list_documents(self) -> list[DocumentInfo]:
        """Every indexed article, newest first, then by source."""
        rows = self.conn.execute(
            """SELECT d.source, d.title, d.published, d.outlet, d.url, d.content_hash,
                      (SELECT count(*) FROM chunks c WHERE c.source = d.source),
                      length(d.text), d.added_at
               FROM documents d ORDER BY d.published IS NULL, d.published DESC, d.source"""
        ).fetchall()
        return [DocumentInfo(*row) for row in rows]

    def get_document(self, source: str) -> Document | None:
        """The stored article, or None."""
        row = self.conn.execute(
            """SELECT source, text, title, published, outlet, url, body_start
               FROM documents WHERE source = ?""",
            (source,),
        ).fetchone()
        if row is None:
            return None
        return Document(
            source=row[0], text=row[1], title=row[2], published=row[3], outlet=row[4],
            url=row[5], body_start=row[6],
        )

    def chunk_ids_of(self, source: str) -> list[int]:
        """Row ids of the chunks of `source`."""
        rows = self.conn.execute("SELECT id FROM chunks WHERE source = ?", (source,))
        return [r[0] for r in rows]

    def chunks_by_ids(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        """Chunk rows with their document metadata, keyed by row id (missing ids omitted)."""
        out: dict[int, StoredChunk] = {}
        for i in range(0, len(ids), 500):
            batch = [int(x) for x in ids[i : i + 500]]
            marks = ",".join("?" * len(batch))
            for row in self.conn.execute(
                f"""SELECT c.id, c.chunk_id, c.source, c.ordinal, c.start, c."end", c.text,
                           d.title, d.published, d.body_start
                    FROM chunks c JOIN documents d ON d.source = c.source
                    WHERE c.id IN ({marks})""",
                batch,
            ):
                out[row[0]] = StoredChunk(*row)
        return out

    def chunk_ids_where(
        self, sources: Sequence[str] | None, date_from: str | None, date_to: str | None
    ) -> list[int]:
        """Row ids of chunks whose article matches the source and published-date filters."""
        sql = "SELECT c.id FROM chunks c JOIN documents d ON d.source = c.source WHERE 1=1"
        args: list[object] = []
        if sources:
            sql += f" AND d.source IN ({','.join('?' * len(sources))})"
            args.extend(sources)
        if date_from:
            sql += " AND d.published >= ?"
            args.append(date_from)
        if date_to:
            sql += " AND d.published <= ?"
            args.append(date_to)
        return [r[0] for r in self.conn.execute(sql, args)]

    def iter_vectors(
        self, dim: int, batch: int = 10_000
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(row ids, vectors) of every chunk, in batches, for rebuilding FAISS without embedding."""
        cursor = self.conn.execute(
            "SELECT c.id, v.vector FROM chunks c JOIN vectors v ON v.embed_hash = c.embed_hash "
            "ORDER BY c.id"
        )
        while rows := cursor.fetchmany(batch):
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            yield ids, decode_vectors(b"".join(r[1] for r in rows), dim)

    def all_chunk_texts(self) -> tuple[np.ndarray, list[str]]:
        """(row ids, texts) of every chunk in id order, for rebuilding BM25."""
        rows = self.conn.execute("SELECT id, text FROM chunks ORDER BY id").fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64), [r[1] for r in rows]

    def chunk_texts(self, ids: Sequence[int]) -> list[str]:
        """Texts of these chunk rows, in the order given (for a new BM25 segment)."""
        found: dict[int, str] = {}
        for i in range(0, len(ids), 500):
            batch = [int(x) for x in ids[i : i + 500]]
            marks = ",".join("?" * len(batch))
            found.update(self.conn.execute(
                f"SELECT id, text FROM chunks WHERE id IN ({marks})", batch).fetchall())
        return [found[int(i)] for i in ids]

    def cached_vectors(self, hashes: Iterable[str]) -> set[str]:
        """Which of these embedding hashes already have a stored vector."""
        wanted = list(dict.fromkeys(hashes))
        have: set[str] = set()
        for i in range(0, len(wanted), 500):
            batch = wanted[i : i + 500]
            marks = ",".join("?" * len(batch))
            have.update(
                r[0]
                for r in self.conn.execute(
                    f"SELECT embed_hash FROM vectors WHERE embed_hash IN ({marks})", batch
                )
            )
        return have

    def sentence_vectors_for(
        self, ids: Sequence[int], dim: int
    ) -> dict[int, list[tuple[int, int, np.ndarray]]]:
        """Pooled sentence vectors of these chunks: id -> [(doc start, doc end, vector)]."""
        out: dict[int, list[tuple[int, int, np.ndarray]]] = {int(i): [] for i in ids}
        if not ids:
            return out
        rows = self.conn.execute(
            f"""SELECT c.id, c.start, s.spans, s.scales, s.codes
                FROM chunks c JOIN sentence_vectors s ON s.embed_hash = c.embed_hash
                WHERE c.id IN ({",".join("?" * len(ids))})""",
            [int(i) for i in ids],
        )
        for cid, start, spans_blob, scales_blob, codes_blob in rows:
            spans = np.frombuffer(spans_blob, dtype=np.int32).reshape(-1, 2)
            scales = np.frombuffer(scales_blob, dtype=np.float32)
            codes = np.frombuffer(codes_blob, dtype=np.int8).reshape(len(scales), dim)
            vectors = dequantize_int8(codes, scales)
            out[cid] = [
                (start + int(a), start + int(b), vectors[k]) for k, (a, b) in enumerate(spans)
            ]
        return out

    def vectors_for(self, ids: Sequence[int], dim: int) -> np.ndarray:
        """Vectors of these chunk row ids, in the given order."""
        rows = dict(
            self.conn.execute(
                f"""SELECT c.id, v.vector FROM chunks c JOIN vectors v
                    ON v.embed_hash = c.embed_hash WHERE c.id IN ({",".join("?" * len(ids))})""",
                [int(i) for i in ids],
            ).fetchall()
        )
        return decode_vectors(b"".join(rows[int(i)] for i in ids), dim).reshape(len(ids), dim)

    # ------------------------------------------------------------------ writes (inside a txn)

    @staticmethod
    def put_document(conn: sqlite3.Connection, doc: Document) -> None:
        """Insert or replace an article row (its old chunks go with it)."""
        conn.execute("DELETE FROM documents WHERE source = ?", (doc.source,))
        conn.execute(
            """INSERT INTO documents (source, doc_id, content_hash, title, published, outlet,
                                      url, body_start, text)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                doc.source, doc.doc_id, doc.content_hash, doc.title, doc.published,
                doc.outlet, doc.url, doc.body_start, doc.text,
            ),
        )

    @staticmethod
    def put_chunks(
        conn: sqlite3.Connection, chunks: Sequence[Chunk], embed_hashes: Sequence[str]
    ) -> list[int]:
        """Insert chunk rows; returns their new row ids (the FAISS ids)."""
        ids = []
        for chunk, embed_hash in zip(chunks, embed_hashes, strict=True):
            cur = conn.execute(
                """INSERT INTO chunks (chunk_id, source, ordinal, start, "end", n_tokens, text,
                                       embed_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    chunk.chunk_id, chunk.source, chunk.ordinal, chunk.start, chunk.end,
                    chunk.n_tokens, chunk.text, embed_hash,
                ),
            )
            assert cur.lastrowid is not None
            ids.append(cur.lastrowid)
        return ids

    @staticmethod
    def put_vectors(conn: sqlite3.Connection, hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Store embedding vectors (as float16) keyed by the hash of the embedded text."""
        conn.executemany(
            "INSERT OR REPLACE INTO vectors VALUES (?, ?)",
            ((h, encode_vectors(v)) for h, v in zip(hashes, vectors, strict=True)),
        )

    @staticmethod
    def put_sentence_vectors(
        conn: sqlite3.Connection,
        embed_hash: str,
        spans: Sequence[tuple[int, int]],
        vectors: np.ndarray | SentenceCodes,
    ) -> None:
        """Store pooled sentence vectors of one chunk text (offsets relative to the chunk)."""
        if len(spans) != len(vectors):
            raise ValueError(f"{len(spans)} sentence spans but {len(vectors)} vectors")
        if not isinstance(vectors, SentenceCodes):
            vectors = SentenceCodes.quantize(vectors)
        codes, scales = vectors.codes, vectors.scales
        conn.execute(
            "INSERT OR REPLACE INTO sentence_vectors VALUES (?, ?, ?, ?)",
            (
                embed_hash, np.asarray(spans, dtype=np.int32).reshape(-1, 2).tobytes(),
                scales.tobytes(), codes.tobytes(),
            ),
        )

    @staticmethod
    def delete_document(conn: sqlite3.Connection, source: str) -> None:
        """Delete an article and its chunks."""
        conn.execute("DELETE FROM documents WHERE source = ?", (source,))

    @staticmethod
    def drop_unused_vectors(
        conn: sqlite3.Connection, candidates: Iterable[str] | None = None
    ) -> None:
        """Delete cached vectors no chunk uses any more (keeps the store lean).

        With `candidates` (the embed hashes of the chunks a write removed) only those are
        checked: a write costs time proportional to the article, not a scan of every
        vector (0.41 s of a 0.59 s one-article add at 100k chunks). None checks them all.
        """
        if candidates is None:
            for table in ("vectors", "sentence_vectors"):
                conn.execute(
                    f"DELETE FROM {table} WHERE embed_hash NOT IN (SELECT embed_hash FROM chunks)"
                )
            return
        rows = [(h, h) for h in set(candidates)]
        for table in ("vectors", "sentence_vectors"):
            conn.executemany(
                f"DELETE FROM {table} WHERE embed_hash = ? AND NOT EXISTS "
                "(SELECT 1 FROM chunks WHERE embed_hash = ?)", rows,
            )

    def embed_hashes_of(self, sources: Iterable[str]) -> set[str]:
        """Embed hashes of the chunks of these articles (what removing them may orphan)."""
        out: set[str] = set()
        for source in sources:
            rows = self.conn.execute("SELECT embed_hash FROM chunks WHERE source = ?", (source,))
            out.update(r[0] for r in rows)
        return out


def _migrate_v1(conn: sqlite3.Connection) -> None:
    """Convert a schema-1 store in place: float32 vector rows become the compact ones.

    Nothing is re-embedded; the derived FAISS and BM25 files are rebuilt from the converted
    vectors on open (the manifest's schema version no longer matches).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("ALTER TABLE vectors RENAME TO vectors_v1")
        conn.execute("ALTER TABLE sentence_vectors RENAME TO sentence_vectors_v1")
        conn.execute("CREATE TABLE vectors (embed_hash TEXT PRIMARY KEY, vector BLOB NOT NULL)")
        conn.execute(
            "CREATE TABLE sentence_vectors (embed_hash TEXT PRIMARY KEY, spans BLOB NOT NULL, "
            "scales BLOB NOT NULL, codes BLOB NOT NULL)"
        )
        cursor = conn.execute("SELECT embed_hash, vector FROM vectors_v1")
        while rows := cursor.fetchmany(10_000):
            Store.put_vectors(
                conn, [r[0] for r in rows],
                np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(
                    len(rows), -1
                ),
            )
        current: str | None = None
        spans: list[tuple[int, int]] = []
        vectors: list[np.ndarray] = []
        for embed_hash, start, end, blob in conn.execute(
            "SELECT embed_hash, rel_start, rel_end, vector FROM sentence_vectors_v1 "
            "ORDER BY embed_hash, rel_start"
        ):
            if embed_hash != current:
                if current is not None:
                    Store.put_sentence_vectors(conn, current, spans, np.vstack(vectors))
                current, spans, vectors = embed_hash, [], []
            spans.append((start, end))
            vectors.append(np.frombuffer(blob, dtype=np.float32))
        if current is not None:
            Store.put_sentence_vectors(conn, current, spans, np.vstack(vectors))
        conn.execute("DROP TABLE vectors_v1")
        conn.execute("DROP TABLE sentence_vectors_v1")
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
