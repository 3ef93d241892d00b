"""The shipped span model: int8 ONNX + tokenizer inside the package, run by onnxruntime.

`rag train-reader` writes the files in `rag/reading/model/` (see its MODEL_CARD.md);
`SpanModel` loads them once per process and scores batches of `Window`s. The model's
identity (file sha256) goes into every index manifest and answer trace so a score can
always be tied to the weights that produced it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from rag.embedding import file_sha256 as sha256
from rag.embedding import ort_session
from rag.errors import RagError
from rag.reading.decode import Span, best_spans, snap
from rag.reading.windows import Window, Windower, batch

MODEL_DIR = Path(__file__).with_name("model")
MODEL_FILE = "span_reader.int8.onnx"


class ReaderModelMissing(RagError):
    """The span model's files are not where the settings say."""


@dataclass(frozen=True)
class Scored:
    """One window and the spans the model found in it."""

    window: Window
    spans: list[Span]
    null: float  # the window's no-answer score


class SpanModel:
    """Loads the ONNX span model lazily and returns ranked spans per window."""

    def __init__(self, folder: Path = MODEL_DIR, threads: int | None = None) -> None:
        self.folder = folder
        self.threads = threads or min(os.cpu_count() or 1, 4)
        for name in (MODEL_FILE, "tokenizer.json"):
            if not (folder / name).is_file():
                raise ReaderModelMissing(
                    f"the span reader model {folder / name} is missing: reinstall rag, or "
                    "train one with 'rag train-reader --data DIR --out DIR' and point "
                    "RAG_READER_MODEL at DIR"
                )
        self.windower = Windower(folder / "tokenizer.json")

    @cached_property
    def session(self) -> Any:
        """The onnxruntime session (created on first use)."""
        return ort_session(self.folder / MODEL_FILE, self.threads)

    @cached_property
    def sha256(self) -> str:
        """Hash of the model file (for manifests and model cards)."""
        return sha256(self.folder / MODEL_FILE)

    def logits(self, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Start and end logits of a padded batch."""
        start, end = self.session.run(None, inputs)
        return start, end

    def score(self, question: str, texts: list[str], k: int = 3) -> list[list[Scored]]:
        """For each text, its windows with their `k` best spans (offsets into the text)."""
        q = self.windower.question_ids(question)
        per_text = [self.windower.windows(q, t) for t in texts]
        flat = [w for ws in per_text for w in ws]
        if not flat:
            return [[] for _ in texts]
        start, end = self.logits(batch(flat))
        out: list[list[Scored]] = []
        i = 0
        for text, ws in zip(texts, per_text, strict=True):
            row = []
            for w in ws:
                spans = [replace(s, start=a, end=b) for s in best_spans(w, start[i], end[i], k)
                         for a, b in [snap(text, s.start, s.end)]]
                row.append(Scored(w, spans, float(start[i][0] + end[i][0])))
                i += 1
            out.append(row)
        return out
