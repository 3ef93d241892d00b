"""Report writing: Markdown tables, the three artefacts, atomic replacement, cheap import."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rag.metrics import GoldItem, QuestionResult, Span, score
from rag.report import format_table, render_markdown, write_report

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DOC = "The centre costs HK$220 million. It is in Yuen Long. Chan spoke on Wednesday."


def small_metrics() -> dict[str, Any]:
    """Real score() output: one right answer, one retrieval miss, one false answer."""
    gold = [
        GoldItem("q1", "How much?", ("HK$220 million",), ("a.txt",), (DOC[:32],), "numeric"),
        GoldItem("q2", "Where is it?", ("Yuen Long",), ("a.txt",), (DOC[33:52],), "entity"),
        GoldItem("q3", "What is the capital of France?", (), (), (), "unanswerable"),
    ]
    hit = Span("a.txt", 0, 32, DOC[:32])
    results = [
        QuestionResult("q1", "HK$220 million", (hit,), (hit,), 12.0),
        QuestionResult("q2", None, (hit,), (), 30.0),
        QuestionResult("q3", "Paris", (), (), 18.0),
    ]
    return score(gold, results, {"a.txt": DOC})


def test_format_table_exact_output() -> None:
    rows: list[dict[str, Any]] = [
        {"name": "a", "x": 0.5, "n": 3},
        {"name": "b|c", "x": None, "n": 4},
    ]
    assert format_table(rows, ["name", "x", "n"]) == (
        "| name | x | n |\n| --- | ---: | ---: |\n| a | 0.500 | 3 |\n| b\\|c | — | 4 |\n"
    )


def test_format_table_cells() -> None:
    rows: list[dict[str, Any]] = [
        {"ok": True, "text": "two\nlines", "nan": math.nan},
        {"ok": False},
    ]
    table = format_table(rows, ["ok", "text", "nan", "absent"])
    assert table.splitlines()[1] == "| --- | --- | ---: | --- |"  # bools are not numbers
    assert table.splitlines()[2] == "| yes | two lines | — | — |"
    assert table.splitlines()[3] == "| no | — | — | — |"


def test_format_table_no_rows_and_no_columns() -> None:
    assert format_table([], ["a", "b"]) == "| a | b |\n| --- | --- |\n"
    with pytest.raises(ValueError, match="at least one column"):
        format_table([{"a": 1}], [])


def test_write_report_writes_three_artefacts(tmp_path: Path) -> None:
    metrics = small_metrics()
    out = tmp_path / "run" / "nested"  # created on demand
    write_report(metrics, out, "Seeds eval", ["reader: extractive", "gold: seeds.jsonl"])

    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "report.md", "report.png"]
    assert json.loads((out / "metrics.json").read_text(encoding="utf-8")) == metrics
    assert (out / "metrics.json").read_text(encoding="utf-8").startswith('{\n  "n_questions"')
    assert (out / "report.png").read_bytes().startswith(PNG_MAGIC)
    for name in ("metrics.json", "report.md", "report.png"):
        assert (out / name).stat().st_mode & 0o777 == 0o644


def test_report_markdown_content(tmp_path: Path) -> None:
    write_report(small_metrics(), tmp_path, "Seeds eval", ["reader: extractive"])
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert md.startswith("# Seeds eval\n\n- reader: extractive\n")
    assert "3 questions: 2 answerable, 1 unanswerable." in md
    assert "| Answer F1 (answerable) | `answer.f1` | 0.500 |" in md
    assert "| Retrieval recall@5 | `retrieval.recall@5` | 0.500 |" in md
    assert "| Latency p95 (ms) | `latency_ms.p95` | 28.800 |" in md  # 18 + 12 * 0.9
    assert "| type | n | em | f1 | recall@5 |" in md
    assert "| unanswerable | 1 | 0.000 | 0.000 | — |" in md
    assert "| entity | 1 | 0.000 | 0.000 | 0.000 |" in md
    assert "| q2 | entity | Where is it? | (abstained) | Yuen Long | 0.000 | retrieval |" in md
    assert (
        "| q3 | unanswerable | What is the capital of France? | Paris | (unanswerable) "
        "| 0.000 | false_answer |" in md
    )
    assert "| q1 |" not in md  # answered right: not among the worst


def test_worst_list_is_capped_at_ten_and_sorted() -> None:
    per_question = [
        {
            "id": f"q{i:02d}",
            "type": "factoid",
            "question": f"Q{i}",
            "gold": "x",
            "prediction": "y",
            "f1": (i % 5) / 10,
            "failure": "reading",
        }
        for i in range(15)
    ] + [{"id": "ok", "f1": 1.0, "failure": None}]
    md = render_markdown({"per_question": per_question}, "t")
    rows = [line for line in md.splitlines() if line.startswith("| q")]
    assert len(rows) == 10
    f1s = [float(r.split("|")[6]) for r in rows]
    assert f1s == sorted(f1s) and f1s[0] == 0.0


def test_report_without_failures_or_latency(tmp_path: Path) -> None:
    write_report({"n_questions": 0}, tmp_path, "Empty")
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "No question failed." in md
    assert (tmp_path / "report.png").read_bytes().startswith(PNG_MAGIC)


def test_write_report_replaces_old_files(tmp_path: Path) -> None:
    write_report({"n_questions": 1}, tmp_path, "First")
    write_report({"n_questions": 2}, tmp_path, "Second")
    assert json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8")) == {"n_questions": 2}
    assert (tmp_path / "report.md").read_text(encoding="utf-8").startswith("# Second")
    assert len(list(tmp_path.iterdir())) == 3  # no temp files left behind


def test_failed_write_keeps_the_old_report(tmp_path: Path) -> None:
    write_report({"n_questions": 1}, tmp_path, "Good")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ValueError):
        write_report({"n_questions": 1, "answer.f1": math.nan}, tmp_path, "Bad")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_importing_report_does_not_load_matplotlib() -> None:
    code = "import sys, rag.report; print('matplotlib' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
