"""Immutable BM25 segments: the postings of one batch of chunks, written once, merged later.

A segment keeps raw term frequencies and document lengths, never scores, so that scores can
use the statistics of the whole index (N, mean length, document frequency) at query time and
a new segment never forces the old ones to be rewritten (Lucene's design).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from rag.atomic import write_atomic

SEGMENT_PREFIX, SEGMENT_SUFFIX = "bm25-seg-", ".npz"
_MAX_TF = np.iinfo(np.uint16).max  # a chunk is a few hundred tokens; the clip never bites


class Segment:
    """Term-major postings over `ids` (ascending chunk ids): term `terms[t]` occurs in local
    documents `docs[indptr[t]:indptr[t+1]]` with frequencies `tf[...]`."""

    def __init__(
        self, name: str, ids: np.ndarray, lengths: np.ndarray, terms: Sequence[str],
        indptr: np.ndarray, docs: np.ndarray, tf: np.ndarray,
    ) -> None:
        self.name = name
        self.ids = ids
        self.lengths = lengths
        self.terms = list(terms)
        self.indptr = indptr
        self.docs = docs
        self.tf = tf
        self.total_length = int(lengths.sum())
        self._tfc: tuple[tuple[float, float, float], np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def vocab(self) -> dict[str, int]:
        """Term → row in `indptr`."""
        return {t: i for i, t in enumerate(self.terms)}

    @property
    def filename(self) -> str:
        """The segment's file name inside the index folder."""
        return f"{SEGMENT_PREFIX}{self.name}{SEGMENT_SUFFIX}"

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(local docs, term frequencies) of `term`, or None when absent."""
        row = self.vocab.get(term)
        if row is None:
            return None
        a, b = self.indptr[row], self.indptr[row + 1]
        return self.docs[a:b], self.tf[a:b]

    def tfc(self, avgdl: float, k1: float, b: float) -> np.ndarray:
        """BM25's term-frequency part per posting, tf / (tf + k1·(1 − b + b·dl/avgdl)).

        Cached for one mean length: computing it per query would cost several passes over
        every posting (bm25s precomputes whole scores for the same reason).
        """
        key = (avgdl, k1, b)
        if self._tfc is None or self._tfc[0] != key:
            norm = (k1 * ((1 - b) + b * self.lengths / avgdl)).astype(np.float32)
            tf = self.tf.astype(np.float32)
            self._tfc = (key, tf / (tf + norm[self.docs]))
        return self._tfc[1]

    def dead_in(self, row: int, dead: np.ndarray, live: np.ndarray | None) -> int:
        """How many of the postings of term row `row` are in `dead` (sorted local docs)."""
        a, b = int(self.indptr[row]), int(self.indptr[row + 1])
        if not len(dead):
            return 0
        docs = self.docs[a:b]
        if live is not None and len(dead) * 8 > b - a:
            return int(b - a - np.count_nonzero(live[docs]))
        # Postings are sorted by document: look the few dead ones up.
        pos = np.minimum(np.searchsorted(docs, dead), max(b - a - 1, 0))
        return int(np.count_nonzero(docs[pos] == dead)) if b > a else 0

    def positions(self, chunk_ids: np.ndarray) -> np.ndarray:
        """Local positions of those of `chunk_ids` (sorted) that this segment holds."""
        if not len(self.ids) or not len(chunk_ids):
            return np.zeros(0, dtype=np.int64)
        lo, hi = np.searchsorted(chunk_ids, [self.ids[0], self.ids[-1] + 1])
        candidates = chunk_ids[lo:hi]
        pos = np.searchsorted(self.ids, candidates)
        return pos[self.ids[np.minimum(pos, len(self.ids) - 1)] == candidates]

    def save(self, folder: Path) -> None:
        """Write the segment file atomically (a segment never changes once written)."""
        blob = np.frombuffer("\n".join(self.terms).encode("utf-8"), dtype=np.uint8)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(fh, ids=self.ids, lengths=self.lengths, indptr=self.indptr,
                         docs=self.docs, tf=self.tf, terms=blob,
                         n_terms=np.asarray([len(self.terms)], dtype=np.int64))

        write_atomic(folder / self.filename, write)

    @classmethod
    def load(cls, folder: Path, name: str) -> Segment:
        """Read a segment file; raises if it is missing or inconsistent."""
        with np.load(folder / f"{SEGMENT_PREFIX}{name}{SEGMENT_SUFFIX}") as z:
            arrays = {k: z[k] for k in ("ids", "lengths", "indptr", "docs", "tf", "terms",
                                        "n_terms")}
        text = arrays["terms"].tobytes().decode("utf-8")
        terms = text.split("\n") if int(arrays["n_terms"][0]) else []
        ids, indptr = arrays["ids"], arrays["indptr"]
        if (len(terms) != int(arrays["n_terms"][0]) or len(indptr) != len(terms) + 1
                or len(arrays["lengths"]) != len(ids) or indptr[-1] != len(arrays["docs"])
                or len(arrays["tf"]) != len(arrays["docs"])):
            raise ValueError(f"segment {name} is inconsistent")
        segment = cls(name, ids, arrays["lengths"], terms, indptr, arrays["docs"], arrays["tf"])
        segment.vocab  # noqa: B018 - built here, not by the first search
        return segment


def new_name() -> str:
    """A fresh segment name (never reused, so a file name always means the same content)."""
    return uuid.uuid4().hex[:16]


def build_segment(ids: np.ndarray, token_ids: Sequence[Sequence[int]],
                  vocab: dict[str, int]) -> Segment:
    """A segment from bm25s-style tokens: per-document token ids and their vocabulary."""
    ids = np.asarray(ids, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    lengths = np.fromiter((len(token_ids[j]) for j in order), dtype=np.int32, count=len(ids))
    flat = np.fromiter((t for j in order for t in token_ids[j]), dtype=np.int64,
                       count=int(lengths.sum()))
    # Terms sorted alphabetically, so segments merge without sorting postings again.
    sorted_names = sorted(vocab)
    rank = np.empty(len(vocab), dtype=np.int64)
    rank[[vocab[t] for t in sorted_names]] = np.arange(len(sorted_names))
    doc_of = np.repeat(np.arange(len(ids), dtype=np.int64), lengths)
    n = max(len(ids), 1)
    keys, tf = np.unique(rank[flat] * n + doc_of, return_counts=True) if len(flat) else (
        np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    term_of, docs = keys // n, keys % n
    used = np.unique(term_of)  # stems of stop-word-only tokens never occur: drop unused rows
    remap = np.full(len(sorted_names), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    counts = np.bincount(remap[term_of], minlength=len(used))
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Segment(new_name(), ids[order], lengths, [sorted_names[i] for i in used], indptr,
                   docs.astype(np.int32), np.minimum(tf, _MAX_TF).astype(np.uint16))


def merge_segments(segments: Sequence[Segment], deleted: np.ndarray) -> Segment:
    """One segment holding the live documents of `segments` (`deleted`: sorted chunk ids).

    Linear in the postings: each input's terms are sorted, so every input posting's place
    in the output follows from per-term counts, with no sort of the postings themselves.
    """
    terms = sorted(set().union(*(s.terms for s in segments)))
    index_of = {t: i for i, t in enumerate(terms)}
    n_terms = len(terms)
    parts = []  # (global term of each kept posting, new doc, tf) per input
    ids_out, lengths_out = [], []
    offset = 0
    for seg in segments:
        live = np.ones(len(seg), dtype=bool)
        live[seg.positions(deleted)] = False
        new_pos = np.cumsum(live, dtype=np.int64) - 1 + offset
        rows = np.fromiter((index_of[t] for t in seg.terms), dtype=np.int64, count=len(seg.terms))
        term_of = np.repeat(rows, np.diff(seg.indptr))
        keep = live[seg.docs]
        parts.append((term_of[keep], new_pos[seg.docs[keep]], seg.tf[keep]))
        ids_out.append(seg.ids[live])
        lengths_out.append(seg.lengths[live])
        offset += int(live.sum())
    counts = np.zeros((len(parts), n_terms), dtype=np.int64)
    for k, (term_of, _, _) in enumerate(parts):
        counts[k] = np.bincount(term_of, minlength=n_terms)
    total = counts.sum(axis=0)
    indptr = np.concatenate([[0], np.cumsum(total)]).astype(np.int64)
    before = np.cumsum(counts, axis=0) - counts  # postings of each term in earlier inputs
    docs = np.empty(int(indptr[-1]), dtype=np.int32)
    tf = np.empty(int(indptr[-1]), dtype=np.uint16)
    for k, (term_of, new_docs, freqs) in enumerate(parts):
        local_start = np.concatenate([[0], np.cumsum(counts[k])])[:-1]
        rank = np.arange(len(term_of), dtype=np.int64) - local_start[term_of]
        dest = indptr[:-1][term_of] + before[k][term_of] + rank
        docs[dest] = new_docs
        tf[dest] = freqs
    ids = np.concatenate(ids_out) if ids_out else np.zeros(0, dtype=np.int64)
    lengths = np.concatenate(lengths_out) if lengths_out else np.zeros(0, dtype=np.int32)
    if len(ids) > 1 and np.any(ids[1:] < ids[:-1]):
        # Inputs whose id ranges interleave: renumber documents into ascending id order.
        order = np.argsort(ids, kind="stable")
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        ids, lengths, docs = ids[order], lengths[order], inverse[docs].astype(np.int32)
        # Keep each term's postings sorted by document (lookups of dead ones rely on it).
        term_of = np.repeat(np.arange(n_terms), np.diff(indptr))
        resort = np.lexsort((docs, term_of))
        docs, tf = docs[resort], tf[resort]
    used = total > 0
    if not used.all():  # terms whose every document was deleted
        terms = [t for t, u in zip(terms, used, strict=True) if u]
        indptr = np.concatenate([[0], np.cumsum(total[used])]).astype(np.int64)
    merged = Segment(new_name(), ids, lengths, terms, indptr, docs, tf)
    merged.vocab  # noqa: B018 - built by the merge, off the search path
    return merged
