"""Integration fixtures: the real packaged embedder, loaded once, and a seed index built once."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.documents import Document, read_document
from rag.embedding import Embedder
from rag.index import Index, Notify
from rag.pipeline import make_index
from rag.settings import Settings

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "seeds"


def seed_documents() -> list[Document]:
    """The articles in seeds/, read the way `rag index build` reads them."""
    return [read_document(p) for p in sorted(SEEDS.iterdir()) if p.is_file()]


def copy_index(source: Path, target: Path) -> Path:
    """A private copy of a closed index folder (no lock, no SQLite shared-memory file)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".lock", "*-shm", "*.tmp"))
    return target


@pytest.fixture(autouse=True)
def _no_rag_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their settings; a RAG_* variable in the caller's shell must not leak in."""
    for name in list(os.environ):
        if name.startswith("RAG_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def real_embedder() -> Embedder:
    """The packaged MiniLM embedder from default settings; loads on first use, once."""
    embedder = make_index(Settings(index_dir=Path("unused"))).embedder
    embedder.embed(["warm up"])
    return embedder


def open_real_index(
    folder: Path, embedder: Embedder, *, create: bool = False, notify: Notify | None = None
) -> Index:
    """Open `folder` with default settings but the session's already-loaded model."""
    base = make_index(Settings(index_dir=folder))
    index = Index(folder, embedder, base.chunker, factory=base.factory,
                  notify=notify or (lambda message: None))
    return index.open(create=create)


@pytest.fixture(scope="session")
def real_seed_index_dir(
    tmp_path_factory: pytest.TempPathFactory, real_embedder: Embedder
) -> Path:
    """seeds/ indexed once per session with the real model. Never write to it: copy it."""
    folder = tmp_path_factory.mktemp("real-seed") / "index"
    index = open_real_index(folder, real_embedder, create=True)
    try:
        index.add_documents(seed_documents(), sync=True)
    finally:
        index.close()  # closing checkpoints the WAL, so a plain copy is a whole index
    return folder


@pytest.fixture(scope="session")
def real_seed_index(real_seed_index_dir: Path, real_embedder: Embedder) -> Iterator[Index]:
    """A read-only open handle on the session seed index."""
    index = open_real_index(real_seed_index_dir, real_embedder)
    yield index
    index.close()


@pytest.fixture
def seed_index_copy(real_seed_index_dir: Path, tmp_path: Path) -> Path:
    """A private, writable copy of the session seed index."""
    return copy_index(real_seed_index_dir, tmp_path / "index")


def require_generator() -> None:
    """Skip without the 'gen' extra; fail (with the probe's reason) if llama.cpp cannot run
    here, so a build that crashes is a reported failure, never a dead pytest process."""
    pytest.importorskip("llama_cpp")
    from rag.reading.generative import DEFAULT_GGUF, resolve_gguf
    from rag.reading.llm_process import GeneratorUnavailable, probe

    try:
        probe(resolve_gguf(DEFAULT_GGUF))
    except GeneratorUnavailable as exc:
        pytest.fail(f"the generative model cannot run on this machine: {exc}")
