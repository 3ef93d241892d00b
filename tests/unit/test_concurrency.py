"""One writer at a time (IndexLocked names the holder); readers only ever see whole generations."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import faiss
import numpy as np
import pytest

from rag.documents import Document
from rag.errors import IndexLocked
from rag.index import Index, Snapshot, check_consistency
from rag.retrieval import Retriever
from tests.fakes import FakeEmbedder, Notes, fake_index

REPO = Path(__file__).resolve().parents[2]


def article(source: str, version: int) -> Document:
    text = (
        f"Ferry {source} update {version}\n\n"
        f"The ferry {source} carried {1000 + version} passengers in week {version}. "
        f"Its crew of {version % 9 + 3} sailed between Quarry Point and Lantern Bay.\n\n"
        f"Officials said version {version} of the {source} timetable starts on Monday."
    )
    return Document(source=f"{source}.txt", text=text)


def test_second_writer_in_process_is_told_who_holds_the_lock(tmp_path: Path) -> None:
    first = fake_index(tmp_path / "index")
    second = fake_index(tmp_path / "index")
    first.lock.acquire()
    try:
        with pytest.raises(IndexLocked, match=f"locked by pid {os.getpid()}"):
            second.add_documents([article("a", 1)])
        with pytest.raises(IndexLocked, match="wait for it to finish and try again"):
            second.remove(["a.txt"])
    finally:
        first.lock.release()
    assert second.add_documents([article("a", 1)]).added == ["a.txt"]


def test_second_writer_is_told_the_pid_of_another_process(tmp_path: Path) -> None:
    folder = tmp_path / "index"
    index = fake_index(folder)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from pathlib import Path; from rag.index import WriterLock; "
         f"WriterLock(Path({str(folder)!r})).acquire(); print('locked', flush=True); "
         "sys.stdin.read()"],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        before = index._require_store().generation
        with pytest.raises(IndexLocked, match=f"locked by pid {holder.pid} "):
            index.add_documents([article("a", 1)])
        assert index._require_store().generation == before
        # A writer that dies (even by SIGKILL) never leaves a stale lock behind: flock is
        # released by the kernel.
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        assert index.add_documents([article("a", 1)]).added == ["a.txt"]
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=10)


def test_waiting_writer_gets_the_lock_when_it_is_released(tmp_path: Path) -> None:
    first = fake_index(tmp_path / "index")
    second = fake_index(tmp_path / "index")
    first.lock.acquire()
    timer = threading.Timer(0.3, first.lock.release)
    timer.start()
    try:
        report = second.add_documents([article("a", 1)], lock_timeout=10)
    finally:
        timer.join()
    assert report.added == ["a.txt"]


def _whole(snapshot: Snapshot) -> None:
    """A generation is whole when FAISS and BM25 hold exactly the same chunk ids."""
    dense_ids = faiss.vector_to_array(snapshot.dense.index.id_map)  # type: ignore[attr-defined]
    assert np.array_equal(np.sort(dense_ids), np.sort(snapshot.sparse.ids)), snapshot.generation


def test_readers_never_see_a_half_written_index(tmp_path: Path) -> None:
    folder = tmp_path / "index"
    writer = fake_index(folder)
    writer.add_documents([article(f"f{i}", 0) for i in range(4)])
    versions: dict[str, set[str]] = {}
    plan: list[tuple[str, Document]] = []
    for step in range(1, 25):
        plan.append(("add", article(f"f{step % 6}", step)))
        if step % 3 == 0:
            plan.append(("remove", article(f"f{(step + 2) % 6}", 0)))
    for doc in [article(f"f{i}", 0) for i in range(4)] + [d for _, d in plan]:
        versions.setdefault(doc.source, set()).add(doc.text)

    stop = threading.Event()
    errors: list[BaseException] = []
    seen: dict[str, set[int]] = {"shared": set(), "other": set(), "fresh": set()}

    def check_hits(index: Index, name: str) -> None:
        snapshot = index.snapshot
        _whole(snapshot)
        seen[name].add(snapshot.generation)
        vector = FakeEmbedder()._vectors(["ferry passengers timetable"])[0]
        for mode in ("dense", "bm25", "hybrid"):
            hits = Retriever(index).search(
                "ferry passengers timetable", 10, mode=mode, query_vector=vector  # type: ignore[arg-type]
            )
            for hit in hits:
                # Every passage is a verbatim slice of a version that was really written.
                assert any(hit.text == t[hit.start : hit.end] for t in versions[hit.source])

    def read_loop(name: str) -> None:
        try:
            if name == "shared":
                index = writer  # the writer's own handle, as the API server uses it
            else:
                index = fake_index(folder, create=False, notes=Notes())
            while not stop.is_set():
                if name == "other":
                    index.reload_if_changed()  # another process's writes
                if name == "fresh":
                    index = fake_index(folder, create=False, notes=Notes())
                    _whole(index.snapshot)
                check_hits(index, name)
                if name == "fresh":
                    index.close()
        except BaseException as exc:  # noqa: B036 - reported to the main thread
            errors.append(exc)
            stop.set()

    readers = [threading.Thread(target=read_loop, args=(n,)) for n in seen]
    for thread in readers:
        thread.start()
    started = time.monotonic()
    try:
        for action, doc in plan:
            if stop.is_set():
                break
            if action == "add":
                writer.add_documents([doc], lock_timeout=10)
            elif writer._require_store().document_hash(doc.source) is not None:
                writer.remove([doc.source], lock_timeout=10)
    finally:
        time.sleep(0.2)
        stop.set()
        for thread in readers:
            thread.join(timeout=30)
    if errors:
        raise errors[0]
    elapsed = time.monotonic() - started
    check_consistency(writer)
    final = writer._require_store().generation
    # The readers really ran alongside the writes (they saw several generations come and go).
    assert len(seen["shared"]) > 1 and len(seen["other"]) > 1, (seen, elapsed)
    assert max(seen["other"]) <= final
