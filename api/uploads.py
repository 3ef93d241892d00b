"""POST /documents input: a JSON article or a multipart file upload, turned into a Document."""

from __future__ import annotations

import hashlib
import re
import unicodedata

from fastapi import HTTPException, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api.errors import describe_validation_errors
from api.schemas import DocumentIn
from rag.documents import (
    Document,
    Overrides,
    document_from_text,
    parse_document,
    validate_source,
)
from rag.settings import Settings

_SLUG_MAX = 60


def derive_source(title: str | None, text: str) -> str:
    """A stable source id for an article posted without one: title slug + content hash."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    ascii_title = unicodedata.normalize("NFKD", title or "").encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:_SLUG_MAX].strip("-")
    # The hash keeps two different articles with the same headline apart.
    return f"{slug}-{digest[:10]}" if slug else f"article-{digest[:16]}"


def _too_large(size: int, settings: Settings) -> HTTPException:
    return HTTPException(
        413,
        f"the article is {size:,} bytes; the limit is {settings.max_document_bytes:,} bytes "
        "(RAG_MAX_DOCUMENT_BYTES): split it into smaller articles",
    )


async def read_upload(request: Request, settings: Settings) -> Document:
    """Parse and validate the article in the request body (raises 4xx errors)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json" or content_type.endswith("+json"):
        return await _from_json(request, settings)
    if content_type == "multipart/form-data":
        return await _from_form(request, settings)
    raise HTTPException(
        415,
        f"unsupported content type {content_type or '(none)'!r}: send JSON "
        '{"text": ..., "title"?: ..., "published"?: ..., "source"?: ...} or a multipart '
        "upload with a 'file' field",
    )


async def _from_json(request: Request, settings: Settings) -> Document:
    raw = await request.body()
    try:
        body = DocumentIn.model_validate_json(raw)
    except ValidationError as exc:
        raise HTTPException(422, describe_validation_errors(exc.errors(), prefix="body")) from None
    size = len(body.text.encode("utf-8", "surrogatepass"))
    if size > settings.max_document_bytes:
        raise _too_large(size, settings)
    source = body.source if body.source is not None else derive_source(body.title, body.text)
    return await run_in_threadpool(
        document_from_text, body.text, validate_source(source),
        title=body.title, published=body.published, url=body.url,
    )


async def _from_form(request: Request, settings: Settings) -> Document:
    # Small text fields only (source, title, published, url); the file part is spooled to
    # disk by Starlette, capped upstream.
    form = await request.form(max_files=1, max_fields=4, max_part_size=64 * 1024)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise HTTPException(
                422, "the multipart upload needs a 'file' field holding the article"
            )
        texts: dict[str, str | None] = {}
        for name in ("source", "title", "published", "url"):
            value = form.get(name)
            if value is not None and not isinstance(value, str):
                raise HTTPException(422, f"'{name}' must be a text field, not a file")
            # A form field left blank is not given (browsers send every field).
            texts[name] = value if isinstance(value, str) and value.strip() else None
        source = texts["source"] or upload.filename or ""
        validate_source(source)
        overrides = Overrides.checked(
            title=texts["title"], published=texts["published"], url=texts["url"]
        )
        if upload.size is not None and upload.size > settings.max_document_bytes:
            raise _too_large(upload.size, settings)
        raw = await upload.read(settings.max_document_bytes + 1)
        if len(raw) > settings.max_document_bytes:
            raise _too_large(len(raw), settings)
    finally:
        await form.close()
    return await run_in_threadpool(parse_document, raw, source, overrides)
