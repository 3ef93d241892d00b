"""The storage seam: what the retriever, readers, eval, CLI and API call on an index.

Two implementations: `rag.index.Index` (the embedded folder: SQLite + FAISS + BM25, the
default) and `rag.backends.postgres.PostgresIndex` (PostgreSQL + pgvector, chosen by
`RAG_DATABASE_URL` / `--database-url`). Nothing above this seam knows which one it runs on.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol, Self

import numpy as np

from rag.chunking import Chunker
from rag.documents import Document
from rag.embedding import Embedder
from rag.ingest import ChangeReport, Progress
from rag.store import DocumentInfo, StoredChunk

if TYPE_CHECKING:
    from rag.retrieval import Filters

Ranked = list[tuple[int, float]]  # (chunk row id, score), best first
SentenceVectors = dict[int, list[tuple[int, int, np.ndarray]]]


class SearchView(Protocol):
    """One consistent state of the index, held for the length of one query."""

    @property
    def generation(self) -> int:
        """The committed write this view shows."""
        ...

    def dense(self, vector: np.ndarray, k: int, filters: Filters | None) -> Ranked:
        """Top-k chunks by cosine similarity to a normalised query vector."""
        ...

    def keyword(self, query: str, k: int, filters: Filters | None) -> Ranked:
        """Top-k chunks by keyword relevance (only chunks that match at all)."""
        ...

    def chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        """Chunk rows with their article's metadata (ids no longer stored are omitted)."""
        ...


class SearchIndex(Protocol):
    """An index of articles: writes, listings, and consistent search views."""

    embedder: Embedder
    chunker: Chunker

    @property
    def location(self) -> str:
        """Where it lives, for messages (a folder, or a database URL without password)."""
        ...

    @property
    def exists(self) -> bool:
        """Whether an index has been created there."""
        ...

    @property
    def generation(self) -> int:
        """Number of committed writes this handle currently serves."""
        ...

    def open(self, *, create: bool = False, check_config: bool = True) -> Self:
        """Connect and load; IndexNotFound unless it exists or `create`."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...

    def reload_if_changed(self) -> bool:
        """Pick up writes made by other processes; True when something changed."""
        ...

    def add_documents(
        self, docs: Sequence[Document], *, sync: bool = False,
        progress: Progress | None = None, lock_timeout: float = 0.0,
    ) -> ChangeReport:
        """Add or update articles (unchanged ones skipped, cached vectors reused)."""
        ...

    def remove(self, sources: Sequence[str], *, lock_timeout: float = 0.0) -> ChangeReport:
        """Remove articles by source id; unknown ids raise before anything changes."""
        ...

    def list_documents(self) -> list[DocumentInfo]:
        """Every indexed article, newest first."""
        ...

    def get_document(self, source: str) -> Document | None:
        """The stored article, or None."""
        ...

    def counts(self) -> tuple[int, int]:
        """(documents, chunks)."""
        ...

    def view(self) -> AbstractContextManager[SearchView]:
        """A consistent state to search in (one generation for the whole query)."""
        ...

    def chunks_by_ids(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        """Chunk rows with their article's metadata, keyed by row id."""
        ...

    def sentence_vectors_for(self, ids: Sequence[int]) -> SentenceVectors:
        """Pooled sentence vectors of these chunks: id -> [(doc start, doc end, vector)]."""
        ...

    def idf(self, terms: Sequence[str]) -> dict[str, float]:
        """BM25-style idf of each stemmed term over the chunks (for the readers)."""
        ...

    def check_consistency(self) -> dict[str, int]:
        """Counts that must agree in a healthy index; RagError when they do not."""
        ...
