"""Deterministic stand-ins for the model seams, for fast unit tests of the index."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from rag.chunking import Chunker, HFTokenCounter
from rag.embedding import DEFAULT_EMBEDDER, resolve_model_dir
from rag.index import Index

_WORD = re.compile(r"\w+")


class FakeEmbedder:
    """Hashed bag-of-words vectors: same text, same vector; it counts every call.

    `loaded` stays False until something is embedded, which stands in for "the model was
    never loaded". `embedded` lists every chunk text the index asked for, in order.
    """

    dim = 64

    def __init__(self, weights: str = "fake-weights-v1") -> None:
        self.weights = weights
        self.calls = 0
        self.loaded = False
        self.embedded: list[str] = []
        self.queries: list[str] = []

    @property
    def identity(self) -> dict[str, Any]:
        """What the manifest records."""
        return {
            "name": "fake-bag-of-words",
            "package": "tests-fake",
            "version": "1",
            "weights_sha256": self.weights,
            "dim": self.dim,
        }

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                digest = hashlib.md5(word.encode()).digest()
                out[row, digest[0] % self.dim] += 1.0 if digest[1] % 2 else -1.0
            norm = np.linalg.norm(out[row])
            if norm == 0:
                out[row, 0], norm = 1.0, 1.0
            out[row] /= norm
        return out

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for `texts` (queries, or anything not going through `embed_with_spans`)."""
        self.calls += 1
        self.loaded = True
        self.queries.extend(texts)
        return self._vectors(texts)

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Chunk vectors plus one vector per sentence span (what the index calls)."""
        self.calls += 1
        self.loaded = True
        self.embedded.extend(texts)
        sentences = [
            self._vectors([t[a:b] for a, b in sp]) for t, sp in zip(texts, spans, strict=True)
        ]
        return self._vectors(texts), sentences


@lru_cache(maxsize=1)
def tokenizer_json() -> str:
    """The packaged embedder's tokenizer.json (loading it needs no torch)."""
    model_dir, _ = resolve_model_dir(DEFAULT_EMBEDDER)
    return str(model_dir / "tokenizer.json")


@lru_cache(maxsize=1)
def real_counter() -> HFTokenCounter:
    """The embedder's own word-piece counter."""
    return HFTokenCounter(tokenizer_json())


def make_chunker(max_tokens: int = 180, overlap_tokens: int = 40) -> Chunker:
    """A chunker with the real tokenizer and the given limits."""
    return Chunker(real_counter(), max_tokens=max_tokens, overlap_tokens=overlap_tokens)


class Notes:
    """Collects index notifications (what the CLI would print on stderr)."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, message: str) -> None:
        self.messages.append(message)

    @property
    def text(self) -> str:
        """Everything said so far."""
        return "\n".join(self.messages)


def fake_index(
    folder: Path,
    *,
    embedder: FakeEmbedder | None = None,
    max_tokens: int = 180,
    overlap_tokens: int = 40,
    notes: Notes | None = None,
    create: bool = True,
    check_config: bool = True,
) -> Index:
    """An opened Index over `folder` with a fake embedder and the real tokenizer."""
    index = Index(
        folder,
        embedder or FakeEmbedder(),
        make_chunker(max_tokens, overlap_tokens),
        notify=notes if notes is not None else Notes(),
    )
    return index.open(create=create, check_config=check_config)


def paragraphs_article(n: int, tag: str = "river") -> str:
    """A made-up article of `n` paragraphs of three short sentences each."""
    paras = []
    for i in range(n):
        paras.append(
            f"Paragraph {i} tells of the {tag} works in district {i}. "
            f"Crews laid {100 + i} metres of new pipe near the {tag} bank during week {i}. "
            f"Residents of block {i} said the noise ended before nine in the evening."
        )
    return f"{tag.title()} works report\n\n" + "\n\n".join(paras) + "\n"


def fake_pg_index(
    url: str,
    *,
    embedder: FakeEmbedder | None = None,
    max_tokens: int = 180,
    overlap_tokens: int = 40,
    create: bool = True,
    check_config: bool = True,
) -> Any:
    """An opened PostgresIndex over the database at `url`, with a fake embedder."""
    from rag.backends.postgres import PostgresIndex

    index = PostgresIndex(url, embedder or FakeEmbedder(), make_chunker(max_tokens, overlap_tokens))
    return index.open(create=create, check_config=check_config)
