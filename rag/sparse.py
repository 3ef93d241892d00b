"""The sparse side: a BM25 index (bm25s) over chunk texts, keyed by chunk row id."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from rag.atomic import write_dir_atomic

BM25_PARAMS = {
    "method": "lucene", "k1": 1.5, "b": 0.75, "stopwords": "nltk-en+question", "stemmer": "english",
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


class SparseIndex:
    """BM25 over chunk texts; `ids[i]` is the chunk row id of the i-th indexed text."""

    def __init__(self, retriever: Any, ids: np.ndarray) -> None:
        self.retriever = retriever
        self.ids = ids
        self._pos = {int(chunk_id): pos for pos, chunk_id in enumerate(ids)}

    @property
    def ntotal(self) -> int:
        """Number of chunks indexed."""
        return len(self.ids)

    @classmethod
    def build(cls, ids: np.ndarray, texts: Sequence[str]) -> SparseIndex:
        """Index these chunk texts (BM25 is rebuilt whole: bm25s has no incremental add)."""
        import bm25s

        retriever = bm25s.BM25(
            method=BM25_PARAMS["method"], k1=BM25_PARAMS["k1"], b=BM25_PARAMS["b"]
        )
        if len(texts):
            # allow_empty: a chunk of only stop words still keeps its row, so positions line up.
            tokens = bm25s.tokenize(
                list(texts), stopwords=list(stopwords()), stemmer=_stemmer(),
                show_progress=False, allow_empty=True,
            )
            retriever.index(tokens, show_progress=False)
        return cls(retriever, np.asarray(ids, dtype=np.int64))

    def idf(self, terms: Sequence[str]) -> dict[str, float]:
        """BM25 idf of each stemmed term (terms absent from the corpus get the maximum)."""
        n = max(self.ntotal, 1)
        vocab = self.retriever.vocab_dict if self.ntotal else {}
        indptr = self.retriever.scores["indptr"] if self.ntotal else None
        out = {}
        for term in terms:
            tid = vocab.get(term)
            df = int(indptr[tid + 1] - indptr[tid]) if tid is not None and indptr is not None else 0
            out[term] = math.log(1 + (n - df + 0.5) / (df + 0.5))
        return out

    def search(
        self, query: str, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Top-k (chunk id, BM25 score) for a query; only chunks scoring above zero."""
        if self.ntotal == 0 or k <= 0:
            return []
        vocab = self.retriever.vocab_dict
        tokens = [t for t in tokenize([query])[0] if t in vocab]
        if not tokens:
            return []
        mask = None
        if allowed is not None:
            mask = np.zeros(self.ntotal, dtype=np.float32)
            positions = [self._pos[int(i)] for i in allowed if int(i) in self._pos]
            if not positions:
                return []
            mask[positions] = 1.0
        docs, scores = self.retriever.retrieve(
            [tokens], k=min(k, self.ntotal), show_progress=False, weight_mask=mask, n_threads=0
        )
        return [
            (int(self.ids[d]), float(s))
            for d, s in zip(docs[0], scores[0], strict=True)
            if s > 0
        ]

    def save(self, path: Path) -> None:
        """Write the index folder atomically (temp folder, fsync, rename)."""

        def write(tmp: Path) -> None:
            if self.ntotal:
                self.retriever.save(str(tmp), show_progress=False)
            np.save(tmp / "ids.npy", self.ids)
            (tmp / "rag_bm25.json").write_text(json.dumps({"n": self.ntotal, **BM25_PARAMS}))

        write_dir_atomic(path, write)

    @classmethod
    def load(cls, path: Path) -> SparseIndex:
        """Read a folder written by `save`; raises if it is missing or corrupt."""
        import bm25s

        meta = json.loads((path / "rag_bm25.json").read_text())
        ids = np.load(path / "ids.npy")
        if meta["n"] != len(ids):
            raise ValueError(f"{path}: {len(ids)} ids but {meta['n']} recorded")
        if len(ids) == 0:
            return cls(bm25s.BM25(), ids)
        retriever = bm25s.BM25.load(str(path), load_corpus=False, show_progress=False)
        return cls(retriever, ids)
