"""The dense side: a FAISS inner-product index keyed by chunk row id."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.atomic import write_atomic

DEFAULT_FACTORY = "IDMap2,Flat"


class DenseIndex:
    """FAISS index over normalised vectors; ids are chunk row ids so add/remove need no rebuild."""

    def __init__(self, dim: int, factory: str = DEFAULT_FACTORY, index: object | None = None):
        import faiss

        self.dim = dim
        self.factory = factory
        self.index = index if index is not None else faiss.index_factory(
            dim, factory, faiss.METRIC_INNER_PRODUCT
        )

    @property
    def ntotal(self) -> int:
        """Number of vectors held."""
        return int(self.index.ntotal)  # type: ignore[attr-defined]

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under the given chunk ids."""
        if len(ids):
            vectors = np.ascontiguousarray(vectors, dtype=np.float32)
            if not self.index.is_trained:  # type: ignore[attr-defined]
                self.index.train(vectors)  # type: ignore[attr-defined]
            self.index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))  # type: ignore[attr-defined]

    def remove(self, ids: Sequence[int]) -> None:
        """Remove the vectors of these chunk ids."""
        if len(ids):
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))  # type: ignore[attr-defined]

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Top-k (chunk id, cosine) for one query vector, optionally within `allowed` ids."""
        import faiss

        if self.ntotal == 0 or k <= 0:
            return []
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        params = None
        if allowed is not None:
            if len(allowed) == 0:
                return []
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed.astype(np.int64)))
        scores, ids = self.index.search(q, min(k, self.ntotal), params=params)  # type: ignore[attr-defined]
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i != -1]

    def save(self, path: Path) -> None:
        """Write the index atomically."""
        import faiss

        write_atomic(path, lambda tmp: faiss.write_index(self.index, str(tmp)))

    @classmethod
    def load(cls, path: Path, dim: int, factory: str) -> DenseIndex:
        """Read an index written by `save`; raises if the file is missing or corrupt."""
        import faiss

        if not path.exists():
            raise FileNotFoundError(path)
        index = faiss.read_index(str(path))
        if index.d != dim:
            raise ValueError(f"{path}: dimension {index.d}, expected {dim}")
        return cls(dim, factory, index)
