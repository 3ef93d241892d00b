"""Comparisons on the same real chunks: the txtai peer, and the int8 ONNX embedder against
torch (speed, agreement, gold recall@5)."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.bench.measure import (
    dir_bytes,
    make_settings,
    pct,
    peak_rss_mb,
    repo_root,
    rss_mb,
    silent,
    timed,
)
from rag.bench.synth import SyntheticCorpus

if TYPE_CHECKING:
    from rag.retrieval import Mode


def w_txtai(args: dict[str, Any]) -> dict[str, Any]:
    """The peer: txtai with the same MiniLM folder and the same chunks, hybrid like ours."""
    rss_start = rss_mb()
    try:
        import txtai
    except ImportError:
        return {"skipped": "txtai is not installed (pip install txtai==9.14.0)"}
    from rag.embedding import DEFAULT_EMBEDDER, resolve_model_dir

    work = Path(args["work"])
    texts = json.loads((work / "chunks.json").read_text())["texts"]
    questions = json.loads((work / "questions.json").read_text())
    questions = questions[: int(args.get("queries", len(questions)))]
    model_dir, _ = resolve_model_dir(DEFAULT_EMBEDDER)
    t = time.perf_counter()
    emb = txtai.Embeddings(path=str(model_dir), content=True, hybrid=True)
    emb.batchtransform(texts[:32])  # loads the model and warms up, as ours does
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    emb.index([(i, text, None) for i, text in enumerate(texts)])
    build_s = time.perf_counter() - t
    folder = work / "txtai_index"
    shutil.rmtree(folder, ignore_errors=True)
    emb.save(str(folder))
    for q in questions[:5]:
        emb.search(q, 10)
    lat = []
    for q in questions:
        t = time.perf_counter()
        emb.search(q, 10)
        lat.append(time.perf_counter() - t)
    return {
        "name": "txtai", "version": importlib.metadata.version("txtai"),
        "config": {"content": True, "hybrid": True, "backend": emb.config.get("backend"),
                   "components": emb.config.get("build", {}).get("settings", {})},
        "chunks": emb.count(), "model_load_s": round(load_s, 3), "build_s": round(build_s, 3),
        "chunks_per_s": round(len(texts) / build_s, 2),
        "search_with_query_embedding": {"hybrid": pct(lat)},
        "disk_bytes": dir_bytes(folder), "rss_start_mb": round(rss_start, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def w_onnx(args: dict[str, Any]) -> dict[str, Any]:
    """int8 ONNX vs torch: encode speed on the same chunks, agreement, and gold recall@5."""
    from rag.embedding import ONNX_EMBEDDER, OnnxEmbedder

    work = Path(args["work"])
    texts = json.loads((work / "chunks.json").read_text())["texts"]
    try:
        onnx = OnnxEmbedder(ONNX_EMBEDDER)
        onnx.load()
    except Exception as exc:
        return {"skipped": f"{type(exc).__name__}: {exc}"[:300]}
    onnx.embed(texts[:32])
    t = time.perf_counter()
    vectors = onnx.embed(texts)
    encode_s = time.perf_counter() - t
    from rag.embedding import DEFAULT_EMBEDDER, make_embedder

    made_by = json.loads((work / "real_vectors.json").read_text()).get("spec") if (
        work / "real_vectors.json").exists() else DEFAULT_EMBEDDER
    torch_rate = None
    if made_by == DEFAULT_EMBEDDER:
        torch_vectors = np.load(work / "real_vectors.npy")
    else:  # the build chose ONNX: embed the torch reference here, in this worker only
        reference = make_embedder(DEFAULT_EMBEDDER)
        reference.embed(texts[:32])
        t = time.perf_counter()
        torch_vectors = reference.embed(texts)
        torch_rate = round(len(texts) / (time.perf_counter() - t), 2)
    cos = (vectors * torch_vectors).sum(axis=1)
    one = timed(lambda: onnx.embed(["How much will the centre cost?"]), 20)
    result: dict[str, Any] = {
        "chunks": len(texts), "encode_s": round(encode_s, 3),
        "raw_chunks_per_s": round(len(texts) / encode_s, 2), "query_embed_ms": pct(one),
        "cosine_vs_torch": {"mean": round(float(cos.mean()), 5), "min": round(float(cos.min()), 5)},
        "rss_after_encode_mb": round(rss_mb(), 1),
    }
    if torch_rate is not None:
        result["torch_raw_chunks_per_s"] = torch_rate
    result["gold"] = _gold_recall(work, args.get("distractors", 60), args["seed"])
    return result


def _index_for(settings: Any) -> Any:
    """make_index for any embedder (rag.pipeline.make_index accepts only the torch one)."""
    from rag.chunking import Chunker, HFTokenCounter
    from rag.embedding import make_embedder
    from rag.index import Index

    embedder = make_embedder(settings.embedder, batch_size=settings.embed_batch_size)
    chunker = Chunker(
        HFTokenCounter(str(embedder.tokenizer_json)),  # type: ignore[attr-defined]
        max_tokens=settings.chunk_max_tokens, overlap_tokens=settings.chunk_overlap_tokens,
    )
    return Index(settings.index_dir, embedder, chunker, factory=settings.faiss_factory,
                 notify=silent)


def _gold_recall(work: Path, distractors: int, seed: int) -> dict[str, Any]:
    """recall@5 on the gold set, seeds plus synthetic distractor articles, per embedder."""
    from rag.documents import read_document
    from rag.embedding import DEFAULT_EMBEDDER, ONNX_EMBEDDER
    from rag.metrics import Span, load_gold, locate_evidence, recall_at_k
    from rag.retrieval import Retriever

    root = repo_root()
    gold_files = sorted((root / "eval" / "gold").glob("*.jsonl"))
    if not gold_files:
        return {"skipped": "no eval/gold/*.jsonl"}
    items = [i for f in gold_files for i in load_gold(f) if i.answerable]
    seeds = [read_document(p) for p in sorted((root / "seeds").glob("*.txt"))]
    docs = seeds + list(SyntheticCorpus(seed + 1).documents(distractors))
    texts = {d.source: d.text for d in docs}
    out: dict[str, Any] = {"questions": len(items), "distractor_docs": distractors}
    for name, spec in (("torch", DEFAULT_EMBEDDER), ("onnx", ONNX_EMBEDDER)):
        folder = work / f"gold_{name}"
        shutil.rmtree(folder, ignore_errors=True)
        index = _index_for(make_settings(index_dir=folder, embedder=spec))
        index.open(create=True, check_config=False)
        t = time.perf_counter()
        index.add_documents(docs, sync=True)
        build_s = time.perf_counter() - t
        retriever = Retriever(index)
        scores: dict[Mode, list[float]] = {"dense": [], "hybrid": []}
        for item in items:
            try:
                evidence = locate_evidence(item, texts)
            except ValueError:
                continue
            vector = retriever.embed_query(item.question)
            for mode in scores:
                hits = retriever.search(item.question, 5, mode=mode, query_vector=vector)
                spans = [Span(h.source, h.start, h.end, h.text) for h in hits]
                scores[mode].append(recall_at_k(spans, evidence, 5))
        out[name] = {
            "build_s": round(build_s, 2), "chunks": index.snapshot.dense.ntotal,
            **{f"recall@5.{m}": round(float(np.mean(v)), 4) for m, v in scores.items()},
        }
        index.close()
    return out
