"""The eval harness: run gold questions through the same QA calls users make, and score them.

Gold data only measures. The one thing fitted on it is the abstention calibration, and
that is fitted on three quarters of the questions (a fixed split by id hash) so the
report can show the held-out quarter beside the fitted part.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.backends.base import SearchIndex
from rag.decision import Calibration, fit_calibration
from rag.errors import RagError
from rag.index import Index, copy_folder
from rag.metrics import GoldItem, QuestionResult, Span, f1, load_gold, score
from rag.pipeline import QA, Trace
from rag.retrieval import Mode

ALWAYS_ANSWER = Calibration(weights={}, bias=40.0, threshold=0.0, fitted_on="always answer")
Progress = Callable[[int, int], None]


@dataclass
class EvalRun:
    """One evaluation: metrics over all questions, per split, and the traces behind them."""

    metrics: dict[str, Any]
    splits: dict[str, dict[str, Any]]
    traces: dict[str, Trace]


def load_gold_files(paths: Sequence[Path]) -> list[GoldItem]:
    """Load gold files; ids must be unique across them."""
    items: list[GoldItem] = []
    seen: dict[str, Path] = {}
    for path in paths:
        if not path.exists():
            raise RagError(f"gold file {path} does not exist; give a JSONL file of questions")
        try:
            loaded = load_gold(path)
        except ValueError as exc:
            raise RagError(str(exc)) from None
        for item in loaded:
            if item.id in seen:
                raise RagError(
                    f"question id {item.id!r} is in both {seen[item.id]} and {path}; "
                    "ids must be unique across gold files"
                )
            seen[item.id] = path
        items.extend(loaded)
    if not items:
        raise RagError("the gold files hold no questions")
    return items


def split_by_file(
    gold: Sequence[GoldItem], run: EvalRun, paths: Sequence[Path], texts: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """Metrics per gold file (by file stem) when more than one was given."""
    if len(paths) < 2:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for path in paths:
        ids = {item.id for item in load_gold(path)}
        part = [g for g in gold if g.id in ids]
        out[path.stem] = score(part, [_result(g, run.traces[g.id]) for g in part], texts)
    return out


def quarter(item_id: str) -> int:
    """The quarter (0-3) a question falls in: a hash of its id, never its content."""
    return int(hashlib.sha256(item_id.encode()).hexdigest(), 16) % 4


def is_holdout(item_id: str) -> bool:
    """The fixed held-out quarter (quarter 0): the stored calibration never sees it."""
    return quarter(item_id) == 0


def document_texts(index: SearchIndex, gold: Sequence[GoldItem]) -> dict[str, str]:
    """Stored texts of every article the gold questions cite."""
    texts: dict[str, str] = {}
    missing = []
    for item in gold:
        for source in item.docs:
            if source in texts:
                continue
            doc = index.get_document(source)
            if doc is None:
                missing.append(source)
            else:
                texts[source] = doc.text
    if missing:
        raise RagError(
            f"gold questions cite articles that are not in the index: "
            f"{', '.join(sorted(set(missing)))}; add them with 'rag add' or 'rag eval --add PATH'"
        )
    return texts


def _result(item: GoldItem, trace: Trace) -> QuestionResult:
    answer = trace.answer
    return QuestionResult(
        id=item.id,
        prediction=answer.answer,
        retrieved=tuple(Span(h.source, h.start, h.end, h.text) for h in trace.hits),
        cited=tuple(Span(c.source, c.start, c.end, c.quote) for c in answer.citations),
        latency_ms=float(answer.timings_ms.get("total", 0.0)),
        reranked=answer.timings_ms.get("rerank", 0.0) > 0,
    )


def run_questions(
    qa: QA,
    gold: Sequence[GoldItem],
    *,
    mode: Mode = "hybrid",
    calibration: Calibration | None = None,
    progress: Progress | None = None,
) -> dict[str, Trace]:
    """Ask every gold question; traces keyed by question id (caches cleared first, so
    latency is measured cold per question, as a user with new questions sees it)."""
    qa.clear_caches()
    traces: dict[str, Trace] = {}
    for i, item in enumerate(gold):
        traces[item.id] = qa.trace(item.question, 5, mode=mode, calibration=calibration)
        if progress:
            progress(i + 1, len(gold))
    return traces


def score_traces(
    gold: Sequence[GoldItem], traces: dict[str, Trace], texts: dict[str, str]
) -> EvalRun:
    """Metrics over all questions and over the fitted / held-out splits."""
    results = [_result(item, traces[item.id]) for item in gold]
    metrics = score(gold, results, texts)
    splits: dict[str, dict[str, Any]] = {}
    for name, keep in (("fitted", False), ("held_out", True)):
        part = [(g, r) for g, r in zip(gold, results, strict=True) if is_holdout(g.id) == keep]
        if part:
            splits[name] = score([g for g, _ in part], [r for _, r in part], texts)
    return EvalRun(metrics, splits, traces)


def evaluate(
    qa: QA,
    gold: Sequence[GoldItem],
    *,
    mode: Mode = "hybrid",
    progress: Progress | None = None,
) -> EvalRun:
    """Run and score the gold set with the service's own calibration."""
    texts = document_texts(qa.index, gold)
    return score_traces(gold, run_questions(qa, gold, mode=mode, progress=progress), texts)


OFF_TOPIC = Path(__file__).resolve().parents[1] / "eval" / "calibration" / "offtopic.jsonl"


@dataclass
class Fitted:
    """A calibration fitted on quarters 1-3 of the gold set, and the rotation check."""

    calibration: Calibration
    # Gold metrics with every quarter scored by a calibration fitted on the other three:
    # each question is judged by a model that never saw it (empty for tiny gold sets).
    rotated: dict[str, Any]


def fit(
    qa: QA,
    gold: Sequence[GoldItem],
    *,
    off_topic: Sequence[GoldItem] = (),
    progress: Progress | None = None,
) -> Fitted:
    """Fit the abstention calibration on the fitted split (3/4) of `gold` (plus generic
    off-topic questions, which only ever count as unanswerable), and score the rotation:
    each quarter held out in turn."""
    traces = run_questions(qa, gold, calibration=ALWAYS_ANSWER, progress=progress)
    off = run_questions(qa, off_topic, calibration=ALWAYS_ANSWER)
    off_features = [off[item.id].features for item in off_topic]

    def rows_without(held: int) -> list[tuple[dict[str, float], float, bool]]:
        return [
            (traces[item.id].features,
             f1(traces[item.id].answer.answer, item.answers) if item.answerable else 0.0,
             item.answerable)
            for item in gold if quarter(item.id) != held
        ]

    folds = [rows_without(k) for k in range(4)]
    fitted = folds[0]
    calibration = fit_calibration(
        fitted,
        off_topic=off_features,
        note=f"{len(fitted)} gold questions (the non-held-out 3/4) + {len(off_topic)} off-topic, "
        f"reader {qa.reader.name}",
    )
    rotated: dict[str, Any] = {}
    if all(folds) and len({quarter(item.id) for item in gold}) == 4:
        results: dict[str, QuestionResult] = {}
        for k, rows in enumerate(folds):
            model = calibration if k == 0 else fit_calibration(rows, off_topic=off_features)
            for item in gold:
                if quarter(item.id) == k:
                    trace = traces[item.id]
                    result = _result(item, trace)
                    if model.confidence(trace.features) < model.threshold:
                        result = QuestionResult(item.id, None, result.retrieved, (),
                                                result.latency_ms)
                    results[item.id] = result
        rotated = score(gold, [results[item.id] for item in gold],
                        document_texts(qa.index, gold))
    return Fitted(calibration, rotated)


@contextmanager
def scratch_copy(index: SearchIndex) -> Iterator[Path]:
    """A temporary copy of an index folder, so `--add` never touches the live index."""
    if not isinstance(index, Index):
        raise RagError(
            f"'rag eval --add' scores on a temporary copy of an index folder, and "
            f"{index.location} is a database; add the articles to a scratch database with "
            "'rag --database-url URL add PATH' and run 'rag eval' there"
        )
    with tempfile.TemporaryDirectory(prefix="rag-eval-") as tmp:
        target = Path(tmp) / "index"
        copy_folder(index.folder, target)
        yield target
