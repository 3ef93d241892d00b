"""Segmented BM25: same rankings as a one-shot bm25s build, writes that cost the change only."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np
import pytest

import rag.index
import rag.sparse
from rag.bench.standins import ParagraphChunker
from rag.bench.synth import SyntheticCorpus
from rag.documents import Document
from rag.index import MANIFEST_FILE, check_consistency
from rag.retrieval import Retriever
from rag.segments import Segment, merge_segments
from rag.sparse import MERGE_FACTOR, SparseIndex, _stemmer, stopwords, tokenize
from tests.fakes import fake_index, paragraphs_article

Result = list[tuple[object, float]]


@lru_cache(maxsize=1)
def corpus() -> tuple[np.ndarray, list[str]]:
    """About 1,600 synthetic news chunks with sparse, increasing ids (as the store gives)."""
    synth, chunker = SyntheticCorpus(0), ParagraphChunker()
    texts = [c.text for i in range(300) for c in chunker.chunk(synth.document(i))]
    texts += ["the and of", ""]  # stop words only, and nothing: rows without terms
    return np.arange(len(texts), dtype=np.int64) * 3 + 5, texts


def queries() -> list[str]:
    _, texts = corpus()
    return ["harbour ferry budget", "council tender land", "minister said project million",
            "the centre of the city", "zebra xylophone", "centre centre district"] + [
        texts[i][:80] for i in range(0, len(texts) - 2, 61)]


def one_shot(ids: np.ndarray, texts: list[str]) -> tuple[bm25s.BM25, np.ndarray]:
    """The monolithic reference: one bm25s build over exactly these chunks."""
    retriever = bm25s.BM25(method="lucene", k1=1.5, b=0.75)
    retriever.index(bm25s.tokenize(texts, stopwords=list(stopwords()), stemmer=_stemmer(),
                                   show_progress=False, allow_empty=True), show_progress=False)
    return retriever, ids


def one_shot_search(reference: tuple[bm25s.BM25, np.ndarray], query: str, k: int = 10,
                    mask: np.ndarray | None = None) -> Result:
    retriever, ids = reference
    tokens = [t for t in tokenize([query])[0] if t in retriever.vocab_dict]
    if not tokens:
        return []
    docs, scores = retriever.retrieve([tokens], k=min(k, len(ids)), show_progress=False,
                                      n_threads=0, weight_mask=mask)
    return [(int(ids[d]), float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]


def same_ranking(a: Result, b: Result, tol: float = 1e-4) -> bool:
    """Same scores rank by rank, and the same chunks above the last score (ties may swap)."""
    if len(a) != len(b) or any(abs(x[1] - y[1]) > tol for x, y in zip(a, b, strict=True)):
        return False
    cut = a[-1][1] + tol if a else 0.0
    return {i for i, s in a if s > cut} == {i for i, s in b if s > cut}


@pytest.fixture
def exact(monkeypatch: pytest.MonkeyPatch) -> None:
    """Score with the true mean chunk length at every step (no drift allowance)."""
    monkeypatch.setattr(rag.sparse, "AVGDL_TOLERANCE", 0.0)


def grown(step: int = 37, delete_every: int | None = 7) -> tuple[SparseIndex, np.ndarray]:
    """The corpus added `step` chunks at a time, then every `delete_every`-th chunk removed."""
    ids, texts = corpus()
    index = SparseIndex.build(ids[:step], texts[:step])
    for a in range(step, len(ids), step):
        index = index.with_changes([], ids[a : a + step], texts[a : a + step])
    gone = ids[::delete_every] if delete_every else np.zeros(0, dtype=np.int64)
    return index.with_changes(gone.tolist(), np.zeros(0, dtype=np.int64), []), gone


def test_segmented_index_ranks_like_a_one_shot_build(exact: None) -> None:
    ids, texts = corpus()
    index, gone = grown()
    assert len(index.segments) > MERGE_FACTOR  # many segments, some with deletions
    live = ~np.isin(ids, gone)
    reference = one_shot(ids[live], [t for t, keep in zip(texts, live, strict=True) if keep])
    assert index.ntotal == int(live.sum())
    found = 0
    for query in queries():
        expected = one_shot_search(reference, query)
        assert same_ranking(index.search(query, 10), expected), query
        found += bool(expected)
    assert found >= len(queries()) - 1  # only the nonsense query finds nothing
    assert not set(index.search("harbour ferry budget", 1000)[0]) & set(gone.tolist())


def test_filtered_search_matches_a_masked_one_shot_build(exact: None) -> None:
    ids, texts = corpus()
    index, _ = grown(delete_every=None)  # nothing deleted: positions line up with `ids`
    reference = one_shot(ids, texts)
    allowed = ids[::5]
    mask = np.isin(ids, allowed).astype(np.float32)
    for query in queries():
        got = index.search(query, 10, allowed)
        assert same_ranking(got, one_shot_search(reference, query, mask=mask)), query
        assert set(i for i, _ in got) <= set(allowed.tolist())
    assert index.search("harbour", 5, np.zeros(0, dtype=np.int64)) == []


def test_scores_with_a_drifted_mean_length_stay_close() -> None:
    """The default drift allowance moves scores by well under 1 % and keeps the top-10."""
    ids, texts = corpus()
    index, gone = grown()
    live = ~np.isin(ids, gone)
    reference = one_shot(ids[live], [t for t, keep in zip(texts, live, strict=True) if keep])
    true = index._total_length / index.ntotal
    assert abs(index.avgdl - true) <= rag.sparse.AVGDL_TOLERANCE * true
    overlap = []
    for query in queries():
        got, want = index.search(query, 10), one_shot_search(reference, query)
        assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=0.01)
        overlap.append(len({i for i, _ in got} & {i for i, _ in want}) / max(1, len(want)))
    assert np.mean(overlap) >= 0.95


def test_idf_uses_live_document_frequencies() -> None:
    ids, texts = corpus()
    index, gone = grown()
    live = ~np.isin(ids, gone)
    retriever, _ = one_shot(ids[live], [t for t, keep in zip(texts, live, strict=True) if keep])
    indptr = retriever.scores["indptr"]
    for term in ("harbor", "council", "tender", "absentword"):
        tid = retriever.vocab_dict.get(term)
        df = int(indptr[tid + 1] - indptr[tid]) if tid is not None else 0
        n = int(live.sum())
        assert index.idf([term])[term] == pytest.approx(np.log(1 + (n - df + 0.5) / (df + 0.5)))


def test_merging_drops_deleted_chunks_and_keeps_rankings(exact: None) -> None:
    index, gone = grown()
    plan = index.merge_plan()
    assert len(plan) == MERGE_FACTOR
    merged = index.replace(plan, index.merge(plan))
    assert merged is not None and len(merged.segments) == len(index.segments) - MERGE_FACTOR + 1
    assert merged.ntotal == index.ntotal and len(merged.deleted) < len(index.deleted)
    whole = merge_segments(index.segments, index.deleted)
    assert len(whole) == index.ntotal and not set(whole.ids.tolist()) & set(gone.tolist())
    assert np.all(np.diff(whole.ids) > 0)
    for query in queries():
        expected = index.search(query, 10)
        assert same_ranking(merged.search(query, 10), expected), query
        assert same_ranking(SparseIndex([whole]).search(query, 10), expected), query
    # A merge planned from an older index whose inputs have since gone is refused.
    assert merged.replace(plan, index.merge(plan)) is None


def test_merge_of_interleaved_id_ranges_keeps_ids_sorted(exact: None) -> None:
    ids, texts = corpus()
    odd = SparseIndex.build(ids[1::2], texts[1::2]).segments[0]
    even = SparseIndex.build(ids[::2], texts[::2]).segments[0]
    whole = SparseIndex([merge_segments([odd, even], np.zeros(0, dtype=np.int64))])
    assert np.array_equal(whole.segments[0].ids, ids)
    reference = one_shot(ids, texts)
    for query in queries():
        assert same_ranking(whole.search(query, 10), one_shot_search(reference, query)), query


def test_a_deleted_heavy_segment_is_planned_for_rewriting() -> None:
    ids, texts = corpus()
    index = SparseIndex.build(ids, texts).with_changes(ids[: len(ids) // 3].tolist(),
                                                       np.zeros(0, dtype=np.int64), [])
    assert index.merge_plan() == list(index.segments)


def test_segment_files_round_trip(tmp_path: Path) -> None:
    index, _ = grown()
    entry = index.save(tmp_path, 4)
    assert entry["deleted"] and len(entry["segments"]) == len(index.segments)
    loaded = SparseIndex.load(tmp_path, json.loads(json.dumps(entry)))
    assert loaded.ntotal == index.ntotal and np.array_equal(loaded.ids, index.ids)
    for query in queries():
        assert loaded.search(query, 10) == index.search(query, 10)
    seg = index.segments[0]
    again = Segment.load(tmp_path, seg.name)
    assert again.terms == seg.terms and np.array_equal(again.docs, seg.docs)
    with pytest.raises(ValueError, match="chunks"):
        SparseIndex.load(tmp_path, {**entry, "chunks": 3})


# ----------------------------------------------------------------------------- in the Index


def _article(i: int) -> Document:
    return Document(source=f"n{i:03d}.txt", text=paragraphs_article(2 + i % 3, f"tag{i}"))


def _referenced(folder: Path) -> set[str]:
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    return SparseIndex.files(manifest["files"]["sparse"])


def test_an_add_writes_one_new_segment_and_rewrites_none(tmp_path: Path) -> None:
    index = fake_index(tmp_path / "index")
    index.add_documents([_article(i) for i in range(20)])
    before = {p.name: p.stat().st_ino for p in (tmp_path / "index").glob("bm25-seg-*")}
    index.add_documents([_article(20)])
    after = {p.name: p.stat().st_ino for p in (tmp_path / "index").glob("bm25-seg-*")}
    assert set(after) - set(before) and len(set(after) - set(before)) == 1
    assert all(after[name] == ino for name, ino in before.items())  # untouched, not rewritten
    index.remove(["n003.txt"])
    assert {p.name for p in (tmp_path / "index").glob("bm25-seg-*")} == set(after)
    assert any(p.name.startswith("bm25-del-") for p in (tmp_path / "index").iterdir())
    check_consistency(index)
    index.close()


def test_many_adds_stay_few_segments_and_match_a_fresh_build(tmp_path: Path, exact: None) -> None:
    folder = tmp_path / "index"
    index = fake_index(folder)
    for i in range(40):
        index.add_documents([_article(i)])
        if i % 9 == 4:
            index.remove([f"n{i - 2:03d}.txt"])
        if i % 11 == 6:  # an update: old chunks tombstoned, new ones in a new segment
            index.add_documents([Document(source=f"n{i - 1:03d}.txt",
                                          text=paragraphs_article(4, f"new{i}"))])
    assert len(index.snapshot.sparse.segments) < 2 * MERGE_FACTOR
    # Files no manifest names are gone (the previous manifest's may stay for its readers).
    on_disk = {p.name for p in folder.iterdir() if p.name.startswith("bm25-")}
    assert _referenced(folder) <= on_disk
    assert len(on_disk) <= len(_referenced(folder)) + MERGE_FACTOR + 2
    docs = [Document(source=i.source, text=index._require_store().get_document(i.source).text)  # type: ignore[union-attr]
            for i in index._require_store().list_documents()]
    fresh = fake_index(tmp_path / "fresh")
    fresh.add_documents(docs)
    def ranked(where: rag.index.Index, query: str) -> Result:
        hits = Retriever(where).search(query, 5, mode="bm25")
        return [((h.source, h.start), h.score) for h in hits]

    for query in ("tag7 works pipe", "new17 works", "residents block noise", "tag33"):
        got = ranked(index, query)
        assert got and same_ranking(got, ranked(fresh, query)), query
    index.close()
    reopened = fake_index(folder, create=False)
    assert check_consistency(reopened)["sparse"] == fresh.snapshot.sparse.ntotal
    reopened.close()


def test_large_merges_run_in_the_background(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rag.index, "INLINE_MERGE_CHUNKS", 0)
    folder = tmp_path / "index"
    index = fake_index(folder)
    for i in range(MERGE_FACTOR):
        index.add_documents([_article(i)])
    merger = index._merger
    assert merger is not None
    merger.join(timeout=30)
    assert len(index.snapshot.sparse.segments) == 1
    assert len(_referenced(folder)) == 1
    generation = json.loads((folder / MANIFEST_FILE).read_text())["generation"]
    assert generation == index._require_store().generation  # a merge adds no generation
    hits = Retriever(index).search("tag3 works", 3, mode="bm25")
    assert hits and hits[0].source == "n003.txt"
    index.close()
    reopened = fake_index(folder, create=False)
    check_consistency(reopened)
    assert len(reopened.snapshot.sparse.segments) == 1
    reopened.close()


def test_kth_largest_equals_a_full_sort_with_ties_and_without() -> None:
    """The sampled k-th largest is exactly the sorted one, whatever the ties."""
    from rag.sparse import SAMPLE_STRIDE, kth_largest

    rng = np.random.default_rng(3)
    for trial in range(200):
        n = int(rng.integers(2, 40 * SAMPLE_STRIDE))
        k = int(rng.integers(1, min(n, 120)))
        if trial % 3 == 0:  # a handful of distinct scores, as BM25 gives
            values = rng.choice(rng.random(4), size=n)
        elif trial % 3 == 1:  # mostly zeros with a few hits
            values = np.where(rng.random(n) < 0.02, rng.random(n), 0.0)
        else:
            values = rng.random(n)
        if n <= k:
            continue
        assert kth_largest(values, k) == np.sort(values)[n - k], (n, k, trial)
