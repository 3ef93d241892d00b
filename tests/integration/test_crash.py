"""SIGKILL a real `rag add` at many moments: the index is always whole, old or new, never a mix."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from rag.documents import parse_document
from rag.embedding import Embedder
from rag.index import MANIFEST_FILE, check_consistency
from rag.retrieval import Retriever
from rag.sparse import SparseIndex
from tests.integration.conftest import REPO, copy_index, open_real_index

pytestmark = pytest.mark.integration

SOURCE = "crash.txt"
TRIALS = 20  # spread over the whole duration of an add
TARGETED = 2  # extra trials aimed at the short window between commit and exit


def new_version(target_bytes: int = 5_000) -> str:
    """A made-up article of about `target_bytes`, the same every run."""
    rng = random.Random(20260204)
    places = ["Lantern Bay", "Quarry Point", "Sha Tin", "Tsing Yi", "Tai Po", "Kwun Tong"]
    things = ["desalination plant", "ferry pier", "sea wall", "tram depot", "data centre"]
    paragraphs = ["Lantern Bay desalination plant opens\n"]
    while sum(map(len, paragraphs)) < target_bytes:
        sentences = []
        for _ in range(rng.randint(2, 5)):
            place, thing = rng.choice(places), rng.choice(things)
            sentences.append(
                f"The {thing} at {place} handled {rng.randint(100, 99_999):,} tonnes in week "
                f"{rng.randint(1, 52)}, officials said, after {rng.randint(2, 40)} months of "
                f"work costing HK${rng.randint(5, 900)} million."
            )
        paragraphs.append(" ".join(sentences))
    return "\n\n".join(paragraphs) + "\n"


OLD_TEXT = "Lantern Bay plant delayed\n\nThe plant at Lantern Bay is late. Work resumes soon.\n"
NEW_TEXT = new_version()


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def rag_add(folder: Path, article: Path) -> subprocess.Popen[bytes]:
    script = Path(sys.executable).parent / "rag"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "rag.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    return subprocess.Popen(
        [*command, "--index", str(folder), "add", str(article)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def generation(folder: Path) -> int:
    conn = sqlite3.connect(folder / "store.sqlite", timeout=5)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0])
    finally:
        conn.close()


@dataclass
class Outcome:
    delay: float
    finished: bool  # the add exited on its own before the kill
    state: str  # "old" or "new"
    repaired: bool  # the next open had to finish an interrupted write


@pytest.fixture(scope="module")
def template(
    real_seed_index_dir: Path, real_embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The seed index plus the old version of crash.txt."""
    folder = copy_index(real_seed_index_dir, tmp_path_factory.mktemp("crash") / "template")
    index = open_real_index(folder, real_embedder)
    index.add_documents([parse_document(OLD_TEXT.encode(), SOURCE)])
    index.close()
    return folder


def check_after(folder: Path, embedder: Embedder, *, finish: bool = False) -> tuple[str, bool]:
    """Open the index as the next process would; prove it is whole; (state, repaired)."""
    notes: list[str] = []
    index = open_real_index(folder, embedder, notify=notes.append)
    try:
        counts = check_consistency(index)  # FAISS ntotal == chunk rows == BM25 count
        # Every file the manifest names is in place (BM25 segments are shared across
        # generations, so a cleanup must never take one the manifest still names).
        files = json.loads((folder / MANIFEST_FILE).read_text())["files"]
        for name in [files["dense"], *SparseIndex.files(files["sparse"])]:
            assert (folder / name).exists(), name
        store = index._require_store()
        assert counts["documents"] == 3
        stored = store.document_hash(SOURCE)
        assert stored in (text_hash(OLD_TEXT), text_hash(NEW_TEXT)), "a mix of old and new"
        state = "new" if stored == text_hash(NEW_TEXT) else "old"
        doc = store.get_document(SOURCE)
        assert doc is not None and doc.text == (NEW_TEXT if state == "new" else OLD_TEXT)
        hits = Retriever(index).search("Lantern Bay plant", 5, mode="hybrid")
        assert hits and all(
            store.get_document(h.source).text[h.start : h.end] == h.text  # type: ignore[union-attr]
            for h in hits
        )
        # The killed writer left no stale lock: the next one gets it at once.
        index.lock.acquire(timeout=0)
        index.lock.release()
        if finish:
            # (parsed as the CLI parses the file, so an add that committed sees it unchanged)
            new = parse_document(NEW_TEXT.encode(), SOURCE)
            report = index.add_documents([new], lock_timeout=0)
            assert report.unchanged == ([SOURCE] if state == "new" else [])
            check_consistency(index)
            assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
        return state, any("interrupted write" in n for n in notes)
    finally:
        index.close()


def test_sigkill_during_add(template: Path, real_embedder: Embedder, tmp_path: Path) -> None:
    article = tmp_path / SOURCE
    article.write_text(NEW_TEXT, encoding="utf-8")
    assert len(NEW_TEXT.encode()) >= 4_500

    # Measure one whole add first: how long it runs and when its transaction commits.
    folder = copy_index(template, tmp_path / "measure")
    base = generation(folder)
    started = time.monotonic()
    proc = rag_add(folder, article)
    seen: dict[str, float] = {}  # when the store committed, when the manifest followed

    def watch() -> None:
        while proc.poll() is None and "manifest" not in seen:
            now = time.monotonic() - started
            try:
                if "commit" not in seen and generation(folder) > base:
                    seen["commit"] = now
                manifest = json.loads((folder / MANIFEST_FILE).read_text())
                if "commit" in seen and manifest["generation"] > base:
                    seen["manifest"] = now
            except (sqlite3.Error, OSError, ValueError):
                pass
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    _, stderr = proc.communicate(timeout=300)
    duration = time.monotonic() - started
    watcher.join()
    assert proc.returncode == 0, stderr.decode()
    assert check_after(folder, real_embedder, finish=True)[0] == "new"
    commit = seen.get("commit", duration * 0.9)
    persisted = seen.get("manifest", commit + 0.1)

    # Kill moments: stratified over the whole add, plus a few aimed at the commit-to-manifest
    # window; each from its own fixed seed, so a failing trial can be replayed.
    delays = [duration * (i + random.Random(1000 + i).random()) / TRIALS for i in range(TRIALS)]
    start, window = max(0.0, commit - 0.05), persisted - commit + 0.1
    delays += [
        start + window * (i + random.Random(2000 + i).random()) / TARGETED
        for i in range(TARGETED)
    ]

    outcomes: list[Outcome] = []
    for trial, delay in enumerate(delays):
        folder = copy_index(template, tmp_path / f"trial-{trial:02d}")
        proc = rag_add(folder, article)
        time.sleep(delay)
        finished = proc.poll() is not None
        if not finished:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        if finished:
            assert proc.returncode == 0, proc.stderr.read().decode() if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
        # Every few trials, also finish the interrupted job with a second writer.
        state, repaired = check_after(folder, real_embedder, finish=trial % 5 == 0)
        outcomes.append(Outcome(delay, finished, state, repaired))

    killed = [o for o in outcomes if not o.finished]
    summary = (
        f"add takes {duration:.2f} s (commit at {commit:.2f} s, manifest at {persisted:.2f} s); "
        f"{len(outcomes)} trials, "
        f"{len(killed)} killed: {sum(o.state == 'old' for o in killed)} before commit (old), "
        f"{sum(o.state == 'new' for o in killed)} after (new), "
        f"{sum(o.repaired for o in killed)} finished by the next open"
    )
    print(summary)
    # Late trials may find the add already done when it ran faster than the measured one.
    assert len(killed) >= TRIALS * 0.6, summary
    assert any(o.state == "old" for o in killed), summary
