"""Workers measuring our pipeline with the real model on the real-chunk subset: preparing
the chunks, raw `model.encode` vs our build, search and `ask` latency, and cold start."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from rag.bench.measure import (
    MODES,
    TimedChunker,
    dir_bytes,
    gold_questions,
    make_settings,
    pct,
    peak_rss_mb,
    repo_root,
    reset_peak,
    rss_mb,
    search_latencies,
    silent,
    time_methods,
    timed,
)
from rag.bench.standins import docs_for_chunks, real_chunker
from rag.bench.synth import SyntheticCorpus
from rag.sparse import SparseIndex


def w_prepare(args: dict[str, Any]) -> dict[str, Any]:
    """The real-subset chunks (synthetic articles, the product's chunker) and the questions."""
    work = Path(args["work"])
    t = time.perf_counter()
    docs, chunks = docs_for_chunks(args["n_chunks"], args["seed"], real_chunker().chunk)
    chunk_s = time.perf_counter() - t
    texts = [c.text for c in chunks]
    (work / "chunks.json").write_text(json.dumps({"n_docs": len(docs), "texts": texts}))
    (work / "questions.json").write_text(json.dumps(gold_questions(repo_root())))
    tokens = [c.n_tokens for c in chunks]
    return {
        "chunks": len(texts), "documents": len(docs),
        "tokens_per_chunk": {"p50": float(np.median(tokens)), "mean": float(np.mean(tokens))},
        "chunking_s": round(chunk_s, 3), "chunking_chunks_per_s": round(len(texts) / chunk_s, 1),
    }


def _raw_encode(embedder: Any, texts: list[str], questions: list[str], work: Path,
                repeat: int) -> dict[str, Any]:
    """Raw encode of the chunk texts in one call with the backend the build uses (torch:
    `model.encode`; ONNX: its batched session run): the ceiling a build can reach.
    Saves the vectors (anchors of the calibrated vectors) and the query vectors."""
    from rag.embedding import SentenceTransformerEmbedder

    if isinstance(embedder, SentenceTransformerEmbedder):
        model = embedder.load()

        def encode(batch: list[str]) -> Any:
            return model.encode(batch, batch_size=32, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)
    else:
        encode = embedder.embed
    t = time.perf_counter()
    vectors = encode(texts)
    encode_s = time.perf_counter() - t
    qvec = encode(questions)
    spec = embedder.identity.get("spec")
    (work / "real_vectors.json").write_text(json.dumps({"spec": spec}))
    one = timed(lambda: embedder.embed([questions[0]]), repeat)
    np.save(work / "real_vectors.npy", np.asarray(vectors, dtype=np.float32))
    np.save(work / "query_vectors.npy", np.asarray(qvec, dtype=np.float32))
    return {"encode_s": round(encode_s, 3), "raw_chunks_per_s": round(len(texts) / encode_s, 2),
            "query_embed_ms": pct(one), "backend": spec}


def w_ours(args: dict[str, Any]) -> dict[str, Any]:
    """Our build on the real subset with the real embedder, then search and ask latency."""
    from rag.embedding import release_freed_memory
    from rag.pipeline import make_index
    from rag.retrieval import Retriever

    work = Path(args["work"])
    meta = json.loads((work / "chunks.json").read_text())
    questions = json.loads((work / "questions.json").read_text())
    corpus = SyntheticCorpus(args["seed"])
    docs = list(corpus.documents(meta["n_docs"]))
    folder = work / "ours_index"
    shutil.rmtree(folder, ignore_errors=True)
    settings = make_settings(index_dir=folder)
    index = make_index(settings, notify=silent)
    chunker = TimedChunker(index.chunker)
    index.chunker = chunker  # type: ignore[assignment]
    embedder = index.embedder
    t = time.perf_counter()
    getattr(embedder, "load", lambda: None)()
    embedder.embed(meta["texts"][:32])  # warm-up, as for the raw encode
    # Libraries are imported before the timed build, as `import txtai` is for the peer:
    # BM25's tokenizer (bm25s, which imports scipy) alone is ~0.3 s, once per process.
    import bm25s  # noqa: F401

    load_s = time.perf_counter() - t
    # The ceiling, measured in this process just before the build, under the same load.
    raw = _raw_encode(embedder, meta["texts"], questions, work, int(args.get("repeat", 20)))
    raw["backend_choice"] = getattr(index, "embedder_choice", None)
    qvecs = np.load(work / "query_vectors.npy")
    if args.get("raw_only"):
        return {"raw_encode": {"model_load_s": round(load_s, 3), **raw},
                "peak_rss_mb": round(peak_rss_mb(), 1)}
    embed_time = time_methods(embedder, ["embed", "embed_with_spans"])
    # The ceiling's own peak is a measurement, not the build: like the peer's worker, the
    # peak below covers the loaded model, the build and the searches.
    # Its freed memory goes back to the OS first: otherwise glibc keeps the ceiling's
    # heap resident and the build's peak would start from the measurement's residue.
    release_freed_memory()
    peak_reset = reset_peak()
    rss0 = rss_mb()
    index.open(create=True, check_config=False)
    t = time.perf_counter()
    report = index.add_documents(docs, sync=True)
    build_s = time.perf_counter() - t
    embed_s = embed_time["seconds"]  # before searches add query embeddings to it
    n = index.counts()[1]
    questions = questions[: int(args.get("queries", len(questions)))]
    retriever = Retriever(index)
    warm = questions[:5]
    for q in warm:
        retriever.search(q, 10, mode="hybrid")
    e2e = {}
    for mode in MODES[::2]:
        lat = []
        for q in questions:
            t = time.perf_counter()
            retriever.search(q, 10, mode=mode)
            lat.append(time.perf_counter() - t)
        e2e[mode] = pct(lat)
    result: dict[str, Any] = {
        "raw_encode": {"model_load_s": round(load_s, 3), **raw},
        "chunks": n, "chunks_match_encode": n == len(meta["texts"]),
        "embedded": report.chunks_embedded, "model_load_s": round(load_s, 3),
        "build_s": round(build_s, 3), "chunking_s": round(chunker.seconds, 3),
        "embedding_s": round(embed_s, 3),
        "indexing_s": round(build_s - chunker.seconds - embed_s, 3),
        "chunks_per_s": round(n / build_s, 2),
        "chunks_per_s_from_chunks": round(n / (build_s - chunker.seconds), 2),
        "search_with_query_embedding": e2e,
        "retrieval": search_latencies(retriever, questions, qvecs[: len(questions)]),
        "retrieval_note": "query vector given; no query embedding",
        "rss_added_mb": round(rss_mb() - rss0, 1),
        "peak_after_ceiling_reset": peak_reset,
    }
    # Peak of build + search only, like the peer's; loading readers comes after.
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    if args.get("skip_ask"):
        result["ask"] = {"skipped": "quick mode"}
    else:
        result["ask"] = _ask_latency(settings, index, questions[: args.get("ask_questions", 20)])
        result["peak_rss_mb_with_readers"] = round(peak_rss_mb(), 1)
    result.update(settled_disk(index))
    return result


def settled_disk(index: Any) -> dict[str, Any]:
    """Bytes of the index's live files once closed (SQLite's write-ahead log checkpointed),
    like the peer's saved folder; the previous generation's files are listed apart."""
    folder = index.folder
    files = (index.read_manifest() or {}).get("files", {})
    index.close()
    sparse = files.get("sparse")
    # The segmented BM25 entry names its segment files; older layouts name one folder.
    bm25 = sorted(SparseIndex.files(sparse)) if isinstance(sparse, dict) else [sparse]
    live = [folder / f for f in ("store.sqlite", files.get("dense"), *bm25, "manifest.json")
            if f and (folder / f).exists()]
    total = sum(dir_bytes(f) for f in live)
    return {"disk_bytes": total, "disk_previous_generation_bytes": dir_bytes(folder) - total,
            "disk_store_bytes": dir_bytes(folder / "store.sqlite")}


def _ask_latency(settings: Any, index: Any, questions: list[str]) -> dict[str, Any]:
    """End-to-end `ask` latency per reader, when the pipeline offers make_qa."""
    import rag.pipeline as pipeline

    make_qa = getattr(pipeline, "make_qa", None)
    if make_qa is None:
        return {"skipped": "rag.pipeline.make_qa does not exist yet (hook: _ask_latency)"}
    out: dict[str, Any] = {}
    # The generative reader takes over a second an answer: a few questions show its cost.
    for reader, n in (("extractive", len(questions)), ("generative", min(5, len(questions)))):
        try:
            t = time.perf_counter()
            qa = make_qa(settings, reader=reader, index=index, notify=silent)
            load_s = time.perf_counter() - t
            lat = []
            for q in questions[:n]:
                if qa.reader.name != reader:  # its optional model could not run: no figure
                    break
                t = time.perf_counter()
                qa.ask(q)
                lat.append(time.perf_counter() - t)
            if qa.reader.name != reader:
                out[reader] = {"skipped": f"{qa.fallback_reason}"[:300]}
                continue
            out[reader] = {"load_s": round(load_s, 3), **pct(lat)}
        except Exception as exc:  # a reader whose extra is not installed is reported, not fatal
            out[reader] = {"skipped": f"{type(exc).__name__}: {exc}"[:300]}
    return out


def w_cold(args: dict[str, Any]) -> dict[str, Any]:
    """Cold start: imports, open the index, load the models, answer one question."""
    t0 = time.perf_counter()
    import rag.pipeline as pipeline

    imported = time.perf_counter()
    settings = make_settings(index_dir=Path(args["index"]))
    make_qa = getattr(pipeline, "make_qa", None)
    if make_qa is not None:
        qa = make_qa(settings, notify=silent)
        ready = time.perf_counter()
        qa.ask(args["question"])
    else:
        from rag.retrieval import Retriever

        index = pipeline.make_index(settings, notify=silent).open()
        retriever = Retriever(index)
        retriever.embed_query("warm up")
        ready = time.perf_counter()
        retriever.search(args["question"], 5)
    done = time.perf_counter()
    return {
        "import_s": round(imported - t0, 3), "ready_s": round(ready - t0, 3),
        "first_answer_s": round(done - ready, 3), "via": "make_qa" if make_qa else "retriever",
        "rss_mb": round(rss_mb(), 1),
    }
