"""The index in PostgreSQL + pgvector: many API replicas and writers over one database.

Tables (`rag.backends.pgschema`): documents, chunks (with a `tsvector` of BM25 tokens),
the embedding cache `rag_vectors` (pgvector `vector(dim)`, HNSW `vector_cosine_ops`),
sentence vectors, and `rag_meta` (schema version, config, generation).

Consistency: every write is one transaction holding a transaction-scoped advisory lock
(one writer at a time across all processes; a killed writer's connection drops, the server
rolls the transaction back and releases the lock), and bumps `generation`. Every query reads
the tables in one REPEATABLE READ snapshot, so a write committed by any process is seen by
the next query of every other process: nothing is cached between queries.

Ranking, compared with the embedded backend:
- Dense: HNSW is approximate (the embedded index is exact FAISS Flat below ~20k chunks);
  `hnsw.ef_search` is raised to at least twice the candidate pool. With metadata filters
  the search is an exact scan over the filtered rows (an HNSW scan then a filter can return
  fewer rows than asked for).
- Keyword: the same tokens as BM25 (`rag.sparse.tokenize`), stored per chunk as a
  positional `tsvector` and as postings rows (term, chunk, tf, length). By default
  (`keyword_ranking="bm25"`) a query reads its terms' postings and computes BM25 in SQL
  (Lucene idf, k1 = 1.5, b = 0.75, idf and average length over all chunks): the same scores
  as bm25s, so eval/gold/seeds.jsonl scores identically.
  `keyword_ranking="ts_rank_cd"` (RAG_PG_KEYWORD_RANKING) uses PostgreSQL's own cover
  density rank, normalised by 1 + log(chunk length): it has no idf (a rare name weighs
  what a common word weighs) and no term-frequency saturation. Measured on the seed gold
  set it costs recall@1 0.740 -> 0.687, recall@5 1.000 -> 0.967 and MRR 0.879 -> 0.827
  (answer F1 0.536 -> 0.543, within the noise of 94 questions), and it is no faster: it
  scores every chunk matching any query word through the GIN index.
- Fusion: done by `rag.retrieval` on both rankings, exactly as for the embedded backend.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from rag.backends.pgschema import (
    BM25_SQL,
    POSTINGS_SQL,
    SCHEMA_LOCK,
    SCHEMA_VERSION,
    WRITE_LOCK,
    schema,
    tsquery_any,
    tsvector_literal,
)
from rag.chunking import Chunk, Chunker
from rag.documents import Document
from rag.embedding import Embedder
from rag.errors import DocumentNotFound, IndexCorrupt, IndexLocked, IndexNotFound, RagError
from rag.ingest import (
    ChangeReport,
    Progress,
    check_batch,
    chunk_hashes,
    embed_chunks,
    plan,
    relative_spans,
)
from rag.store import DocumentInfo, SentenceCodes, StoredChunk

if TYPE_CHECKING:
    from psycopg import Cursor
    from psycopg_pool import ConnectionPool

    from rag.retrieval import Filters

Notify = Callable[[str], None] | None
KEYWORD_RANKINGS = ("bm25", "ts_rank_cd")
RANK_NORMALIZATION = 1  # ts_rank_cd: divide by 1 + log(document length)
MIN_EF_SEARCH = 100


def recorded_embedder(url: str) -> str | None:
    """The embedder spec the index in this database was built with (None: no index yet).

    An unreachable server also answers None; opening the index then reports it properly.
    """
    import psycopg

    from rag.embedding import spec_for_package

    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            if not _one(conn.execute("SELECT to_regclass('rag_meta') IS NOT NULL"))[0]:
                return None
            row = conn.execute("SELECT value FROM rag_meta WHERE key = 'config'").fetchone()
    except psycopg.Error:
        return None
    try:
        return spec_for_package(json.loads(row[0])["embedder"]["package"]) if row else None
    except (ValueError, KeyError, TypeError):
        return None


def redact(url: str) -> str:
    """The URL without its password (for messages and logs)."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        parts = conninfo_to_dict(url)
    except Exception:
        return "postgresql://…"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', '')}{port}/{parts.get('dbname', '')}"


def _stored_chunk(row: Sequence[Any]) -> StoredChunk:
    return StoredChunk(*row)


_CHUNK_COLUMNS = """c.id, c.chunk_id, c.source, c.ordinal, c.start, c."end", c.text,
                    d.title, d.published, d.body_start"""


def _filter_sql(filters: Filters | None) -> tuple[str, dict[str, Any]]:
    """A WHERE fragment over `d` (documents) for the source and date filters."""
    if filters is None or not filters.active:
        return "", {}
    sql, args = "", dict[str, Any]()
    if filters.sources:
        sql += " AND d.source = ANY(%(f_sources)s)"
        args["f_sources"] = list(filters.sources)
    if filters.date_from:
        sql += " AND d.published >= %(f_from)s"
        args["f_from"] = filters.date_from
    if filters.date_to:
        sql += " AND d.published <= %(f_to)s"
        args["f_to"] = filters.date_to
    return sql, args


@dataclass
class PostgresView:
    """One REPEATABLE READ snapshot of the database: the SearchView of this backend."""

    cur: Cursor[Any]
    generation: int
    keyword_ranking: str = "bm25"

    def dense(self, vector: np.ndarray, k: int, filters: Filters | None) -> list[tuple[int, float]]:
        """Top-k chunks by cosine similarity (HNSW; exact when filtered)."""
        if k <= 0:
            return []
        q = np.asarray(vector, dtype=np.float32)
        where, args = _filter_sql(filters)
        if where:
            rows = self.cur.execute(
                f"""SELECT c.id, 1 - (v.embedding <=> %(q)s) AS score
                    FROM rag_chunks c JOIN rag_documents d ON d.source = c.source
                    JOIN rag_vectors v ON v.embed_hash = c.embed_hash
                    WHERE true {where} ORDER BY score DESC, c.id LIMIT %(k)s""",
                {"q": q, "k": k, **args},
            ).fetchall()
        else:
            self.cur.execute(f"SET LOCAL hnsw.ef_search = {max(MIN_EF_SEARCH, 2 * k)}")
            # The inner query is the shape HNSW serves (ORDER BY distance LIMIT k); one cached
            # vector may belong to several chunks (the same text in two articles).
            rows = self.cur.execute(
                """SELECT c.id, 1 - n.distance FROM (
                       SELECT embed_hash, embedding <=> %s AS distance FROM rag_vectors
                       ORDER BY embedding <=> %s LIMIT %s) n
                   JOIN rag_chunks c ON c.embed_hash = n.embed_hash
                   ORDER BY n.distance, c.id LIMIT %s""",
                [q, q, k, k],
            ).fetchall()
        return [(int(i), float(s)) for i, s in rows]

    def keyword(self, query: str, k: int, filters: Filters | None) -> list[tuple[int, float]]:
        """Top-k chunks sharing a BM25 token with the query (BM25 or ts_rank_cd ranking)."""
        from rag.sparse import BM25_PARAMS, tokenize

        tokens = tokenize([query])[0]
        if not tokens or k <= 0:
            return []
        where, args = _filter_sql(filters)
        join = "JOIN rag_documents d ON d.source = c.source" if where else ""
        args.update({"any": tsquery_any(tokens), "k": k})
        if self.keyword_ranking == "bm25":
            counts = Counter(tokens)
            args.update({"terms": list(counts), "counts": list(counts.values()),
                         "k1": BM25_PARAMS["k1"], "b": BM25_PARAMS["b"]})
            chunk_join = ("JOIN rag_chunks c ON c.id = p.chunk " + join) if where else ""
            sql = BM25_SQL.format(join=chunk_join, where=where)
        else:
            sql = f"""SELECT c.id, ts_rank_cd(c.terms, q, {RANK_NORMALIZATION}) AS score
                      FROM rag_chunks c {join}, CAST(%(any)s AS tsquery) q
                      WHERE c.terms @@ q {where} ORDER BY score DESC, c.id LIMIT %(k)s"""
        rows = self.cur.execute(sql, args).fetchall()
        return [(int(i), float(s)) for i, s in rows if s > 0]

    def chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        """Chunk rows with their article's metadata."""
        return _chunks_by_ids(self.cur, ids)


def _chunks_by_ids(cur: Cursor[Any], ids: Sequence[int]) -> dict[int, StoredChunk]:
    if not ids:
        return {}
    rows = cur.execute(
        f"""SELECT {_CHUNK_COLUMNS} FROM rag_chunks c
            JOIN rag_documents d ON d.source = c.source WHERE c.id = ANY(%s)""",
        [[int(i) for i in ids]],
    ).fetchall()
    return {int(r[0]): _stored_chunk(r) for r in rows}


class _Catalog:
    """The write plan's view of stored articles, read inside the writing transaction."""

    def __init__(self, cur: Cursor[Any]) -> None:
        self.cur = cur

    def document_hash(self, source: str) -> str | None:
        """Stored content hash of `source`."""
        row = self.cur.execute(
            "SELECT content_hash FROM rag_documents WHERE source = %s", [source]
        ).fetchone()
        return row[0] if row else None

    def source_of_hash(self, content_hash: str) -> str | None:
        """Source holding this exact text."""
        row = self.cur.execute(
            "SELECT source FROM rag_documents WHERE content_hash = %s", [content_hash]
        ).fetchone()
        return row[0] if row else None

    def document_meta(self, source: str) -> tuple[Any, ...] | None:
        """(title, published, url, outlet, body_start) of `source`."""
        row = self.cur.execute(
            """SELECT title, published, url, outlet, body_start FROM rag_documents
               WHERE source = %s""",
            [source],
        ).fetchone()
        return tuple(row) if row else None


class PostgresIndex:
    """The index in a PostgreSQL database (`postgresql://…`); same contract as `Index`."""

    def __init__(self, url: str, embedder: Embedder, chunker: Chunker, *,
                 notify: Notify = None, pool_size: int = 8,
                 keyword_ranking: str = "bm25") -> None:
        if keyword_ranking not in KEYWORD_RANKINGS:
            raise RagError(f"keyword ranking must be one of {', '.join(KEYWORD_RANKINGS)}, "
                           f"got {keyword_ranking!r}")
        self.keyword_ranking = keyword_ranking
        self.url = url
        self.embedder = embedder
        self.chunker = chunker
        self.notify = notify
        self.pool_size = pool_size
        self._pool: ConnectionPool[Any] | None = None
        self._polled: int | None = None

    # ------------------------------------------------------------------ connections

    @property
    def location(self) -> str:
        """The database URL without its password."""
        return redact(self.url)

    def _connect(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=10,
                                   application_name=f"rag pid {os.getpid()}")
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise IndexNotFound(
                f"cannot connect to {self.location} ({reason}); check --database-url "
                "(or RAG_DATABASE_URL) and that the server is running"
            ) from None

    @property
    def exists(self) -> bool:
        """Whether the database holds an index (the rag_meta table)."""
        with self._connect() as conn:
            row = conn.execute("SELECT to_regclass('rag_meta') IS NOT NULL").fetchone()
            return bool(row and row[0])

    def config(self) -> dict[str, Any]:
        """What must match between the stored index and the running code."""
        ident = self.embedder.identity
        return {
            "embedder": {k: ident.get(k) for k in ("name", "package", "version", "weights_sha256")},
            "dim": self.embedder.dim,
            "normalize": True,
            "chunker": self.chunker.params,
        }

    def _config_json(self) -> str:
        return json.dumps(self.config(), sort_keys=True)

    def open(self, *, create: bool = False, check_config: bool = True) -> Self:
        """Connect (creating the schema when `create`) and check the stored config."""
        import psycopg
        from psycopg_pool import ConnectionPool

        if self._pool is not None:
            return self
        with self._connect() as conn:
            present = _one(conn.execute("SELECT to_regclass('rag_meta') IS NOT NULL"))[0]
            if not present and not create:
                raise IndexNotFound(
                    f"no index in {self.location}: run 'rag index build' or 'rag migrate "
                    "--to URL' first"
                )
            if not present:
                self._create_schema(conn)
            version = conn.execute(
                "SELECT value FROM rag_meta WHERE key = 'schema_version'"
            ).fetchone()
            if version is None or int(version[0]) != SCHEMA_VERSION:
                raise IndexCorrupt(
                    f"{self.location} holds index schema {version and version[0]}, this program "
                    f"reads {SCHEMA_VERSION}; use another database"
                )
            if check_config:
                self._check_config(conn.cursor())
        from pgvector.psycopg import register_vector

        def configure(conn: psycopg.Connection[Any]) -> None:
            register_vector(conn)

        self._pool = ConnectionPool(
            self.url, min_size=1, max_size=self.pool_size, open=True, timeout=30,
            kwargs={"autocommit": True, "application_name": f"rag pid {os.getpid()}"},
            configure=configure, name="rag",
        )
        self._polled = self.generation
        return self

    def _create_schema(self, conn: Any) -> None:
        import psycopg

        try:
            with conn.transaction():
                # Two processes creating the schema at once would collide on catalog rows.
                conn.execute("SELECT pg_advisory_xact_lock(%s)", [SCHEMA_LOCK])
                for statement in schema(self.embedder.dim):
                    conn.execute(statement)
        except psycopg.errors.FeatureNotSupported as exc:
            raise RagError(f"{self.location}: {exc}") from None
        except (psycopg.errors.UndefinedFile, psycopg.errors.InsufficientPrivilege) as exc:
            raise RagError(
                f"{self.location} cannot create the pgvector extension ({exc}); install "
                "pgvector on the server and run CREATE EXTENSION vector as its owner"
            ) from None

    def _check_config(self, cur: Cursor[Any]) -> None:
        from rag.errors import ManifestMismatch

        row = cur.execute("SELECT value FROM rag_meta WHERE key = 'config'").fetchone()
        if row is None:
            return
        have, want = json.loads(row[0]), self.config()
        if have != want:
            diffs = [k for k in want if have.get(k) != want.get(k)]
            raise ManifestMismatch(
                f"index {self.location} was built with other settings ({', '.join(diffs)} "
                f"differ: index has {json.dumps({k: have.get(k) for k in diffs})}); run "
                "'rag index build' to rebuild it with the current settings"
            )

    def _require_pool(self) -> ConnectionPool[Any]:
        if self._pool is None:
            raise IndexNotFound(f"index {self.location} is not open")
        return self._pool

    def close(self) -> None:
        """Close the connection pool."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    @contextlib.contextmanager
    def _read(self) -> Iterator[Cursor[Any]]:
        """A cursor in one read-only REPEATABLE READ transaction (one consistent state)."""
        with self._require_pool().connection() as conn, conn.transaction():
            cur = conn.cursor()
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield cur

    @contextlib.contextmanager
    def _write(self, lock_timeout: float) -> Iterator[Cursor[Any]]:
        """A cursor in one read-write transaction holding the writers' advisory lock."""
        with self._require_pool().connection() as conn, conn.transaction():
            cur = conn.cursor()
            deadline = time.monotonic() + lock_timeout
            while not _one(cur.execute("SELECT pg_try_advisory_xact_lock(%s)", [WRITE_LOCK]))[0]:
                if time.monotonic() >= deadline:
                    raise IndexLocked(
                        f"index {self.location} is locked by {self._lock_holder(cur)} (another "
                        "writer is adding or removing articles); wait for it to finish and "
                        "try again"
                    )
                time.sleep(0.05)
            yield cur

    @staticmethod
    def _lock_holder(cur: Cursor[Any]) -> str:
        row = cur.execute(
            """SELECT a.application_name, a.client_addr FROM pg_locks l
               JOIN pg_stat_activity a ON a.pid = l.pid
               WHERE l.locktype = 'advisory' AND l.granted AND l.objid = %s LIMIT 1""",
            [WRITE_LOCK & 0xFFFFFFFF],
        ).fetchone()
        if row is None:
            return "another writer"
        name = row[0] or "a client"
        return name if name.startswith("rag pid ") else f"{name} ({row[1] or 'local'})"

    # ------------------------------------------------------------------ reads

    @property
    def generation(self) -> int:
        """Committed writes so far (read from the database)."""
        with self._require_pool().connection() as conn:
            row = conn.execute("SELECT value FROM rag_meta WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0

    def reload_if_changed(self) -> bool:
        """Whether another process wrote since the last call (queries always see it anyway)."""
        now = self.generation
        changed, self._polled = now != self._polled, now
        return changed

    @contextlib.contextmanager
    def view(self) -> Iterator[PostgresView]:
        """One consistent snapshot for a whole query."""
        with self._read() as cur:
            row = cur.execute("SELECT value FROM rag_meta WHERE key = 'generation'").fetchone()
            yield PostgresView(cur, int(row[0]) if row else 0, self.keyword_ranking)

    def list_documents(self) -> list[DocumentInfo]:
        """Every indexed article, newest first, then by source (byte order, as SQLite)."""
        with self._read() as cur:
            rows = cur.execute(
                """SELECT d.source, d.title, d.published, d.outlet, d.url, d.content_hash,
                          (SELECT count(*) FROM rag_chunks c WHERE c.source = d.source),
                          length(d.text), d.added_at
                   FROM rag_documents d
                   ORDER BY d.published IS NULL, d.published DESC, d.source COLLATE "C" """
            ).fetchall()
        return [
            DocumentInfo(source=r[0], title=r[1], published=r[2], outlet=r[3], url=r[4],
                         content_hash=r[5], chunks=int(r[6]), chars=int(r[7]), added_at=r[8])
            for r in rows
        ]

    def get_document(self, source: str) -> Document | None:
        """The stored article, or None."""
        with self._read() as cur:
            row = cur.execute(
                """SELECT source, text, title, published, outlet, url, body_start
                   FROM rag_documents WHERE source = %s""",
                [source],
            ).fetchone()
        if row is None:
            return None
        return Document(source=row[0], text=row[1], title=row[2], published=row[3],
                        outlet=row[4], url=row[5], body_start=row[6])

    def counts(self) -> tuple[int, int]:
        """(documents, chunks)."""
        with self._read() as cur:
            row = _one(cur.execute(
                "SELECT (SELECT count(*) FROM rag_documents), (SELECT count(*) FROM rag_chunks)"
            ))
        return int(row[0]), int(row[1])

    def chunks_by_ids(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        """Chunk rows with their article's metadata, keyed by row id."""
        with self._read() as cur:
            return _chunks_by_ids(cur, ids)

    def sentence_vectors_for(self, ids: Sequence[int]) -> dict[int, list[tuple[int, int, Any]]]:
        """Pooled sentence vectors of these chunks: id -> [(doc start, doc end, vector)]."""
        out: dict[int, list[tuple[int, int, Any]]] = {int(i): [] for i in ids}
        if not ids:
            return out
        with self._read() as cur:
            rows = cur.execute(
                """SELECT c.id, c.start + s.rel_start, c.start + s.rel_end, s.vector
                   FROM rag_chunks c JOIN rag_sentence_vectors s ON s.embed_hash = c.embed_hash
                   WHERE c.id = ANY(%s) ORDER BY c.id, s.rel_start""",
                [[int(i) for i in ids]],
            ).fetchall()
        for cid, start, end, blob in rows:
            out[int(cid)].append((int(start), int(end), np.frombuffer(blob, dtype=np.float32)))
        return out

    def idf(self, terms: Sequence[str]) -> dict[str, float]:
        """BM25 idf of each stemmed term, from document frequencies in the postings."""
        wanted = list(dict.fromkeys(terms))
        with self._read() as cur:
            n = int(_one(cur.execute("SELECT count(*) FROM rag_chunks"))[0])
            df: dict[str, int] = {}
            if wanted and n:
                rows = cur.execute(
                    """SELECT t.i, (SELECT count(*) FROM rag_postings p WHERE p.term = t.q)
                       FROM unnest(%s::text[]) WITH ORDINALITY AS t(q, i)""",
                    [wanted],
                ).fetchall()
                df = {wanted[int(i) - 1]: int(c) for i, c in rows}
        n = max(n, 1)
        return {t: math.log(1 + (n - df.get(t, 0) + 0.5) / (df.get(t, 0) + 0.5)) for t in terms}

    def check_consistency(self) -> dict[str, int]:
        """Chunk, vector and keyword counts, which must agree (RagError otherwise)."""
        with self._read() as cur:
            docs, chunks, dense, sparse = _one(cur.execute(
                """SELECT (SELECT count(*) FROM rag_documents),
                          (SELECT count(*) FROM rag_chunks),
                          (SELECT count(*) FROM rag_chunks c
                           JOIN rag_vectors v ON v.embed_hash = c.embed_hash),
                          (SELECT count(*) FROM rag_chunks WHERE terms IS NOT NULL)"""
            ))
        counts = {"documents": int(docs), "chunks": int(chunks), "dense": int(dense),
                  "sparse": int(sparse)}
        if not (counts["chunks"] == counts["dense"] == counts["sparse"]):
            raise RagError(f"index {self.location} is inconsistent: {counts}")
        return counts

    # ------------------------------------------------------------------ writes

    def add_documents(
        self, docs: Sequence[Document], *, sync: bool = False,
        progress: Progress | None = None, lock_timeout: float = 0.0,
    ) -> ChangeReport:
        """Add or update articles in one transaction; unchanged ones cost nothing."""
        from rag.errors import ManifestMismatch

        started = time.perf_counter()
        check_batch(docs)
        with self._write(lock_timeout) as cur:
            row = cur.execute("SELECT value FROM rag_meta WHERE key = 'config'").fetchone()
            stored = row[0] if row else None
            want = self._config_json()
            reset = stored != want
            if reset and not sync and stored is not None:
                self._check_config(cur)
                raise ManifestMismatch(f"index {self.location} was built with other settings")
            report = ChangeReport()
            incoming = {d.source for d in docs}
            to_remove = [r[0] for r in cur.execute(
                "SELECT source FROM rag_documents ORDER BY source COLLATE \"C\"").fetchall()
                if r[0] not in incoming] if sync else []
            work = plan(docs, _Catalog(cur), self.chunker, report, to_remove=to_remove,
                        reset=reset)
            if not work and not to_remove and not reset:
                report.generation = _generation(cur)
                report.seconds = time.perf_counter() - started
                return report
            # Vectors only the replaced or removed chunks used may be orphaned by this write.
            orphans = None if reset else _embed_hashes_of(
                cur, to_remove + [doc.source for doc, _ in work])
            if reset:
                self._reset(cur, want)
            hashes, flat = chunk_hashes(self.embedder, work)
            cached = {r[0] for r in cur.execute(
                "SELECT embed_hash FROM rag_vectors WHERE embed_hash = ANY(%s)", [list(flat)]
            ).fetchall()}
            missing = [h for h in flat if h not in cached]
            report.chunks_reused = sum(len(hs) for hs in hashes) - len(missing)
            vectors, sentence_vectors = embed_chunks(
                self.embedder, [flat[h] for h in missing], progress
            )
            report.chunks_embedded = len(missing)
            _put_vectors(cur, missing, vectors, sentence_vectors,
                         [relative_spans(flat[h]) for h in missing])
            if to_remove:
                cur.execute("DELETE FROM rag_documents WHERE source = ANY(%s)", [to_remove])
            for (doc, chunks), hs in zip(work, hashes, strict=True):
                _put_document(cur, doc)
                report.chunks_written += _put_chunks(cur, chunks, hs)
            if work:
                cur.execute(POSTINGS_SQL, [[doc.source for doc, _ in work]])
            _drop_unused_vectors(cur, orphans)
            report.removed = to_remove
            report.generation = _bump(cur)
        report.seconds = time.perf_counter() - started
        return report

    def _reset(self, cur: Cursor[Any], config: str) -> None:
        """Empty the index for a build with other settings (another dimension, even)."""
        # Cached vectors stay (keyed by the weights hash, so still valid for a new chunker);
        # the ones no chunk uses are dropped at the end of the write.
        cur.execute("DELETE FROM rag_chunks")
        dim = _one(cur.execute(
            """SELECT atttypmod FROM pg_attribute
               WHERE attrelid = 'rag_vectors'::regclass AND attname = 'embedding'"""
        ))[0]
        if int(dim) != self.embedder.dim:
            cur.execute("DELETE FROM rag_sentence_vectors")
            cur.execute("DELETE FROM rag_vectors")
            cur.execute("DROP INDEX IF EXISTS rag_vectors_hnsw")
            cur.execute(f"ALTER TABLE rag_vectors ALTER COLUMN embedding TYPE "
                        f"vector({int(self.embedder.dim)})")
            cur.execute("""CREATE INDEX rag_vectors_hnsw ON rag_vectors
                           USING hnsw (embedding vector_cosine_ops)""")
        cur.execute(
            """INSERT INTO rag_meta VALUES ('config', %s)
               ON CONFLICT (key) DO UPDATE SET value = excluded.value""",
            [config],
        )

    def remove(self, sources: Sequence[str], *, lock_timeout: float = 0.0) -> ChangeReport:
        """Remove articles by source id in one transaction; unknown ids change nothing."""
        started = time.perf_counter()
        wanted = list(dict.fromkeys(sources))
        with self._write(lock_timeout) as cur:
            known = {r[0] for r in cur.execute(
                "SELECT source FROM rag_documents WHERE source = ANY(%s)", [wanted]).fetchall()}
            unknown = [s for s in wanted if s not in known]
            if unknown:
                some = [r[0] for r in cur.execute(
                    "SELECT source FROM rag_documents ORDER BY source COLLATE \"C\" LIMIT 5"
                ).fetchall()]
                raise DocumentNotFound(
                    f"no indexed article with source id {', '.join(map(repr, unknown))}; "
                    f"see 'rag list' (e.g. {', '.join(some) or 'none'})"
                )
            orphans = _embed_hashes_of(cur, wanted)
            cur.execute("DELETE FROM rag_documents WHERE source = ANY(%s)", [wanted])
            _drop_unused_vectors(cur, orphans)
            generation = _bump(cur)
        return ChangeReport(removed=wanted, seconds=time.perf_counter() - started,
                            generation=generation)


# ---------------------------------------------------------------------- write helpers


def _one(cur: Any) -> Any:
    """The single row a query must return."""
    row = cur.fetchone()
    if row is None:
        raise IndexCorrupt("the database returned no row where one is always stored")
    return row


def _generation(cur: Cursor[Any]) -> int:
    row = cur.execute("SELECT value FROM rag_meta WHERE key = 'generation'").fetchone()
    return int(row[0]) if row else 0


def _bump(cur: Cursor[Any]) -> int:
    row = _one(cur.execute(
        """UPDATE rag_meta SET value = (value::bigint + 1)::text WHERE key = 'generation'
           RETURNING value"""
    ))
    return int(row[0])


def _put_vectors(cur: Cursor[Any], hashes: Sequence[str], vectors: np.ndarray,
                 sentence_vectors: Sequence[SentenceCodes],
                 spans: Sequence[Sequence[tuple[int, int]]]) -> None:
    """Cache chunk vectors and their sentence vectors (inside the write transaction).

    They arrive in the embedded store's compact form (float16, int8) and are stored as
    float32 from it, so both backends score with the very same vectors.
    """
    if not len(hashes):
        return
    cur.executemany(
        "INSERT INTO rag_vectors VALUES (%s, %s) ON CONFLICT (embed_hash) DO NOTHING",
        [(h, np.asarray(v, dtype=np.float32)) for h, v in zip(hashes, vectors, strict=True)],
    )
    rows = []
    for h, sv, sp in zip(hashes, sentence_vectors, spans, strict=True):
        for (a, b), vec in zip(sp, sv.decode(), strict=True):
            rows.append((h, int(a), int(b), np.asarray(vec, dtype=np.float32).tobytes()))
    cur.executemany(
        """INSERT INTO rag_sentence_vectors VALUES (%s, %s, %s, %s)
           ON CONFLICT (embed_hash, rel_start) DO NOTHING""",
        rows,
    )


def _put_document(cur: Cursor[Any], doc: Document) -> None:
    """Insert or replace an article row (its old chunks go with it)."""
    cur.execute("DELETE FROM rag_documents WHERE source = %s", [doc.source])
    cur.execute(
        """INSERT INTO rag_documents (source, doc_id, content_hash, title, published, outlet,
                                      url, body_start, text)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        [doc.source, doc.doc_id, doc.content_hash, doc.title, doc.published, doc.outlet,
         doc.url, doc.body_start, doc.text],
    )


def chunk_terms(texts: Sequence[str]) -> list[tuple[str, int]]:
    """(tsvector literal, token count) of chunk texts, tokenised exactly as BM25 does."""
    from rag.sparse import tokenize

    if not texts:
        return []
    return [(tsvector_literal(tokens), len(tokens)) for tokens in tokenize(list(texts))]


def _put_chunks(cur: Cursor[Any], chunks: Sequence[Chunk], hashes: Sequence[str]) -> int:
    """Insert chunk rows with their keyword terms; returns how many."""
    terms = chunk_terms([c.text for c in chunks])
    cur.executemany(
        """INSERT INTO rag_chunks (chunk_id, source, ordinal, start, "end", n_tokens, text,
                                   embed_hash, terms, n_terms)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, CAST(%s AS tsvector), %s)""",
        [(c.chunk_id, c.source, c.ordinal, c.start, c.end, c.n_tokens, c.text, h, t, n)
         for c, h, (t, n) in zip(chunks, hashes, terms, strict=True)],
    )
    return len(chunks)


def _embed_hashes_of(cur: Cursor[Any], sources: Sequence[str]) -> list[str]:
    """Embed hashes of the chunks of these articles (what removing them may orphan)."""
    if not sources:
        return []
    return [r[0] for r in cur.execute(
        "SELECT DISTINCT embed_hash FROM rag_chunks WHERE source = ANY(%s)", [list(sources)]
    ).fetchall()]


def _drop_unused_vectors(cur: Cursor[Any], candidates: Sequence[str] | None = None) -> None:
    """Forget cached vectors no chunk uses any more (as the embedded store does).

    Only `candidates` are checked when given, so a write costs the size of the article,
    not an anti-join over every vector; None checks all (after a reset).
    """
    if candidates is not None and not candidates:
        return
    only = "" if candidates is None else " AND v.embed_hash = ANY(%s)"
    args = [] if candidates is None else [list(candidates)]
    cur.execute(f"""DELETE FROM rag_vectors v WHERE NOT EXISTS
                    (SELECT 1 FROM rag_chunks c WHERE c.embed_hash = v.embed_hash){only}""",
                args)
    cur.execute(f"""DELETE FROM rag_sentence_vectors v WHERE NOT EXISTS
                    (SELECT 1 FROM rag_chunks c WHERE c.embed_hash = v.embed_hash){only}""",
                args)
