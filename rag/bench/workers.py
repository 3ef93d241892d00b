"""Benchmark workers: each runs in its own process so peak memory and imports don't mix.

Run as `python -m rag.bench.workers NAME ARGS_JSON`; the last stdout line is
`BENCH_RESULT <json>`. `rag.bench.run` starts them and assembles the report.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import resource
import shutil
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.bench.synth import SyntheticCorpus
from rag.chunking import Chunk
from rag.documents import Document

if TYPE_CHECKING:
    from rag.retrieval import Mode

RESULT_PREFIX = "BENCH_RESULT "
NOISE = 0.5  # calibrated: matches real MiniLM neighbour cosines and IVF recall at 2k chunks


# ---------------------------------------------------------------------------- measuring


def rss_mb() -> float:
    """Resident memory of this process now, in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pct(values: Sequence[float]) -> dict[str, float]:
    """p50/p95/mean of latencies given in seconds, as milliseconds."""
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "mean": float("nan"), "n": 0}
    ms = np.asarray(values) * 1000
    return {
        "p50": round(float(np.percentile(ms, 50)), 3),
        "p95": round(float(np.percentile(ms, 95)), 3),
        "mean": round(float(ms.mean()), 3),
        "n": len(values),
    }


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    """Wall seconds of `repeat` calls."""
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def dir_bytes(path: Path) -> int:
    """Total size of the files under `path`."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _silent(_message: str) -> None:
    pass


def make_settings(**overrides: Any) -> Any:
    """The product's Settings (defaults and RAG_ environment) with these fields overridden."""
    from rag.settings import Settings

    values: dict[str, Any] = dict(overrides)
    return Settings(**values)


def gold_questions(root: Path) -> list[str]:
    """Questions of the project's gold files (realistic query text for latency runs)."""
    out: list[str] = []
    for path in sorted((root / "eval" / "gold").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append(json.loads(line)["question"])
    return out or [
        "How much will the government earmark for the innovation centre?",
        "Who is the president of the university?",
        "Where will the facility be built?",
    ]


def repo_root() -> Path:
    """The project folder (seeds/ and eval/ live there)."""
    return Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------- corpus


def real_chunker() -> Any:
    """The product's chunker with the default settings."""
    from rag.chunking import Chunker, HFTokenCounter
    from rag.embedding import DEFAULT_EMBEDDER, resolve_model_dir

    settings = make_settings()
    model_dir, _ = resolve_model_dir(DEFAULT_EMBEDDER)
    return Chunker(
        HFTokenCounter(str(model_dir / "tokenizer.json")),
        max_tokens=settings.chunk_max_tokens, overlap_tokens=settings.chunk_overlap_tokens,
    )


def docs_for_chunks(n_chunks: int, seed: int, chunk: Callable[[Document], list[Chunk]],
                    start: int = 0) -> tuple[list[Document], list[Chunk]]:
    """Synthetic articles, in order, until their chunks number at least `n_chunks`."""
    corpus = SyntheticCorpus(seed)
    docs: list[Document] = []
    chunks: list[Chunk] = []
    i = start
    while len(chunks) < n_chunks:
        doc = corpus.document(i)
        docs.append(doc)
        chunks.extend(chunk(doc))
        i += 1
    return docs, chunks


class ParagraphChunker:
    """One chunk per paragraph (synthetic paragraphs are 60-180 word pieces): the large runs
    skip pysbd, whose cost is measured on the real subset instead."""

    params = {"splitter": "bench-paragraphs", "max_tokens": 180, "overlap_tokens": 0}
    _has_sentences = any(f.name == "sentences" for f in fields(Chunk))

    def chunk(self, doc: Document) -> list[Chunk]:
        """Paragraphs of the body as chunks, with sentence spans split at '. '."""
        out = []
        pos = doc.body_start
        text = doc.text
        for ordinal, para in enumerate(text[pos:].split("\n\n")):
            start = text.index(para, pos)
            pos = start + len(para)
            para = para.strip()
            if not para:
                continue
            start = text.index(para, start)
            end = start + len(para)
            extra: dict[str, Any] = {}
            if self._has_sentences:
                spans, s = [], start
                while (cut := text.find(". ", s, end)) != -1:
                    spans.append((s, cut + 1))
                    s = cut + 2
                spans.append((s, end))
                extra["sentences"] = tuple(spans)
            out.append(Chunk(
                chunk_id=hashlib.sha256(f"{doc.source}\0{start}".encode()).hexdigest()[:24],
                source=doc.source, ordinal=ordinal, start=start, end=end, text=para,
                n_tokens=int(len(para.split()) * 1.3), **extra,
            ))
        return out


class CalibratedVectors:
    """Vectors shaped like real MiniLM embeddings: a random mix of two real chunk vectors
    plus Gaussian noise with their covariance. At 2k chunks this matches the real vectors'
    neighbour cosines and IVF recall curve (see the report), so ANN recall is meaningful,
    unlike for iid random vectors, which have no neighbours at all in 384 dimensions."""

    def __init__(self, anchors: np.ndarray, noise: float = NOISE) -> None:
        self.anchors = np.ascontiguousarray(anchors, dtype=np.float32)
        cov = np.cov(self.anchors.T) + 1e-6 * np.eye(self.anchors.shape[1])
        self.factor = (noise * np.linalg.cholesky(cov)).astype(np.float32)
        self.dim = self.anchors.shape[1]

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """`n` unit vectors."""
        a = rng.random((n, 1), dtype=np.float32)
        pick = rng.integers(0, len(self.anchors), (2, n))
        v = a * self.anchors[pick[0]] + (1 - a) * self.anchors[pick[1]]
        v += rng.standard_normal((n, self.dim), dtype=np.float32) @ self.factor.T
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        return v


class SyntheticEmbedder:
    """Embedder stand-in for the large runs: calibrated vectors, deterministic per batch, at
    no model cost, so those runs measure the index and not the model."""

    def __init__(self, vectors: CalibratedVectors) -> None:
        self.vectors = vectors
        self.dim = vectors.dim
        self._identity = {"name": "bench-calibrated-vectors", "spec": "bench", "package": "",
                          "version": "", "weights_sha256": "bench", "dim": self.dim,
                          "normalize": True}

    @property
    def identity(self) -> dict[str, Any]:
        """A fixed identity (the index manifest records it)."""
        return self._identity

    def _rng(self, texts: Sequence[str]) -> np.random.Generator:
        return np.random.default_rng(zlib.crc32("\0".join(texts[:4]).encode()) + len(texts))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated vectors for `texts`."""
        return self.vectors.draw(len(texts), self._rng(texts))

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Chunk vectors plus (random) sentence vectors, stored like the real ones."""
        rng = self._rng(texts)
        vectors = self.vectors.draw(len(texts), rng)
        sentences = []
        for sp in spans:
            v = rng.standard_normal((len(sp), self.dim), dtype=np.float32)
            sentences.append(v / np.linalg.norm(v, axis=1, keepdims=True))
        return vectors, sentences


class _TimedChunker:
    """Wraps a chunker, adding up the time spent splitting documents."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.params = inner.params
        self.seconds = 0.0

    def chunk(self, doc: Document) -> list[Chunk]:
        """The inner chunker's chunks."""
        t = time.perf_counter()
        try:
            return list(self.inner.chunk(doc))
        finally:
            self.seconds += time.perf_counter() - t


def _time_methods(obj: Any, names: Sequence[str]) -> dict[str, float]:
    """Wrap the named methods of `obj` (instance attributes) to add up their wall time."""
    spent = {"seconds": 0.0}
    for name in names:
        method = getattr(obj, name, None)
        if method is None:
            continue

        def wrapper(*args: Any, _m: Any = method, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return _m(*args, **kwargs)
            finally:
                spent["seconds"] += time.perf_counter() - t

        setattr(obj, name, wrapper)
    return spent


# ---------------------------------------------------------------------------- workers


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
    """Raw `model.encode` of the chunk texts in one call: the ceiling a build can reach.
    Saves the vectors (anchors of the calibrated vectors) and the query vectors."""
    model = embedder.load()
    t = time.perf_counter()
    vectors = model.encode(texts, batch_size=32, normalize_embeddings=True,
                           convert_to_numpy=True, show_progress_bar=False)
    encode_s = time.perf_counter() - t
    qvec = model.encode(questions, batch_size=32, normalize_embeddings=True)
    one = timed(lambda: embedder.embed([questions[0]]), repeat)
    np.save(work / "real_vectors.npy", np.asarray(vectors, dtype=np.float32))
    np.save(work / "query_vectors.npy", np.asarray(qvec, dtype=np.float32))
    return {"encode_s": round(encode_s, 3), "raw_chunks_per_s": round(len(texts) / encode_s, 2),
            "query_embed_ms": pct(one)}


MODES: tuple[Mode, ...] = ("dense", "bm25", "hybrid")


def _search_latencies(retriever: Any, questions: list[str], qvecs: np.ndarray,
                      k: int = 10) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in MODES:
        lat = []
        for q, v in zip(questions, qvecs, strict=True):
            t = time.perf_counter()
            retriever.search(q, k, mode=mode, query_vector=v)
            lat.append(time.perf_counter() - t)
        out[mode] = pct(lat)
    return out


def w_ours(args: dict[str, Any]) -> dict[str, Any]:
    """Our build on the real subset with the real embedder, then search and ask latency."""
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
    index = make_index(settings, notify=_silent)
    chunker = _TimedChunker(index.chunker)
    index.chunker = chunker  # type: ignore[assignment]
    embedder = index.embedder
    t = time.perf_counter()
    getattr(embedder, "load", lambda: None)()
    embedder.embed(meta["texts"][:32])  # warm-up, as for the raw encode
    load_s = time.perf_counter() - t
    # The ceiling, measured in this process just before the build, under the same load.
    raw = _raw_encode(embedder, meta["texts"], questions, work, int(args.get("repeat", 20)))
    qvecs = np.load(work / "query_vectors.npy")
    if args.get("raw_only"):
        return {"raw_encode": {"model_load_s": round(load_s, 3), **raw},
                "peak_rss_mb": round(peak_rss_mb(), 1)}
    embed_time = _time_methods(embedder, ["embed", "embed_with_spans"])
    rss0 = rss_mb()
    index.open(create=True, check_config=False)
    t = time.perf_counter()
    report = index.add_documents(docs, sync=True)
    build_s = time.perf_counter() - t
    embed_s = embed_time["seconds"]  # before searches add query embeddings to it
    n = index.snapshot.dense.ntotal
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
        "retrieval": _search_latencies(retriever, questions, qvecs[: len(questions)]),
        "retrieval_note": "query vector given; no query embedding",
        "rss_added_mb": round(rss_mb() - rss0, 1),
        "disk_bytes": dir_bytes(folder),
    }
    # Peak of build + search only, like the peer's; loading readers comes after.
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    if args.get("skip_ask"):
        result["ask"] = {"skipped": "quick mode"}
    else:
        result["ask"] = _ask_latency(settings, index, questions[: args.get("ask_questions", 20)])
        result["peak_rss_mb_with_readers"] = round(peak_rss_mb(), 1)
    return result


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
            qa = make_qa(settings, reader=reader, index=index, notify=_silent)
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
    torch_vectors = np.load(work / "real_vectors.npy")
    cos = (vectors * torch_vectors).sum(axis=1)
    one = timed(lambda: onnx.embed(["How much will the centre cost?"]), 20)
    result: dict[str, Any] = {
        "chunks": len(texts), "encode_s": round(encode_s, 3),
        "raw_chunks_per_s": round(len(texts) / encode_s, 2), "query_embed_ms": pct(one),
        "cosine_vs_torch": {"mean": round(float(cos.mean()), 5), "min": round(float(cos.min()), 5)},
        "rss_after_encode_mb": round(rss_mb(), 1),
    }
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
                 notify=_silent)


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


def w_cold(args: dict[str, Any]) -> dict[str, Any]:
    """Cold start: imports, open the index, load the models, answer one question."""
    t0 = time.perf_counter()
    import rag.pipeline as pipeline

    imported = time.perf_counter()
    settings = make_settings(index_dir=Path(args["index"]))
    make_qa = getattr(pipeline, "make_qa", None)
    if make_qa is not None:
        qa = make_qa(settings, notify=_silent)
        ready = time.perf_counter()
        qa.ask(args["question"])
    else:
        from rag.retrieval import Retriever

        index = pipeline.make_index(settings, notify=_silent).open()
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
                  factory=factory, notify=_silent)
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
    # Where a write's time goes: BM25 is rebuilt whole (bm25s has no incremental add).
    with store.snapshot():
        ids, texts = store.all_chunk_texts()
    t = time.perf_counter()
    SparseIndex.build(ids, texts)
    result["bm25_rebuild_s"] = round(time.perf_counter() - t, 3)
    del texts
    result["faiss_clone_s"] = round(min(timed(lambda: faiss.clone_index(snap.dense.index), 2)), 3)
    corpus = SyntheticCorpus(seed)
    adds = []
    for j in range(int(args.get("adds", 3))):
        doc = corpus.document(10_000_000 + j)
        t = time.perf_counter()
        index.add_documents([doc])
        adds.append(time.perf_counter() - t)
    result["incremental_add"] = {**pct(adds), "chunks_per_add": len(ParagraphChunker().chunk(doc))}

    retriever = Retriever(index)
    for q, v in zip(questions[:10], qvecs[:10], strict=True):
        retriever.search(q, 10, mode="hybrid", query_vector=v)
    result["search"] = _search_latencies(retriever, questions, qvecs)

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
    live = {"store.sqlite", files.get("dense"), files.get("sparse"), "manifest.json"}
    result["disk"] = {
        "bytes": sum(dir_bytes(folder / f) for f in live if f and (folder / f).exists()),
        "store_bytes": dir_bytes(folder / "store.sqlite"),
        "dense_bytes": dir_bytes(folder / files["dense"]) if "dense" in files else 0,
        "bm25_bytes": dir_bytes(folder / files["sparse"]) if "sparse" in files else 0,
        # The previous generation's FAISS/BM25 files stay for readers still searching them.
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
                      factory=manifest["faiss_factory"], notify=_silent).open(check_config=False)
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


WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "prepare": w_prepare, "ours": w_ours, "txtai": w_txtai, "onnx": w_onnx, "cold": w_cold,
    "scale": w_scale, "open": w_open,
}


def main(argv: Sequence[str]) -> int:
    """Run one worker and print its result line."""
    from rag.embedding import _offline

    _offline()
    name, payload = argv[0], json.loads(argv[1])
    result = WORKERS[name](payload)
    sys.stdout.flush()
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main(sys.argv[1:]))
