"""The storage contract, run on both backends: the embedded folder and PostgreSQL + pgvector.

Fake embedder (quick), real tokenizer, a real PostgreSQL server (tests/conftest.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rag.backends.base import SearchIndex
from rag.documents import Document, read_document
from rag.errors import DocumentNotFound, DuplicateDocument, IndexLocked, ManifestMismatch
from rag.retrieval import Filters, Retriever
from tests.conftest import new_database
from tests.fakes import FakeEmbedder, fake_index, fake_pg_index, paragraphs_article

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
BACKENDS = ["embedded", "postgres"]
Make = Callable[..., SearchIndex]


def seed_docs() -> list[Document]:
    return [read_document(p) for p in sorted(SEEDS.iterdir()) if p.is_file()]


@pytest.fixture(params=BACKENDS)
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Make]:
    """Opens a new handle on one index of the parametrised backend (a new one per call)."""
    handles: list[SearchIndex] = []
    if request.param == "embedded":
        folder = tmp_path / "index"
        opener: Make = lambda **kw: fake_index(folder, **kw)  # noqa: E731
    else:
        url = new_database(request.getfixturevalue("pg_server"))
        opener = lambda **kw: fake_pg_index(url, **kw)  # noqa: E731

    def opened(**kw: Any) -> SearchIndex:
        handles.append(opener(**kw))
        return handles[-1]

    yield opened
    for handle in handles:
        handle.close()


def ferry(tag: str, published: str | None = None) -> Document:
    return Document(
        source=f"{tag}.txt", published=published, title=f"Ferry {tag}",
        text=(f"Ferry {tag} sets a record\n\nThe ferry {tag} carried 4,321 passengers on its "
              f"first day. The vessel {tag} runs between Quarry Point and Lantern Bay."),
    )


# ----------------------------------------------------------------------------- writes


def test_add_list_get_remove_round_trip(make: Make) -> None:
    index = make()
    docs = seed_docs()
    report = index.add_documents(docs)
    assert sorted(report.added) == sorted(d.source for d in docs) and report.generation == 1
    listed = index.list_documents()
    assert [d.source for d in listed] == ["000_1ab512602a64e1c4.txt", "003_fcf2125f3a29daa1.txt"]
    assert sum(d.chunks for d in listed) == index.counts()[1] == index.check_consistency()["dense"]
    for doc in docs:
        stored = index.get_document(doc.source)
        assert stored is not None and stored.text == doc.text and stored.title == doc.title
    assert index.get_document("nope.txt") is None
    with pytest.raises(DocumentNotFound, match="no indexed article with source id 'nope.txt'"):
        index.remove(["nope.txt"])
    assert index.generation == 1
    assert index.remove([docs[0].source]).removed == [docs[0].source]
    assert index.counts()[0] == 1 and index.generation == 2
    index.check_consistency()


def test_unchanged_articles_embed_nothing(make: Make) -> None:
    make().add_documents(seed_docs())
    embedder = FakeEmbedder()
    report = make(embedder=embedder).add_documents(seed_docs())
    assert sorted(report.unchanged) == sorted(d.source for d in seed_docs())
    assert not report.changed and report.chunks_embedded == 0 and embedder.calls == 0


def test_editing_one_paragraph_re_embeds_only_changed_chunks(make: Make) -> None:
    embedder = FakeEmbedder()
    index = make(embedder=embedder, max_tokens=64, overlap_tokens=16)
    original = paragraphs_article(10)
    index.add_documents([Document(source="works.txt", text=original)])
    old = {c.text for c in index.chunker.chunk(Document(source="works.txt", text=original))}
    edited = Document(source="works.txt", text=original.replace("laid 105", "laid 950"))
    changed = {c.text for c in index.chunker.chunk(edited)} - old
    embedder.embedded.clear()
    report = index.add_documents([edited])
    assert report.updated == ["works.txt"] and 1 <= report.chunks_embedded == len(changed)
    assert set(embedder.embedded) == changed and report.chunks_reused > 0
    index.check_consistency()


def test_a_write_drops_exactly_the_vectors_no_chunk_uses_any_more(make: Make) -> None:
    # Cleanup checks only the vectors the write's old chunks used (not a scan of all).
    embedder = FakeEmbedder()
    index = make(embedder=embedder, max_tokens=64, overlap_tokens=16)
    base = paragraphs_article(10)
    a = Document(source="a.txt", text=base)
    b = Document(source="b.txt", text=base + "\n\nA closing paragraph on the ferry pier.")
    index.add_documents([a, b])
    own = {c.text for c in index.chunker.chunk(b)} - {c.text for c in index.chunker.chunk(a)}
    assert own
    index.remove(["b.txt"])
    embedder.embedded.clear()
    index.add_documents([b])  # its own vectors went with it; the shared ones stayed
    assert set(embedder.embedded) == own
    edited = Document(source="b.txt", text=base + "\n\nAnother closing paragraph instead.")
    index.add_documents([edited])
    embedder.embedded.clear()
    index.add_documents([b])  # replacing b dropped its old closing chunks too
    assert set(embedder.embedded) == own
    index.check_consistency()


def test_metadata_only_change_updates_without_embedding(make: Make) -> None:
    index = make()
    text = "The ferry carried 4,321 passengers. A second boat will follow next spring."
    index.add_documents([Document(source="f.txt", text=text, title="Old title")])
    report = index.add_documents([Document(source="f.txt", text=text, title="New title")])
    assert report.updated == ["f.txt"] and report.chunks_embedded == 0
    stored = index.get_document("f.txt")
    assert stored is not None and stored.title == "New title"


def test_same_text_twice_is_refused_and_nothing_changes(make: Make) -> None:
    index = make()
    index.add_documents(seed_docs())
    copy = seed_docs()[0]
    with pytest.raises(DuplicateDocument, match="same text as the indexed article"):
        index.add_documents([Document(source="copy.txt", text=copy.text)])
    with pytest.raises(DuplicateDocument, match="in this batch"):
        index.add_documents([Document(source="a.txt", text="Same."),
                             Document(source="b.txt", text="Same.")])
    assert index.generation == 1 and index.counts()[0] == 2


def test_sync_holds_exactly_the_given_articles(make: Make) -> None:
    index = make()
    index.add_documents(seed_docs())
    report = index.add_documents([ferry("tern"), seed_docs()[1]], sync=True)
    assert report.removed == ["000_1ab512602a64e1c4.txt"] and report.added == ["tern.txt"]
    assert sorted(d.source for d in index.list_documents()) == [
        "003_fcf2125f3a29daa1.txt", "tern.txt"]
    index.check_consistency()


def test_other_chunker_settings_fail_loudly_then_build_rebuilds(make: Make) -> None:
    make().add_documents(seed_docs())
    with pytest.raises(ManifestMismatch, match="chunker"):
        make(max_tokens=120, create=False)
    index = make(max_tokens=120, create=False, check_config=False)
    report = index.add_documents(seed_docs(), sync=True)
    assert sorted(report.updated) == sorted(d.source for d in seed_docs())
    counts = make(max_tokens=120, create=False).check_consistency()
    assert counts["chunks"] > 12
    assert report.chunks_embedded + report.chunks_reused == counts["chunks"]


# ----------------------------------------------------------------------------- search


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_search_finds_the_article_and_quotes_its_text(make: Make, mode: Any) -> None:
    index = make()
    index.add_documents([*seed_docs(), ferry("kittiwake")])
    hits = Retriever(index).search("ferry kittiwake passengers", 5, mode=mode)
    assert hits and hits[0].source == "kittiwake.txt"
    for hit in hits:
        doc = index.get_document(hit.source)
        assert doc is not None and doc.text[hit.start:hit.end] == hit.text
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_filters_by_source_and_date(make: Make) -> None:
    index = make()
    index.add_documents([ferry("puffin", "2026-01-05"), ferry("gannet", "2026-03-09")])
    retriever = Retriever(index)
    for mode in ("dense", "bm25", "hybrid"):
        only = retriever.search("ferry passengers", 5, mode=mode,  # type: ignore[arg-type]
                                filters=Filters(sources=("gannet.txt",)))
        assert only and {h.source for h in only} == {"gannet.txt"}
        early = retriever.search("ferry passengers", 5, mode=mode,  # type: ignore[arg-type]
                                 filters=Filters(date_to="2026-02-01"))
        assert early and {h.source for h in early} == {"puffin.txt"}
        none = retriever.search("ferry passengers", 5, mode=mode,  # type: ignore[arg-type]
                                filters=Filters(date_from="2027-01-01"))
        assert none == []


def test_idf_and_sentence_vectors(make: Make) -> None:
    index = make()
    index.add_documents([ferry("auk"), *seed_docs()])
    idf = index.idf(["auk", "ferri", "absentword"])
    assert idf["absentword"] > idf["auk"] > 0
    hit = Retriever(index).search("auk ferry", 1, mode="bm25")[0]
    vectors = index.sentence_vectors_for([hit.id])[hit.id]
    assert vectors and all(hit.start <= a < b <= hit.end for a, b, _ in vectors)


def test_both_backends_rank_alike(tmp_path: Path, pg_server: object) -> None:
    embedded, pg = fake_index(tmp_path / "index"), fake_pg_index(new_database(pg_server))
    for index in (embedded, pg):
        index.add_documents(seed_docs())
    for query in ("critical technology facility", "northern region industry chain"):
        got = [[h.id for h in Retriever(i).search(query, 5, mode="dense")] for i in (embedded, pg)]
        assert got[0] == got[1]
        # BM25 computed in SQL from the tsvector term counts = the bm25s scores.
        want, have = (Retriever(i).search(query, 8, mode="bm25") for i in (embedded, pg))
        assert [h.id for h in have] == [h.id for h in want]
        assert [h.score for h in have] == pytest.approx([h.score for h in want], rel=1e-4)
    terms = ["technolog", "region", "industri", "absentword"]
    assert embedded.idf(terms) == pytest.approx(pg.idf(terms))
    pg.close()


# ----------------------------------------------------------------------------- many writers


def test_a_write_is_seen_by_another_handle_at_once(make: Make) -> None:
    reader, writer = make(), make()
    writer.add_documents(seed_docs())
    reader.reload_if_changed()  # the embedded backend picks the new generation up here
    before = reader.generation
    writer.add_documents([ferry("shag")])
    assert reader.reload_if_changed()
    assert reader.generation == before + 1
    assert Retriever(reader).search("shag ferry", 1, mode="bm25")[0].source == "shag.txt"


def test_concurrent_writers_lose_no_acknowledged_write(make: Make) -> None:
    make().add_documents(seed_docs())
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            handle = make()
            for i in range(3):
                handle.add_documents([ferry(f"w{n}x{i}")], lock_timeout=60)
            handle.remove([f"w{n}x0.txt"], lock_timeout=60)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    index = make()
    index.reload_if_changed()
    sources = {d.source for d in index.list_documents()}
    assert sources == {d.source for d in seed_docs()} | {
        f"w{n}x{i}.txt" for n in range(4) for i in (1, 2)}
    index.check_consistency()


def test_a_held_writer_lock_is_reported(make: Make, request: pytest.FixtureRequest) -> None:
    first, second = make(), make()
    with _hold_lock(first):
        with pytest.raises(IndexLocked, match="wait for it to finish and try again"):
            second.add_documents([ferry("eider")])
        with pytest.raises(IndexLocked, match="locked by"):
            second.remove(["eider.txt"])
    assert second.add_documents([ferry("eider")]).added == ["eider.txt"]


class _hold_lock:  # noqa: N801 - used as a context manager
    """Hold the writer lock of `index` (the flock, or the advisory lock in a transaction)."""

    def __init__(self, index: Any) -> None:
        self.index = index
        self._ctx: Any = None

    def __enter__(self) -> None:
        if hasattr(self.index, "lock"):
            self.index.lock.acquire()
        else:
            self._ctx = self.index._write(0.0)
            self._ctx.__enter__()

    def __exit__(self, *exc: object) -> None:
        if self._ctx is None:
            self.index.lock.release()
        else:
            self._ctx.__exit__(None, None, None)
