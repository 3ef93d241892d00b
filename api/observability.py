"""Prometheus metrics, structured access logs and response headers (one ASGI middleware)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("rag.api.access")

# The page loads nothing from elsewhere; /docs is left out because Swagger UI comes from a CDN.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_COMMON_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The app's Prometheus instruments, in a registry of its own (one per app, test-safe)."""

    def __init__(self, index_stats: Callable[[], dict[str, int] | None]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "rag_http_requests", "HTTP requests by route template, method and status",
            ["method", "route", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "rag_http_request_duration_seconds", "HTTP request latency by route template",
            ["method", "route"], buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self.answers = Counter(
            "rag_answers", "POST /ask outcomes: answered or abstained",
            ["outcome"], registry=self.registry,
        )
        self.writes = Counter(
            "rag_document_writes", "Document writes through the API by result",
            ["result"], registry=self.registry,
        )
        self.reloads = Counter(
            "rag_index_reloads", "Index generations picked up from other processes",
            registry=self.registry,
        )
        for outcome in ("answered", "abstained"):
            self.answers.labels(outcome)  # export zeros before the first question
        self.registry.register(_IndexCollector(index_stats))


class _IndexCollector(Collector):
    """Index size read at scrape time, so the gauges can never go stale."""

    def __init__(self, stats: Callable[[], dict[str, int] | None]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        """Gauges for documents, searchable chunks, generation and readiness."""
        try:
            stats = self._stats()
        except Exception:  # a scrape must never fail because the index is mid-reload
            stats = None
        ready = GaugeMetricFamily("rag_ready", "1 when the index is loaded and serving")
        ready.add_metric([], 1.0 if stats else 0.0)
        yield ready
        if not stats:
            return
        for key, help_text in (
            ("documents", "Indexed articles"),
            ("chunks", "Searchable chunks in the current generation"),
            ("generation", "Index generation being served"),
        ):
            gauge = GaugeMetricFamily(f"rag_index_{key}", help_text)
            gauge.add_metric([], float(stats[key]))
            yield gauge


_PLAIN_ROUTES = frozenset({"/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"})


def _route_template(scope: Scope) -> str:
    """The matched route's template, so metric labels stay bounded whatever paths arrive."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    # FastAPI's own doc pages and the static mount do not record a route in the scope.
    raw: str = scope.get("path", "")
    if raw in _PLAIN_ROUTES:
        return raw
    if raw.startswith("/static/"):
        return "/static"
    return "unmatched"


class ObservabilityMiddleware:
    """Counts, times and logs every request as one JSON line; adds safety headers.

    The log line carries method, path, status, duration, client and request id, and never
    any request header, so the bearer token cannot leak into logs.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = uuid.uuid4().hex[:16]
        path: str = scope.get("path", "")
        page = path == "/" or path.startswith("/static/")
        status = 500
        sent = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.extend(_COMMON_HEADERS)
                headers.append((b"x-request-id", request_id.encode()))
                if page:
                    headers.append((b"content-security-policy", PAGE_CSP.encode()))
                    headers.append((b"x-frame-options", b"DENY"))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            method = scope.get("method", "")
            route = _route_template(scope)
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(elapsed)
            client = scope.get("client")
            entry: dict[str, Any] = {
                "event": "http_request",
                "request_id": request_id,
                "method": method,
                "path": path,  # the query string is left out: it is client-controlled noise
                "route": route,
                "status": status,
                "ms": round(elapsed * 1000, 2),
                "bytes": sent,
                "client": f"{client[0]}:{client[1]}" if client else None,
            }
            access_log.info(json.dumps(entry, ensure_ascii=False))
