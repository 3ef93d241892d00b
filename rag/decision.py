"""Deciding: answer or abstain (calibrated confidence), newer facts first, and citations.

The reader model never decides abstention: a logistic model over retrieval and reading
features, fitted on gold data (`rag eval --fit-calibration`) and stored as JSON config,
turns features into a confidence; below the fitted threshold the service says the
articles do not answer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.answer import Answer, Citation, DocumentText, GroundingError, Reading, passages_of
from rag.atomic import write_json_atomic
from rag.errors import InvalidQuery
from rag.retrieval import Hit
from rag.sparse import words

DEFAULT_CALIBRATION = Path(__file__).with_name("calibration.json")
FEATURES = (
    "score", "sem_best", "lex_best", "kind", "proximity", "coverage", "margin", "typed", "lm",
    "named",
)
# Two readings from different articles this close in score are "the same fact, told twice":
# the newer article wins and both are cited.
NEWER_WINS_MARGIN = 0.12
# ... and only when their sentences share at least this share of their other content words.
SAME_STATEMENT = 0.5


def validate_question(question: object, max_chars: int) -> str:
    """A question must be a non-empty string of at most `max_chars` characters."""
    if not isinstance(question, str) or not question.strip():
        raise InvalidQuery("the question is empty: ask something about the articles")
    if len(question) > max_chars:
        raise InvalidQuery(
            f"the question is {len(question)} characters long; the limit is {max_chars}"
        )
    if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in question):
        raise InvalidQuery("the question contains control characters; send plain text")
    return question.strip()


@dataclass
class Calibration:
    """Logistic confidence over reading features, and the abstention threshold."""

    weights: dict[str, float] = field(
        default_factory=lambda: {
            "sem_best": 3.0, "lex_best": 3.0, "kind": 1.5, "score": 2.0, "proximity": 0.5,
        }
    )
    bias: float = -5.0
    threshold: float = 0.5
    fitted_on: str = "hand-set prior (not fitted)"
    metrics: dict[str, Any] = field(default_factory=dict)

    def confidence(self, features: dict[str, float]) -> float:
        """Probability that the proposed answer is right, in [0, 1]."""
        z = self.bias + sum(w * float(features.get(k, 0.0)) for k, w in self.weights.items())
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))

    @classmethod
    def load(cls, path: Path | None = None, reader: str = "extractive") -> Calibration:
        """The calibration of `reader` from a JSON file keyed by reader name (default: the
        one shipped in the package); a hand-set prior when the reader was never fitted."""
        path = path or DEFAULT_CALIBRATION
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data[reader]) if reader in data else cls()
        except (ValueError, TypeError) as exc:
            raise InvalidQuery(
                f"calibration file {path} is invalid ({exc}); refit it with "
                "'rag eval --fit-calibration'"
            ) from None

    def save(self, reader: str, path: Path | None = None) -> None:
        """Store this calibration under `reader` in the JSON file, atomically."""
        path = path or DEFAULT_CALIBRATION
        data: dict[str, Any] = {}
        if path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                data = {}
        data[reader] = asdict(self)
        write_json_atomic(path, data)


def fit_calibration(
    rows: Sequence[tuple[dict[str, float], float, bool]],
    *,
    off_topic: Sequence[dict[str, float]] = (),
    l2: float = 1.0,
    note: str = "",
) -> Calibration:
    """Fit weights and threshold on (features, answer F1, answerable) rows.

    The logistic model predicts "the proposed answer is right" (F1 >= 0.5 on an answerable
    question). The threshold then maximises, on the same rows, the SQuAD 2.0-style score
    (answering earns the answer's F1, abstaining earns 1 on an unanswerable question) plus
    the abstention F1: the score alone is indifferent to abstaining on an answerable question
    it would answer wrongly, so on a flat stretch it could pick a threshold that abstains on
    many answerable questions, and a small change of features moved it there.
    """
    if not rows:
        raise ValueError("no rows to fit a calibration on")
    # Off-topic examples teach the logistic model what "not about these articles" looks
    # like; the threshold below is still chosen on the gold rows alone.
    # A question the reader found nothing for is abstained whatever the model says: its
    # all-zero features would only be an outlier pulling the weights, so it is left out.
    fit_rows = [r for r in [*rows, *((f, 0.0, False) for f in off_topic)] if r[0]]
    if not fit_rows:
        raise ValueError("no rows with a proposed answer to fit a calibration on")
    x = np.array([[float(f.get(k, 0.0)) for k in FEATURES] for f, _, _ in fit_rows])
    y = np.array([1.0 if ok and f1 >= 0.5 else 0.0 for _, f1, ok in fit_rows])
    weights, bias = fit_logistic(x, y, FEATURES, l2=l2)
    calib = Calibration(weights=weights, bias=bias, fitted_on=note)
    proposed = np.array([bool(f) for f, _, _ in rows])  # nothing proposed: always abstained
    conf = np.array([calib.confidence(f) if f else -1.0 for f, _, _ in rows])
    gains = np.array([f1 for _, f1, _ in rows])
    unanswerable = np.array([not ok for _, _, ok in rows])
    calib.threshold, overall, abstention = choose_threshold(conf, gains, unanswerable, proposed)
    calib.metrics = {"train_overall_f1": round(overall, 4),
                     "train_abstention_f1": round(abstention, 4), "n": len(rows)}
    return calib


def fit_logistic(
    x: np.ndarray, y: np.ndarray, names: Sequence[str], *, l2: float = 1.0
) -> tuple[dict[str, float], float]:
    """L2-penalised logistic regression on raw features; returns (weights by name, bias)."""
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / std
    w = np.zeros(z.shape[1])
    b = 0.0
    # Newton's method on the L2-penalised log loss: small data, converges in a few steps.
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(z @ w + b)))
        grad_w = z.T @ (p - y) + l2 * w
        grad_b = float(np.sum(p - y))
        s = p * (1 - p)
        hess = np.zeros((len(w) + 1, len(w) + 1))
        hess[:-1, :-1] = (z * s[:, None]).T @ z + l2 * np.eye(len(w))
        hess[:-1, -1] = hess[-1, :-1] = z.T @ s
        hess[-1, -1] = float(np.sum(s)) + 1e-9
        step = np.linalg.solve(hess, np.append(grad_w, grad_b))
        w -= step[:-1]
        b -= float(step[-1])
        if float(np.abs(step).max()) < 1e-8:
            break
    # Fold the standardisation into the weights so the stored model reads raw features.
    weights = {k: float(w[i] / std[i]) for i, k in enumerate(names)}
    return weights, float(b - np.sum(w * mean / std))


def choose_threshold(
    conf: np.ndarray,
    gains: np.ndarray,
    unanswerable: np.ndarray,
    proposed: np.ndarray,
    weights: np.ndarray | None = None,
) -> tuple[float, float, float]:
    """The confidence threshold maximising SQuAD-2.0 overall F1 + abstention F1 on these
    questions; returns (threshold, overall F1, abstention F1) there.

    `conf` is each question's best confidence, `gains` the F1 its answer would earn,
    `proposed` whether the reader proposed anything at all (if not, it always abstains);
    `weights` (default 1 each) let a sample stand for a different share of unanswerable
    questions than it holds.
    """
    w = np.ones(len(conf)) if weights is None else weights
    best_t, best_u, best_overall = 0.5, -1.0, 0.0
    for t in sorted(set(np.round(conf[proposed], 4)) | {0.0, 1.01}):
        answered = (conf >= t) & proposed
        earned = np.where(answered, gains, unanswerable.astype(float))
        overall = float(np.sum(w * earned) / np.sum(w))
        utility = overall + _abstention_f1(~answered, unanswerable, w)
        if utility > best_u + 1e-9:
            best_t, best_u, best_overall = float(t), utility, overall
    # Put the threshold midway to the next confidence below it, so it is not razor-thin.
    below = conf[(conf < best_t) & proposed]
    if len(below):
        best_t = float((best_t + below.max()) / 2)
    return best_t, best_overall, best_u - best_overall


def _abstention_f1(
    abstained: np.ndarray, unanswerable: np.ndarray, w: np.ndarray | None = None
) -> float:
    """F1 of abstaining as the detection of unanswerable questions (0.0 when undefined)."""
    w = np.ones(len(abstained)) if w is None else w
    tp = float(np.sum(w * (abstained & unanswerable)))
    if tp == 0:
        return 0.0
    return 2 * tp / (float(np.sum(w * abstained)) + float(np.sum(w * unanswerable)))


def _cite(reading: Reading, document_text: DocumentText, *, start: int, end: int) -> Citation:
    text = document_text(reading.source)
    if text is None:
        raise GroundingError(f"{reading.source} vanished while answering")
    return Citation(
        source=reading.source,
        title=reading.hit.title,
        published=reading.hit.published,
        chunk_id=reading.hit.chunk_id,
        start=start,
        end=end,
        quote=text[start:end],
    )


def same_statement(a: Reading, b: Reading) -> bool:
    """Whether two readings' sentences state the same fact (an updated figure, a restated
    plan): outside the answer spans, at least half of the shorter sentence's content words
    are in the other. A rival about something else must not replace or join the answer."""
    def context(r: Reading) -> set[str]:
        s, e = _sentence_of(r)
        text = r.hit.text[s - r.hit.start : e - r.hit.start]
        lo, hi = r.start - s, r.end - s
        return {w[2] for w in words(text) if not w[3] and not (lo <= w[0] < hi)}

    first, second = context(a), context(b)
    if not first or not second:
        return False
    return len(first & second) >= SAME_STATEMENT * min(len(first), len(second))


def _sentence_of(reading: Reading) -> tuple[int, int]:
    s, e = reading.sentence
    if s <= reading.start and reading.end <= e and e > s:
        return s, e
    return reading.start, reading.end


def decide(
    question: str,
    shown: Sequence[Hit],
    readings: Sequence[Reading],
    calibration: Calibration,
    document_text: DocumentText,
    *,
    reader: str,
) -> Answer:
    """Build the Answer: choose (newer facts win), score, abstain or cite."""
    passages = passages_of(shown)
    if not readings:
        return Answer(question, None, False, 0.0, (), passages, reader=reader)
    best = readings[0]
    # Newer facts win: a close rival of the same kind from a more recent article replaces
    # the best reading, and both are cited, newest first.
    rivals = [
        r for r in readings[1:6]
        if r.source != best.source
        and r.text.lower() != best.text.lower()
        and r.score >= best.score - NEWER_WINS_MARGIN
        and r.features.get("kind", 0) >= best.features.get("kind", 0)
        and same_statement(best, r)
    ]
    chosen, support = best, []
    for rival in rivals:
        if (rival.hit.published or "") > (chosen.hit.published or ""):
            support.append(chosen)
            chosen = rival
        else:
            support.append(rival)
    confidence = calibration.confidence(chosen.features)
    if confidence < calibration.threshold:
        return Answer(question, None, False, round(confidence, 4), (), passages, reader=reader)
    start, end = _sentence_of(chosen)
    try:
        citations = [_cite(chosen, document_text, start=start, end=end)]
        for other in support[:2]:
            s, e = _sentence_of(other)
            if all((c.source, c.start, c.end) != (other.source, s, e) for c in citations):
                citations.append(_cite(other, document_text, start=s, end=e))
    except GroundingError:
        # The article was removed while we were answering: nothing left to point at.
        return Answer(question, None, False, round(confidence, 4), (), passages, reader=reader)
    # Newest first; the answer's own citation leads among equals.
    citations.sort(key=lambda c: (c.published or ""), reverse=True)
    text = document_text(chosen.source) or ""
    answer_text = text[chosen.start : chosen.end]
    if not answer_text or not any(answer_text in c.quote for c in citations):
        # The reader's span must be pointable; if it is not, the honest answer is none.
        return Answer(question, None, False, round(confidence, 4), (), passages, reader=reader)
    return Answer(
        question=question,
        answer=answer_text,
        answerable=True,
        confidence=round(confidence, 4),
        citations=tuple(citations),
        passages=passages,
        reader=reader,
        answer_span=(chosen.source, chosen.start, chosen.end),
    )
