"""Domain exceptions → HTTP statuses, every error as `{"detail": "what went wrong and fix"}`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from rag.errors import (
    DocumentNotFound,
    DuplicateDocument,
    IndexCorrupt,
    IndexLocked,
    IndexNotFound,
    InvalidDocument,
    InvalidQuery,
    ManifestMismatch,
    RagError,
)

log = logging.getLogger("rag.api")

# Most specific first: the first isinstance match decides the status.
STATUS_OF: tuple[tuple[type[RagError], int], ...] = (
    (InvalidDocument, 422),
    (InvalidQuery, 422),
    (DuplicateDocument, 409),
    (DocumentNotFound, 404),
    (IndexLocked, 503),
    (IndexNotFound, 503),
    (ManifestMismatch, 503),
    (IndexCorrupt, 503),
)


def status_for(exc: RagError) -> int:
    """The HTTP status for a domain error (400 for one not listed)."""
    return next((status for kind, status in STATUS_OF if isinstance(exc, kind)), 400)


def describe_validation_errors(errors: Sequence[Any], prefix: str | None = None) -> str:
    """One readable sentence from pydantic errors: 'body.top_k: Input should be ≤ 100; ...'."""
    parts = []
    for error in errors:
        loc = [str(p) for p in error.get("loc", ())]
        if prefix and (not loc or loc[0] != prefix):
            loc.insert(0, prefix)
        where = ".".join(loc) or "request"
        message = str(error.get("msg", "is invalid"))
        if error.get("type") == "extra_forbidden":
            message = "unknown field; remove it (check the spelling)"
        parts.append(f"{where}: {message}")
    return "; ".join(parts) or "the request is invalid"


def _plain_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    # Only loc/msg/type: `input` may echo a megabyte of article text back to the client.
    return [
        {"loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
         "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in errors
    ]


async def _rag_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RagError)
    status = status_for(exc)
    headers = {"Retry-After": "5"} if status == 503 else None
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    return JSONResponse(
        {"detail": describe_validation_errors(errors), "errors": _plain_errors(errors)},
        status_code=422,
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        {"detail": "internal error (logged on the server with its request id); please report it"},
        status_code=500,
    )


def install(app: FastAPI) -> None:
    """Register the exception handlers on the app."""
    app.add_exception_handler(RagError, _rag_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
