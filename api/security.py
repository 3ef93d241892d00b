"""Write access (bearer token, compared in constant time) and request body size limits."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.settings import Settings, get_settings

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="RAG_API_TOKEN",
    description="Write endpoints need `Authorization: Bearer <RAG_API_TOKEN>`.",
)

WRITES_DISABLED = (
    "writes are disabled on this server: restart it with the environment variable "
    "RAG_API_TOKEN=<a long random secret> and send 'Authorization: Bearer <that secret>'"
)


def require_writer(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    settings: Annotated[Settings, Depends(get_settings)],
) -> None:
    """Allow the request only with the configured bearer token (403 when none is configured)."""
    expected = settings.api_token.get_secret_value() if settings.api_token else ""
    if not expected:
        raise HTTPException(403, WRITES_DISABLED)
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise HTTPException(
            401, "this endpoint changes the index: send 'Authorization: Bearer <RAG_API_TOKEN>'",
            headers=challenge,
        )
    # compare_digest on bytes: constant time whatever the token holds (str needs ASCII).
    if not hmac.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise HTTPException(
            401, "the bearer token is not this server's RAG_API_TOKEN", headers=challenge
        )


def body_limits(settings: Settings) -> Callable[[Scope], int]:
    """The largest request body accepted per request, from the settings."""
    # JSON may escape one byte of text as six (\u00XX); a multipart upload adds a few headers.
    documents = settings.max_document_bytes * 6 + 64 * 1024
    other = max(64 * 1024, settings.max_question_chars * 12 + 4096)

    def limit(scope: Scope) -> int:
        is_upload = scope.get("method") == "POST" and scope.get("path") == "/documents"
        return documents if is_upload else other

    return limit


class BodyLimitMiddleware:
    """Answer 413 for request bodies over the limit, before or while they are read."""

    def __init__(self, app: ASGIApp, limit: Callable[[Scope], int]) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope)
        too_large = f"the request body is larger than this endpoint's {limit:,}-byte limit"
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > limit:
                    await _send_json(send, 413, too_large)
                    return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the route, so FastAPI turns it into a normal 413 response.
                    raise HTTPException(413, too_large)
            return message

        await self.app(scope, limited_receive, send)


async def _send_json(send: Send, status: int, detail: str) -> None:
    import json

    body = json.dumps({"detail": detail}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close")],
    })
    await send({"type": "http.response.body", "body": body})
