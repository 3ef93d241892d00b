"""The learned reader's parts: windows, labels, decoding, SQuAD split, passages, calibration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.errors import InvalidTrainingData
from rag.reading import calibrate
from rag.reading.decode import MAX_ANSWER_TOKENS, best_spans
from rag.reading.encoders import encoder_dir
from rag.reading.squad import load, split
from rag.reading.train import label
from rag.reading.windows import Windower, allowed, batch

TOKENIZER = encoder_dir() / "tokenizer.json"


@pytest.fixture(scope="module")
def windower() -> Windower:
    return Windower(TOKENIZER, max_len=64)


def squad_file(folder: Path, n_articles: int = 10) -> Path:
    """A tiny SQuAD 2.0 file: every article has answerable and unanswerable questions."""
    data = []
    for a in range(n_articles):
        context = (f"The Harbour Bridge {a} opened in {1990 + a}. It cost {a + 2} million "
                   f"dollars and was designed by Engineer{a} Lee.")
        year = str(1990 + a)
        qas = [
            {"id": f"{a}-1", "question": f"When did Harbour Bridge {a} open?",
             "answers": [{"text": year, "answer_start": context.index(year)}],
             "is_impossible": False},
            {"id": f"{a}-2", "question": f"Who designed Harbour Bridge {a}?",
             "answers": [{"text": f"Engineer{a} Lee",
                          "answer_start": context.index(f"Engineer{a} Lee")}],
             "is_impossible": False},
            {"id": f"{a}-3", "question": f"How long is Harbour Bridge {a}?", "answers": [],
             "is_impossible": True},
        ]
        data.append({"title": f"Bridge_{a}", "paragraphs": [{"context": context, "qas": qas}]})
    path = folder / "dev-v2.0.json"
    path.write_text(json.dumps({"version": "v2.0", "data": data}))
    return path


def test_windows_cover_the_passage_and_map_back_to_its_characters(windower: Windower) -> None:
    text = " ".join(f"Sentence number {i} says something about bridges." for i in range(20))
    windows = windower.windows("What do the sentences say?", text)
    assert len(windows) > 1
    for w in windows:
        assert len(w) <= 64
        assert w.ids[0] == windower.cls and w.ids[-1] == windower.sep
        inside = w.offsets[w.offsets[:, 0] >= 0]
        assert (w.type_ids[w.first:] == 1).all() and (w.type_ids[: w.first] == 0).all()
        for a, b in inside:  # every passage token's offsets point at real text
            assert text[a:b].strip()
    # Consecutive windows overlap, and together they reach the end of the passage.
    ends = [int(w.offsets[w.offsets[:, 0] >= 0][-1, 1]) for w in windows]
    starts = [int(w.offsets[w.offsets[:, 0] >= 0][0, 0]) for w in windows]
    assert all(starts[i + 1] < ends[i] for i in range(len(windows) - 1))
    assert ends[-1] == len(text)


def test_allowed_positions_are_cls_and_passage_tokens_only(windower: Windower) -> None:
    w = windower.windows("Who?", "Ann Lee built it.")[0]
    ok = allowed(w)
    assert ok[0] and not ok[1: w.first].any() and ok[w.first:-1].all() and not ok[-1]
    padded = batch([w, windower.windows("Who built the big bridge?", "Ann.")[0]])
    assert padded["input_ids"].shape[0] == 2 and padded["attention_mask"][1].sum() < len(w) + 5


def test_labels_point_at_the_answer_tokens_or_at_cls(windower: Windower) -> None:
    text = "The bridge cost HK$2.4 billion and opened in March 2021."
    answer = ("HK$2.4 billion", text.index("HK$2.4"))
    w = windower.windows("How much did it cost?", text)[0]
    s, e = label(w, answer)
    assert text[w.offsets[s, 0]: w.offsets[e, 1]] == "HK$2.4 billion"
    assert label(w, None) == (0, 0)
    long_text = " ".join(["Filler words here."] * 40) + " " + text
    first = windower.windows("How much?", long_text)[0]
    assert label(first, ("HK$2.4 billion", long_text.index("HK$2.4"))) == (0, 0)


def test_best_spans_respect_order_length_and_the_passage(windower: Windower) -> None:
    text = "Ann Lee designed the bridge in 1990 for the city council."
    w = windower.windows("Who designed the bridge?", text)[0]
    n = len(w)
    start, end = np.zeros(n), np.zeros(n)
    a = w.first  # "Ann"
    start[a], end[a + 1] = 5.0, 5.0  # "Ann Lee"
    end[a - 1] = 9.0  # an end inside the question is not allowed
    spans = best_spans(w, start, end, k=3)
    assert text[spans[0].start: spans[0].end] == "Ann Lee"
    assert all(s.end > s.start for s in spans)
    assert spans[0].null == 0.0
    assert MAX_ANSWER_TOKENS >= 10


def test_best_spans_are_the_k_best_of_every_allowed_pair_ties_settled_alike(
    windower: Windower,
) -> None:
    """The partial sort returns what ranking all allowed (start, end) pairs would."""
    text = " ".join(f"word{i} and more." for i in range(60))
    w = windower.windows("Which word?", text)[0]
    ok = allowed(w)
    ok[0] = False
    rng = np.random.default_rng(7)
    for trial in range(40):
        start = rng.normal(size=len(w)).round(1 if trial % 2 else 6)  # many ties, or none
        end = rng.normal(size=len(w)).round(1 if trial % 2 else 6)
        pairs = [(start[a] + end[b], a * len(w) + b, a, b)
                 for a in range(len(w)) for b in range(a, min(a + MAX_ANSWER_TOKENS, len(w)))
                 if ok[a] and ok[b]]
        want = [(int(w.offsets[a, 0]), int(w.offsets[b, 1]))
                for _, _, a, b in sorted(pairs, reverse=True)[:5]]
        assert [(s.start, s.end) for s in best_spans(w, start, end, k=5)] == want


def test_squad_load_merges_dedupes_and_splits_by_article(tmp_path: Path) -> None:
    path = squad_file(tmp_path)
    (tmp_path / "dev-v1.1.json").write_text(path.read_text())  # the same questions again
    examples = load(tmp_path)
    assert len(examples) == 30 and sum(1 for e in examples if not e.answers) == 10
    s = split(examples, n_val=2, n_calib=2)
    titles = [{e.title for e in part} for part in (s.train, s.val, s.calib)]
    assert not (titles[0] & titles[1]) and not (titles[0] & titles[2])
    assert not (titles[1] & titles[2]) and len(titles[1]) == 2 and len(titles[2]) == 2
    assert split(examples, n_val=2, n_calib=2) == s  # seeded


def test_squad_load_says_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(InvalidTrainingData, match="no SQuAD files"):
        load(tmp_path)
    (tmp_path / "dev-v2.0.json").write_text("{not json")
    with pytest.raises(InvalidTrainingData, match="not a SQuAD JSON"):
        load(tmp_path)


def _row(answers: tuple[str, ...], *cands: tuple[str, float]) -> calibrate.Row:
    return calibrate.Row(answers, tuple((t, {"null_margin": m, "share": 0.5}) for t, m in cands))


def test_calibration_learns_from_a_separating_feature_and_abstains_below() -> None:
    rows = []
    for i in range(30):
        rows.append(_row(("right",), ("right", 4.0 + i % 3), ("wrong", 1.0 - i % 2)))
        rows.append(_row((), ("anything", -2.0 - i % 3)))
    calib = calibrate.fit(rows, names=("null_margin", "share"))
    assert calib.weights["null_margin"] > 0
    scores = calibrate.score(calib, rows)
    assert scores["overall_f1"] == 1.0 and scores["abstention_f1"] == 1.0
    assert calibrate.score(calib, [_row(("right",), ("right", -3.0))])["answer_f1"] == 0.0


def test_cross_validation_scores_every_news_row_once_by_a_fit_that_never_saw_it() -> None:
    squad = []
    for i in range(30):
        squad.append(_row(("right",), ("right", 4.0 + i % 3), ("wrong", 1.0 - i % 2)))
        squad.append(_row((), ("anything", -2.0 - i % 3)))
    # News rows where the learned separation holds: held out, they are decided right.
    news = [_row(("yes",), ("yes", 5.0)) for _ in range(8)] + [_row((), ("no", -4.0))] * 2
    cv = calibrate.cross_validated(squad, news, folds=5)
    assert cv["n"] == len(news) and cv["folds"] == 5
    assert cv["answer_f1"] == 1.0 and cv["abstention_f1"] == 1.0
    # A news row that contradicts everything else cannot be fitted away when held out.
    odd = [*news, _row(("odd",), ("odd", -6.0))]
    assert calibrate.cross_validated(squad, odd, folds=5)["answer_f1"] < 1.0


def test_calibration_needs_right_and_wrong_candidates() -> None:
    with pytest.raises(ValueError, match="both right and wrong"):
        calibrate.fit([_row(("x",), ("x", 1.0))], names=("null_margin",))


def test_corpus_makes_one_document_per_article(tmp_path: Path) -> None:
    docs = calibrate.corpus(load(squad_file(tmp_path).parent))
    assert len(docs) == 10 and docs[0].title == "Bridge 0"
    assert "Harbour Bridge 0 opened" in docs[0].text


@pytest.mark.parametrize(("text", "span", "expected"), [
    ("It costs HK$220 million now.", "$220 million", "HK$220 million"),
    ("It costs HK$220 million now.", "HK$220 mil", "HK$220 million"),
    ("about ($28.1 million) more", "$28.1 million", "$28.1 million"),
    ("signed by Ann Lee, the director", "Ann Lee", "Ann Lee"),
    ("in the U.S. today", "U.S", "U.S"),
])
def test_snap_widens_a_span_to_whole_words_only(text: str, span: str, expected: str) -> None:
    from rag.reading.decode import snap

    start = text.index(span)
    a, b = snap(text, start, start + len(span))
    assert text[a:b] == expected


def test_passages_widen_the_best_sentences_and_merge_neighbours() -> None:
    from rag.reading.reader import passages
    from rag.reading.sentences import ScoredSentence
    from rag.retrieval import Hit

    text = "One a. Two b. Three c. Four d. Five e."
    hit = Hit(id=1, chunk_id="c1", source="s.txt", start=100, end=100 + len(text), text=text,
              score=1.0, title=None, published=None)
    bounds, pos = [], 0
    for part in text.split(". "):
        piece = part if part.endswith(".") else part + "."
        bounds.append((100 + pos, 100 + pos + len(piece)))
        pos += len(piece) + 1
    sents = [ScoredSentence(hit, a, b, score=1.0 - i / 10, sem=0.0, lex=0.0)
             for i, (a, b) in enumerate(bounds)]
    ranked = [sents[1], sents[3], sents[0], sents[2], sents[4]]
    out = passages(ranked, read=2, context=1)
    assert [p.text for p in out] == [text]  # 0-2 and 2-4 overlap: merged into one
    assert [p.text for p in passages(ranked, read=2, context=0)] == ["Two b.", "Four d."]
    assert passages(ranked, read=1, context=0)[0].text == "Two b."
