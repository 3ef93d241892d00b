"""Evaluation metrics: gold Q&A loading, SQuAD answer scores, retrieval, citation, abstention.

Everything here is a pure function over small records, so the eval harness, the CLI and
the tests all score the same way. Conventions for the edge cases:

* Means over an empty set (no answerable questions, nothing cited, zero division in
  precision/recall/F1) are 0.0, never NaN: metrics.json must stay valid JSON.
* A prediction of None or a blank string counts as abstaining.
* Unanswerable questions follow SQuAD 2.0: the gold answer is the empty string, so
  abstaining scores 1 and any answer scores 0.
* Retrieval and citation metrics are averaged over answerable questions only, because
  an unanswerable question has no evidence to find or cite.
* Citations are judged only for answered questions (an abstention cites nothing);
  citation.precision is 0.0 when nothing was cited at all.
* A question counts as "retrieved" only when every evidence piece is in the top 5, so a
  multi-hop question that found one article of two is a retrieval failure.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GOLD_TYPES = frozenset(
    {"factoid", "numeric", "entity", "date", "list", "why", "multi-hop", "unanswerable", "update"}
)
_GOLD_KEYS = ("id", "question", "answers", "doc", "evidence", "type")
_TOP_K = (1, 5)
_RETRIEVED_K = 5  # "retrieved" in per_question and "recall@5" in by_type use this cut-off
_PUNCT = frozenset(string.punctuation)


class GoldFormatError(ValueError):
    """A gold Q&A file is malformed; the message names file, line, problem and fix."""


class EvidenceNotFoundError(ValueError):
    """A gold evidence string is not in the text of its document."""


class ScoreError(ValueError):
    """Results and gold questions do not match up (missing or duplicate ids)."""


@dataclass(frozen=True)
class GoldItem:
    """One gold question with its accepted answers and the evidence that supports them."""

    id: str
    question: str
    answers: tuple[str, ...]
    docs: tuple[str, ...]
    evidence: tuple[str, ...]
    type: str

    @property
    def answerable(self) -> bool:
        """True when the question has at least one accepted answer."""
        return bool(self.answers)


@dataclass(frozen=True)
class Span:
    """A retrieved chunk or a cited quote: [start, end) offsets into a stored document."""

    source: str
    start: int
    end: int
    text: str

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.end:
            raise ValueError(
                f"span offsets must satisfy 0 <= start <= end, got start={self.start}, "
                f"end={self.end} in {self.source!r}"
            )


@dataclass(frozen=True)
class QuestionResult:
    """What the system did for one gold question; prediction None means it abstained."""

    id: str
    prediction: str | None
    retrieved: tuple[Span, ...]
    cited: tuple[Span, ...]
    latency_ms: float
    reranked: bool = False  # the cross-encoder ran for it (always, or as a second look)

    @property
    def abstained(self) -> bool:
        """True when there is no answer (None or only whitespace)."""
        return self.prediction is None or not self.prediction.strip()


# --------------------------------------------------------------------------- gold files


def _str_or_list(value: Any, key: str, where: str) -> tuple[str, ...]:
    """Read a doc/evidence field that may be a string, a list of strings, or null."""
    if value is None:
        return ()
    if isinstance(value, str):
        values: list[Any] = [value]
    elif isinstance(value, list):
        values = value
        if not values:
            raise GoldFormatError(
                f"{where}: '{key}' is an empty list; give at least one string, or null "
                "for an unanswerable question"
            )
    else:
        raise GoldFormatError(
            f"{where}: '{key}' must be a string, a list of strings or null, "
            f"got {type(value).__name__}"
        )
    for i, v in enumerate(values):
        if not isinstance(v, str) or not v.strip():
            raise GoldFormatError(f"{where}: '{key}'[{i}] must be a non-empty string, got {v!r}")
    return tuple(values)


def _parse_gold_line(obj: Any, where: str) -> GoldItem:
    """Validate one decoded JSON line and turn it into a GoldItem."""
    if not isinstance(obj, dict):
        raise GoldFormatError(
            f"{where}: expected a JSON object {{...}}, got {type(obj).__name__}; "
            "write one question object per line"
        )
    missing = [k for k in _GOLD_KEYS if k not in obj]
    if missing:
        raise GoldFormatError(
            f"{where}: missing key(s) {', '.join(repr(k) for k in missing)}; every line needs "
            f"{', '.join(_GOLD_KEYS)} (use [] / null / null for answers / doc / evidence of an "
            "unanswerable question)"
        )
    for key in ("id", "question", "type"):
        if not isinstance(obj[key], str) or not obj[key].strip():
            raise GoldFormatError(f"{where}: '{key}' must be a non-empty string, got {obj[key]!r}")
    qid = obj["id"]
    where = f"{where} (id {qid!r})"
    if obj["type"] not in GOLD_TYPES:
        raise GoldFormatError(
            f"{where}: unknown type {obj['type']!r}; use one of {', '.join(sorted(GOLD_TYPES))}"
        )
    answers = obj["answers"]
    if not isinstance(answers, list) or not all(isinstance(a, str) and a.strip() for a in answers):
        raise GoldFormatError(
            f"{where}: 'answers' must be a list of non-empty strings (or [] when the articles "
            f"do not answer the question), got {answers!r}"
        )
    docs = _str_or_list(obj["doc"], "doc", where)
    evidence = _str_or_list(obj["evidence"], "evidence", where)
    if answers:
        if not docs:
            raise GoldFormatError(
                f"{where}: answers are given but 'doc' is null; name the source file that "
                "holds the answer, or set answers to [] if the question is unanswerable"
            )
        if not evidence:
            raise GoldFormatError(
                f"{where}: answers are given but 'evidence' is null; copy the sentence that "
                "supports the answer from the article"
            )
        if obj["type"] == "unanswerable":
            raise GoldFormatError(
                f"{where}: type is 'unanswerable' but answers are given; set answers to [] "
                "or change the type"
            )
    elif docs or evidence:
        # A doc without answers is ambiguous: scoring could not tell a missing answer list
        # from a question the articles do not answer.
        raise GoldFormatError(
            f"{where}: 'answers' is empty but doc/evidence are set; an unanswerable question "
            "has doc null and evidence null, otherwise add the answers"
        )
    if len(docs) != len(evidence):
        raise GoldFormatError(
            f"{where}: 'doc' has {len(docs)} entries but 'evidence' has {len(evidence)}; "
            "give one document per evidence string (lists of equal length)"
        )
    return GoldItem(
        id=qid,
        question=obj["question"],
        answers=tuple(answers),
        docs=docs,
        evidence=evidence,
        type=obj["type"],
    )


def load_gold(path: str | Path) -> list[GoldItem]:
    """Read a gold Q&A JSONL file (DESIGN.md format) and validate every line."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GoldFormatError(f"{path}: no such gold file; check the path") from None
    except UnicodeDecodeError as exc:
        raise GoldFormatError(f"{path}: not UTF-8 text ({exc.reason}); save it as UTF-8") from None
    items: list[GoldItem] = []
    first_line: dict[str, int] = {}
    for lineno, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise GoldFormatError(
                f"{where}: invalid JSON ({exc.msg} at column {exc.colno}); each line must be "
                "one complete JSON object"
            ) from None
        item = _parse_gold_line(obj, where)
        if item.id in first_line:
            raise GoldFormatError(
                f"{where}: duplicate id {item.id!r} (first used on line {first_line[item.id]}); "
                "give every question a unique id"
            )
        first_line[item.id] = lineno
        items.append(item)
    if not items:
        raise GoldFormatError(f"{path}: the file holds no questions; add one JSON object a line")
    return items


# --------------------------------------------------------------------------- answer scores


def normalize_answer(s: str) -> str:
    """SQuAD v1.1 normalisation: lowercase, drop punctuation and a/an/the, squash spaces."""
    # Kept byte-for-byte equivalent to the official script so scores compare with SQuAD
    # numbers; note string.punctuation is ASCII only (an em dash survives).
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def _golds_or_empty(golds: Sequence[str]) -> Sequence[str]:
    # SQuAD 2.0: an unanswerable question has the single gold answer "".
    return golds if golds else ("",)


def exact_match(pred: str | None, golds: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals any normalised gold answer, else 0.0."""
    p = normalize_answer(pred or "")
    return max(float(p == normalize_answer(g)) for g in _golds_or_empty(golds))


def _f1_one(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    if not pred_tokens or not gold_tokens:
        # SQuAD 2.0: if either side is empty, score 1 only when both are.
        return float(pred_tokens == gold_tokens)
    common = Counter(pred_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def f1(pred: str | None, golds: Sequence[str]) -> float:
    """SQuAD token F1 of the prediction, maximised over the gold answers."""
    p = normalize_answer(pred or "").split()
    return max(_f1_one(p, normalize_answer(g).split()) for g in _golds_or_empty(golds))


# --------------------------------------------------------------------------- spans


def locate_evidence(item: GoldItem, doc_texts: Mapping[str, str]) -> list[tuple[str, int, int]]:
    """(source, start, end) of each evidence string: its first occurrence in its document."""
    located: list[tuple[str, int, int]] = []
    for source, evidence in zip(item.docs, item.evidence, strict=True):
        if source not in doc_texts:
            raise EvidenceNotFoundError(
                f"{item.id}: document {source!r} is not among the {len(doc_texts)} scored "
                "documents; index it or fix the gold 'doc'"
            )
        start = doc_texts[source].find(evidence)
        if start < 0:
            raise EvidenceNotFoundError(
                f"{item.id}: evidence {_clip(evidence)!r} is not in {source!r}; it must be an "
                "exact substring of the article (check quotes, dashes and spacing)"
            )
        located.append((source, start, start + len(evidence)))
    return located


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _overlap(span: Span, start: int, end: int) -> int:
    return max(0, min(span.end, end) - max(span.start, start))


def _hits(span: Span, evidence: tuple[str, int, int]) -> bool:
    """A retrieved span hits evidence if it holds all of it or at least half of it."""
    source, start, end = evidence
    if span.source != source:
        return False
    # "At least half" lets evidence that straddles a chunk boundary still count as found.
    return 2 * _overlap(span, start, end) >= end - start


def _cites(span: Span, evidence: tuple[str, int, int]) -> bool:
    """A cited span is correct if it overlaps the evidence at all."""
    source, start, end = evidence
    return span.source == source and _overlap(span, start, end) > 0


def recall_at_k(
    retrieved: Sequence[Span], evidence: Sequence[tuple[str, int, int]], k: int
) -> float:
    """Fraction of evidence pieces hit by any of the top-k retrieved spans (0.0 if none)."""
    if not evidence:
        return 0.0
    top = retrieved[:k]
    found = sum(1 for ev in evidence if any(_hits(s, ev) for s in top))
    return found / len(evidence)


def first_hit_rank(
    retrieved: Sequence[Span], evidence: Sequence[tuple[str, int, int]]
) -> int | None:
    """1-based rank of the first retrieved span that hits any evidence piece, or None."""
    for rank, span in enumerate(retrieved, start=1):
        if any(_hits(span, ev) for ev in evidence):
            return rank
    return None


# --------------------------------------------------------------------------- aggregates


def _mean(values: Iterable[float]) -> float:
    vals = list(values)
    return sum(vals) / len(vals) if vals else 0.0


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def precision_recall_f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall and F1 from counts; any zero division gives 0.0."""
    p = _ratio(tp, tp + fp)
    r = _ratio(tp, tp + fn)
    return p, r, _ratio(2 * p * r, p + r)


def percentile(values: Sequence[float], q: float) -> float:
    """q-th percentile (0-100) with linear interpolation between ranks, as numpy's default."""
    if not values:
        raise ValueError("percentile of an empty sequence is undefined; pass at least one value")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be between 0 and 100, got {q}")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _match_results(
    gold: Sequence[GoldItem], results: Sequence[QuestionResult]
) -> dict[str, QuestionResult]:
    by_id: dict[str, QuestionResult] = {}
    for r in results:
        if r.id in by_id:
            raise ScoreError(f"two results for question {r.id!r}; give one result per question")
        by_id[r.id] = r
    gold_ids = [g.id for g in gold]
    dupes = sorted(i for i, n in Counter(gold_ids).items() if n > 1)
    if dupes:
        raise ScoreError(
            f"duplicate gold ids {', '.join(dupes)}; ids must be unique across all gold files"
        )
    missing = [i for i in gold_ids if i not in by_id]
    if missing:
        raise ScoreError(
            f"no result for {len(missing)} gold question(s): {', '.join(missing[:5])}"
            f"{' ...' if len(missing) > 5 else ''}; run the pipeline on every gold question"
        )
    extra = sorted(set(by_id) - set(gold_ids))
    if extra:
        raise ScoreError(
            f"results for ids not in the gold set: {', '.join(extra[:5])}; score results "
            "against the gold file they came from"
        )
    return by_id


def score(
    gold: Sequence[GoldItem],
    results: Sequence[QuestionResult],
    doc_texts: Mapping[str, str],
) -> dict[str, Any]:
    """Score results against gold: the flat metrics.json dict, per_question and by_type."""
    if not gold:
        raise ScoreError("no gold questions to score; load at least one gold file")
    by_id = _match_results(gold, results)

    per_question: list[dict[str, Any]] = []
    answer_em: list[float] = []
    answer_f1: list[float] = []
    recalls: dict[int, list[float]] = {k: [] for k in _TOP_K}
    rr: list[float] = []
    recall5: list[float | None] = []  # per question, None for unanswerable ones
    cited_correct = cited_total = questions_cited = 0
    tp = fp = fn = 0

    for item in gold:
        res = by_id[item.id]
        abstained = res.abstained
        prediction = None if abstained else res.prediction
        em = exact_match(prediction, item.answers)
        f = f1(prediction, item.answers)
        evidence = locate_evidence(item, doc_texts)
        rank = first_hit_rank(res.retrieved, evidence) if item.answerable else None
        retrieved_ok = False
        has_correct_citation = False
        failure: str | None = None

        if item.answerable:
            answer_em.append(em)
            answer_f1.append(f)
            for k in _TOP_K:
                recalls[k].append(recall_at_k(res.retrieved, evidence, k))
            rr.append(1.0 / rank if rank else 0.0)
            # "Retrieved" means every evidence piece is in the top 5, so a multi-hop miss
            # of one article is blamed on retrieval, not on the reader.
            recall5.append(recall_at_k(res.retrieved, evidence, _RETRIEVED_K))
            retrieved_ok = recall5[-1] == 1.0
            if not abstained:
                # An abstention cites nothing, so its spans (if any) are not judged.
                correct = sum(1 for s in res.cited if any(_cites(s, ev) for ev in evidence))
                cited_correct += correct
                cited_total += len(res.cited)
                has_correct_citation = correct > 0
                questions_cited += int(has_correct_citation)
            if em < 1.0:
                failure = "reading" if retrieved_ok else "retrieval"
            # Positive = abstained: abstaining on an answerable question is a false positive.
            fp += int(abstained)
        else:
            recall5.append(None)
            if abstained:
                tp += 1
            else:
                fn += 1
                failure = "false_answer"

        per_question.append(
            {
                "id": item.id,
                "type": item.type,
                "question": item.question,
                "gold": item.answers[0] if item.answers else None,
                "prediction": prediction,
                "em": em,
                "f1": f,
                "abstained": abstained,
                "cited": has_correct_citation,
                "retrieved": retrieved_ok,
                "retrieval_rank": rank,
                "latency_ms": res.latency_ms,
                "reranked": res.reranked,
                "failure": failure,
            }
        )

    n_answerable = sum(1 for g in gold if g.answerable)
    ab_p, ab_r, ab_f = precision_recall_f1(tp, fp, fn)
    latencies = [by_id[g.id].latency_ms for g in gold]
    metrics: dict[str, Any] = {
        "n_questions": len(gold),
        "n_answerable": n_answerable,
        "n_unanswerable": len(gold) - n_answerable,
        "answer.em": _mean(answer_em),
        "answer.f1": _mean(answer_f1),
        "overall.em": _mean(q["em"] for q in per_question),
        "overall.f1": _mean(q["f1"] for q in per_question),
        "retrieval.recall@1": _mean(recalls[1]),
        "retrieval.recall@5": _mean(recalls[5]),
        "retrieval.mrr": _mean(rr),
        "citation.precision": _ratio(cited_correct, cited_total),
        "citation.recall": _ratio(questions_cited, n_answerable),
        "abstention.precision": ab_p,
        "abstention.recall": ab_r,
        "abstention.f1": ab_f,
        "latency_ms.p50": percentile(latencies, 50),
        "latency_ms.p95": percentile(latencies, 95),
        "reranked.share": _mean(float(by_id[g.id].reranked) for g in gold),
        "per_question": per_question,
        "by_type": _by_type(per_question, recall5),
    }
    return metrics


def _by_type(
    per_question: Sequence[Mapping[str, Any]], recall5: Sequence[float | None]
) -> dict[str, dict[str, Any]]:
    """n, em, f1 (SQuAD 2.0 per question) and recall@5 (None if no evidence) per type."""
    groups: dict[str, list[tuple[Mapping[str, Any], float | None]]] = {}
    for row, rec in zip(per_question, recall5, strict=True):
        groups.setdefault(row["type"], []).append((row, rec))
    out: dict[str, dict[str, Any]] = {}
    for qtype, members in sorted(groups.items()):
        recalls = [rec for _, rec in members if rec is not None]
        out[qtype] = {
            "n": len(members),
            "em": _mean(row["em"] for row, _ in members),
            "f1": _mean(row["f1"] for row, _ in members),
            # None, not 0.0: a type with no evidence (unanswerable) has no recall to report.
            "recall@5": _mean(recalls) if recalls else None,
        }
    return out
