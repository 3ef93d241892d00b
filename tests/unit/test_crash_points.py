"""SIGKILL a writer at each step of the write protocol (fake embedder, so each run is quick).

The integration test kills a real `rag add` at random moments; this one aims at every
boundary that matters: inside the SQLite transaction, right after it commits, before and
after each atomic rename of a derived file or the manifest, and between fsyncs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rag.documents import Document
from rag.index import check_consistency
from rag.retrieval import Retriever
from tests.fakes import FakeEmbedder, Notes, fake_index, paragraphs_article

REPO = Path(__file__).resolve().parents[2]
OLD = Document(source="crash.txt", text=paragraphs_article(3, "canal"))
NEW = Document(source="crash.txt", text=paragraphs_article(9, "harbour"))

CHILD = r"""
import os, signal, sys
from pathlib import Path
import rag.atomic
from rag.documents import Document
from rag.store import Store
from tests.fakes import fake_index, paragraphs_article

folder, point, nth = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
calls = {"n": 0}

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def counted(real, before):
    def wrapper(*args, **kwargs):
        calls["n"] += 1
        if before and calls["n"] == nth:
            die()
        result = real(*args, **kwargs)
        if not before and calls["n"] == nth:
            die()
        return result
    return wrapper

if point in ("replace-before", "replace-after"):
    rag.atomic.os.replace = counted(os.replace, point == "replace-before")
elif point == "fsync":
    rag.atomic.os.fsync = counted(os.fsync, True)
elif point == "mid-transaction":
    real_put = Store.put_chunks
    def put_chunks(conn, chunks, hashes):
        ids = real_put(conn, chunks, hashes)
        die()
        return ids
    Store.put_chunks = staticmethod(put_chunks)
elif point == "after-commit":
    real_delta = __import__("rag.index").index.Index._apply_delta
    def apply_delta(self, old, new):
        die()
    __import__("rag.index").index.Index._apply_delta = apply_delta

index = fake_index(folder, create=False)
index.add_documents([Document(source="crash.txt", text=paragraphs_article(9, "harbour"))])
print("done", calls["n"])
"""

# An update writes, each by an atomic rename: the dense file (1), a BM25 segment for the new
# chunks (2), the deleted chunk ids (3), the manifest (4); then, since most of the old
# segment is now deleted, a merge rewrites it (5) and replaces the manifest again (6).
POINTS = (
    [("mid-transaction", 1), ("after-commit", 1)]
    + [("replace-before", n) for n in (1, 2, 3, 4, 5, 6)]
    + [("replace-after", n) for n in (1, 2, 3, 4, 5, 6)]
    + [("fsync", n) for n in (1, 3, 6, 8, 9, 11)]
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("points") / "template"
    index = fake_index(folder)
    index.add_documents([OLD, Document(source="other.txt", text="Another story. It is short.")])
    index.close()
    return folder


def _run(template: Path, base: Path, point: str, nth: int) -> tuple[Path, int, str]:
    folder = base / f"{point}-{nth}"
    shutil.copytree(template, folder, ignore=shutil.ignore_patterns(".lock", "*-shm"))
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), point, str(nth)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    return folder, proc.returncode, proc.stdout + proc.stderr


def test_kill_at_every_step_of_a_write(template: Path, tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda p: (p, *_run(template, tmp_path, *p)), POINTS))
    states: dict[tuple[str, int], str] = {}
    for (point, nth), folder, code, output in runs:
        assert code == -9, f"{point} {nth}: not killed there (exit {code})\n{output}"
        embedder, notes = FakeEmbedder(), Notes()
        index = fake_index(folder, embedder=embedder, notes=notes, create=False)
        assert embedder.calls == 0, "recovery must never re-embed"
        counts = check_consistency(index)
        assert counts["documents"] == 2
        store = index._require_store()
        stored = store.document_hash("crash.txt")
        assert stored in (OLD.content_hash, NEW.content_hash), f"{point} {nth}: a mix"
        state = "new" if stored == NEW.content_hash else "old"
        states[(point, nth)] = state + (" (repaired)" if notes.messages else "")
        hits = Retriever(index).search("harbour works" if state == "new" else "canal works", 3,
                                       mode="bm25")
        assert hits and hits[0].source == "crash.txt"
        # The next writer is not blocked and finishes the job.
        index.add_documents([NEW], lock_timeout=0)
        check_consistency(index)
        assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
        index.close()
    assert states[("mid-transaction", 1)] == "old"
    assert states[("after-commit", 1)] == "new (repaired)"
    assert states[("replace-before", 1)] == "new (repaired)"  # dense file not yet in place
    assert states[("replace-before", 4)] == "new (repaired)"  # BM25 files but no manifest
    assert states[("replace-after", 4)] == "new"  # manifest in place: nothing to repair
    # A merge killed at any step changes nothing a search sees: old or new segment list.
    assert states[("replace-before", 5)] == states[("replace-after", 6)] == "new"


MERGE_POINTS = [("replace-before", n) for n in (1, 2, 3, 4, 5)] + [
    ("replace-after", n) for n in (3, 4, 5)] + [("fsync", n) for n in (5, 7, 9)]


@pytest.fixture(scope="module")
def merge_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seven one-article segments: the next add makes eight of a size, which are merged."""
    folder = tmp_path_factory.mktemp("merge") / "template"
    index = fake_index(folder)
    for i in range(7):
        index.add_documents([Document(source=f"a{i}.txt", text=paragraphs_article(3, f"t{i}"))])
    assert len(index.snapshot.sparse.segments) == 7
    index.close()
    return folder


def test_kill_at_every_step_of_a_merge(merge_template: Path, tmp_path: Path) -> None:
    """The add's own files come first (dense 1, segment 2, manifest 3), then the merge's:
    the merged segment (4) and the manifest naming it instead of its inputs (5)."""
    reference = fake_index(tmp_path / "reference")
    reference.add_documents([Document(source=f"a{i}.txt", text=paragraphs_article(3, f"t{i}"))
                             for i in range(7)] + [NEW])
    queries = ["harbour works", "t3 works pipe", "residents block noise"]
    expected = [[(h.source, h.start) for h in Retriever(reference).search(q, 5, mode="bm25")]
                for q in queries]
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda p: (p, *_run(merge_template, tmp_path, *p)), MERGE_POINTS))
    merged: dict[tuple[str, int], int] = {}
    for (point, nth), folder, code, output in runs:
        assert code == -9, f"{point} {nth}: not killed there (exit {code})\n{output}"
        index = fake_index(folder, create=False)
        counts = check_consistency(index)
        if counts["documents"] == 8:
            got = [[(h.source, h.start) for h in Retriever(index).search(q, 5, mode="bm25")]
                   for q in queries]
            assert got == expected, f"{point} {nth}"
        merged[(point, nth)] = len(index.snapshot.sparse.segments)
        index.add_documents([NEW], lock_timeout=0)
        check_consistency(index)
        assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
        index.close()
    assert merged[("replace-before", 5)] == 8  # the merged segment exists, not yet named
    assert merged[("replace-after", 5)] == 1
