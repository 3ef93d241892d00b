"""The CLI and `rag eval` on PostgreSQL + pgvector, with the real packaged models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rag.cli import main
from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration

ARTICLE = (
    "Harbour ferry sets record\n\nThe harbour ferry Lantern carried 4,321 passengers on its "
    "first day. Officials said a second boat would join the route next spring.\n"
)


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_add_list_ask_remove_on_postgres(pg_seed_url: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    article = tmp_path / "ferry.txt"
    article.write_text(ARTICLE)
    code, out, err = run(capsys, "--database-url", pg_seed_url, "add", article)
    assert code == 0 and "1 added" in out and "1 embedded" in out, err
    # The option also works after the command, and RAG_DATABASE_URL without it.
    code, out, _ = run(capsys, "add", REPO / "seeds/000_1ab512602a64e1c4.txt",
                       "--database-url", pg_seed_url)
    assert code == 0 and "1 unchanged" in out and "0 embedded" in out
    monkeypatch.setenv("RAG_DATABASE_URL", pg_seed_url)
    code, out, _ = run(capsys, "list")
    assert code == 0 and "ferry.txt" in out and "000_1ab512602a64e1c4.txt" in out

    code, out, _ = run(capsys, "ask", "How many passengers did the ferry Lantern carry?",
                       "--json")
    answer = json.loads(out)
    assert code == 0 and answer["answer"] and "4,321" in answer["answer"]
    assert answer["citations"][0]["source"] == "ferry.txt"

    code, out, _ = run(capsys, "remove", "ferry.txt")
    assert code == 0 and out.strip() == "removed 1: ferry.txt"
    code, out, _ = run(capsys, "list", "--json")
    assert "ferry.txt" not in {d["source"] for d in json.loads(out)}
    code, _, err = run(capsys, "remove", "ferry.txt")
    assert code == 1 and "no indexed article with source id 'ferry.txt'" in err


def test_a_write_in_another_process_is_answered_here_at_once(
    pg_seed_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rag.pipeline import make_qa
    from rag.settings import Settings

    qa = make_qa(Settings(database_url=pg_seed_url), notify=lambda _m: None)
    article = tmp_path / "ferry.txt"
    article.write_text(ARTICLE)
    proc = subprocess.run([sys.executable, "-m", "rag.cli", "--database-url", pg_seed_url,
                           "add", str(article)], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    answer = qa.ask("How many passengers did the ferry Lantern carry?")  # no reload step
    assert answer.answer and "4,321" in answer.answer
    assert qa.index.reload_if_changed()  # the watcher's view: something was written
    qa.index.close()


def test_eval_gold_seeds_on_postgres_meets_the_floors(pg_seed_url: str, tmp_path: Path) -> None:
    from tests.integration.test_eval import MIN_ANSWER_F1, MIN_RECALL_AT_5

    out = tmp_path / "out"
    code = main(["--database-url", pg_seed_url, "eval", "--gold",
                 str(REPO / "eval/gold/seeds.jsonl"), "--out", str(out),
                 "--min-recall5", str(MIN_RECALL_AT_5), "--min-f1",
                 str(MIN_ANSWER_F1["extractive"])])
    assert code == 0, "the seed gold set on PostgreSQL fell below its floors (see stderr)"
    assert json.loads((out / "metrics.json").read_text())["n_questions"] == 94


def test_an_unreachable_database_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--database-url", "postgresql://rag@127.0.0.1:1/rag", "list")
    assert code == 1 and "cannot connect to postgresql://rag@127.0.0.1:1/rag" in err
    assert "RAG_DATABASE_URL" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "--database-url", "postgresql://x@h/db", "--index", "i", "list")
    assert code == 1 and "not both" in err
