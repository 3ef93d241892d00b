"""Wiring: settings → embedder, chunker, index, retriever (and later the reader)."""

from __future__ import annotations

from pathlib import Path

from rag.chunking import Chunker, HFTokenCounter
from rag.embedding import SentenceTransformerEmbedder, make_embedder
from rag.index import Index, Notify, _stderr
from rag.settings import Settings


def make_index(settings: Settings, *, index_dir: Path | None = None,
               notify: Notify = _stderr) -> Index:
    """An (unopened) Index handle configured from settings; no model is loaded yet."""
    embedder = make_embedder(settings.embedder, batch_size=settings.embed_batch_size)
    assert isinstance(embedder, SentenceTransformerEmbedder)
    chunker = Chunker(
        HFTokenCounter(str(embedder.tokenizer_json)),
        max_tokens=settings.chunk_max_tokens,
        overlap_tokens=settings.chunk_overlap_tokens,
    )
    return Index(
        index_dir or settings.index_dir, embedder, chunker,
        factory=settings.faiss_factory, notify=notify,
    )
