"""The seed gold set: well formed, grounded byte for byte, and spread over both articles."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from rag.metrics import GOLD_TYPES, GoldItem, load_gold, locate_evidence

ROOT = Path(__file__).resolve().parents[2]
GOLD_FILE = ROOT / "eval" / "gold" / "seeds.jsonl"
SEEDS = ROOT / "seeds"
ARTICLES = ("000_1ab512602a64e1c4.txt", "003_fcf2125f3a29daa1.txt")
DESIGN_TYPES = {
    "factoid",
    "numeric",
    "entity",
    "date",
    "list",
    "why",
    "multi-hop",
    "unanswerable",
    "update",
}


@pytest.fixture(scope="module")
def gold() -> list[GoldItem]:
    return load_gold(GOLD_FILE)


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    missing = [name for name in ARTICLES if not (SEEDS / name).is_file()]
    assert not missing, f"seed articles {missing} missing from {SEEDS}; copy ../shared/seeds/"
    # Decoded bytes, not read_text(): no newline translation, so offsets are the stored ones.
    return {name: (SEEDS / name).read_bytes().decode("utf-8") for name in ARTICLES}


def answerable(gold: list[GoldItem]) -> list[GoldItem]:
    return [g for g in gold if g.answerable]


def test_counts(gold: list[GoldItem]) -> None:
    assert len(gold) >= 60
    assert len(answerable(gold)) >= 40
    assert sum(not g.answerable for g in gold) >= 15


def test_ids_are_unique_in_the_raw_file() -> None:
    lines = [ln for ln in GOLD_FILE.read_text(encoding="utf-8").splitlines() if ln.strip()]
    ids = [json.loads(ln)["id"] for ln in lines]
    assert len(ids) == len(set(ids))


def test_types_are_from_the_design_set(gold: list[GoldItem]) -> None:
    assert GOLD_TYPES == DESIGN_TYPES
    assert {g.type for g in gold} <= DESIGN_TYPES
    # every reader-facing type is exercised, not only factoids
    assert {"factoid", "numeric", "entity", "date", "list", "why", "multi-hop"} <= {
        g.type for g in gold
    }


def test_unanswerable_shape(gold: list[GoldItem]) -> None:
    for g in gold:
        assert (g.type == "unanswerable") == (not g.answerable), g.id
        if not g.answerable:
            assert g.docs == () and g.evidence == (), g.id


def test_multi_hop_uses_both_articles(gold: list[GoldItem]) -> None:
    multi = [g for g in gold if g.type == "multi-hop"]
    assert len(multi) >= 5
    for g in multi:
        assert sorted(g.docs) == sorted(ARTICLES), g.id
        assert len(g.evidence) == len(g.docs), g.id


def test_single_hop_questions_have_one_document(gold: list[GoldItem]) -> None:
    for g in answerable(gold):
        if g.type != "multi-hop":
            assert len(g.docs) == 1 and g.docs[0] in ARTICLES, g.id


def test_evidence_is_an_exact_substring(gold: list[GoldItem], texts: dict[str, str]) -> None:
    for g in answerable(gold):
        for doc, evidence in zip(g.docs, g.evidence, strict=True):
            assert evidence in texts[doc], f"{g.id}: evidence not in {doc}: {evidence!r}"
        locate_evidence(g, texts)  # the metric code agrees


def test_evidence_is_at_most_one_sentence(gold: list[GoldItem]) -> None:
    for g in answerable(gold):
        for evidence in g.evidence:
            assert not re.search(r"[.!?] [A-Z]", evidence), f"{g.id}: {evidence!r}"
            assert len(evidence) <= 300, g.id


def test_first_answer_appears_in_evidence(gold: list[GoldItem]) -> None:
    for g in answerable(gold):
        assert any(g.answers[0] in e for e in g.evidence), f"{g.id}: {g.answers[0]!r}"


def test_answers_are_short_spans(gold: list[GoldItem]) -> None:
    for g in answerable(gold):
        limit = 160 if g.type in {"list", "multi-hop"} else 100
        assert len(g.answers[0]) <= limit, g.id
        assert len(set(g.answers)) == len(g.answers), f"{g.id}: repeated answer variant"


def test_answerable_questions_cover_both_articles_end_to_end(
    gold: list[GoldItem], texts: dict[str, str]
) -> None:
    starts: dict[str, list[float]] = {name: [] for name in ARTICLES}
    for g in answerable(gold):
        for source, start, _ in locate_evidence(g, texts):
            starts[source].append(start / len(texts[source]))
    for name, fractions in starts.items():
        thirds = Counter(min(int(f * 3), 2) for f in fractions)
        assert all(thirds[t] >= 3 for t in range(3)), f"{name}: evidence per third {thirds}"
        assert max(fractions) > 0.9, f"{name}: nothing asked about the last tenth"


def test_questions_are_paraphrased(gold: list[GoldItem], texts: dict[str, str]) -> None:
    """No answerable question copies a run of seven words from its article.

    Copied wording would make retrieval look better than it is for a real reader. Unanswerable
    questions are exempt: they name real programmes from the text on purpose, as hard negatives.
    """

    def words(s: str) -> list[str]:
        return re.findall(r"[a-z0-9$&'-]+", s.lower())

    runs = set()
    for text in texts.values():
        w = words(text)
        runs |= {tuple(w[i : i + 7]) for i in range(len(w) - 6)}
    for g in answerable(gold):
        w = words(g.question)
        copied = [" ".join(w[i : i + 7]) for i in range(len(w) - 6) if tuple(w[i : i + 7]) in runs]
        assert not copied, f"{g.id} copies {copied[0]!r}"
