"""Abstention calibration, newer-facts-win, citations and question validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.answer import Answer, Citation, GroundingError, Reading, check_invariants
from rag.decision import Calibration, decide, fit_calibration, validate_question
from rag.errors import InvalidQuery
from rag.retrieval import Hit

OLD = "The council will spend about HK$100 million on the bridge. Work starts soon."
NEW = "The council raised the budget for the bridge to about HK$150 million. Work starts soon."
OTHER = "A museum in Sha Tin will charge about HK$50 million for tickets next year."
TEXTS = {"old.txt": OLD, "new.txt": NEW, "other.txt": OTHER}


def _hit(source: str, published: str) -> Hit:
    text = TEXTS[source]
    return Hit(1, f"c-{source}", source, 0, len(text), text, source.upper(), published, 1.0)


def _reading(source: str, amount: str, score: float, published: str) -> Reading:
    text = TEXTS[source]
    start = text.index(amount)
    end_of_sentence = text.index(".") + 1
    return Reading(
        text=amount, source=source, start=start, end=start + len(amount), score=score,
        hit=_hit(source, published), sentence=(0, end_of_sentence),
        features={"score": score, "kind": 1.0},
    )


ALWAYS = Calibration(weights={}, bias=40.0, threshold=0.5)
NEVER = Calibration(weights={}, bias=-40.0, threshold=0.5)


def test_newer_article_wins_and_both_are_cited_newest_first() -> None:
    readings = [
        _reading("old.txt", "about HK$100 million", 0.90, "2026-01-01"),
        _reading("new.txt", "about HK$150 million", 0.85, "2026-03-01"),
    ]
    answer = decide("How much?", [], readings, ALWAYS, TEXTS.get, reader="t")
    assert answer.answer == "about HK$150 million"
    assert [c.source for c in answer.citations] == ["new.txt", "old.txt"]
    check_invariants(answer, TEXTS.get)


@pytest.mark.parametrize(("source", "amount", "score"), [
    ("new.txt", "about HK$150 million", 0.30),  # the same statement, but far weaker
    ("other.txt", "about HK$50 million", 0.88),  # close, but about something else
])
def test_a_newer_rival_that_is_far_weaker_or_about_something_else_is_ignored(
    source: str, amount: str, score: float
) -> None:
    readings = [
        _reading("old.txt", "about HK$100 million", 0.90, "2026-01-01"),
        _reading(source, amount, score, "2026-03-01"),
    ]
    answer = decide("How much?", [], readings, ALWAYS, TEXTS.get, reader="t")
    assert answer.answer == "about HK$100 million"
    assert [c.source for c in answer.citations] == ["old.txt"]


def test_low_confidence_abstains_with_no_citations() -> None:
    readings = [_reading("old.txt", "about HK$100 million", 0.9, "2026-01-01")]
    answer = decide("How much?", [], readings, NEVER, TEXTS.get, reader="t")
    assert answer.answer is None and answer.answerable is False and answer.citations == ()
    check_invariants(answer, TEXTS.get)


def test_no_readings_abstains() -> None:
    answer = decide("Anything?", [], [], ALWAYS, TEXTS.get, reader="t")
    assert answer.answer is None and not answer.answerable


def test_citation_quote_is_the_sentence_holding_the_answer() -> None:
    readings = [_reading("old.txt", "about HK$100 million", 0.9, "2026-01-01")]
    answer = decide("How much?", [], readings, ALWAYS, TEXTS.get, reader="t")
    (citation,) = answer.citations
    assert citation.quote == OLD[: OLD.index(".") + 1]
    assert OLD[citation.start : citation.end] == citation.quote


def test_an_article_removed_mid_answer_gives_an_abstention_not_an_error() -> None:
    readings = [_reading("old.txt", "about HK$100 million", 0.9, "2026-01-01")]
    answer = decide("How much?", [], readings, ALWAYS, lambda source: None, reader="t")
    assert answer.answer is None


def test_invariants_catch_a_quote_that_is_not_in_the_document() -> None:
    bad = Answer(
        "q", "HK$100", True, 0.9,
        (Citation("old.txt", None, None, "c", 0, 5, "wrong"),),
    )
    with pytest.raises(GroundingError):
        check_invariants(bad, TEXTS.get)
    null_but_answerable = Answer("q", None, True, 0.1)
    with pytest.raises(GroundingError):
        check_invariants(null_but_answerable, TEXTS.get)


def _alternating_rows(bad_lex: float) -> list[tuple[dict[str, float], float, bool]]:
    """40 rows, right and wrong proposals in turn, told apart by lex_best alone."""
    return [({"lex_best": 0.8 if i % 2 == 0 else bad_lex, "kind": 1.0},
             1.0 if i % 2 == 0 else 0.0, i % 2 == 0) for i in range(40)]


def test_fit_calibration_separates_and_sets_a_useful_threshold() -> None:
    rows = _alternating_rows(bad_lex=0.1)
    calib = fit_calibration(rows)
    assert calib.confidence({"lex_best": 0.8, "kind": 1.0}) >= calib.threshold
    assert calib.confidence({"lex_best": 0.1, "kind": 1.0}) < calib.threshold
    assert calib.metrics["train_overall_f1"] == pytest.approx(1.0)


def test_questions_without_a_proposed_answer_do_not_pull_the_fit() -> None:
    rows = _alternating_rows(bad_lex=0.3)
    plain = fit_calibration(rows)
    # Unanswerable questions the reader proposed nothing for: always abstentions, and no
    # evidence about where the line between right and wrong proposals lies.
    empty: list[tuple[dict[str, float], float, bool]] = [({}, 0.0, False)] * 10
    with_empty = fit_calibration(rows + empty)
    assert with_empty.weights == pytest.approx(plain.weights)
    assert with_empty.bias == pytest.approx(plain.bias)
    assert 0.0 <= with_empty.threshold <= 1.0
    # They still count as abstentions in the score the threshold maximises.
    assert with_empty.metrics["train_overall_f1"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no rows with a proposed answer"):
        fit_calibration(empty)


def test_the_threshold_does_not_abstain_on_answerable_questions_for_one_more_unanswerable(
) -> None:
    # Confidence follows lex_best: four unanswerable questions lowest, then four answerable
    # ones read wrongly, one more unanswerable, and ten right answers. Abstaining up to the
    # fifth unanswerable raises the SQuAD score (a wrong answer and an abstention both score
    # 0) but abstains on four answerable questions; abstention F1 says that is worse.
    rows = ([({"lex_best": 0.1}, 0.0, False)] * 4 + [({"lex_best": 0.3}, 0.0, True)] * 4
            + [({"lex_best": 0.5}, 0.0, False)] + [({"lex_best": 0.9}, 1.0, True)] * 10)
    calib = fit_calibration(rows)
    assert calib.confidence({"lex_best": 0.1}) < calib.threshold
    assert calib.confidence({"lex_best": 0.3}) >= calib.threshold
    assert calib.metrics["train_overall_f1"] == round(14 / 19, 4)
    assert calib.metrics["train_abstention_f1"] == round(8 / 9, 4)


def test_calibration_is_stored_per_reader(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    Calibration(weights={"kind": 2.0}, bias=-1.0, threshold=0.3).save("extractive", path)
    Calibration(weights={"kind": 1.0}, bias=-2.0, threshold=0.6).save("hybrid", path)
    assert Calibration.load(path, "extractive").threshold == 0.3
    assert Calibration.load(path, "hybrid").threshold == 0.6
    assert Calibration.load(path, "generative").fitted_on.startswith("hand-set")


def test_broken_calibration_file_says_how_to_fix(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    path.write_text("{not json")
    with pytest.raises(InvalidQuery, match="--fit-calibration"):
        Calibration.load(path, "extractive")


@pytest.mark.parametrize(
    ("question", "message"),
    [("", "empty"), ("   ", "empty"), ("x" * 1001, "limit is 1000"), ("a\x00b", "control")],
)
def test_bad_questions_are_refused_with_a_reason(question: str, message: str) -> None:
    with pytest.raises(InvalidQuery, match=message):
        validate_question(question, 1000)
