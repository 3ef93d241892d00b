"""Workers measuring index cost at scale on synthetic text and calibrated vectors: build,
incremental add, search latency, recall against exact search, disk, and cold open."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from rag.bench.measure import dir_bytes, pct, peak_rss_mb, rss_mb, search_latencies, silent, timed
from rag.bench.standins import (
    CalibratedVectors,
    ParagraphChunker,
    SyntheticEmbedder,
    docs_for_chunks,
)
from rag.bench.synth import SyntheticCorpus


def _dense_latencies(dense: Any, queries: np.ndarray, k: int = 50) -> list[float]:
    out = []
    for v in queries:
        t = time.perf_counter()
        dense.search(v, k)
        out.append(time.perf_counter() - t)
    return out


def w_scale(args: dict[str, Any]) -> dict[str, Any]:
    """Index cost at one corpus size: build, incremental add, search, recall, disk."""
    import faiss

    from rag.dense import DenseIndex, choose_factory
    from rag.index import Index, Snapshot
    from rag.retrieval import Retriever
    from rag.sparse import SparseIndex

    work = Path(args["work"])
    size, seed = int(args["size"]), int(args["seed"])
    anchors = np.load(work / "real_vectors.npy")
    generator = CalibratedVectors(anchors)
    questions = json.loads((work / "questions.json").read_text())
    n_queries = int(args.get("queries", 200))
    questions = [questions[i % len(questions)] for i in range(n_queries)]
    qvecs = generator.draw(n_queries, np.random.default_rng(seed + 99))
    t = time.perf_counter()
    docs, _ = docs_for_chunks(size, seed, ParagraphChunker().chunk)
    synth_s = time.perf_counter() - t
    folder = work / f"scale_{size}"
    shutil.rmtree(folder, ignore_errors=True)
    factory = args.get("factory") or choose_factory(size)
    index = Index(folder, SyntheticEmbedder(generator), ParagraphChunker(),  # type: ignore[arg-type]
                  factory=factory, notify=silent)
    index.open(create=True, check_config=False)
    rss0 = rss_mb()
    # A very large corpus is added in batches (as an archive grows) so the whole batch's
    # vectors never sit in memory at once; each batch rebuilds BM25 over all so far.
    batch = int(args.get("batch_docs") or len(docs))
    batch_s = []
    t = time.perf_counter()
    for b in range(0, len(docs), batch):
        tb = time.perf_counter()
        index.add_documents(docs[b : b + batch], sync=False)
        batch_s.append(round(time.perf_counter() - tb, 2))
    build_s = time.perf_counter() - t
    n_docs = len(docs)
    del docs
    snap = index.snapshot
    n = snap.dense.ntotal
    result: dict[str, Any] = {
        "chunks": n, "documents": n_docs, "factory": factory,
        "dense_index": snap.dense.factory, "nprobe": snap.dense.nprobe,
        "synth_s": round(synth_s, 2), "build_s": round(build_s, 2), "batch_s": batch_s,
        "build_chunks_per_s": round(n / build_s, 1),
        "build_rss_added_mb": round(rss_mb() - rss0, 1),
    }
    store = index._require_store()
    # Background segment merges from the build finish first, so an add is timed on its own.
    t = time.perf_counter()
    index.wait_for_merges()
    result["merge_wait_s"] = round(time.perf_counter() - t, 2)
    # A whole BM25 build: what every write paid before segments; now only a repair pays it.
    with store.snapshot():
        ids, texts = store.all_chunk_texts()
    t = time.perf_counter()
    one_shot = SparseIndex.build(ids, texts)
    result["bm25_rebuild_s"] = round(time.perf_counter() - t, 3)
    del texts
    result["faiss_clone_s"] = round(min(timed(lambda: faiss.clone_index(snap.dense.index), 2)), 3)
    corpus = SyntheticCorpus(seed)
    adds, sparse_adds = [], []
    for j in range(int(args.get("adds", 3))):
        doc = corpus.document(10_000_000 + j)
        t = time.perf_counter()
        index.add_documents([doc])
        adds.append(time.perf_counter() - t)
        # The BM25 part of that add alone: tokenise its chunks into a segment, swap it in.
        new_ids = store.chunk_ids_of(doc.source)
        t = time.perf_counter()
        one_shot.with_changes([], np.asarray(new_ids), store.chunk_texts(new_ids))
        sparse_adds.append(time.perf_counter() - t)
    result["incremental_add"] = {**pct(adds), "chunks_per_add": len(ParagraphChunker().chunk(doc))}
    result["bm25_add"] = pct(sparse_adds)
    index.wait_for_merges()
    sparse = index.snapshot.sparse
    result["bm25_segments"] = len(sparse.segments)
    # Segmented vs one-shot BM25 over the same chunks (the adds included): same top-10?
    with store.snapshot():
        ids, texts = store.all_chunk_texts()
    one_shot = SparseIndex.build(ids, texts)
    del texts
    same, overlap, lat = [], [], []
    for q in questions:
        t = time.perf_counter()
        got = sparse.search(q, 10)
        lat.append(time.perf_counter() - t)
        want = one_shot.search(q, 10)
        # Same top-10 scores rank by rank means the same ranking up to ties; synthetic text
        # repeats sentences, so tied chunks are common and the id overlap understates it.
        same.append(len(got) == len(want) and bool(np.allclose(
            [s for _, s in got], [s for _, s in want], rtol=1e-3)))
        overlap.append(len({i for i, _ in got} & {i for i, _ in want}) / max(1, len(want)))
    del one_shot
    result["bm25_agreement@10"] = round(float(np.mean(same)), 4)
    result["bm25_id_overlap@10"] = round(float(np.mean(overlap)), 4)
    result["search_bm25_only"] = pct(lat)

    retriever = Retriever(index)
    for q, v in zip(questions[:10], qvecs[:10], strict=True):
        retriever.search(q, 10, mode="hybrid", query_vector=v)
    result["search"] = search_latencies(retriever, questions, qvecs)

    # Exact reference: a Flat index over the same stored vectors.
    snap = index.snapshot
    exact = DenseIndex(snap.dense.dim, "IDMap2,Flat")
    for chunk_ids, vecs in store.iter_vectors(snap.dense.dim):
        exact.add(chunk_ids, vecs)
    result["search"]["dense_exact"] = pct(_dense_latencies(exact, qvecs))
    truth = [[i for i, _ in exact.search(v, 10)] for v in qvecs]

    def recall(found: list[list[int]]) -> float:
        return round(float(np.mean([len(set(f) & set(t)) / max(1, len(t))
                                    for f, t in zip(found, truth, strict=True)])), 4)

    result["recall@10"] = {"dense": recall([[i for i, _ in snap.dense.search(v, 10)]
                                            for v in qvecs])}
    hybrid = [[h.id for h in retriever.search(q, 10, mode="hybrid", query_vector=v)]
              for q, v in zip(questions, qvecs, strict=True)]
    index._snapshot = Snapshot(snap.generation, exact, snap.sparse)
    hybrid_exact = [[h.id for h in retriever.search(q, 10, mode="hybrid", query_vector=v)]
                    for q, v in zip(questions, qvecs, strict=True)]
    index._snapshot = snap
    result["recall@10"]["hybrid"] = round(float(np.mean(
        [len(set(a) & set(b)) / max(1, len(b)) for a, b in zip(hybrid, hybrid_exact, strict=True)]
    )), 4)
    if snap.dense.nprobe is not None:
        sweep = []
        default = snap.dense.nprobe
        for nprobe in (4, 8, 16, 32, 64, 128):
            snap.dense.set_nprobe(nprobe)
            lat = _dense_latencies(snap.dense, qvecs)
            sweep.append({"nprobe": snap.dense.nprobe, "dense_p50_ms": pct(lat)["p50"],
                          "recall@10": recall([[i for i, _ in snap.dense.search(v, 10)]
                                               for v in qvecs])})
        snap.dense.set_nprobe(default)
        result["nprobe_sweep"] = sweep
        # The Index trains IVF on its first batch of 10k stored vectors, so it gets fewer
        # lists than choose_factory asks for; this is what a sample-trained index would give.
        proper = DenseIndex(snap.dense.dim, factory)
        if proper.factory != snap.dense.factory:
            nlist = int(proper._ivf().nlist)
            sample = np.concatenate([v for _, v in store.iter_vectors(snap.dense.dim)])
            rng = np.random.default_rng(seed)
            pick = rng.choice(len(sample), min(len(sample), 64 * nlist), replace=False)
            t = time.perf_counter()
            proper.index.train(sample[pick])
            train_s = time.perf_counter() - t
            del sample
            for chunk_ids, vecs in store.iter_vectors(snap.dense.dim):
                proper.add(chunk_ids, vecs)
            lat = _dense_latencies(proper, qvecs)
            result["sample_trained"] = {
                "factory": proper.factory, "nprobe": proper.nprobe, "train_s": round(train_s, 2),
                "train_points": len(pick), "dense": pct(lat),
                "recall@10": recall([[i for i, _ in proper.search(v, 10)] for v in qvecs]),
            }
            del proper
    manifest = index.read_manifest() or {}
    files = manifest.get("files", {})
    index.close()  # checkpoints SQLite's write-ahead log, so the sizes are the settled ones
    bm25_files = SparseIndex.files(files.get("sparse") or {})
    live = {"store.sqlite", files.get("dense"), "manifest.json"} | bm25_files
    result["disk"] = {
        "bytes": sum(dir_bytes(folder / f) for f in live if f and (folder / f).exists()),
        "store_bytes": dir_bytes(folder / "store.sqlite"),
        "dense_bytes": dir_bytes(folder / files["dense"]) if "dense" in files else 0,
        "bm25_bytes": sum(dir_bytes(folder / f) for f in bm25_files if (folder / f).exists()),
        # The previous manifest's FAISS/BM25 files stay for readers still opening them.
        "previous_generation_bytes": dir_bytes(folder) - sum(
            dir_bytes(folder / f) for f in live if f and (folder / f).exists()),
    }
    result["disk"]["bytes_per_chunk"] = round(result["disk"]["bytes"] / n, 1)
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return result


def w_open(args: dict[str, Any]) -> dict[str, Any]:
    """Cold open of a built index (no model) and resident memory per chunk; or, with
    part='dense_read'/'dense_mmap', the dense file alone read or memory-mapped. Each part
    runs in a fresh process so freed memory of one does not hide the cost of the next."""
    from rag.dense import DenseIndex
    from rag.index import Index

    folder = Path(args["folder"])
    generator = CalibratedVectors(np.load(Path(args["work"]) / "real_vectors.npy"))
    manifest = json.loads((folder / "manifest.json").read_text())
    # Imported first so their code is not counted as the index's memory.
    import bm25s  # noqa: F401
    import faiss  # noqa: F401

    queries = generator.draw(20, np.random.default_rng(1))
    part = args.get("part", "index")
    rss0 = rss_mb()
    t = time.perf_counter()
    if part == "index":
        index = Index(folder, SyntheticEmbedder(generator), ParagraphChunker(),  # type: ignore[arg-type]
                      factory=manifest["faiss_factory"], notify=silent).open(check_config=False)
        open_s = time.perf_counter() - t
        n = index.snapshot.dense.ntotal
        rss = rss_mb() - rss0
        return {"open_s": round(open_s, 3), "rss_mb": round(rss, 1),
                "rss_bytes_per_chunk": round(rss * 2**20 / n, 1), "chunks": n}
    mmap = part == "dense_mmap"
    path = folder / manifest["files"]["dense"]
    dense = DenseIndex.load(path, manifest["dim"], manifest["faiss_factory"], mmap=mmap)
    load_s = time.perf_counter() - t
    rss_loaded = rss_mb() - rss0
    lat = _dense_latencies(dense, queries)
    return {
        "load_s": round(load_s, 4), "rss_mb_after_load": round(rss_loaded, 1),
        "rss_mb": round(rss_mb() - rss0, 1), "mapped": dense.path is not None,
        "first_search_ms": round(lat[0] * 1000, 3), "search_p50_ms": pct(lat)["p50"],
    }
