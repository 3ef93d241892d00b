"""The optional generative model runs in child processes: their crashes are reported errors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import rag.reading.llm_process as llm_process
from rag.reading.llm_process import GeneratorUnavailable, LlamaProcess, describe_exit, probe

CRASH = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]


@pytest.fixture()
def gguf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "corrupt.gguf"
    path.write_bytes(b"GGUF this is not a model")
    return path


def test_a_probe_child_that_segfaults_is_reported_with_the_reason_and_the_fix(gguf: Path) -> None:
    with pytest.raises(GeneratorUnavailable) as err:
        probe(gguf, command=CRASH)
    assert "killed by SIGSEGV" in str(err.value)
    assert "make gen" in str(err.value) and "extractive" in str(err.value)


def test_a_probe_child_that_hangs_is_stopped(gguf: Path) -> None:
    hang = [sys.executable, "-c", "import time; time.sleep(60)"]
    with pytest.raises(GeneratorUnavailable, match="no answer within 1 s"):
        probe(gguf, command=hang, timeout=1)


def test_a_corrupt_model_fails_its_probe_and_the_verdict_is_cached(gguf: Path) -> None:
    with pytest.raises(GeneratorUnavailable, match="failed its probe"):
        probe(gguf)
    calls: list[Any] = []
    original = llm_process._run_probe
    llm_process._run_probe = lambda *a: calls.append(a) or original(*a)  # type: ignore
    try:
        with pytest.raises(GeneratorUnavailable):
            probe(gguf)  # same machine, build and file: the cached verdict, no new child
        assert calls == []
        gguf.write_bytes(b"GGUF another broken model")  # the file changed: probed again
        with pytest.raises(GeneratorUnavailable):
            probe(gguf)
        assert len(calls) == 1
    finally:
        llm_process._run_probe = original


def test_a_missing_model_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(GeneratorUnavailable, match="does not exist"):
        probe(tmp_path / "absent.gguf")


def test_a_damaged_cache_costs_only_a_probe(gguf: Path) -> None:
    (llm_process.cache_dir()).mkdir(parents=True)
    (llm_process.cache_dir() / "llm-probe.json").write_text("{not json")
    with pytest.raises(GeneratorUnavailable, match="failed its probe"):
        probe(gguf)


def test_a_child_that_cannot_load_its_model_raises_instead_of_crashing(gguf: Path) -> None:
    process = LlamaProcess(gguf, n_ctx=256, threads=1, timeout=60)
    with pytest.raises(GeneratorUnavailable):
        process.start()
    process.close()


def test_exit_codes_are_described() -> None:
    assert describe_exit(-11) == "killed by SIGSEGV"
    assert describe_exit(-4) == "killed by SIGILL"
    assert describe_exit(1) == "exit 1"
    assert describe_exit(None) == "no exit status"
