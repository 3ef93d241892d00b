"""Sentence ranking: which sentences of the retrieved chunks the reader should read.

Every sentence of the top hits is scored by its pooled sentence vector (stored at index
time, so no model call here) against the question vector, plus the idf-weighted share of
the question's stems it contains, minus a small penalty for the hit's rank. A sentence
that states the kind of thing a typed question asks for (an amount, a date, ...) gains a
little: the type-fit signal both readers share.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rag.backends.base import SearchIndex
from rag.reading.question import DATE, DURATION, MONEY, PERCENT, PLACE, QUANTITY, analyse
from rag.reading.spans import pattern_kinds
from rag.retrieval import Hit
from rag.sparse import words

QueryEncoder = Callable[[str], np.ndarray]
# A typed question's sentence gains this when it states that kind of thing at all: the
# development questions (eval/dev) gain at 0.2 and lose at 0.3.
TYPE_FIT = 0.2
# Kinds the regular expressions find reliably on their own (other names need the parse;
# places have a shape: "Yuen Long InnoPark", "Shenzhen Bay Port").
PATTERNED = frozenset({MONEY, PERCENT, DURATION, QUANTITY, DATE, PLACE})


@dataclass(frozen=True)
class ScoredSentence:
    """A sentence of a retrieved chunk with its relevance to the question."""

    hit: Hit
    start: int  # document offsets
    end: int
    score: float
    sem: float
    lex: float
    rank: int = 0  # rank of its hit

    @property
    def text(self) -> str:
        """The sentence's text."""
        return self.hit.text[self.start - self.hit.start : self.end - self.hit.start]


class SentenceRanker:
    """Scores the sentences of the top hits against a question."""

    def __init__(self, index: SearchIndex, encode: QueryEncoder, read_hits: int = 5,
                 type_fit: float = TYPE_FIT) -> None:
        self.index = index
        self.encode = encode
        self.read_hits = read_hits
        self.type_fit = type_fit

    def rank(self, question: str, hits: Sequence[Hit]) -> list[ScoredSentence]:
        """Sentences of the top hits, best first (semantic + idf-weighted lexical match)."""
        info = analyse(question)
        top = list(hits[: self.read_hits])
        if not top:
            return []
        qvec = self.encode(question)
        idf = self.index.idf(info.terms)
        total = sum(idf.values()) or 1.0
        vectors = self.index.sentence_vectors_for([h.id for h in top])
        scored: list[ScoredSentence] = []
        seen: set[tuple[str, int]] = set()
        for rank, hit in enumerate(top):
            stored = vectors.get(hit.id)
            spans: list[tuple[int, int, np.ndarray | None]] = (
                [(s, e, v) for s, e, v in stored] if stored else [(hit.start, hit.end, None)]
            )
            for start, end, vec in spans:
                if (hit.source, start) in seen:  # overlapping chunks repeat sentences
                    continue
                seen.add((hit.source, start))
                sentence = hit.text[start - hit.start : end - hit.start]
                # Stems only: dictionary forms need a parse, which only the few sentences
                # read for spans get.
                stems = {w[2] for w in words(sentence) if not w[3]}
                lex = sum(v for t, v in idf.items() if t in stems) / total
                sem = float(np.dot(vec, qvec)) if vec is not None else 0.0
                score = 0.5 * sem + 0.5 * lex - 0.02 * rank
                if info.types[0] in PATTERNED and info.types[0] in pattern_kinds(sentence):
                    # "How much ...?" is answered by a sentence that states an amount.
                    score += self.type_fit
                scored.append(ScoredSentence(hit, start, end, score, sem, lex, rank))
        scored.sort(key=lambda s: -s.score)
        return scored
