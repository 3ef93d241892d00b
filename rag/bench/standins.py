"""Chunks and vectors for the runs: the product's chunker on synthetic articles for the real
subset, and for the large runs stand-ins at no model cost (one chunk per paragraph,
calibrated vectors shaped like real MiniLM embeddings, an embedder that returns them)."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any

import numpy as np

from rag.bench.measure import make_settings
from rag.bench.synth import SyntheticCorpus
from rag.chunking import Chunk
from rag.documents import Document

NOISE = 0.5  # calibrated: matches real MiniLM neighbour cosines and IVF recall at 2k chunks


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
