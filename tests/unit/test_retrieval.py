"""Retrieval modes and filters over a small index with deterministic fake vectors."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.documents import Document, read_document
from rag.errors import InvalidQuery
from rag.index import Index
from rag.retrieval import RRF_K, Filters, Retriever, convex, rrf
from tests.fakes import fake_index

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
S000, S003 = "000_1ab512602a64e1c4.txt", "003_fcf2125f3a29daa1.txt"
UNDATED = Document(
    source="undated.txt",
    text="Innovation news without a date. Hong Kong technology firms met in Sha Tin.",
)
LATER = Document(
    source="later.txt",
    text="A March update. The innovation center budget in Hong Kong was approved.",
    published="2026-03-10",
)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    index = fake_index(tmp_path_factory.mktemp("retrieval") / "index")
    docs = [read_document(SEEDS / S000), read_document(SEEDS / S003), UNDATED, LATER]
    index.add_documents(docs)
    return index


def search(index: Index, query: str, **kwargs: object) -> list:  # type: ignore[type-arg]
    return Retriever(index).search(query, kwargs.pop("top_k", 10), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_hits_are_verbatim_slices_in_every_mode(index: Index, mode: str) -> None:
    store = index._require_store()
    hits = search(index, "Hong Kong innovation and technology", mode=mode)
    assert hits
    for hit in hits:
        doc = store.get_document(hit.source)
        assert doc is not None and doc.text[hit.start : hit.end] == hit.text
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_mode_scores(index: Index) -> None:
    dense = search(index, "Sha Ling land tender", mode="dense")
    assert all(h.dense_score is not None and h.bm25_score is None for h in dense)
    assert all(-1.0001 <= h.score <= 1.0001 for h in dense)
    bm25 = search(index, "Sha Ling land tender", mode="bm25")
    assert bm25[0].source == S003 and "Sha Ling" in bm25[0].text
    assert all(h.bm25_score is not None and h.dense_score is None and h.score > 0 for h in bm25)
    hybrid = search(index, "Sha Ling land tender", mode="hybrid")
    assert all(0.0 <= h.score <= 1.0 for h in hybrid) and hybrid[0].source == S003
    reciprocal = Retriever(index, fusion="rrf").search("Sha Ling land tender", 10)
    for hit in reciprocal:
        expected = sum(1.0 / (RRF_K + r) for r in (hit.dense_rank, hit.bm25_rank) if r)
        assert hit.score == pytest.approx(expected)
    # BM25's first hit (the one chunk naming Sha Ling) stays near the top: under RRF only a
    # hit ranked high in both lists can pass it (here the fake, hashed-word vectors put the
    # short undated note first: its "Sha Tin" shares "Sha").
    assert bm25[0].id in {h.id for h in reciprocal[:2]}


def test_bm25_finds_nothing_for_unknown_words(index: Index) -> None:
    assert search(index, "zebra xylophone", mode="bm25") == []


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_source_filter(index: Index, mode: str) -> None:
    hits = search(index, "innovation center budget", mode=mode, filters=Filters(sources=(S003,)))
    assert hits and {h.source for h in hits} == {S003}
    both = Filters(sources=(S000, "later.txt"))
    assert {h.source for h in search(index, "innovation budget", mode=mode, filters=both)} == {
        S000, "later.txt",
    }
    assert search(index, "innovation", mode=mode, filters=Filters(sources=("nope.txt",))) == []


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_date_filters(index: Index, mode: str) -> None:
    query = "Hong Kong innovation technology budget"
    feb_late = search(index, query, mode=mode, filters=Filters(date_from="2026-02-10",
                                                              date_to="2026-02-28"))
    assert {h.source for h in feb_late} == {S000}
    early = search(index, query, mode=mode, filters=Filters(date_to="2026-02-04"))
    assert {h.source for h in early} == {S003}  # inclusive bounds; undated articles excluded
    since = search(index, query, mode=mode, filters=Filters(date_from="2026-02-27"))
    assert {h.source for h in since} == {S000, "later.txt"}
    assert search(index, query, mode=mode, filters=Filters(date_from="2027-01-01")) == []
    unfiltered = {h.source for h in search(index, query, mode=mode, top_k=50)}
    assert "undated.txt" in unfiltered


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query": "  "}, "the query is empty"),
        ({"top_k": 0}, "top_k must be between 1 and 100, got 0"),
        ({"top_k": 101}, "top_k must be between 1 and 100"),
        ({"mode": "fuzzy"}, "mode must be one of dense, bm25, hybrid"),
    ],
)
def test_bad_queries_are_refused_clearly(index: Index, kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    args = {"query": "innovation", "top_k": 5, **kwargs}
    with pytest.raises(InvalidQuery, match=message):
        Retriever(index).search(args.pop("query"), args.pop("top_k"), **args)


def test_bad_dates_are_refused_clearly() -> None:
    with pytest.raises(InvalidQuery, match="date_from '4/2/2026' is not a date: use YYYY-MM-DD"):
        Filters(date_from="4/2/2026")


def test_rrf() -> None:
    fused = rrf([[1, 2, 3], [3, 1]], k=60)
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[3] == pytest.approx(1 / 63 + 1 / 61)
    assert fused[2] == pytest.approx(1 / 62)


def test_save_then_load_gives_the_same_results(index: Index, tmp_path: Path) -> None:
    queries = ["Sha Ling land tender", "manufacturing innovation center budget"]
    before = [
        [(h.id, h.score) for h in search(index, q, mode=m)]
        for q in queries for m in ("dense", "bm25", "hybrid")
    ]
    reopened = fake_index(index.folder, create=False)
    after = [
        [(h.id, h.score) for h in search(reopened, q, mode=m)]
        for q in queries for m in ("dense", "bm25", "hybrid")
    ]
    reopened.close()
    assert after == before


def test_convex_fusion_normalises_each_list_and_weighs_them_equally() -> None:
    fused = convex([[(1, 0.9), (2, 0.5), (3, 0.1)], [(3, 12.0), (4, 2.0)]])
    assert fused == pytest.approx({1: 0.5, 2: 0.25, 3: 0.5, 4: 0.0})
    assert convex([[(7, 0.3)], []]) == {7: 0.5}  # a lone candidate is its list's best


def test_one_retrievers_first_beats_both_retrievers_mediocre() -> None:
    # RRF prefers the chunk both lists rank 10th over the one a single list ranks 1st;
    # among many related articles that loses the evidence (see rag.retrieval).
    dense = [(i, 1.0 - i / 100) for i in range(1, 21)]
    sparse = [(100, 30.0)] + [(i, 10.0 - i / 10) for i in range(2, 21)]

    def rank_of_100(fused: dict[int, float]) -> int:
        return sorted(fused, key=lambda i: (-fused[i], i)).index(100) + 1

    assert rank_of_100(rrf([[i for i, _ in dense], [i for i, _ in sparse]])) >= 20
    assert rank_of_100(convex([dense, sparse])) <= 3


def test_unknown_fusion_is_refused(index: Index) -> None:
    with pytest.raises(ValueError, match="fusion must be one of convex, rrf"):
        Retriever(index, fusion="max")  # type: ignore[arg-type]


def test_hits_know_where_their_article_body_begins(index: Index) -> None:
    """The header is chunked too; a reader that reads prose only can tell it apart."""
    doc = read_document(SEEDS / S003)
    hits = search(index, "GMT Eight Sun Dong urban areas northern region", mode="bm25")
    first = next(h for h in hits if h.source == S003 and h.start == 0)
    assert first.body_start == doc.body_start > 0 and "GMT Eight" in first.text
