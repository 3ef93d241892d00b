"""The app's long-lived state: the QA pipeline (loaded once) and the index watcher."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from rag.errors import RagError
from rag.settings import Settings

if TYPE_CHECKING:
    from api.observability import Metrics

log = logging.getLogger("rag.api")

# After a failed load (no index yet, a mismatch), retry with backoff: loading costs model time.
_RETRY_MIN_S, _RETRY_MAX_S = 2.0, 60.0


class Service:
    """Holds the QA pipeline once loaded; `None` until then, with the reason in `error`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.qa: Any = None  # rag.pipeline.QA; typed loosely so importing the app stays cheap
        self.error: str | None = "loading the models and the index"
        self.metrics: Metrics | None = None
        self._next_try = 0.0
        self._backoff = _RETRY_MIN_S

    def load(self) -> bool:
        """Load the models and open the index (blocking); False with `error` set on failure."""
        from rag.pipeline import make_qa  # heavy: only here, never at import

        started = time.perf_counter()
        try:
            qa = make_qa(self.settings)
        except RagError as exc:
            self.error = str(exc)
            self._next_try = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, _RETRY_MAX_S)
            log.error("index not loaded: %s (retrying in the background)", exc)
            return False
        self._warm_up(qa)
        self.qa, self.error = qa, None
        log.info(
            "loaded index %s (generation %d) in %.1f s", qa.index.location,
            qa.index.generation, time.perf_counter() - started,
        )
        return True

    @staticmethod
    def _warm_up(qa: Any) -> None:
        """Ask one question before serving: the reader's first call pays one-off set-up costs."""
        try:
            qa.ask("What is this article about?")
        except RagError as exc:  # an empty index, say: the service still starts
            log.info("warm-up question skipped: %s", exc)

    def poll(self) -> None:
        """One watcher step: retry a failed load when due, else pick up other writers' changes."""
        if self.qa is None:
            if time.monotonic() >= self._next_try:
                self.load()
            return
        before = self.qa.index.generation
        if self.qa.index.reload_if_changed():
            after = self.qa.index.generation
            log.info("index reloaded: generation %d -> %d (written elsewhere)", before, after)
            if self.metrics is not None:
                self.metrics.reloads.inc()

    async def watch(self) -> None:
        """Poll forever (until cancelled); one failed step is logged and the next one tried."""
        while True:
            await asyncio.sleep(self.settings.reload_interval_s)
            try:
                await run_in_threadpool(self.poll)
            except Exception:
                log.exception("index watcher step failed; serving the last whole generation")

    def close(self) -> None:
        """Release the index."""
        if self.qa is not None:
            self.qa.index.close()

    def stats(self) -> dict[str, Any] | None:
        """Documents, chunks, generation and the answering reader, or None before loading."""
        if self.qa is None:
            return None
        index = self.qa.index
        documents, chunks = index.counts()
        return {
            "documents": documents,
            "chunks": int(chunks),
            "generation": int(index.generation),
            "reader": self.qa.reader.name,
            "reader_note": self.qa.fallback_reason,
            "reader_model": getattr(self.qa.reader, "model_id", None),
            "reranker": _reranker(self.qa.reranker),
        }


def _reranker(reranker: Any) -> str | None:
    """The cross-encoder's model id and when it runs, or None without one."""
    if reranker is None:
        return None
    return f"{reranker.model_id} (top {reranker.depth}; {reranker.when})"


def get_service(request: Request) -> Service:
    """The app's Service (FastAPI dependency)."""
    service: Service = request.app.state.service
    return service


def ready_qa(request: Request) -> Any:
    """The loaded QA pipeline, or 503 saying why the index is not available yet."""
    service = get_service(request)
    if service.qa is None:
        raise HTTPException(
            503, f"the index is not loaded yet: {service.error}", headers={"Retry-After": "5"}
        )
    return service.qa
