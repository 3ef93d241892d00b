"""Wiring: settings → embedder, chunker, index, retriever (and later the reader)."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from threading import Lock

import numpy as np

from rag.answer import Answer, Reader, Reading, check_invariants
from rag.backends.base import SearchIndex
from rag.chunking import Chunker, HFTokenCounter
from rag.decision import Calibration, decide, validate_question
from rag.embedding import (
    Embedder,
    OnnxEmbedder,
    SentenceTransformerEmbedder,
    make_embedder,
    resolve_embedder,
)
from rag.errors import RagError
from rag.index import Index, Notify, _stderr
from rag.reading.llm_process import GeneratorUnavailable
from rag.rerank import CrossEncoderReranker, make_reranker
from rag.retrieval import Filters, Hit, Mode, Retriever, validate_top_k
from rag.settings import Settings

READ_DEPTH = 5  # passages the reader sees, whatever top_k the caller shows
READERS = ("extractive", "rules", "generative", "hybrid")


@dataclass(frozen=True)
class Trace:
    """An answer with the hits and readings behind it."""

    answer: Answer
    hits: list[Hit]
    readings: list[Reading]

    @property
    def features(self) -> dict[str, float]:
        """Calibration features of the reading the answer was chosen from."""
        return self.readings[0].features if self.readings else {}


class QueryEncoder:
    """Embeds questions, remembering recent ones (retriever and reader share one call)."""

    def __init__(self, embedder: Embedder, size: int = 256) -> None:
        self.embedder = embedder
        self.size = size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = Lock()

    def __call__(self, text: str) -> np.ndarray:
        """The normalised vector of `text`."""
        with self._lock:
            if text in self._cache:
                self._cache.move_to_end(text)
                return self._cache[text]
        vector = self.embedder.embed([text])[0]
        with self._lock:
            self._cache[text] = vector
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return vector


def make_index(settings: Settings, *, index_dir: Path | None = None,
               database_url: str | None = None, notify: Notify = _stderr) -> SearchIndex:
    """An (unopened) index handle configured from settings; no model is loaded yet.

    PostgreSQL when `database_url` (or settings.database_url) is given and `index_dir` is
    not; otherwise the embedded folder. Under RAG_EMBEDDER=auto an existing index keeps
    the embedder it was built with; a new one gets the faster backend on this machine.
    """
    folder = index_dir or settings.index_dir
    url = database_url or (
        settings.database_url.get_secret_value()
        if settings.database_url is not None and index_dir is None else None
    )
    if url:
        check_database_url(url)
        from rag.backends.postgres import recorded_embedder

        spec, choice = resolve_embedder(settings.embedder, None, notify=notify,
                                        recorded=lambda: recorded_embedder(url))
    else:
        spec, choice = resolve_embedder(settings.embedder, folder, notify=notify)
    embedder = make_embedder(spec, batch_size=settings.embed_batch_size)
    assert isinstance(embedder, SentenceTransformerEmbedder | OnnxEmbedder)
    chunker = Chunker(
        HFTokenCounter(str(embedder.tokenizer_json)),
        max_tokens=settings.chunk_max_tokens,
        overlap_tokens=settings.chunk_overlap_tokens,
    )
    if url:
        from rag.backends.postgres import PostgresIndex

        return PostgresIndex(url, embedder, chunker, notify=notify,
                             keyword_ranking=settings.pg_keyword_ranking)
    index = Index(
        folder, embedder, chunker,
        factory=settings.faiss_factory, notify=notify,
    )
    index.embedder_choice = choice
    return index


def check_database_url(url: str) -> str:
    """A postgresql:// URL, or RagError saying what a valid one looks like."""
    if not url.startswith(("postgresql://", "postgres://")):
        raise RagError(
            f"the database URL must start with postgresql:// (e.g. "
            f"postgresql://rag:secret@db.example:5432/rag), got {url.split(':', 1)[0]!r}…"
        )
    return url


class QA:
    """Question answering over an open index: retrieve, read, decide, cite."""

    def __init__(
        self,
        index: SearchIndex,
        reader: Reader,
        *,
        calibration: Calibration | None = None,
        max_question_chars: int = 1000,
        default_top_k: int = 5,
        notify: Notify = _stderr,
        reranker: CrossEncoderReranker | None = None,
    ) -> None:
        self.index = index
        self.reranker = reranker
        self.retriever = Retriever(index)
        self.encode = QueryEncoder(index.embedder)
        self.retriever.embed_query = self.encode  # type: ignore[method-assign,assignment]
        self.reader = reader
        self.calibration = calibration or Calibration.load()
        self.max_question_chars = max_question_chars
        self.default_top_k = default_top_k
        self.notify = notify
        # What to read with if the reader's optional model dies, and why it did.
        self.fallback: tuple[Reader, Calibration] | None = None
        self.fallback_reason: str | None = None

    def clear_caches(self) -> None:
        """Forget cached question vectors and sentence analyses (for honest latency runs)."""
        from rag.reading.question import analyse
        from rag.reading.rules import clear_cache as clear_reader_cache
        from rag.reading.spans import clear_cache

        with self.encode._lock:
            self.encode._cache.clear()
        analyse.cache_clear()
        clear_cache()
        clear_reader_cache()

    def use_fallback(self, reason: str) -> None:
        """Answer with the fallback reader from now on (the optional model is gone)."""
        if self.fallback is not None:
            self.notify(f"{reason}; answering with the {self.fallback[0].name} reader")
            self.reader, self.calibration = self.fallback
            self.fallback, self.fallback_reason = None, reason

    def document_text(self, source: str) -> str | None:
        """The stored text of an article (for quotes and invariant checks)."""
        doc = self.index.get_document(source)
        return doc.text if doc else None

    def ask(
        self,
        question: str,
        top_k: int | None = None,
        *,
        mode: Mode = "hybrid",
        filters: Filters | None = None,
    ) -> Answer:
        """Answer with citations, or abstain (answer None) when the articles don't say."""
        return self.trace(question, top_k, mode=mode, filters=filters).answer

    def trace(
        self,
        question: str,
        top_k: int | None = None,
        *,
        mode: Mode = "hybrid",
        filters: Filters | None = None,
        calibration: Calibration | None = None,
    ) -> Trace:
        """`ask`, keeping what evaluation and calibration need (hits, readings, features)."""
        started = time.perf_counter()
        question = validate_question(question, self.max_question_chars)
        top_k = validate_top_k(self.default_top_k if top_k is None else top_k)
        vector = self.encode(question) if mode != "bm25" else None
        depth = max(top_k, READ_DEPTH, self.reranker.depth if self.reranker else 0)
        hits = self.retriever.search(
            question, depth, mode=mode, filters=filters, query_vector=vector
        )
        reranker = self.reranker
        before_s = second_s = 0.0  # cross-encoder time before reading / in the second look
        if reranker is not None and reranker.always:
            hits, before_s = self._rerank(question, hits)
        retrieved = time.perf_counter()
        readings, answer = self._read_and_decide(question, hits, top_k, calibration)
        if reranker is not None and not reranker.always and answer.answer is None:
            # A second look before saying "I don't know": rerank, and read again only if
            # that changed which passages the reader sees (rag.rerank).
            reranked, second_s = self._rerank(question, hits)
            if [h.id for h in reranked[:READ_DEPTH]] != [h.id for h in hits[:READ_DEPTH]]:
                readings, answer = self._read_and_decide(question, reranked, top_k, calibration)
            hits = reranked
        total = time.perf_counter()
        answer = replace(
            answer,
            timings_ms={
                "retrieve": round((retrieved - started - before_s) * 1000, 2),
                "rerank": round((before_s + second_s) * 1000, 2),
                "read": round((total - retrieved - second_s) * 1000, 2),
                "total": round((total - started) * 1000, 2),
            },
        )
        check_invariants(answer, self.document_text)
        return Trace(answer, hits[:top_k], readings)

    def _rerank(self, question: str, hits: list[Hit]) -> tuple[list[Hit], float]:
        """The hits in cross-encoder order, and the seconds that took."""
        assert self.reranker is not None
        started = time.perf_counter()
        reranked = self.reranker.rerank(question, hits)
        return reranked, time.perf_counter() - started

    def _read_and_decide(self, question: str, hits: list[Hit], top_k: int,
                         calibration: Calibration | None) -> tuple[list[Reading], Answer]:
        """Read the top READ_DEPTH hits (falling back if the reader dies) and decide."""
        try:
            readings = self.reader.read(question, hits[:READ_DEPTH])
        except GeneratorUnavailable as exc:
            if self.fallback is None:
                raise
            self.use_fallback(str(exc))
            readings = self.reader.read(question, hits[:READ_DEPTH])
        # self.calibration is read only now: a fallback during the read replaces it.
        answer = decide(question, hits[:top_k], readings, calibration or self.calibration,
                        self.document_text, reader=self.reader.name)
        return readings, answer


def make_reader(name: str, index: SearchIndex, encode: QueryEncoder, settings: Settings) -> Reader:
    """The reader named in settings: extractive (the learned span reader), rules (the
    hand-written one, for comparison), generative or hybrid (GeneratorUnavailable when the
    generative model cannot run on this machine)."""
    from rag.reading.rules import ExtractiveReader

    if name == "extractive":
        from rag.reading.model import MODEL_DIR, SpanModel
        from rag.reading.reader import LearnedReader

        model = SpanModel(settings.reader_model or MODEL_DIR)
        return LearnedReader(index, encode, model,
                             Calibration.load(settings.calibration_file, "extractive"))
    rules = ExtractiveReader(index, encode)
    if name == "rules":
        return rules
    if name in ("generative", "hybrid"):
        from rag.reading.generative import (
            GenerativeReader,
            HybridReader,
            LikelihoodScorer,
            resolve_gguf,
        )

        if name == "generative":
            return GenerativeReader.from_spec(settings.generator_model, rules)
        scorer = LikelihoodScorer(resolve_gguf(settings.generator_model))
        scorer.load()
        return HybridReader(rules, scorer)
    raise RagError(f"unknown reader {name!r}: choose one of {', '.join(READERS)}")


def make_qa(settings: Settings, *, reader: str | None = None, index: SearchIndex | None = None,
            notify: Notify = _stderr) -> QA:
    """Open the index, load the models once, and return a ready QA service."""
    index = index or make_index(settings, notify=notify).open()
    name = reader or settings.reader
    qa = QA(
        index,
        reader=_PendingReader(),
        calibration=Calibration.load(settings.calibration_file, name),
        max_question_chars=settings.max_question_chars,
        default_top_k=settings.top_k,
        notify=notify,
        reranker=make_reranker(settings.rerank, settings.rerank_depth, notify=notify),
    )
    if name in ("generative", "hybrid"):
        # The optional model must never stop the service: if it cannot start, or dies
        # later, the (learned) extractive reader answers and the reason is kept for /readyz.
        qa.fallback = (make_reader("extractive", index, qa.encode, settings),
                       Calibration.load(settings.calibration_file, "extractive"))
    try:
        qa.reader = make_reader(name, index, qa.encode, settings)
    except GeneratorUnavailable as exc:
        qa.use_fallback(f"the {name} reader is unavailable: {exc}")
    # Warm up: load the embedder, NER and reader now, not on the first user's question.
    qa.trace("What is this article about?")
    qa.clear_caches()
    return qa


class _PendingReader:
    name = "pending"

    def read(self, question: str, hits: object) -> list[Reading]:
        """Never called: replaced in make_qa before use."""
        return []
