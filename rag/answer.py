"""Answer records (the Answer JSON contract) and the grounding rules every answer obeys."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from rag.retrieval import Hit


@dataclass(frozen=True)
class Citation:
    """A quoted span of a source article: `quote == document_text[start:end]`."""

    source: str
    title: str | None
    published: str | None
    chunk_id: str
    start: int
    end: int
    quote: str


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk shown beside the answer."""

    source: str
    chunk_id: str
    start: int
    end: int
    text: str
    score: float


@dataclass(frozen=True)
class Answer:
    """What `ask` returns; `answer is None` exactly when the articles do not answer."""

    question: str
    answer: str | None
    answerable: bool
    confidence: float
    citations: tuple[Citation, ...] = ()
    passages: tuple[Passage, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
    reader: str = ""
    # Where the answer span sits, for evaluation and highlighting: (source, start, end).
    answer_span: tuple[str, int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The Answer JSON of DESIGN.md (plus `reader` and `answer_span`)."""
        data = asdict(self)
        data["citations"] = [asdict(c) for c in self.citations]
        data["passages"] = [asdict(p) for p in self.passages]
        data["answer_span"] = (
            {"source": self.answer_span[0], "start": self.answer_span[1],
             "end": self.answer_span[2]}
            if self.answer_span else None
        )
        return data


@dataclass(frozen=True)
class Reading:
    """A reader's proposal: an answer span inside one retrieved hit, with a score in [0, 1]."""

    text: str
    source: str
    start: int  # offsets into the document text
    end: int
    score: float
    hit: Hit
    sentence: tuple[int, int] = (0, 0)  # the sentence holding the span (document offsets)
    features: dict[str, float] = field(default_factory=dict)  # inputs to the calibration


class Reader(Protocol):
    """Proposes answer spans for a question from retrieved passages (best first)."""

    name: str

    def read(self, question: str, hits: Sequence[Hit]) -> list[Reading]:
        """Candidate answers, best first; empty when nothing in the passages fits."""
        ...


DocumentText = Callable[[str], str | None]


class GroundingError(AssertionError):
    """An answer broke an invariant (a bug: it must never reach a user)."""


def check_invariants(answer: Answer, document_text: DocumentText) -> None:
    """Raise GroundingError unless the Answer JSON invariants of DESIGN.md hold."""
    if (answer.answer is None) != (not answer.answerable):
        raise GroundingError("answer is null exactly when answerable is false")
    for c in answer.citations:
        text = document_text(c.source)
        if text is None or text[c.start : c.end] != c.quote:
            raise GroundingError(f"citation quote is not {c.source}[{c.start}:{c.end}]")
    if answer.answer is not None and not any(answer.answer in c.quote for c in answer.citations):
        raise GroundingError("a non-null answer must appear verbatim in a citation's quote")


def passages_of(hits: Sequence[Hit]) -> tuple[Passage, ...]:
    """Passages for the Answer JSON."""
    return tuple(
        Passage(h.source, h.chunk_id, h.start, h.end, h.text, round(h.score, 6)) for h in hits
    )
