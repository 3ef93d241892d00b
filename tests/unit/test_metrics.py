"""Metrics pinned on hand-computed cases, edge cases included."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest

from rag.metrics import (
    EvidenceNotFoundError,
    GoldFormatError,
    GoldItem,
    QuestionResult,
    ScoreError,
    Span,
    exact_match,
    f1,
    first_hit_rank,
    load_gold,
    locate_evidence,
    normalize_answer,
    percentile,
    precision_recall_f1,
    recall_at_k,
    score,
)

# A two-document corpus small enough to count offsets by hand.
DOC_A = "The centre costs HK$220 million. It is in Yuen Long. Chan spoke on Wednesday."
DOC_B = "Sun Dong spoke to LegCo. The fund starts in 2026. The land is 10 hectares."
DOCS = {"a.txt": DOC_A, "b.txt": DOC_B}
E1 = "The centre costs HK$220 million."  # a.txt [0, 32)
E2 = "Chan spoke on Wednesday."  # a.txt [53, 77), the end of DOC_A
E3 = "The fund starts in 2026."  # b.txt [25, 49)

METRIC_KEYS = {
    "n_questions",
    "n_answerable",
    "n_unanswerable",
    "answer.em",
    "answer.f1",
    "overall.em",
    "overall.f1",
    "retrieval.recall@1",
    "retrieval.recall@5",
    "retrieval.mrr",
    "citation.precision",
    "citation.recall",
    "abstention.precision",
    "abstention.recall",
    "abstention.f1",
    "latency_ms.p50",
    "latency_ms.p95",
    "reranked.share",
    "per_question",
    "by_type",
}


def item(
    qid: str,
    answers: tuple[str, ...] = (),
    docs: tuple[str, ...] = (),
    evidence: tuple[str, ...] = (),
    qtype: str | None = None,
) -> GoldItem:
    return GoldItem(
        id=qid,
        question=f"question {qid}?",
        answers=answers,
        docs=docs,
        evidence=evidence,
        type=qtype or ("factoid" if answers else "unanswerable"),
    )


def span(source: str, start: int, end: int) -> Span:
    return Span(source, start, end, DOCS.get(source, "")[start:end])


def result(
    qid: str,
    prediction: str | None,
    retrieved: tuple[Span, ...] = (),
    cited: tuple[Span, ...] = (),
    latency_ms: float = 10.0,
    reranked: bool = False,
) -> QuestionResult:
    return QuestionResult(qid, prediction, retrieved, cited, latency_ms, reranked)


def test_corpus_offsets_are_as_commented() -> None:
    assert DOC_A.index(E1) == 0 and len(E1) == 32
    assert DOC_A.index(E2) == 53 and len(E2) == 24 and len(DOC_A) == 77
    assert DOC_B.index(E3) == 25 and len(E3) == 24


# --------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("The  Cat, sat!", "cat sat"),
        ("An apple a day", "apple day"),
        ("HK$220 million.", "hk220 million"),
        ("theatre and anthem", "theatre and anthem"),  # articles only as whole words
        ("  \n\t ", ""),
        ("the", ""),
        ("one country, two systems", "one country two systems"),
        ("yes—no", "yes—no"),  # official SQuAD punctuation is ASCII only
    ],
)
def test_normalize_answer(raw: str, normal: str) -> None:
    assert normalize_answer(raw) == normal


def test_exact_match_ignores_case_punctuation_and_articles() -> None:
    assert exact_match("the HK$220 Million.", ["HK$220 million"]) == 1.0
    assert exact_match("HK$220", ["HK$220 million"]) == 0.0


def test_exact_match_takes_the_best_gold_answer() -> None:
    assert exact_match("HK$220 million", ["about HK$220 million", "HK$220 million"]) == 1.0
    assert exact_match("HK$220 million", ["about HK$220 million", "$28.1 million"]) == 0.0


def test_exact_match_empty_cases_follow_squad2() -> None:
    assert exact_match("", []) == 1.0  # nothing to say, nothing said
    assert exact_match(None, []) == 1.0
    assert exact_match("the", []) == 1.0  # normalises to empty
    assert exact_match("Paris", []) == 0.0
    assert exact_match("", ["Paris"]) == 0.0
    assert exact_match(None, ["Paris"]) == 0.0


def test_f1_partial_overlap() -> None:
    # pred {about, hk220, million} vs gold {hk220, million}: P = 2/3, R = 1, F1 = 0.8
    assert f1("about HK$220 million", ["HK$220 million"]) == pytest.approx(0.8)


def test_f1_takes_the_best_gold_answer() -> None:
    # "Yuen Long" vs "Yuen Long InnoPark": P = 1, R = 2/3, F1 = 0.8; the other gold scores 0
    assert f1("Yuen Long", ["Shenzhen Bay Port", "Yuen Long InnoPark"]) == pytest.approx(0.8)
    assert f1("green apple", ["red apple", "green pear"]) == pytest.approx(0.5)


def test_f1_counts_repeated_tokens_once_each() -> None:
    # common = {x: 1, y: 1}: P = R = 2/3
    assert f1("x x y", ["x y y"]) == pytest.approx(2 / 3)


def test_f1_normalises_before_comparing() -> None:
    assert f1("The Yuen Long InnoPark!", ["yuen long innopark"]) == 1.0
    assert f1("nothing alike", ["Yuen Long"]) == 0.0


def test_f1_empty_cases_follow_squad2() -> None:
    assert f1("", []) == 1.0
    assert f1(None, []) == 1.0
    assert f1("Paris", []) == 0.0
    assert f1("", ["Paris"]) == 0.0
    assert f1("a an the", ["Paris"]) == 0.0  # all articles: empty after normalising


# --------------------------------------------------------------------------- spans


def test_span_rejects_bad_offsets() -> None:
    with pytest.raises(ValueError, match="0 <= start <= end"):
        Span("a.txt", 5, 3, "")
    with pytest.raises(ValueError, match="0 <= start <= end"):
        Span("a.txt", -1, 3, "")


def test_locate_evidence_finds_first_occurrence() -> None:
    docs = {"d.txt": "Alpha beta. Gamma. Alpha beta."}
    found = locate_evidence(item("q", ("beta",), ("d.txt",), ("Alpha beta",)), docs)
    assert found == [("d.txt", 0, 10)]


def test_locate_evidence_multi_hop_and_unanswerable() -> None:
    multi = item("q", ("x",), ("a.txt", "b.txt"), (E2, E3), "multi-hop")
    assert locate_evidence(multi, DOCS) == [("a.txt", 53, 77), ("b.txt", 25, 49)]
    assert locate_evidence(item("u"), DOCS) == []


def test_locate_evidence_errors_are_clear() -> None:
    bad_text = item("q-9", ("x",), ("a.txt",), ("Chan spoke on Tuesday.",))
    with pytest.raises(EvidenceNotFoundError, match=r"q-9: evidence .* is not in 'a.txt'.*exact"):
        locate_evidence(bad_text, DOCS)
    bad_doc = item("q-8", ("x",), ("zzz.txt",), ("anything",))
    with pytest.raises(EvidenceNotFoundError, match=r"q-8: document 'zzz.txt' is not among"):
        locate_evidence(bad_doc, DOCS)


# --------------------------------------------------------------------------- retrieval


EV = [("d", 40, 60)]  # a 20-character evidence span


@pytest.mark.parametrize(
    ("start", "end", "hit"),
    [
        (30, 70, True),  # contains the whole evidence
        (40, 60, True),  # exactly the evidence
        (50, 90, True),  # covers 10 of 20 characters: half counts
        (20, 50, True),  # half, from the other side
        (51, 90, False),  # 9 of 20
        (0, 40, False),  # touches, no overlap
        (45, 55, True),  # inside the evidence, exactly half of it
        (46, 55, False),  # inside, less than half
    ],
)
def test_retrieval_hit_rule(start: int, end: int, hit: bool) -> None:
    assert recall_at_k([Span("d", start, end, "")], EV, 5) == float(hit)


def test_retrieval_hit_needs_the_same_document() -> None:
    assert recall_at_k([Span("other", 0, 100, "")], EV, 5) == 0.0


def test_evidence_spanning_two_chunks_still_counts() -> None:
    chunks = [Span("d", 0, 50, ""), Span("d", 50, 100, "")]
    assert recall_at_k(chunks, [("d", 40, 60)], 5) == 1.0  # 10/20 in each chunk
    assert recall_at_k(chunks[:1], [("d", 44, 60)], 5) == 0.0  # 6/16 in the first
    assert recall_at_k(chunks, [("d", 44, 60)], 5) == 1.0  # 10/16 in the second
    assert first_hit_rank(chunks, [("d", 44, 60)]) == 2


def test_recall_at_k_multi_hop_counts_each_piece() -> None:
    evidence = [("a", 0, 10), ("b", 0, 10)]
    assert recall_at_k([Span("a", 0, 100, "")], evidence, 5) == 0.5
    both = [Span("x", 0, 9, ""), Span("b", 0, 100, ""), Span("a", 0, 100, "")]
    assert recall_at_k(both, evidence, 1) == 0.0
    assert recall_at_k(both, evidence, 2) == 0.5
    assert recall_at_k(both, evidence, 3) == 1.0
    assert recall_at_k([], evidence, 5) == 0.0
    assert recall_at_k(both, [], 5) == 0.0


def test_first_hit_rank() -> None:
    ranked = [Span("a", 200, 300, ""), Span("x", 0, 9, ""), Span("a", 0, 100, "")]
    assert first_hit_rank(ranked, [("a", 10, 20)]) == 3
    assert first_hit_rank(ranked, [("a", 500, 520)]) is None
    assert first_hit_rank([], [("a", 10, 20)]) is None


# --------------------------------------------------------------------------- aggregates


def test_precision_recall_f1_and_zero_division() -> None:
    assert precision_recall_f1(1, 0, 1) == pytest.approx((1.0, 0.5, 2 / 3))
    assert precision_recall_f1(0, 0, 0) == (0.0, 0.0, 0.0)
    assert precision_recall_f1(0, 3, 0) == (0.0, 0.0, 0.0)
    assert precision_recall_f1(0, 0, 4) == (0.0, 0.0, 0.0)


def test_percentile_linear_interpolation() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([10, 20, 30, 40], 95) == pytest.approx(38.5)  # pos 2.85
    assert percentile([40, 10, 30, 20], 0) == 10  # input order does not matter
    assert percentile([40, 10, 30, 20], 100) == 40
    assert percentile([7.0], 95) == 7.0


def test_percentile_matches_numpy() -> None:
    rng = random.Random(3)
    values = [rng.uniform(1, 500) for _ in range(37)]
    for q in (0, 5, 50, 90, 95, 99, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="empty sequence"):
        percentile([], 50)
    with pytest.raises(ValueError, match="between 0 and 100, got 101"):
        percentile([1.0], 101)


# --------------------------------------------------------------------------- score


def scenario() -> tuple[list[GoldItem], list[QuestionResult]]:
    """Four questions whose every metric is worked out by hand in test_score_headline."""
    gold = [
        item("q1", ("HK$220 million", "about HK$220 million"), ("a.txt",), (E1,), "numeric"),
        item("q2", ("Wednesday",), ("a.txt", "b.txt"), (E2, E3), "multi-hop"),
        item("q3"),
        item("q4"),
    ]
    results = [
        # right answer; evidence in the 2nd passage; one of two citations correct
        result(
            "q1",
            "HK$220 million.",
            retrieved=(span("b.txt", 0, 24), span("a.txt", 0, 53)),
            cited=(span("a.txt", 17, 31), span("b.txt", 0, 24)),
            latency_ms=10,
        ),
        # half right (F1 2/3); only a.txt's evidence retrieved, at rank 1; citation correct
        result(
            "q2",
            "on Wednesday",
            retrieved=(span("a.txt", 33, 77),),
            cited=(span("b.txt", 25, 49),),
            latency_ms=20,
        ),
        result("q3", None, latency_ms=30, reranked=True),  # abstains, after a second look
        result("q4", "Paris", latency_ms=40),  # answers an unanswerable question: wrong
    ]
    return gold, results


def test_score_has_exactly_the_contract_keys() -> None:
    gold, results = scenario()
    assert set(score(gold, results, DOCS)) == METRIC_KEYS


def test_score_headline() -> None:
    gold, results = scenario()
    m = score(gold, results, DOCS)
    assert (m["n_questions"], m["n_answerable"], m["n_unanswerable"]) == (4, 2, 2)
    assert m["answer.em"] == pytest.approx(0.5)  # (1 + 0) / 2
    assert m["answer.f1"] == pytest.approx(5 / 6)  # (1 + 2/3) / 2
    assert m["overall.em"] == pytest.approx(0.5)  # (1 + 0 + 1 + 0) / 4
    assert m["overall.f1"] == pytest.approx(2 / 3)  # (1 + 2/3 + 1 + 0) / 4
    assert m["retrieval.recall@1"] == pytest.approx(0.25)  # (0 + 0.5) / 2
    assert m["retrieval.recall@5"] == pytest.approx(0.75)  # (1 + 0.5) / 2
    assert m["retrieval.mrr"] == pytest.approx(0.75)  # (1/2 + 1/1) / 2
    assert m["citation.precision"] == pytest.approx(2 / 3)  # 2 correct of 3 cited
    assert m["citation.recall"] == pytest.approx(1.0)  # both answerable have one
    assert m["abstention.precision"] == pytest.approx(1.0)  # tp 1, fp 0
    assert m["abstention.recall"] == pytest.approx(0.5)  # tp 1, fn 1
    assert m["abstention.f1"] == pytest.approx(2 / 3)
    assert m["latency_ms.p50"] == pytest.approx(25.0)
    assert m["latency_ms.p95"] == pytest.approx(38.5)
    assert m["reranked.share"] == pytest.approx(0.25)  # q3 only
    json.dumps(m, allow_nan=False)  # metrics.json must be valid JSON


def test_score_per_question() -> None:
    gold, results = scenario()
    rows = {r["id"]: r for r in score(gold, results, DOCS)["per_question"]}
    assert [r["id"] for r in score(gold, results, DOCS)["per_question"]] == [
        "q1",
        "q2",
        "q3",
        "q4",
    ]
    assert rows["q1"] == {
        "id": "q1",
        "type": "numeric",
        "question": "question q1?",
        "gold": "HK$220 million",
        "prediction": "HK$220 million.",
        "em": 1.0,
        "f1": 1.0,
        "abstained": False,
        "cited": True,
        "retrieved": True,
        "retrieval_rank": 2,
        "latency_ms": 10,
        "reranked": False,
        "failure": None,
    }
    q2 = rows["q2"]
    assert (q2["em"], q2["retrieved"], q2["retrieval_rank"]) == (0.0, False, 1)
    assert q2["f1"] == pytest.approx(2 / 3)
    assert q2["failure"] == "retrieval"  # b.txt's evidence never came back
    q3 = rows["q3"]
    assert (q3["gold"], q3["prediction"], q3["abstained"], q3["em"], q3["failure"]) == (
        None,
        None,
        True,
        1.0,
        None,
    )
    assert (q3["retrieved"], q3["retrieval_rank"], q3["cited"]) == (False, None, False)
    assert (rows["q4"]["em"], rows["q4"]["failure"]) == (0.0, "false_answer")


def test_score_by_type() -> None:
    gold, results = scenario()
    by_type = score(gold, results, DOCS)["by_type"]
    assert by_type["numeric"] == {"n": 1, "em": 1.0, "f1": 1.0, "recall@5": 1.0}
    assert by_type["multi-hop"]["n"] == 1
    assert by_type["multi-hop"]["f1"] == pytest.approx(2 / 3)
    assert by_type["multi-hop"]["recall@5"] == pytest.approx(0.5)
    # unanswerable: one right abstention of two; no evidence, so no recall
    assert by_type["unanswerable"] == {"n": 2, "em": 0.5, "f1": 0.5, "recall@5": None}


def test_reading_failure_and_wrong_abstention() -> None:
    gold = [item("q1", ("HK$220 million",), ("a.txt",), (E1,))]
    # Evidence retrieved, but the reader abstained: its citation is ignored.
    results = [result("q1", None, (span("a.txt", 0, 32),), (span("a.txt", 0, 32),))]
    m = score(gold, results, DOCS)
    row = m["per_question"][0]
    assert (row["failure"], row["abstained"], row["cited"], row["retrieved"]) == (
        "reading",
        True,
        False,
        True,
    )
    assert m["answer.f1"] == 0.0 and m["overall.f1"] == 0.0
    assert m["citation.precision"] == 0.0  # nothing answered, so nothing cited: 0.0
    assert m["citation.recall"] == 0.0
    # one abstention, on an answerable question: fp 1, and no unanswerable questions
    assert (m["abstention.precision"], m["abstention.recall"], m["abstention.f1"]) == (0, 0, 0)


def test_wrong_answer_with_evidence_retrieved_is_a_reading_failure() -> None:
    gold = [item("q1", ("Wednesday",), ("a.txt", "b.txt"), (E2, E3), "multi-hop")]
    retrieved = (span("b.txt", 0, 49), span("a.txt", 33, 77))
    m = score(gold, [result("q1", "Tuesday", retrieved)], DOCS)
    row = m["per_question"][0]
    assert (row["retrieved"], row["retrieval_rank"], row["failure"]) == (True, 1, "reading")
    assert m["retrieval.recall@1"] == 0.5 and m["retrieval.recall@5"] == 1.0


def test_blank_prediction_counts_as_abstaining() -> None:
    m = score([item("u1")], [result("u1", "   ")], DOCS)
    assert m["per_question"][0]["abstained"] is True
    assert m["per_question"][0]["prediction"] is None
    assert m["overall.em"] == 1.0
    assert (m["abstention.precision"], m["abstention.recall"], m["abstention.f1"]) == (1, 1, 1)


def test_answered_without_citations_scores_zero_citation_precision() -> None:
    gold = [item("q1", ("HK$220 million",), ("a.txt",), (E1,))]
    m = score(gold, [result("q1", "HK$220 million")], DOCS)
    assert m["citation.precision"] == 0.0
    assert m["citation.recall"] == 0.0
    assert m["answer.em"] == 1.0


def test_citation_must_overlap_not_just_touch() -> None:
    gold = [item("q1", ("Wednesday",), ("a.txt",), (E2,))]  # [53, 77)
    touching = (span("a.txt", 33, 53), span("a.txt", 77, 77), span("b.txt", 53, 70))
    m = score(gold, [result("q1", "Wednesday", cited=touching)], DOCS)
    assert m["citation.precision"] == 0.0 and m["citation.recall"] == 0.0
    one_char = (span("a.txt", 33, 54),)
    m = score(gold, [result("q1", "Wednesday", cited=one_char)], DOCS)
    assert m["citation.precision"] == 1.0 and m["citation.recall"] == 1.0


def test_only_unanswerable_questions_gives_zero_not_nan() -> None:
    m = score([item("u1"), item("u2")], [result("u1", None), result("u2", None)], DOCS)
    assert m["answer.em"] == 0.0 and m["retrieval.mrr"] == 0.0
    assert m["citation.precision"] == 0.0 and m["citation.recall"] == 0.0
    assert m["overall.f1"] == 1.0
    json.dumps(m, allow_nan=False)


def test_results_are_matched_by_id_not_order() -> None:
    gold, results = scenario()
    assert score(gold, results[::-1], DOCS) == score(gold, results, DOCS)


def test_score_errors() -> None:
    gold, results = scenario()
    with pytest.raises(ScoreError, match=r"no result for 1 gold question\(s\): q4"):
        score(gold, results[:3], DOCS)
    with pytest.raises(ScoreError, match="two results for question 'q1'"):
        score(gold, [*results, results[0]], DOCS)
    with pytest.raises(ScoreError, match="ids not in the gold set: zz"):
        score(gold, [*results, result("zz", None)], DOCS)
    with pytest.raises(ScoreError, match="duplicate gold ids q1"):
        score([*gold, gold[0]], results, DOCS)
    with pytest.raises(ScoreError, match="no gold questions"):
        score([], [], DOCS)
    with pytest.raises(EvidenceNotFoundError, match="not among"):
        score(gold, results, {"a.txt": DOC_A})


# --------------------------------------------------------------------------- load_gold


def write_lines(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "gold.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def obj(**overrides: object) -> str:
    base: dict[str, object] = {
        "id": "q-001",
        "question": "How much?",
        "answers": ["HK$220 million"],
        "doc": "a.txt",
        "evidence": "HK$220 million",
        "type": "numeric",
    }
    base.update(overrides)
    return json.dumps({k: v for k, v in base.items() if v is not _DROP})


_DROP = object()
UNANSWERABLE: dict[str, object] = {
    "answers": [],
    "doc": None,
    "evidence": None,
    "type": "unanswerable",
}


def test_load_gold_reads_every_shape(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path,
        obj(),
        "",
        "   ",
        obj(id="q-002", doc=["a.txt", "b.txt"], evidence=["x", "y"], type="multi-hop"),
        obj(id="q-003", **UNANSWERABLE),
    )
    single, multi, none = load_gold(path)
    assert single == GoldItem(
        "q-001", "How much?", ("HK$220 million",), ("a.txt",), ("HK$220 million",), "numeric"
    )
    assert (multi.docs, multi.evidence) == (("a.txt", "b.txt"), ("x", "y"))
    assert (none.answers, none.docs, none.evidence) == ((), (), ())
    assert single.answerable and multi.answerable and not none.answerable


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([obj(), '{"id": "q-2", '], r"gold.jsonl:2: invalid JSON .*one complete JSON object"),
        (["[1, 2]"], r"gold.jsonl:1: expected a JSON object .*got list"),
        ([obj(evidence=_DROP)], r":1: missing key\(s\) 'evidence'; every line needs"),
        ([obj(type=_DROP, doc=_DROP)], r"missing key\(s\) 'doc', 'type'"),
        ([obj(id=7)], r":1: 'id' must be a non-empty string, got 7"),
        ([obj(question="  ")], r"'question' must be a non-empty string"),
        ([obj(answers="HK$220 million")], r"\(id 'q-001'\): 'answers' must be a list of"),
        ([obj(answers=["ok", 3])], r"'answers' must be a list of non-empty strings"),
        ([obj(doc=5)], r"'doc' must be a string, a list of strings or null, got int"),
        ([obj(doc=[])], r"'doc' is an empty list"),
        ([obj(doc=["a.txt", "b.txt"], evidence=["x", ""])], r"'evidence'\[1\] must be a non-e"),
        (
            [obj(doc=["a.txt", "b.txt"], evidence="x")],
            r"'doc' has 2 entries but 'evidence' has 1; give one document per evidence",
        ),
        ([obj(doc=None)], r"answers are given but 'doc' is null; name the source file"),
        ([obj(evidence=None)], r"answers are given but 'evidence' is null; copy the sentence"),
        ([obj(answers=[])], r"'answers' is empty but doc/evidence are set"),
        ([obj(type="trivia")], r"unknown type 'trivia'; use one of date, entity"),
        ([obj(type="unanswerable")], r"type is 'unanswerable' but answers are given"),
        (
            [obj(), "", obj(question="Again?")],
            r"gold.jsonl:3: duplicate id 'q-001' \(first used on line 1\)",
        ),
        (["", "  "], r"the file holds no questions"),
    ],
)
def test_load_gold_errors_say_where_what_and_how(
    tmp_path: Path, lines: list[str], message: str
) -> None:
    path = write_lines(tmp_path, *lines)
    with pytest.raises(GoldFormatError, match=message) as info:
        load_gold(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_load_gold_missing_file(tmp_path: Path) -> None:
    with pytest.raises(GoldFormatError, match=re.escape("no such gold file; check the path")):
        load_gold(tmp_path / "nope.jsonl")


def test_load_gold_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "gold.jsonl"
    path.write_bytes(b'{"id": "\xff"}\n')
    with pytest.raises(GoldFormatError, match="not UTF-8"):
        load_gold(path)
