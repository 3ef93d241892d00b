"""The dense side: a FAISS inner-product index keyed by chunk row id."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.atomic import write_atomic

DEFAULT_FACTORY = "IDMap2,Flat"
# Measured on the 2-core machines (`rag bench`): exact Flat search costs ~0.08 ms per 1,000
# vectors (p50 1.5 ms at 20k, 7.7 ms at 100k), while IVF stays under 0.5 ms at recall@10
# >= 0.95. Past this size an approximate index is worth its small recall loss.
FLAT_MAX_CHUNKS = 20_000
DEFAULT_NPROBE = 32
MIN_TRAIN_PER_LIST = 39  # FAISS k-means wants at least this many training points per list


def ivf_lists(n_chunks: int) -> int:
    """IVF list count for a corpus: ~4*sqrt(n) as a power of two, >= 39 training points each."""
    target = 4 * math.sqrt(max(n_chunks, 1))
    nlist = 1 << max(0, round(math.log2(target)))
    while nlist > 1 and nlist * MIN_TRAIN_PER_LIST > n_chunks:
        nlist //= 2
    return nlist


AUTO_FACTORY = "auto"  # pick by corpus size (choose_factory), and move as the corpus grows


def layout_outgrown(current: str, n_chunks: int) -> bool:
    """Whether an index built as `current` no longer suits `n_chunks` (under "auto").

    Flat past FLAT_MAX_CHUNKS, IVF back under it, or IVF lists 4x too few or too many
    (the corpus grew or shrank ~16x): rebuild from the stored vectors, no re-embedding.
    """
    wanted = choose_factory(n_chunks)
    if ("IVF" in current) != ("IVF" in wanted):
        return True
    if "IVF" not in current:
        return False
    have = re.search(r"IVF(\d+)", current)
    want = re.search(r"IVF(\d+)", wanted)
    if have is None or want is None:
        return True
    ratio = int(want[1]) / int(have[1])
    return ratio >= 4 or ratio <= 0.25


def choose_factory(n_chunks: int) -> str:
    """FAISS factory for a corpus size: exact Flat up to FLAT_MAX_CHUNKS, IVF-SQ8 past it.

    IVF keeps arbitrary int64 ids and supports remove_ids (HNSW does not), so incremental
    add/remove keeps working; SQ8 stores a vector in 384 bytes instead of 1,536.
    """
    if n_chunks <= FLAT_MAX_CHUNKS:
        return DEFAULT_FACTORY
    return f"IVF{ivf_lists(n_chunks)},SQ8"


class DenseIndex:
    """FAISS index over normalised vectors; ids are chunk row ids so add/remove need no rebuild."""

    def __init__(self, dim: int, factory: str = DEFAULT_FACTORY, index: Any = None,
                 *, nprobe: int | None = None):
        import faiss

        self.dim = dim
        self.factory = factory
        # Any: FAISS's stubs type only the base Index, not IVF fields or SWIG keyword args.
        self.index: Any = index if index is not None else faiss.index_factory(
            dim, factory, faiss.METRIC_INNER_PRODUCT
        )
        self.path: Path | None = None  # set when loaded memory-mapped (read-only)
        if index is None or nprobe is not None:
            self.set_nprobe(nprobe or DEFAULT_NPROBE)
        ivf = self._ivf()
        if index is not None and ivf is not None:
            # A given index may have fewer lists than the factory asked for (see _fit_lists).
            self.factory = re.sub(r"IVF\d+", f"IVF{int(ivf.nlist)}", factory, count=1)

    def _ivf(self) -> Any:
        import faiss

        return faiss.try_extract_index_ivf(self.index)

    @property
    def nprobe(self) -> int | None:
        """IVF lists probed per search (None for an exact index); saved with the index."""
        ivf = self._ivf()
        return int(ivf.nprobe) if ivf is not None else None

    def set_nprobe(self, nprobe: int) -> None:
        """Set how many IVF lists a search probes (more: higher recall, slower); no-op for Flat."""
        if nprobe < 1:
            raise ValueError(f"nprobe must be >= 1, got {nprobe}")
        ivf = self._ivf()
        if ivf is not None:
            ivf.nprobe = min(nprobe, int(ivf.nlist))

    @property
    def ntotal(self) -> int:
        """Number of vectors held."""
        return int(self.index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under the given chunk ids."""
        if len(ids):
            vectors = np.ascontiguousarray(vectors, dtype=np.float32)
            if not self.index.is_trained:
                self._fit_lists(len(vectors))
                self.index.train(vectors)
            self.index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))

    @property
    def training_points(self) -> int:
        """How many vectors training wants (0 if trained or not an IVF index)."""
        ivf = self._ivf()
        if ivf is None or self.index.is_trained:
            return 0
        # FAISS's k-means subsamples to 256 points per list anyway.
        return int(ivf.nlist) * 256

    def train(self, vectors: np.ndarray) -> None:
        """Train an IVF index on a sample drawn from the whole corpus (before any add)."""
        if not self.index.is_trained and len(vectors):
            self._fit_lists(len(vectors))
            self.index.train(np.ascontiguousarray(vectors, dtype=np.float32))

    def _fit_lists(self, n_train: int) -> None:
        """Shrink an untrained IVF's list count to what `n_train` vectors can train well.

        Callers that add in batches train on the first batch only; k-means on too few points
        per list gives poor lists and low recall, so fewer, well-trained lists are better.
        """
        import faiss

        ivf = self._ivf()
        if ivf is None or int(ivf.nlist) * MIN_TRAIN_PER_LIST <= n_train:
            return
        nlist = max(1, n_train // MIN_TRAIN_PER_LIST)
        nlist = 1 << (nlist.bit_length() - 1)
        nprobe = int(ivf.nprobe)
        self.factory = re.sub(r"IVF\d+", f"IVF{nlist}", self.factory, count=1)
        self.index = faiss.index_factory(self.dim, self.factory, faiss.METRIC_INNER_PRODUCT)
        self.set_nprobe(nprobe)

    def remove(self, ids: Sequence[int]) -> None:
        """Remove the vectors of these chunk ids."""
        if len(ids):
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Top-k (chunk id, cosine) for one query vector, optionally within `allowed` ids."""
        import faiss

        if self.ntotal == 0 or k <= 0:
            return []
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        params: Any = None
        ivf = self._ivf()
        if allowed is not None:
            if len(allowed) == 0:
                return []
            sel = faiss.IDSelectorBatch(allowed.astype(np.int64))
            if ivf is not None:
                # A filter may leave the probed lists empty: probe them all, which stays cheap
                # because the selector is checked before any distance is computed.
                params = faiss.SearchParametersIVF()
                params.nprobe = int(ivf.nlist)
            else:
                params = faiss.SearchParameters()
            params.sel = sel
        # One query gains nothing from OpenMP (FAISS splits work by query), and on a busy
        # 2-core machine its thread barrier cost ~45 ms a search (measured by `rag bench`).
        # The thread count is per calling thread in OpenMP, so this is safe under concurrency.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            scores, ids = self.index.search(q, min(k, self.ntotal), params=params)
        finally:
            faiss.omp_set_num_threads(threads)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i != -1]

    def save(self, path: Path) -> None:
        """Write the index atomically."""
        import faiss

        write_atomic(path, lambda tmp: faiss.write_index(self.index, str(tmp)))

    def clone(self) -> DenseIndex:
        """A private, writable copy (a memory-mapped index is re-read from its file)."""
        import faiss

        if self.path is not None:
            index = faiss.read_index(str(self.path))
        else:
            index = faiss.clone_index(self.index)
        return DenseIndex(self.dim, self.factory, index)

    @classmethod
    def load(cls, path: Path, dim: int, factory: str, *, mmap: bool = False) -> DenseIndex:
        """Read an index written by `save`; raises if the file is missing or corrupt.

        `mmap=True` maps an IVF index's lists from the file instead of reading them: opening
        is instant and pages are shared between processes, but the index is read-only
        (write through `clone()`). Flat indexes are always read into memory.
        """
        import faiss

        if not path.exists():
            raise FileNotFoundError(path)
        # Only IVF lists are safely mappable: FAISS 1.15 segfaults cloning a mapped Flat.
        flags = faiss.IO_FLAG_MMAP if mmap and "IVF" in factory else 0
        index = faiss.read_index(str(path), flags)
        if index.d != dim:
            raise ValueError(f"{path}: dimension {index.d}, expected {dim}")
        dense = cls(dim, factory, index)
        if flags:
            dense.path = path
        return dense
