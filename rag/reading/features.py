"""Features of one candidate span: what the fitted ranker/calibration weighs.

Each feature is a number the calibration (`rag.reading.calibrate`) weighs; which ones earn
their place is measured by dropping them one at a time on held-out SQuAD articles (the
ablation table in the model card). The learned span and no-answer scores lead; retrieval
and sentence scores say whether the passage is about the question at all; the type fit
says whether a typed question ("how much", "when") got that kind of span.
"""

from __future__ import annotations

import math

from rag.reading.question import QuestionInfo
from rag.reading.sentences import PATTERNED
from rag.reading.spans import pattern_kinds
from rag.sparse import words

# Every feature the reader computes; the model card's ablation measures each.
ALL = (
    "span", "null_margin", "best_margin", "share", "sent", "sem", "lex", "sent_rank",
    "hit_rank", "coverage", "type_fit", "length", "echo",
)
# The ones the calibration uses: backward elimination on the held-out val articles dropped
# length, sent, share, hit_rank and best_margin (each drop raised ranked F1 + overall F1 at
# the 25 % unanswerable share). coverage is kept although its drop cost nothing there: the
# val articles hold no off-topic questions, and it is what says a question's words are
# not in the passages at all.
NAMES = ("span", "null_margin", "sem", "lex", "sent_rank", "type_fit", "echo", "coverage")


def type_fit(info: QuestionInfo, span: str) -> float:
    """+1 when a patterned question type (money, date, ...) is found in the span, -1 when
    it is not, 0 for questions of other types."""
    wanted = info.types[0]
    if wanted not in PATTERNED:
        return 0.0
    return 1.0 if wanted in pattern_kinds(span) else -1.0


def echo(info: QuestionInfo, span: str) -> float:
    """Share of the span's content stems that the question already says: an answer rarely
    repeats the question."""
    stems = {w[2] for w in words(span) if not w[3]}
    if not stems:
        return 0.0
    return len(stems & set(info.terms)) / len(stems)


def coverage(info: QuestionInfo, idf: dict[str, float], passage_stems: set[str]) -> float:
    """Idf-weighted share of the question's terms that the top passages mention at all."""
    total = sum(idf.values())
    if total <= 0:
        return 0.0
    return sum(v for t, v in idf.items() if t in passage_stems) / total


def length(span: str) -> float:
    """Log word count: very long spans are rarely the answer to a factoid question."""
    return math.log1p(len(span.split()))
