"""The distractor corpus: sizes, building from SQuAD, ranking, loading errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.bench.distractors import (
    candidate_articles,
    corpus_for,
    load_corpus,
    parse_sizes,
    rank_by_seed_similarity,
)
from rag.errors import RagError

REPO = Path(__file__).resolve().parents[2]


def test_sizes_are_sorted_unique_counts() -> None:
    assert parse_sizes("1000,0,100,100") == [0, 100, 1000]


@pytest.mark.parametrize("text", ["ten", "", "5,-1", ",,"])
def test_bad_sizes_say_what_a_good_one_looks_like(text: str) -> None:
    with pytest.raises(RagError, match=r"e\.g\. 0,100,1000"):
        parse_sizes(text)


def _squad(tmp_path: Path, paragraphs: int) -> Path:
    data = {"data": [{"title": "Hong_Kong_(city)", "paragraphs": [
        {"context": f"Paragraph {i} about the harbour.", "qas": []} for i in range(paragraphs)
    ]}]}
    (tmp_path / "dev-v1.1.json").write_text(json.dumps(data))
    return tmp_path


def test_candidates_group_consecutive_paragraphs_of_one_article(tmp_path: Path) -> None:
    rows = candidate_articles(_squad(tmp_path, 5))
    assert [r["file"] for r in rows] == [
        "squad-hong-kong--city--001.txt", "squad-hong-kong--city--002.txt",
        "squad-hong-kong--city--003.txt"]
    assert rows[0]["text"] == "Paragraph 0 about the harbour.\n\nParagraph 1 about the harbour."
    assert rows[2]["text"] == "Paragraph 4 about the harbour."
    assert rows[0]["title"] == "Hong Kong (city) (1)"
    assert rows[0]["url"] == "https://en.wikipedia.org/wiki/Hong_Kong_(city)"


def test_missing_squad_folder_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(RagError, match="dev-v1.1.json"):
        candidate_articles(tmp_path)


def test_ranking_puts_the_most_seed_like_first_and_is_deterministic() -> None:
    candidates = [{"file": f"{name}.txt", "text": name} for name in ("far", "near", "tie")]
    vectors = {"far": [0.0, 1.0], "near": [1.0, 0.0], "tie": [0.0, 1.0]}

    def embed(texts: list[str]) -> np.ndarray:
        return np.array([vectors[t] for t in texts])

    ranked = rank_by_seed_similarity(candidates, np.array([[1.0, 0.0]]), embed)
    assert [r["file"] for r in ranked] == ["near.txt", "far.txt", "tie.txt"]
    assert ranked[0]["closeness"] == 1.0


def test_the_committed_corpus_loads_hardest_first() -> None:
    docs = load_corpus(REPO / "eval/distractors/squad.jsonl")
    assert len(docs) == 1000
    assert len({d.source for d in docs}) == 1000 and len({d.content_hash for d in docs}) == 1000
    rows = [json.loads(line) for line in
            (REPO / "eval/distractors/squad.jsonl").read_text().splitlines()]
    closeness = [r["closeness"] for r in rows]
    assert closeness == sorted(closeness, reverse=True)
    assert all(d.outlet and "CC BY-SA" in d.outlet for d in docs)


def test_corpus_errors_say_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(RagError, match="python -m rag.bench.distractors"):
        load_corpus(tmp_path / "none.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"file": "a.txt", "text": "x"}\n{oops\n')
    with pytest.raises(RagError, match=r"bad\.jsonl:2: not JSON"):
        load_corpus(bad)
    bad.write_text('{"text": "no file name"}\n')
    with pytest.raises(RagError, match=r"bad\.jsonl:1: not a distractor article"):
        load_corpus(bad)
    good = tmp_path / "good.jsonl"
    good.write_text('{"file": "a.txt", "text": "x"}\n')
    with pytest.raises(RagError, match="holds only 1 articles"):
        corpus_for([0, 2], good)
