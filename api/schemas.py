"""Request and response bodies of the HTTP API (the Answer JSON of DESIGN.md and friends)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rag.documents import MAX_SOURCE_LEN
from rag.retrieval import MAX_TOP_K


class AskRequest(BaseModel):
    """POST /ask body."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(
        min_length=1,
        description="The question; at most RAG_MAX_QUESTION_CHARS characters (default 1,000).",
        examples=["How much will Hong Kong spend on the manufacturing innovation center?"],
    )
    # strict: JSON `true` or `"5"` is a client mistake, not a number of passages.
    top_k: int | None = Field(
        None, ge=1, le=MAX_TOP_K, strict=True,
        description=f"Passages to return, 1..{MAX_TOP_K} (default RAG_TOP_K).",
    )
    mode: Literal["hybrid", "dense", "bm25"] = Field(
        "hybrid", description="Retrieval mode: hybrid (default), dense only or BM25 only."
    )


class CitationOut(BaseModel):
    """A quoted span: `quote == document_text[start:end]`."""

    source: str
    title: str | None
    published: str | None
    chunk_id: str
    start: int
    end: int
    quote: str


class PassageOut(BaseModel):
    """A retrieved chunk; `start`/`end` index into the document text."""

    source: str
    chunk_id: str
    start: int
    end: int
    text: str
    score: float


class AnswerSpanOut(BaseModel):
    """Where the answer sits in its article."""

    source: str
    start: int
    end: int


class AnswerOut(BaseModel):
    """The Answer JSON: `answer` is null exactly when the articles do not answer."""

    # The library may add fields; pass them through rather than silently dropping them.
    model_config = ConfigDict(extra="allow")

    question: str
    answer: str | None
    answerable: bool
    confidence: float = Field(ge=0.0, le=1.0)
    citations: list[CitationOut]
    passages: list[PassageOut]
    timings_ms: dict[str, float]
    reader: str = ""
    answer_span: AnswerSpanOut | None = None


class DocumentIn(BaseModel):
    """POST /documents JSON body: an article's text and optional metadata."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, description="The article text, stored verbatim.")
    source: str | None = Field(
        None, min_length=1, max_length=MAX_SOURCE_LEN,
        description="Source id (a plain file name); derived from the title and text if omitted.",
        examples=["my-article.txt"],
    )
    title: str | None = Field(None, max_length=1000)
    published: str | None = Field(
        None, max_length=64, examples=["2026-02-27"], json_schema_extra={"format": "date"},
        description="Publication date, YYYY-MM-DD (forms like '4 Feb 2026' are read too).",
    )
    url: str | None = Field(None, max_length=4000)


class DocumentSummary(BaseModel):
    """An indexed article without its text."""

    source: str
    title: str | None
    published: str | None
    outlet: str | None
    url: str | None
    content_hash: str
    chunks: int
    chars: int
    added_at: str


class DocumentList(BaseModel):
    """GET /documents: a page of indexed articles, newest first."""

    documents: list[DocumentSummary]
    total: int
    generation: int


class DocumentOut(BaseModel):
    """GET /documents/{source}: one article with its stored text."""

    source: str
    title: str | None
    published: str | None
    outlet: str | None
    url: str | None
    body_start: int
    chars: int
    text: str


class WriteResult(BaseModel):
    """What POST /documents did."""

    source: str
    status: Literal["added", "updated", "unchanged"]
    title: str | None
    published: str | None
    chunks_written: int
    generation: int


class Health(BaseModel):
    """GET /healthz."""

    status: Literal["ok"]


class Ready(BaseModel):
    """GET /readyz when the index is loaded."""

    status: Literal["ready"]
    generation: int
    documents: int
    chunks: int
    reader: str = Field(description="the reader answering now")
    reader_note: str | None = Field(
        None, description="why the configured reader is not the one answering (its optional "
        "model could not run here), and how to fix it")
    reader_model: str | None = Field(
        None, description="the learned reader's model file and sha256 (see its model card)")
    reranker: str | None = Field(
        None, description="the cross-encoder reranker's model file and sha256, how deep it "
        "reranks and when it runs (RAG_RERANK); null when it is off or its model is absent")


class ErrorOut(BaseModel):
    """Every error: what went wrong and how to fix it."""

    detail: str


class ErrorItem(BaseModel):
    """One failed constraint of a request."""

    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(ErrorOut):
    """422: `detail` sums up every problem; `errors` lists them (when the schema caught them)."""

    errors: list[ErrorItem] = []
