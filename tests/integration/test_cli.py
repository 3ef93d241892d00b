"""The index commands of the `rag` CLI, in process (fast) and as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.cli import main
from rag.index import MANIFEST_FILE, WriterLock
from rag.store import Store
from tests.integration.conftest import REPO, SEEDS

pytestmark = pytest.mark.integration

S000, S003 = "000_1ab512602a64e1c4.txt", "003_fcf2125f3a29daa1.txt"


def fingerprint(folder: Path) -> tuple[int, str, tuple[int, int], bytes, list[str]]:
    """Everything a failed command must leave alone."""
    store = Store(folder / "store.sqlite")
    try:
        state = (store.generation, store.corpus_hash(), store.counts())
    finally:
        store.close()
    files = sorted(  # the lock file and SQLite's side files may come and go
        p.name for p in folder.iterdir() if not p.name.startswith(("store.sqlite", ".lock"))
    )
    return (*state, (folder / MANIFEST_FILE).read_bytes(), files)


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ----------------------------------------------------------------------------- happy paths


def test_build_list_search(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # `--from` defaults to seeds/ in the current folder
    index = tmp_path / "index"
    code, out, err = run(capsys, "--index", index, "index", "build")
    assert code == 0, err
    assert "2 added" in out and "embedded" in out

    code, out, _ = run(capsys, "--index", index, "list")
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 2
    assert lines[0].startswith(f"{S000}\t2026-02-27\t")
    assert "National facility aims to drive core breakthroughs" in lines[0]
    assert lines[1].startswith(f"{S003}\t2026-02-04\t")

    code, out, _ = run(capsys, "--index", index, "list", "--json")
    assert code == 0 and {d["source"] for d in json.loads(out)} == {S000, S003}

    code, out, _ = run(capsys, "--index", index, "search", "HK$220 million budget", "--json",
                       "--top-k", "3")
    hits = json.loads(out)
    assert code == 0 and len(hits) == 3
    assert {"source", "chunk_id", "start", "end", "text", "score"} <= set(hits[0])
    text = (SEEDS / hits[0]["source"]).read_text(encoding="utf-8")
    assert all(text[h["start"] : h["end"]] == h["text"] for h in hits if h["source"] == S000)
    assert "HK$220 million" in hits[0]["text"]

    code, out, _ = run(capsys, "--index", index, "search", "Sha Ling tender", "--mode", "bm25",
                       "--source", S003, "--top-k", "2")
    assert code == 0 and out.startswith(f"1. {S003} [") and "bm25" in out

    code, out, _ = run(capsys, "--index", index, "search", "Sha Ling", "--date-to", "2026-01-01")
    assert code == 0 and out.strip() == "no matching passages"


def test_index_location_from_environment(seed_index_copy: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_INDEX_DIR", str(seed_index_copy))
    code, out, _ = run(capsys, "list")
    assert code == 0 and S000 in out
    # --index wins over the environment.
    code, _, err = run(capsys, "--index", tmp_path / "nowhere", "list")
    assert code == 1 and "no index at" in err and "run 'rag index build'" in err


def test_add_update_remove(seed_index_copy: Path, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    index = seed_index_copy
    code, out, _ = run(capsys, "--index", index, "add", SEEDS / S000)
    assert code == 0 and "1 unchanged" in out and "0 embedded" in out and "skipped" in out

    article = tmp_path / "ferry.txt"
    article.write_text(
        "Harbour ferry sets record\n\nThe harbour ferry Lantern carried 4,321 passengers on its "
        "first day. Officials said a second boat would join the route next spring.\n"
    )
    code, out, _ = run(capsys, "--index", index, "add", article)
    assert code == 0 and "1 added" in out and "1 embedded" in out

    article.write_text(article.read_text().replace("4,321", "5,000"))
    code, out, _ = run(capsys, "--index", index, "add", article)
    assert code == 0 and "1 updated" in out and "1 embedded" in out

    code, out, _ = run(capsys, "--index", index, "remove", "ferry.txt")
    assert code == 0 and out.strip() == "removed 1: ferry.txt"
    code, out, _ = run(capsys, "--index", index, "list")
    assert "ferry.txt" not in out


def test_settings_change_is_refused_until_rebuilt(seed_index_copy: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    index = seed_index_copy
    monkeypatch.setenv("RAG_CHUNK_MAX_TOKENS", "120")
    for argv in (["list"], ["search", "budget"], ["add", SEEDS / S000], ["remove", S000]):
        code, _, err = run(capsys, "--index", index, *argv)
        assert code == 1, argv
        assert "chunker" in err and "run 'rag index build'" in err
    code, out, err = run(capsys, "--index", index, "index", "build", "--from", SEEDS)
    assert code == 0, err
    assert "2 updated" in out
    code, out, _ = run(capsys, "--index", index, "list")
    assert code == 0 and S000 in out
    manifest = json.loads((index / MANIFEST_FILE).read_text())
    assert manifest["chunker"]["max_tokens"] == 120
    assert manifest["counts"]["chunks"] > 12


def test_damaged_files_are_repaired_and_the_user_is_told(
    seed_index_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = json.loads((seed_index_copy / MANIFEST_FILE).read_text())
    (seed_index_copy / manifest["files"]["dense"]).unlink()
    code, out, err = run(capsys, "--index", seed_index_copy, "list")
    assert code == 0 and S000 in out
    assert "rebuilding FAISS and BM25 from the store" in err
    assert "without re-embedding" in err
    code, _, err = run(capsys, "--index", seed_index_copy, "list")
    assert code == 0 and err == ""


# ----------------------------------------------------------------------------- bad input


def _bad_inputs(tmp: Path) -> dict[str, tuple[list[str | Path], list[str]]]:
    """name -> (argv after --index, phrases the one-line message must contain)."""
    (tmp / "empty.txt").write_bytes(b"")
    (tmp / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00")
    latin = "Caf\u00e9 news: d\u00e9j\u00e0 vu in Sha Tin.".encode("latin-1")
    (tmp / "latin.txt").write_bytes(latin)
    (tmp / "nothing").mkdir()
    (tmp / "nothing" / "notes.docx").write_bytes(b"PK\x03\x04")
    (tmp / "copy.txt").write_bytes((SEEDS / S000).read_bytes())
    (tmp / "good.txt").write_text("A good article. It has two sentences.")
    (tmp / "report.docx").write_bytes(b"PK\x03\x04")
    return {
        "empty file": (["add", tmp / "empty.txt"], ["empty.txt", "empty", "needs some text"]),
        "binary file": (["add", tmp / "photo.txt"], ["photo.txt", "binary", "give a .txt"]),
        "non-UTF-8": (["add", tmp / "latin.txt"], ["latin.txt", "not UTF-8", "iconv"]),
        "missing path": (["add", tmp / "missing.txt"], ["missing.txt", "no such file",
                                                         "check the path"]),
        "folder without articles": (["add", tmp / "nothing"], ["nothing", "no articles",
                                                               ".txt"]),
        "build from folder without articles": (["index", "build", "--from", tmp / "nothing"],
                                               ["no articles in this folder"]),
        "build from missing folder": (["index", "build", "--from", tmp / "nowhere"],
                                      ["nowhere", "no such folder", "give --from"]),
        "same article under another name": (["add", tmp / "copy.txt"],
                                            ["copy.txt", f"same text as the indexed article "
                                             f"{S000}", f"remove {S000} first"]),
        "one bad file in a batch": (["add", tmp / "good.txt", tmp / "empty.txt"],
                                    ["empty.txt", "nothing was changed"]),
        "unsupported file type": (["add", tmp / "report.docx"], ["report.docx",
                                                                 "unsupported file type",
                                                                 ".txt"]),
        "unknown source to remove": (["remove", "nope.txt"], ["'nope.txt'", "see 'rag list'"]),
        "top-k out of range": (["search", "budget", "--top-k", "0"], ["top_k must be between"]),
        "bad date filter": (["search", "budget", "--date-from", "4/2/2026"],
                            ["4/2/2026", "YYYY-MM-DD"]),
    }


BAD_INPUTS = [
    "empty file", "binary file", "non-UTF-8", "missing path", "folder without articles",
    "build from folder without articles", "build from missing folder",
    "same article under another name", "one bad file in a batch", "unsupported file type",
    "unknown source to remove", "top-k out of range", "bad date filter",
]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_one_clear_line_exit_1_index_untouched(
    case: str, seed_index_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, phrases = _bad_inputs(tmp_path)[case]
    before = fingerprint(seed_index_copy)
    code, out, err = run(capsys, "--index", seed_index_copy, *argv)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rag: "), err
    for phrase in phrases:
        assert phrase in lines[0], (phrase, lines[0])
    assert out == ""
    assert fingerprint(seed_index_copy) == before


def test_a_locked_index_names_the_writer(seed_index_copy: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    article = tmp_path / "new.txt"
    article.write_text("A new article. It has two sentences.")
    before = fingerprint(seed_index_copy)
    lock = WriterLock(seed_index_copy)
    lock.acquire()
    try:
        code, _, err = run(capsys, "--index", seed_index_copy, "add", article)
    finally:
        lock.release()
    assert code == 1 and f"locked by pid {os.getpid()}" in err and "try again" in err
    assert fingerprint(seed_index_copy) == before


@pytest.mark.parametrize(
    "argv",
    [[], ["add"], ["remove"], ["search"], ["index"], ["frobnicate"],
     ["search", "q", "--top-k", "many"], ["search", "q", "--mode", "fuzzy"], ["list", "--bogus"]],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert "usage: rag" in capsys.readouterr().err


# ----------------------------------------------------------------------------- subprocess


def rag_command() -> list[str]:
    script = Path(sys.executable).parent / "rag"
    return [str(script)] if script.exists() else [sys.executable, "-m", "rag.cli"]


def rag_process(*argv: str | Path, index: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    if index is not None:
        env["RAG_INDEX_DIR"] = str(index)
    return subprocess.run(
        [*rag_command(), *map(str, argv)], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=120,
    )


def test_subprocess_list_and_unchanged_add(seed_index_copy: Path) -> None:
    listed = rag_process("list", index=seed_index_copy)
    assert listed.returncode == 0 and S000 in listed.stdout and S003 in listed.stdout
    added = rag_process("add", SEEDS / S000, index=seed_index_copy)
    assert added.returncode == 0, added.stderr
    assert "0 embedded" in added.stdout and added.stderr == ""


def test_subprocess_errors(seed_index_copy: Path, tmp_path: Path) -> None:
    before = fingerprint(seed_index_copy)
    missing = rag_process("add", tmp_path / "missing.txt", index=seed_index_copy)
    assert missing.returncode == 1
    assert missing.stderr.strip().count("\n") == 0 and "no such file" in missing.stderr
    assert "Traceback" not in missing.stderr
    usage = rag_process()
    assert usage.returncode == 2 and "usage: rag" in usage.stderr
    assert fingerprint(seed_index_copy) == before


def test_an_index_path_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_a_folder = tmp_path / "index"
    not_a_folder.write_text("I am a file")
    code, _, err = run(capsys, "--index", not_a_folder, "add", SEEDS / S000)
    assert code == 1 and "cannot use" in err and "a folder path you can write to" in err
    assert len(err.strip().splitlines()) == 1
    assert not_a_folder.read_text() == "I am a file"
