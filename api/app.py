"""The FastAPI app: `create_app(settings)` and the module-level `app` (cheap to import).

The models and the index load once, in the lifespan; a background task then polls the
index folder so writes by other processes (`rag add`) are served within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

import rag
from api import errors
from api.observability import Metrics, ObservabilityMiddleware
from api.routes import STATIC_DIR, router
from api.security import BodyLimitMiddleware, body_limits
from api.service import Service
from rag.settings import Settings, get_settings

DESCRIPTION = """Ask questions about news articles and get answers quoted from them, or an
honest "not in the articles". Writes (`POST`/`DELETE /documents`) need
`Authorization: Bearer <RAG_API_TOKEN>`; errors are `{"detail": "..."}`."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new app; `settings` defaults to the environment (RAG_* variables)."""
    settings = settings or get_settings()
    service = Service(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Blocking model load off the event loop; a failure leaves the app up but not ready.
        await run_in_threadpool(service.load)
        watcher = asyncio.create_task(service.watch(), name="rag-index-watcher")
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            service.close()

    app = FastAPI(
        title="rag: questions over news articles",
        version=rag.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # The default docs pages load Swagger UI from a CDN, which an offline machine cannot
        # reach; /docs below serves the copy shipped in the swagger-ui-bundle package.
        docs_url=None,
        redoc_url=None,
    )
    _offline_docs(app)
    app.state.service = service
    # Every route reads settings through Depends(get_settings): point it at this app's.
    app.dependency_overrides[get_settings] = lambda: settings
    service.metrics = Metrics(service.stats)
    errors.install(app)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    if settings.cors_origins:
        # Off unless configured: the page is same-origin and needs no CORS.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(BodyLimitMiddleware, limit=body_limits(settings))
    # Added last, so outermost: it times and logs everything, 413s included.
    app.add_middleware(ObservabilityMiddleware, metrics=service.metrics)
    return app


def _offline_docs(app: FastAPI) -> None:
    """Serve Swagger UI at /docs from the installed swagger-ui-bundle files."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-static", StaticFiles(directory=str(swagger_ui_path)), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API docs",
            swagger_js_url="/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )


app = create_app()
