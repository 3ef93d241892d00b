"""`rag eval` end to end: reports, any gold file, scratch copies, and the CI regression gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.cli import main
from rag.store import Store

from .conftest import REPO, copy_index, require_generator

pytestmark = pytest.mark.integration

CONTRACT_KEYS = {
    "n_questions", "n_answerable", "n_unanswerable", "answer.em", "answer.f1", "overall.em",
    "overall.f1", "retrieval.recall@1", "retrieval.recall@5", "retrieval.mrr",
    "citation.precision", "citation.recall", "abstention.precision", "abstention.recall",
    "abstention.f1", "latency_ms.p50", "latency_ms.p95", "per_question",
}
# Regression floors for CI, set from our own measurement on eval/gold/seeds.jsonl
# (see README "Results"): a change that loses more than a few points fails the build.
# The learned extractive reader measured 0.574, the hybrid (rules + SmolLM2) 0.72.
MIN_RECALL_AT_5 = 0.95
MIN_ANSWER_F1 = {"extractive": 0.52, "hybrid": 0.65}


@pytest.fixture()
def index_dir(real_seed_index_dir: Path, tmp_path: Path) -> Path:
    return copy_index(real_seed_index_dir, tmp_path / "index")


def test_eval_writes_three_files_with_contract_keys(index_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = main(["--index", str(index_dir), "eval", "--gold", str(REPO / "eval/dev/dev.jsonl"),
                 "--out", str(out), "--reader", "extractive"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert CONTRACT_KEYS <= set(metrics)
    assert metrics["n_questions"] == len((REPO / "eval/dev/dev.jsonl").read_text().splitlines())
    assert (out / "report.md").read_text().startswith("#")
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "held_out" in metrics["splits"] and "fitted" in metrics["splits"]


def test_eval_add_scores_new_articles_without_touching_the_index(
    index_dir: Path, tmp_path: Path
) -> None:
    article = tmp_path / "new" / "harbour.txt"
    article.parent.mkdir()
    article.write_text(
        "date 2026-05-02 Harbour tunnel reopens\n\n"
        "The Western Harbour Crossing reopened on Saturday after repairs costing about "
        "HK$45 million, the Transport Department said.\n",
        encoding="utf-8",
    )
    gold = tmp_path / "new.jsonl"
    gold.write_text(json.dumps({
        "id": "n-1", "question": "How much did the tunnel repairs cost?",
        "answers": ["about HK$45 million", "HK$45 million"], "doc": "harbour.txt",
        "evidence": "repairs costing about HK$45 million", "type": "numeric",
    }) + "\n")
    store = Store(index_dir / "store.sqlite")
    before = (store.generation, store.corpus_hash())
    out = tmp_path / "out"
    code = main(["--index", str(index_dir), "eval", "--gold", str(gold), "--add",
                 str(article.parent), "--out", str(out), "--reader", "extractive"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["retrieval.recall@5"] == 1.0
    assert (store.generation, store.corpus_hash()) == before
    assert store.document_hash("harbour.txt") is None
    store.close()


def test_eval_rejects_a_malformed_gold_file(
    index_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gold = tmp_path / "bad.jsonl"
    gold.write_text('{"id": "x", "question": "q"}\n')
    assert main(["--index", str(index_dir), "eval", "--gold", str(gold), "--out",
                 str(tmp_path / "o"), "--reader", "extractive"]) == 1
    err = capsys.readouterr().err
    assert "bad.jsonl:1:" in err and "missing key" in err


def test_eval_gold_citing_unknown_articles_says_how_to_fix(
    index_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gold = tmp_path / "other.jsonl"
    gold.write_text(json.dumps({
        "id": "o-1", "question": "Where?", "answers": ["here"], "doc": "missing.txt",
        "evidence": "here", "type": "entity"}) + "\n")
    assert main(["--index", str(index_dir), "eval", "--gold", str(gold), "--out",
                 str(tmp_path / "o"), "--reader", "extractive"]) == 1
    assert "--add" in capsys.readouterr().err


@pytest.mark.parametrize("reader", ["extractive", "hybrid"])
def test_regression_gate_on_the_seed_gold_set(index_dir: Path, tmp_path: Path,
                                              reader: str) -> None:
    if reader == "hybrid":
        require_generator()
    code = main([
        "--index", str(index_dir), "eval", "--gold", str(REPO / "eval/gold/seeds.jsonl"),
        "--out", str(tmp_path / "gate"), "--reader", reader,
        "--min-recall5", str(MIN_RECALL_AT_5), "--min-f1", str(MIN_ANSWER_F1[reader]),
    ])
    assert code == 0, "the seed gold set fell below its regression floor (see stderr)"


def test_fit_calibration_saves_to_the_configured_file_and_reports_the_rotation(
    index_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calibration = tmp_path / "calibration.json"
    monkeypatch.setenv("RAG_CALIBRATION_FILE", str(calibration))
    out = tmp_path / "out"
    code = main(["--index", str(index_dir), "eval", "--gold", str(REPO / "eval/dev/dev.jsonl"),
                 "--out", str(out), "--reader", "rules", "--fit-calibration"])
    assert code == 0
    stored = json.loads(calibration.read_text())["rules"]
    assert 0.0 <= stored["threshold"] <= 1.01 and stored["weights"]
    splits = json.loads((out / "metrics.json").read_text())["splits"]
    # Every question scored once by a calibration fitted without its quarter; quarter 0 is
    # the fixed held-out one, so the rotation includes it.
    assert {"fitted", "held_out", "rotated"} <= set(splits)
    assert 0.0 <= splits["rotated"]["answer.f1"] <= 1.0
    assert "rotated" in (out / "report.md").read_text()


def test_the_learned_reader_is_never_fitted_on_gold_questions(
    index_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--index", str(index_dir), "eval", "--gold", str(REPO / "eval/dev/dev.jsonl"),
                 "--out", str(tmp_path / "o"), "--reader", "extractive",
                 "--fit-calibration"]) == 1
    assert "rag train-reader" in capsys.readouterr().err


def test_eval_distractors_scores_each_corpus_size_and_embeds_them_once(
    index_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    corpus = tmp_path / "distractors.jsonl"
    lines = (REPO / "eval/distractors/squad.jsonl").read_text().splitlines()[:3]
    corpus.write_text("\n".join(lines) + "\n")
    gold = tmp_path / "few.jsonl"
    gold.write_text("\n".join((REPO / "eval/gold/seeds.jsonl").read_text().splitlines()[:4])
                    + "\n")
    store = Store(index_dir / "store.sqlite")
    before = (store.generation, store.corpus_hash())
    args = ["--index", str(index_dir), "eval", "--gold", str(gold), "--reader", "extractive",
            "--distractors", "3,0,1", "--distractor-corpus", str(corpus)]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert "embedding 3 distractor articles" in capsys.readouterr().err
    rows = json.loads((tmp_path / "a" / "metrics.json").read_text())["distractors"]
    assert [(r["distractors"], r["articles"]) for r in rows] == [(0, 2), (1, 3), (3, 5)]
    assert rows[0]["chunks"] < rows[1]["chunks"] < rows[2]["chunks"]
    assert all(0.0 <= r["retrieval.recall@5"] <= 1.0 for r in rows)
    # The live index is untouched, and a second run reuses the embedded copy.
    assert (store.generation, store.corpus_hash()) == before
    store.close()
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    assert "embedding" not in capsys.readouterr().err


def test_eval_distractors_rejects_bad_counts(
    index_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--index", str(index_dir), "eval", "--distractors", "ten"])
    assert exc.value.code == 2
    assert "e.g. 0,100,1000" in capsys.readouterr().err
    assert main(["--index", str(index_dir), "eval", "--gold", str(REPO / "eval/dev/dev.jsonl"),
                 "--distractors", "5000", "--reader", "extractive"]) == 1
    assert "holds only 1000 articles" in capsys.readouterr().err
