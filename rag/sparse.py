"""The sparse side: BM25 over chunk texts, keyed by chunk row id, kept as segments.

bm25s tokenises; the index itself is a list of immutable segments (rag/segments.py) plus a
set of deleted chunk ids, so adding or removing an article costs the article, not the corpus.
Scores use statistics over all live chunks, so they equal a one-shot bm25s build's.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from rag.atomic import write_atomic
from rag.segments import (
    SEGMENT_PREFIX,
    SEGMENT_SUFFIX,
    Segment,
    build_segment,
    merge_segments,
    new_name,
)

K1, B = 1.5, 0.75  # BM25 term-frequency saturation and length normalisation
BM25_PARAMS = {
    "method": "lucene", "k1": K1, "b": B, "stopwords": "nltk-en+question", "stemmer": "english",
    "spelling": "british->american v1",
}
# Question words carry no topic: "how much", "would", "according" must not match passages.
_EXTRA_STOPWORDS = ("much", "many", "would", "could", "also", "according", "whose", "said")
_WORD_RE = re.compile(r"(?u)\b\w\w+\b")


# British and American spellings of the same word must meet: questions say "centre" where
# an article says "center". Applied to the lower-cased word before stemming.
_SPELLING = (
    (re.compile(r"(?<=[a-z]{3})(tre|tres)$"), lambda m: "ter" + ("s" if m[1] == "tres" else "")),
    (re.compile(r"(?<=[a-z]{2})is(e|es|ed|ing|ation|ations)$"), lambda m: "iz" + m[1]),
    (re.compile(r"(?<=[a-z]{2})our(s|ed|ing|ful|ite)?$"), lambda m: "or" + (m[1] or "")),
    (re.compile(r"^programme(s)?$"), lambda m: "program" + (m[1] or "")),
    (re.compile(r"(?<=[a-z]{2})yse(s|d)?$"), lambda m: "yze" + (m[1] or "")),
)
_KEEP = frozenset({"hour", "hours", "four", "pour", "tour", "tours", "your", "yours", "our",
                   "ours", "flour", "rise", "wise", "raise", "raised", "praise", "noise",
                   "poise", "premise", "promise", "promised", "expertise", "exercise",
                   "otherwise", "likewise", "concise", "precise", "franchise", "merchandise",
                   "surprise", "enterprise", "enterprises", "advertise", "compromise",
                   "paradise", "devise", "revise", "supervise", "televise", "comprise",
                   "disguise", "despise", "arise", "arisen", "arising", "demise", "vise",
                   "cruise", "bruise", "chaise", "anise", "treatise", "mortise", "valise"})


def american(word: str) -> str:
    """Map a lower-cased British spelling to the American one (centre → center)."""
    if word in _KEEP or len(word) < 5:
        return word
    for pattern, repl in _SPELLING:
        new = pattern.sub(repl, word)
        if new != word:
            return new
    return word


class _Stem:
    """PyStemmer with spelling normalisation in front (bm25s calls `stemWords`)."""

    def __init__(self) -> None:
        import Stemmer

        self._stemmer = Stemmer.Stemmer(BM25_PARAMS["stemmer"])

    def stemWord(self, word: str) -> str:  # noqa: N802 - the PyStemmer interface bm25s expects
        """Stem one word."""
        return str(self._stemmer.stemWord(american(word)))

    def stemWords(self, words: Sequence[str]) -> list[str]:  # noqa: N802
        """Stem many words."""
        return list(self._stemmer.stemWords([american(w) for w in words]))

    def __call__(self, word: str) -> str:
        return self.stemWord(word)


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """NLTK's English stop words plus question words."""
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    return frozenset(STOPWORDS_EN_PLUS) | frozenset(_EXTRA_STOPWORDS)


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    return _Stem()


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased, stop-worded, stemmed word tokens (the same for chunks and queries)."""
    import bm25s

    return bm25s.tokenize(
        list(texts), stopwords=list(stopwords()), stemmer=_stemmer(),
        return_ids=False, show_progress=False,
    )


@lru_cache(maxsize=16384)
def words(text: str) -> tuple[tuple[int, int, str, bool], ...]:
    """(start, end, stem, is_stopword) for each word of `text`, tokenised like BM25."""
    stem = _stemmer().stemWord
    stops = stopwords()
    out = []
    for m in _WORD_RE.finditer(text):
        low = m.group().lower()
        out.append((m.start(), m.end(), stem(low), low in stops))
    return tuple(out)


MERGE_FACTOR = 8  # this many segments of one size tier are merged into one
AVGDL_TOLERANCE = 0.005  # how far the true mean chunk length may drift from the scored one
MAX_DELETED_SHARE = 0.25  # a segment this much deleted is rewritten without its dead chunks
BUILD_BATCH = 50_000  # chunks tokenised per part of a full build (bounds its peak memory)
DELETED_PREFIX, DELETED_SUFFIX = "bm25-del-", ".npy"
_EMPTY = np.zeros(0, dtype=np.int64)


def _segment(ids: np.ndarray, texts: Sequence[str]) -> Segment:
    """Tokenise chunk texts into one new segment."""
    import bm25s

    # allow_empty: a chunk of only stop words still keeps its row (with length 0).
    tokens = bm25s.tokenize(list(texts), stopwords=list(stopwords()), stemmer=_stemmer(),
                            show_progress=False, allow_empty=True)
    return build_segment(ids, tokens.ids, tokens.vocab)


def kth_largest(values: np.ndarray, k: int) -> float:
    """The k-th largest of `values` (len > k), without partitioning all of them.

    BM25 scores over a large segment are mostly ties (a few distinct term-frequency
    parts), and `np.partition` over a million of them took 20 ms on average and up to
    170 ms (`rag bench` at 1M chunks). The k-th largest of every 64th value can only be
    lower than the true one (`values` holds at least k values at or above it), so the
    true one is either that value, when fewer than k lie strictly above it, or the k-th
    largest of the few that do.
    """
    n = len(values)
    sample = values[:: SAMPLE_STRIDE]
    if len(sample) <= k:
        return float(np.partition(values, n - k)[n - k])
    floor = np.partition(sample, len(sample) - k)[len(sample) - k]
    above = values[values > floor]
    if len(above) < k:
        return float(floor)
    return float(np.partition(above, len(above) - k)[len(above) - k])


SAMPLE_STRIDE = 64


class SparseIndex:
    """BM25 over chunk texts: immutable segments minus a sorted array of deleted chunk ids.

    Instances never change: a write makes a new one sharing the unchanged segments, so
    readers holding the old one keep searching it undisturbed.
    """

    def __init__(self, segments: Sequence[Segment] = (), deleted: np.ndarray = _EMPTY,
                 avgdl: float | None = None) -> None:
        self.segments = tuple(s for s in segments if len(s))
        wanted = np.unique(np.asarray(deleted, dtype=np.int64))
        self._dead = {s.name: s.positions(wanted) for s in self.segments}
        # Only ids some segment still holds stay tombstones: a merge has dropped the rest.
        held = [s.ids[self._dead[s.name]] for s in self.segments]
        self.deleted = np.unique(np.concatenate(held)) if held else _EMPTY
        self.ntotal = sum(len(s) - len(self._dead[s.name]) for s in self.segments)
        self._total_length = sum(
            s.total_length - int(s.lengths[self._dead[s.name]].sum()) for s in self.segments
        )
        self._live: dict[str, np.ndarray] = {}
        # Scores use a reference mean chunk length, kept while the true one stays within
        # AVGDL_TOLERANCE of it, so that an add does not recompute every segment's cached
        # term-frequency parts (bench: top-10 agreement with exact scores in bm25_agreement).
        true = self._total_length / self.ntotal if self.ntotal else 1.0
        keep = avgdl is not None and abs(true - avgdl) <= AVGDL_TOLERANCE * true
        self.avgdl = float(avgdl) if keep and avgdl is not None else true
        self._tfc = [s.tfc(self.avgdl, K1, B) for s in self.segments]

    @cached_property
    def ids(self) -> np.ndarray:
        """Chunk ids of every live (not deleted) chunk."""
        parts = [s.ids[self._live_mask(s)] for s in self.segments]
        return np.concatenate(parts) if parts else _EMPTY

    def _live_mask(self, seg: Segment) -> np.ndarray:
        mask = self._live.get(seg.name)
        if mask is None:
            mask = np.ones(len(seg), dtype=bool)
            mask[self._dead[seg.name]] = False
            self._live[seg.name] = mask
        return mask

    @classmethod
    def build(cls, ids: np.ndarray, texts: Sequence[str]) -> SparseIndex:
        """Index these chunk texts from scratch, as one segment."""
        ids = np.asarray(ids, dtype=np.int64)
        parts = [_segment(ids[i : i + BUILD_BATCH], texts[i : i + BUILD_BATCH])
                 for i in range(0, len(ids), BUILD_BATCH)]
        if len(parts) > 1:
            parts = [merge_segments(parts, _EMPTY)]
        return cls(parts)

    def with_changes(
        self, removed: Sequence[int], added: np.ndarray, texts: Sequence[str]
    ) -> SparseIndex:
        """A new index: `removed` chunk ids deleted, `added` ones in one new small segment."""
        segments = list(self.segments)
        if len(added):  # (a huge batch is built in parts, as `build` does)
            segments.extend(SparseIndex.build(np.asarray(added, dtype=np.int64), texts).segments)
        gone = np.asarray(list(removed), dtype=np.int64)
        return SparseIndex(segments, np.concatenate([self.deleted, gone]), self.avgdl)

    # ------------------------------------------------------------------ merging

    def merge_plan(self) -> list[Segment]:
        """Segments due for merging (tiered: MERGE_FACTOR of a size tier), or []."""
        tiers: dict[int, list[Segment]] = {}
        for seg in self.segments:
            live = len(seg) - len(self._dead[seg.name])
            tier = int(math.log(max(live, 1), MERGE_FACTOR))
            tiers.setdefault(tier, []).append(seg)
        for tier in sorted(tiers):
            if len(tiers[tier]) >= MERGE_FACTOR:
                return tiers[tier][:MERGE_FACTOR]
        for seg in self.segments:
            if len(self._dead[seg.name]) >= MAX_DELETED_SHARE * len(seg):
                return [seg]
        return []

    def merge(self, inputs: Sequence[Segment]) -> Segment:
        """The live chunks of `inputs` as one new segment (what `replace` then swaps in)."""
        return merge_segments(inputs, self.deleted)

    def replace(self, inputs: Sequence[Segment], merged: Segment) -> SparseIndex | None:
        """A new index with `merged` in place of `inputs`; None if an input is gone."""
        names = [s.name for s in self.segments]
        wanted = {s.name for s in inputs}
        if not wanted <= set(names):
            return None
        first = names.index(inputs[0].name)
        kept = [s for s in self.segments if s.name not in wanted]
        kept.insert(min(first, len(kept)), merged)
        return SparseIndex(kept, self.deleted, self.avgdl)

    # ------------------------------------------------------------------ scoring

    def _postings(self, term: str) -> tuple[int, list[tuple[int, int, int]]]:
        """(live document frequency, [(segment number, start, end)]) of `term`."""
        df, found = 0, []
        for k, seg in enumerate(self.segments):
            row = seg.vocab.get(term)
            if row is None:
                continue
            a, b = int(seg.indptr[row]), int(seg.indptr[row + 1])
            dead = self._dead[seg.name]
            df += b - a - (seg.dead_in(row, dead, self._live_mask(seg)) if len(dead) else 0)
            found.append((k, a, b))
        return df, found

    def _idf(self, df: int) -> float:
        n = self.ntotal
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def idf(self, terms: Sequence[str]) -> dict[str, float]:
        """BM25 idf of each stemmed term (terms absent from the corpus get the maximum)."""
        return {t: self._idf(self._postings(t)[0]) for t in terms}

    def search(
        self, query: str, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Top-k (chunk id, BM25 score) for a query; only chunks scoring above zero."""
        if self.ntotal == 0 or k <= 0:
            return []
        per_segment: dict[int, list[tuple[int, int, np.float32]]] = {}
        # Each occurrence of a query term counts, as in bm25s.
        for term, times in Counter(tokenize([query])[0]).items():
            df, found = self._postings(term)
            if df:
                weight = np.float32(self._idf(df) * times)
                for seg_no, a, b in found:
                    per_segment.setdefault(seg_no, []).append((a, b, weight))
        allowed_ids = None if allowed is None else np.unique(np.asarray(allowed, dtype=np.int64))
        found_scores, found_ids = [], []
        for seg_no, spans in per_segment.items():
            seg, tfc = self.segments[seg_no], self._tfc[seg_no]
            size = sum(b - a for a, b, _ in spans)
            # intp documents and float64 weights: np.bincount's fast path (int32 with float32
            # takes a generic one, ~10x slower at 100k postings).
            docs = np.empty(size, dtype=np.intp)
            weights = np.empty(size, dtype=np.float64)
            at = 0
            for a, b, weight in spans:
                docs[at : at + b - a] = seg.docs[a:b]
                np.multiply(tfc[a:b], weight, out=weights[at : at + b - a])
                at += b - a
            scores: np.ndarray = np.bincount(docs, weights=weights)
            dead = self._dead[seg.name]
            scores[dead[dead < len(scores)]] = 0.0
            if allowed_ids is not None:
                pos = seg.positions(allowed_ids)
                kept = np.zeros(len(scores))
                kept[pos[pos < len(scores)]] = scores[pos[pos < len(scores)]]
                scores = kept
            # The k-th best score, then every chunk reaching it (ties included; the final
            # sort by (score, id) cuts them as a monolithic ranking would).
            kth = kth_largest(scores, k) if len(scores) > k else 0
            hit = np.flatnonzero(scores >= kth) if kth > 0 else np.flatnonzero(scores > 0)
            found_scores.append(scores[hit].astype(np.float32))
            found_ids.append(seg.ids[hit])
        if not found_ids:
            return []
        top_scores, top_ids = np.concatenate(found_scores), np.concatenate(found_ids)
        order = np.lexsort((top_ids, -top_scores))[:k]
        return [(int(top_ids[j]), float(top_scores[j])) for j in order]

    # ------------------------------------------------------------------ files

    def save(self, folder: Path, generation: int) -> dict[str, Any]:
        """Write segments not yet on disk and the deleted ids; the manifest's `sparse` entry.

        Segment files are immutable and shared across generations: only new ones are
        written. The deleted-ids file gets a fresh name so the previous manifest's stays.
        """
        for seg in self.segments:
            if not (folder / seg.filename).exists():
                seg.save(folder)
        deleted = None
        if len(self.deleted):
            deleted = f"{DELETED_PREFIX}{generation}-{new_name()}{DELETED_SUFFIX}"
            ids = self.deleted

            def write(tmp: Path) -> None:
                with open(tmp, "wb") as fh:
                    np.save(fh, ids)

            write_atomic(folder / deleted, write)
        return {"segments": [s.name for s in self.segments], "deleted": deleted,
                "chunks": self.ntotal, "avgdl": self.avgdl, "params": BM25_PARAMS}

    @staticmethod
    def files(entry: dict[str, Any]) -> set[str]:
        """The file names a manifest `sparse` entry refers to."""
        names = {f"{SEGMENT_PREFIX}{n}{SEGMENT_SUFFIX}" for n in entry.get("segments", [])}
        if entry.get("deleted"):
            names.add(str(entry["deleted"]))
        return names

    @classmethod
    def load(cls, folder: Path, entry: dict[str, Any],
             reuse: SparseIndex | None = None) -> SparseIndex:
        """Read the segments of a manifest `sparse` entry (those in `reuse` are not re-read)."""
        if not isinstance(entry, dict) or entry.get("params") != BM25_PARAMS:
            raise ValueError("no segment list for these BM25 parameters")
        known = {s.name: s for s in reuse.segments} if reuse is not None else {}
        segments = [known.get(n) or Segment.load(folder, n) for n in entry["segments"]]
        deleted = np.load(folder / entry["deleted"]) if entry.get("deleted") else _EMPTY
        index = cls(segments, deleted, entry.get("avgdl"))
        if index.ntotal != entry["chunks"]:
            raise ValueError(f"BM25 segments hold {index.ntotal} chunks, not {entry['chunks']}")
        return index
