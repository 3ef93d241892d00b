"""What every storage backend does the same way on a write: check the batch, decide which
articles changed, chunk them, and embed only chunks whose vectors are not cached.

The embedded folder (`rag.index`) and PostgreSQL (`rag.backends.postgres`) both call these,
so "an unchanged article embeds nothing" and the embedding cache mean the same on both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from rag.chunking import Chunk, Chunker
from rag.documents import Document
from rag.embedding import Embedder
from rag.errors import DuplicateDocument
from rag.store import SentenceCodes

Progress = Callable[[int, int], None]  # (done, total)
EMBED_BATCH = 64


@dataclass
class ChangeReport:
    """What a write did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    chunks_written: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    seconds: float = 0.0
    generation: int = 0

    @property
    def changed(self) -> bool:
        """Whether the index content changed."""
        return bool(self.added or self.updated or self.removed)


class Catalog(Protocol):
    """The stored facts a write plan needs about articles already indexed."""

    def document_hash(self, source: str) -> str | None:
        """The stored content hash of `source`, or None."""
        ...

    def source_of_hash(self, content_hash: str) -> str | None:
        """The source id holding this exact text, or None."""
        ...

    def document_meta(self, source: str) -> tuple[Any, ...] | None:
        """(title, published, url, outlet, body_start) of `source`, or None."""
        ...


Work = list[tuple[Document, list[Chunk]]]


def check_batch(docs: Sequence[Document]) -> None:
    """Refuse a batch that gives one source or one text twice (before anything is written)."""
    seen: dict[str, str] = {}
    for doc in docs:
        if doc.source in seen:
            raise DuplicateDocument(f"{doc.source}: given twice; give each article once")
        if doc.content_hash in seen.values():
            other = next(s for s, h in seen.items() if h == doc.content_hash)
            raise DuplicateDocument(
                f"{doc.source}: same text as {other} in this batch; keep only one of them"
            )
        seen[doc.source] = doc.content_hash


def plan(
    docs: Sequence[Document], catalog: Catalog, chunker: Chunker, report: ChangeReport,
    *, to_remove: Sequence[str] = (), reset: bool = False,
) -> Work:
    """The articles to (re)write with their chunks; fills report.added/updated/unchanged."""
    work: Work = []
    for doc in docs:
        existing = catalog.document_hash(doc.source)
        owner = catalog.source_of_hash(doc.content_hash)
        if owner is not None and owner != doc.source and owner not in to_remove:
            raise DuplicateDocument(
                f"{doc.source}: same text as the indexed article {owner}; not added "
                f"(remove {owner} first if this is a rename)"
            )
        if existing == doc.content_hash and not reset:
            stored = catalog.document_meta(doc.source)
            # Same text read with a better header parser (or given overrides) still
            # has to update its metadata and where its body starts.
            meta = (doc.title, doc.published, doc.url, doc.outlet, doc.body_start)
            if stored == meta:
                report.unchanged.append(doc.source)
                continue
        (report.updated if existing else report.added).append(doc.source)
        work.append((doc, chunker.chunk(doc)))
    return work


def embed_hash(embedder: Embedder, text: str) -> str:
    """The embedding-cache key of a chunk text: the model's weights hash plus the text."""
    weights = embedder.identity.get("weights_sha256", "")
    return hashlib.sha256(f"{weights}\0{text}".encode()).hexdigest()


def chunk_hashes(embedder: Embedder, work: Work) -> tuple[list[list[str]], dict[str, Chunk]]:
    """Cache keys per article's chunks, and one chunk per distinct key."""
    hashes = [[embed_hash(embedder, c.text) for c in chunks] for _, chunks in work]
    flat = {h: c for (_, chunks), hs in zip(work, hashes, strict=True)
            for c, h in zip(chunks, hs, strict=True)}
    return hashes, flat


def relative_spans(chunk: Chunk) -> list[tuple[int, int]]:
    """The chunk's sentence spans relative to the chunk text."""
    spans = chunk.sentences or ((chunk.start, chunk.end),)
    return [(s - chunk.start, e - chunk.start) for s, e in spans]


def embed_chunks(
    embedder: Embedder, chunks: list[Chunk], progress: Progress | None = None
) -> tuple[np.ndarray, list[SentenceCodes]]:
    """Chunk vectors (float16) and per-sentence vectors (int8), in batches.

    Each batch is converted to its stored form at once, so a build holds the vectors at
    the store's size, never float32 for the whole corpus (peak memory; `rag bench`).
    """
    if not chunks:
        return np.zeros((0, embedder.dim), dtype=np.float16), []
    # Batch chunks of similar length together: a batch is padded to its longest text,
    # so unsorted batches spend ~20 % of the model's time on padding (`rag bench`).
    order = sorted(range(len(chunks)), key=lambda j: len(chunks[j].text))
    ordered = [chunks[j] for j in order]
    # Filled in place in the callers' order: no stacked second copy of all vectors.
    vectors = np.empty((len(chunks), embedder.dim), dtype=np.float16)
    by_chunk: list[SentenceCodes | None] = [None] * len(chunks)
    for i in range(0, len(ordered), EMBED_BATCH):
        batch = ordered[i : i + EMBED_BATCH]
        texts = [c.text for c in batch]
        spans = [relative_spans(c) for c in batch]
        with_spans = getattr(embedder, "embed_with_spans", None)
        if with_spans is not None:
            v, sv = with_spans(texts, spans)
        else:  # an embedder without token outputs embeds each sentence on its own
            v = embedder.embed(texts)
            sv = [embedder.embed([t[a:b] for a, b in sp]) for t, sp in zip(texts, spans,
                                                                          strict=True)]
        rows = order[i : i + EMBED_BATCH]
        vectors[rows] = v
        for j, x in zip(rows, sv, strict=True):
            by_chunk[j] = SentenceCodes.quantize(x)
        if progress:
            progress(min(i + EMBED_BATCH, len(chunks)), len(chunks))
    return vectors, [x for x in by_chunk if x is not None]
