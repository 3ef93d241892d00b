"""Routes: each parses input, makes one library call, and returns its result."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from api.schemas import (
    AnswerOut,
    AskRequest,
    DocumentIn,
    DocumentList,
    DocumentOut,
    ErrorOut,
    Health,
    Ready,
    ValidationErrorOut,
    WriteResult,
)
from api.security import require_writer
from api.service import Service, get_service, ready_qa
from api.uploads import read_upload
from rag.answer import GroundingError
from rag.documents import validate_source
from rag.errors import DocumentNotFound
from rag.settings import Settings, get_settings

log = logging.getLogger("rag.api")
STATIC_DIR = Path(__file__).parent / "static"
# How long a write waits for another process (e.g. `rag add`) to release the index lock.
LOCK_TIMEOUT_S = 30.0
ASK_ATTEMPTS = 3

QA = Annotated[Any, Depends(ready_qa)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ServiceDep = Annotated[Service, Depends(get_service)]


_ERROR_TEXT = {
    400: "Malformed request body (not UTF-8, broken multipart)",
    401: "Missing or wrong bearer token",
    403: "Writes are disabled: no RAG_API_TOKEN configured",
    404: "No such article",
    409: "The same text is already indexed under another source id",
    413: "Request body or article too large",
    415: "Unsupported content type",
    422: "Invalid input",
    503: "Index not loaded yet, or locked by another writer for too long",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer (FastAPI's 422 replaced)."""
    return {
        code: {"model": ValidationErrorOut if code == 422 else ErrorOut,
               "description": _ERROR_TEXT[code]}
        for code in codes
    }


router = APIRouter()


# ---------------------------------------------------------------------------- page + probes


@router.get("/", include_in_schema=False)
def page() -> FileResponse:
    """The web page: ask a question, read the answer and its highlighted sources."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


@router.get("/healthz", response_model=Health, tags=["ops"])
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Ready, responses=_errors(503), tags=["ops"])
def readyz(service: ServiceDep) -> dict[str, Any]:
    """Readiness: the models and the index are loaded (503 with the reason otherwise)."""
    stats = service.stats()
    if stats is None:
        raise HTTPException(503, f"not ready: {service.error}", headers={"Retry-After": "5"})
    return {"status": "ready", **stats}


@router.get("/metrics", response_class=PlainTextResponse, tags=["ops"])
def metrics(service: ServiceDep) -> Response:
    """Prometheus text: request counts and latencies, index size, answers vs. abstentions."""
    assert service.metrics is not None
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)


# ---------------------------------------------------------------------------- ask


@router.post(
    "/ask", response_model=AnswerOut, responses=_errors(400, 413, 422, 503), tags=["ask"]
)
def ask(body: AskRequest, qa: QA, settings: SettingsDep, service: ServiceDep) -> dict[str, Any]:
    """Answer a question from the indexed articles, with citations, or abstain."""
    if len(body.question) > settings.max_question_chars:
        raise HTTPException(
            422,
            f"the question is {len(body.question):,} characters long; the limit is "
            f"{settings.max_question_chars:,}: shorten it",
        )
    answer = _ask_consistently(qa, body)
    if service.metrics is not None:
        service.metrics.answers.labels("answered" if answer.answerable else "abstained").inc()
    data: dict[str, Any] = answer.to_dict()
    return data


def _ask_consistently(qa: Any, body: AskRequest) -> Any:
    """`qa.ask`, asked again if an article was deleted between retrieving and citing it."""
    for attempt in range(ASK_ATTEMPTS):
        try:
            return qa.ask(body.question, body.top_k, mode=body.mode)
        except GroundingError as exc:
            # A concurrent DELETE can remove a retrieved article before its quote is read;
            # the next attempt searches the newer generation, which no longer holds it.
            if attempt + 1 == ASK_ATTEMPTS:
                raise
            log.warning("answer lost its source mid-request (%s); asking again", exc)
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------- documents


@router.get(
    "/documents", response_model=DocumentList, responses=_errors(422, 503), tags=["documents"]
)
def list_documents(
    qa: QA,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Indexed articles (newest first), without their text."""
    infos = qa.index.list_documents()
    return {
        "documents": [dataclasses.asdict(i) for i in infos[offset : offset + limit]],
        "total": len(infos),
        "generation": qa.index.generation,
    }


@router.get(
    "/documents/{source}", response_model=DocumentOut, responses=_errors(404, 422, 503),
    tags=["documents"],
)
def get_document(source: str, qa: QA) -> dict[str, Any]:
    """One indexed article with its stored text (citation offsets index into it)."""
    validate_source(source)
    doc = qa.index.get_document(source)
    if doc is None:
        raise DocumentNotFound(f"no indexed article with source id {source!r}; see GET /documents")
    return {
        "source": doc.source, "title": doc.title, "published": doc.published,
        "outlet": doc.outlet, "url": doc.url, "body_start": doc.body_start,
        "chars": len(doc.text), "text": doc.text,
    }


_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            # Inlined: a model used only here would be missing from components/schemas.
            "application/json": {
                "schema": DocumentIn.model_json_schema(ref_template="#/components/schemas/{model}")
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "additionalProperties": False,
                    "properties": {
                        "file": {"type": "string", "format": "binary",
                                 "description": "a .txt, .md, .html or .json article"},
                        "source": {"type": "string",
                                   "description": "source id (default: the file's name)"},
                        "title": {"type": "string", "maxLength": 1000,
                                  "description": "title, instead of the article's header's"},
                        "published": {"type": "string", "maxLength": 64,
                                      "examples": ["2026-02-27"],
                                      "description": "publication date YYYY-MM-DD, instead "
                                      "of the article's header's"},
                        "url": {"type": "string", "maxLength": 4000,
                                "description": "web address, instead of the article's "
                                "header's"},
                    },
                }
            },
        },
    }
}


@router.post(
    "/documents",
    status_code=201,
    response_model=WriteResult,
    responses={
        200: {"model": WriteResult, "description": "Already indexed with the same text"},
        **_errors(400, 401, 403, 409, 413, 415, 422, 503),
    },
    openapi_extra=_UPLOAD_BODY,
    tags=["documents"],
    dependencies=[Depends(require_writer)],
)
async def add_document(
    request: Request, response: Response, qa: QA, settings: SettingsDep, service: ServiceDep
) -> dict[str, Any]:
    """Add or update an article (JSON or a file upload): 201 when changed, 200 when unchanged."""
    doc = await read_upload(request, settings)
    report = await run_in_threadpool(
        qa.index.add_documents, [doc], lock_timeout=LOCK_TIMEOUT_S
    )
    status = "added" if report.added else "updated" if report.updated else "unchanged"
    if status == "unchanged":
        response.status_code = 200
    if service.metrics is not None:
        service.metrics.writes.labels(status).inc()
    return {
        "source": doc.source, "status": status, "title": doc.title,
        "published": doc.published, "chunks_written": report.chunks_written,
        "generation": report.generation,
    }


@router.delete(
    "/documents/{source}",
    status_code=204,
    response_class=Response,
    responses=_errors(401, 403, 404, 422, 503),
    tags=["documents"],
    dependencies=[Depends(require_writer)],
)
def delete_document(source: str, qa: QA, service: ServiceDep) -> Response:
    """Remove an article from the index."""
    validate_source(source)
    qa.index.remove([source], lock_timeout=LOCK_TIMEOUT_S)
    if service.metrics is not None:
        service.metrics.writes.labels("removed").inc()
    return Response(status_code=204)
