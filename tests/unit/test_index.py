"""The index folder: embedding cache, manifest, mismatch detection, self-repair (fake embedder)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from rag.documents import Document, read_document
from rag.errors import DocumentNotFound, DuplicateDocument, IndexCorrupt, ManifestMismatch
from rag.index import MANIFEST_FILE, Index, Snapshot, WriterLock, check_consistency
from rag.retrieval import Retriever
from rag.sparse import SparseIndex
from rag.store import SCHEMA_VERSION, Store
from tests.fakes import FakeEmbedder, Notes, fake_index, make_chunker, paragraphs_article

SEEDS = Path(__file__).resolve().parents[2] / "seeds"


def seed_docs() -> list[Document]:
    return [read_document(p) for p in sorted(SEEDS.iterdir()) if p.is_file()]


def state(folder: Path) -> tuple[int, str, tuple[int, int]]:
    """(generation, corpus hash, counts) straight from the store file."""
    store = Store(folder / "store.sqlite")
    try:
        return store.generation, store.corpus_hash(), store.counts()
    finally:
        store.close()


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    """An index folder holding the two seed articles (fake vectors)."""
    folder = tmp_path / "index"
    index = fake_index(folder)
    index.add_documents(seed_docs())
    index.close()
    return folder


# ----------------------------------------------------------------------------- cache


def test_re_adding_unchanged_articles_embeds_nothing(seeded: Path) -> None:
    before = state(seeded)
    embedder = FakeEmbedder()
    index = fake_index(seeded, embedder=embedder)
    report = index.add_documents(seed_docs())
    assert sorted(report.unchanged) == sorted(d.source for d in seed_docs())
    assert (report.added, report.updated, report.chunks_embedded) == ([], [], 0)
    assert not report.changed
    assert embedder.calls == 0 and not embedder.loaded  # the model was never even needed
    assert state(seeded) == before


def test_editing_one_paragraph_re_embeds_only_changed_chunks(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    index = fake_index(tmp_path / "index", embedder=embedder, max_tokens=64, overlap_tokens=16)
    original = paragraphs_article(10)
    doc = Document(source="works.txt", text=original)
    first = index.add_documents([doc])
    old_texts = {c.text for c in index.chunker.chunk(doc)}
    assert first.chunks_embedded == len(old_texts) >= 8

    edited_text = original.replace("Crews laid 105 metres", "Crews laid 950 metres")
    assert edited_text != original
    edited = Document(source="works.txt", text=edited_text)
    new_chunks = index.chunker.chunk(edited)
    changed = {c.text for c in new_chunks} - old_texts
    assert 1 <= len(changed) <= 3  # the paragraph's chunk(s), and an overlap that repeats it

    embedder.embedded.clear()
    report = index.add_documents([edited])
    assert report.updated == ["works.txt"]
    assert report.chunks_embedded == len(changed)
    assert set(embedder.embedded) == changed
    assert report.chunks_reused == len(new_chunks) - len(changed)
    assert report.chunks_written == len(new_chunks)
    check_consistency(index)


def test_metadata_only_change_updates_without_embedding(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    index = fake_index(tmp_path / "index", embedder=embedder)
    text = "The ferry carried 4,321 passengers. A second boat will follow next spring."
    index.add_documents([Document(source="f.txt", text=text, title="Old title")])
    embedder.embedded.clear()
    report = index.add_documents([Document(source="f.txt", text=text, title="New title")])
    assert report.updated == ["f.txt"] and report.chunks_embedded == 0
    assert index._require_store().document_meta("f.txt") == ("New title", None, None, None, 0)


def test_a_header_read_anew_updates_where_the_body_starts(tmp_path: Path) -> None:
    index = fake_index(tmp_path / "index")
    text = "Harbour ferry sets record\nBy Jane Doe\n\nThe ferry carried 4,321 passengers.\n"
    index.add_documents([Document(source="f.txt", text=text, title="Harbour ferry sets record")])
    better = Document(source="f.txt", text=text, title="Harbour ferry sets record",
                      body_start=text.index("The ferry"))
    report = index.add_documents([better])
    assert report.updated == ["f.txt"]
    assert index._require_store().document_meta("f.txt")[4] == better.body_start


def test_same_text_under_another_name_is_refused(seeded: Path) -> None:
    before = state(seeded)
    index = fake_index(seeded)
    copy = seed_docs()[0]
    renamed = Document(source="copy.txt", text=copy.text, body_start=copy.body_start)
    with pytest.raises(DuplicateDocument, match=f"same text as the indexed article {copy.source}"):
        index.add_documents([renamed])
    with pytest.raises(DuplicateDocument, match="in this batch"):
        index.add_documents(
            [Document(source="a.txt", text="Same words."), Document(source="b.txt",
                                                                    text="Same words.")]
        )
    assert state(seeded) == before


def test_remove(seeded: Path) -> None:
    index = fake_index(seeded)
    generation, _, _ = state(seeded)
    with pytest.raises(DocumentNotFound, match="no indexed article with source id 'nope.txt'"):
        index.remove(["nope.txt"])
    assert state(seeded)[0] == generation
    report = index.remove(["000_1ab512602a64e1c4.txt"])
    assert report.removed == ["000_1ab512602a64e1c4.txt"]
    counts = check_consistency(index)
    assert counts["documents"] == 1
    store = index._require_store()
    (orphans,) = store.conn.execute(
        "SELECT count(*) FROM vectors WHERE embed_hash NOT IN (SELECT embed_hash FROM chunks)"
    ).fetchone()
    assert orphans == 0  # removed articles' vectors do not linger


def test_sync_build_holds_exactly_the_given_articles(seeded: Path) -> None:
    index = fake_index(seeded)
    extra = Document(source="extra.txt", text="A new article. It has two sentences.")
    report = index.add_documents([extra, seed_docs()[1]], sync=True)
    assert report.removed == ["000_1ab512602a64e1c4.txt"]
    assert report.added == ["extra.txt"]
    assert sorted(d.source for d in index._require_store().list_documents()) == [
        "003_fcf2125f3a29daa1.txt", "extra.txt",
    ]


# ----------------------------------------------------------------------------- manifest


def test_manifest_describes_the_index(seeded: Path) -> None:
    manifest = json.loads((seeded / MANIFEST_FILE).read_text())
    embedder = FakeEmbedder()
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert {k: manifest["embedder"][k] for k in ("package", "version", "weights_sha256")} == {
        "package": "tests-fake", "version": "1", "weights_sha256": embedder.weights,
    }
    assert manifest["dim"] == embedder.dim
    assert manifest["chunker"]["max_tokens"] == 180
    assert manifest["chunker"]["overlap_tokens"] == 40
    n_chunks = sum(len(make_chunker().chunk(d)) for d in seed_docs())
    assert manifest["counts"] == {"documents": 2, "chunks": n_chunks}
    for package in ("faiss-cpu", "bm25s", "rag"):
        assert manifest["library_versions"][package]
    built = dt.datetime.fromisoformat(manifest["built_at"])
    assert abs(dt.datetime.now(dt.UTC) - built) < dt.timedelta(minutes=10)
    assert manifest["generation"] == state(seeded)[0]
    files = manifest["files"]
    assert (seeded / files["store"]).exists() and (seeded / files["dense"]).exists()
    assert files["sparse"]["chunks"] == n_chunks and files["sparse"]["segments"]
    for name in SparseIndex.files(files["sparse"]):
        assert (seeded / name).exists()
    assert len(manifest["corpus_hash"]) == 64


def test_other_chunker_settings_fail_loudly_then_build_rebuilds(seeded: Path) -> None:
    with pytest.raises(ManifestMismatch) as caught:
        fake_index(seeded, max_tokens=120, create=False)
    message = str(caught.value)
    assert "chunker" in message and "'rag index build'" in message

    embedder = FakeEmbedder()
    index = fake_index(seeded, embedder=embedder, max_tokens=120, create=False, check_config=False)
    report = index.add_documents(seed_docs(), sync=True)
    assert sorted(report.updated) == sorted(d.source for d in seed_docs())
    index.close()
    reopened = fake_index(seeded, max_tokens=120, create=False)  # no mismatch any more
    counts = check_consistency(reopened)
    manifest = json.loads((seeded / MANIFEST_FILE).read_text())
    assert manifest["chunker"]["max_tokens"] == 120
    assert counts["chunks"] == manifest["counts"]["chunks"] > 12
    rows = reopened._require_store().conn.execute("SELECT max(n_tokens) FROM chunks").fetchone()
    assert rows[0] <= 120
    # Chunk texts that did not change under the new limit kept their cached vectors.
    assert report.chunks_embedded + report.chunks_reused == counts["chunks"]


def test_another_embedder_fails_loudly(seeded: Path) -> None:
    with pytest.raises(ManifestMismatch, match=r"embedder.*'rag index build'"):
        fake_index(seeded, embedder=FakeEmbedder(weights="other-weights"), create=False)


def test_writing_with_other_settings_is_refused_too(seeded: Path) -> None:
    index = fake_index(seeded, max_tokens=120, create=False, check_config=False)
    before = state(seeded)
    with pytest.raises(ManifestMismatch, match="'rag index build'"):
        index.add_documents([Document(source="n.txt", text="A new one. Two sentences.")])
    assert state(seeded) == before


# ----------------------------------------------------------------------------- repair


def _manifest(folder: Path) -> dict[str, object]:
    return dict(json.loads((folder / MANIFEST_FILE).read_text()))


def _dense(folder: Path) -> Path:
    return folder / str(_manifest(folder)["files"]["dense"])  # type: ignore[index]


def _segment(folder: Path) -> Path:
    names = _manifest(folder)["files"]["sparse"]["segments"]  # type: ignore[index]
    return folder / f"bm25-seg-{names[0]}.npz"


def _sparse_entry(folder: Path, **changes: object) -> None:
    manifest = _manifest(folder)
    manifest["files"]["sparse"].update(changes)  # type: ignore[index]
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))


def _old_layout(folder: Path) -> None:
    """A manifest written before segments: `sparse` names a bm25s folder."""
    manifest = _manifest(folder)
    manifest["files"]["sparse"] = "bm25-1"  # type: ignore[index]
    (folder / "bm25-1").mkdir()
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))


DAMAGE: dict[str, Callable[[Path], None]] = {
    "dense file deleted": lambda f: _dense(f).unlink(),
    "dense file corrupt": lambda f: _dense(f).write_bytes(b"not a faiss index" * 50),
    "dense file truncated": lambda f: _dense(f).write_bytes(_dense(f).read_bytes()[:100]),
    "bm25 segment deleted": lambda f: _segment(f).unlink(),
    "bm25 segment corrupt": lambda f: _segment(f).write_bytes(b"\x00garbage\xff" * 7),
    "bm25 segment truncated": lambda f: _segment(f).write_bytes(_segment(f).read_bytes()[:300]),
    "bm25 deleted-ids file missing": lambda f: _sparse_entry(f, deleted="bm25-del-9-x.npy"),
    "bm25 count disagrees": lambda f: _sparse_entry(f, chunks=1),
    "bm25 in the old one-folder layout": lambda f: _old_layout(f),
    "manifest deleted": lambda f: (f / MANIFEST_FILE).unlink(),
    "manifest corrupt": lambda f: (f / MANIFEST_FILE).write_text('{"generation": 3, "fi'),
    "manifest empty": lambda f: (f / MANIFEST_FILE).write_bytes(b""),
}


def _results(index: Index, queries: list[str]) -> list[list[tuple[str, int, int]]]:
    retriever = Retriever(index)
    vectors = FakeEmbedder()._vectors(queries)
    out = []
    for query, vector in zip(queries, vectors, strict=True):
        for mode in ("dense", "bm25", "hybrid"):
            hits = retriever.search(query, 5, mode=mode, query_vector=vector)  # type: ignore[arg-type]
            out.append([(h.source, h.start, h.end) for h in hits])
    return out


QUERIES = ["budget for the manufacturing innovation center", "Sha Ling land tender"]


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_derived_files_are_rebuilt_without_re_embedding(seeded: Path, damage: str) -> None:
    index = fake_index(seeded, create=False)
    expected = _results(index, QUERIES)
    index.close()
    before = state(seeded)

    DAMAGE[damage](seeded)
    embedder, notes = FakeEmbedder(), Notes()
    index = fake_index(seeded, embedder=embedder, notes=notes, create=False)
    assert embedder.calls == 0, "repair must use stored vectors, not the model"
    assert "rebuilding FAISS and BM25 from the store" in notes.text
    assert "without re-embedding" in notes.text
    counts = check_consistency(index)
    assert counts["chunks"] == counts["dense"] == counts["sparse"] == before[2][1]
    assert _results(index, QUERIES) == expected
    assert state(seeded) == before  # the store itself was not touched
    index.close()

    # The repair was written to disk: the next open is quiet and consistent.
    quiet = Notes()
    again = fake_index(seeded, notes=quiet, create=False)
    assert quiet.messages == []
    check_consistency(again)
    assert _manifest(seeded)["counts"] == {"documents": 2, "chunks": before[2][1]}


def _commit_without_files(folder: Path, tmp_path: Path) -> None:
    """Commit an add to the store but leave the old manifest and derived files in place."""
    saved = tmp_path / "saved"
    shutil.copytree(folder, saved, ignore=shutil.ignore_patterns("store.sqlite*", ".lock"))
    index = fake_index(folder, create=False)
    index.add_documents([Document(source="late.txt", text="Late news. The ferry was late.")])
    index.close()
    for path in folder.iterdir():
        if path.name.startswith(("dense-", "bm25-", "manifest")):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    for path in saved.iterdir():
        target = folder / path.name
        shutil.copytree(path, target) if path.is_dir() else shutil.copy2(path, target)


def test_interrupted_write_is_finished_from_the_store(seeded: Path, tmp_path: Path) -> None:
    """A crash after the store committed but before the manifest moved (the lagging case)."""
    _commit_without_files(seeded, tmp_path)
    notes, embedder = Notes(), FakeEmbedder()
    index = fake_index(seeded, embedder=embedder, notes=notes, create=False)
    assert "interrupted write" in notes.text and embedder.calls == 0
    counts = check_consistency(index)
    assert counts["documents"] == 3
    hits = Retriever(index).search("ferry was late", 3, mode="bm25")
    assert hits[0].source == "late.txt"
    assert _manifest(seeded)["counts"] == {"documents": 3, "chunks": counts["chunks"]}


def test_opening_during_a_live_write_is_not_reported_as_a_crash(
    seeded: Path, tmp_path: Path
) -> None:
    _commit_without_files(seeded, tmp_path)
    old_manifest = (seeded / MANIFEST_FILE).read_bytes()
    writer = WriterLock(seeded)
    writer.acquire()  # a live writer, between its commit and its manifest
    try:
        notes = Notes()
        reader = fake_index(seeded, notes=notes, create=False)
        assert notes.messages == []
        assert check_consistency(reader)["documents"] == 3  # the committed generation
        assert (seeded / MANIFEST_FILE).read_bytes() == old_manifest  # left to the writer
    finally:
        writer.release()
    notes = Notes()
    fake_index(seeded, notes=notes, create=False)
    assert "interrupted write" in notes.text  # nobody is writing any more: a real crash


def test_unreadable_store_says_how_to_recover(seeded: Path) -> None:
    (seeded / "store.sqlite").write_bytes(b"this is not a database" * 100)
    for wal in seeded.glob("store.sqlite-*"):
        wal.unlink()
    with pytest.raises(IndexCorrupt, match="run 'rag index build'"):
        fake_index(seeded, create=False)


def test_a_new_empty_index_opens_quietly(tmp_path: Path) -> None:
    notes = Notes()
    index = fake_index(tmp_path / "new", notes=notes)
    assert notes.messages == []
    assert check_consistency(index) == {"documents": 0, "chunks": 0, "dense": 0, "sparse": 0}


def test_check_consistency_catches_a_mismatch(seeded: Path) -> None:
    index = fake_index(seeded, create=False)
    snap = index.snapshot
    index._snapshot = Snapshot(snap.generation, snap.dense, SparseIndex.build(snap.sparse.ids[:1],
                                                                              ["only one"]))
    with pytest.raises(Exception, match="inconsistent"):
        check_consistency(index)


class _SmallEmbedder(FakeEmbedder):
    dim = 32


def test_build_with_an_embedder_of_another_dimension_rebuilds(seeded: Path) -> None:
    with pytest.raises(ManifestMismatch, match="dim"):
        fake_index(seeded, embedder=_SmallEmbedder(weights="small"), create=False)
    embedder = _SmallEmbedder(weights="small")
    index = fake_index(seeded, embedder=embedder, create=False, check_config=False)
    report = index.add_documents(seed_docs(), sync=True)
    assert report.chunks_embedded == report.chunks_written == 12  # new model: all re-embedded
    index.close()
    reopened = fake_index(seeded, embedder=_SmallEmbedder(weights="small"), create=False)
    assert check_consistency(reopened)["dense"] == 12
    assert reopened.snapshot.dense.dim == 32


# ------------------------------------------------------------------- FAISS layout by size


def test_auto_layout_moves_to_ivf_as_the_corpus_grows_and_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.dense

    # A tiny threshold stands in for 20k chunks; the logic is the same at any size.
    monkeypatch.setattr(rag.dense, "FLAT_MAX_CHUNKS", 12)
    notes = Notes()
    index = fake_index(tmp_path / "index", notes=notes)
    index.add_documents([Document("a.txt", paragraphs_article(3, "river"))])
    assert index.snapshot.dense.factory == "IDMap2,Flat"
    small = index.snapshot.dense.ntotal
    assert small <= 12
    embedder = index.embedder
    assert isinstance(embedder, FakeEmbedder)
    calls = embedder.calls
    index.add_documents([Document(f"b{i}.txt", paragraphs_article(8, f"tag{i}")) for i in range(6)])
    dense = index.snapshot.dense
    assert dense.factory.startswith("IVF") and dense.ntotal > 12
    assert dense.index.is_trained
    manifest = json.loads((tmp_path / "index" / MANIFEST_FILE).read_text())
    assert manifest["faiss_factory"] == "auto" and manifest["dense_factory"] == dense.factory
    assert embedder.calls == calls + 1, "the move re-used stored vectors; only new text embedded"
    # Reopening loads the IVF files as they are: no repair, no rebuild.
    index.close()
    said = len(notes.messages)
    reopened = fake_index(tmp_path / "index", notes=notes)
    assert reopened.snapshot.dense.factory == dense.factory
    assert notes.messages[said:] == []
    hits = Retriever(reopened).search("tag3 works in district 2", 5)
    assert hits and hits[0].source == "b3.txt"
    # Shrinking back under the threshold returns to exact search.
    reopened.remove([f"b{i}.txt" for i in range(6)])
    assert reopened.snapshot.dense.factory == "IDMap2,Flat"
    assert reopened.snapshot.dense.ntotal == small
