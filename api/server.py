"""Run the API with uvicorn: `run(settings)` (what `rag serve` calls) or `python -m api.server`."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.settings import Settings, get_settings


def configure_logging(level: int = logging.INFO) -> None:
    """Plain lines for the service log, one JSON object a line for the access log."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    access = logging.StreamHandler(sys.stderr)
    access.setFormatter(logging.Formatter("%(message)s"))
    service_log = logging.getLogger("rag.api")
    service_log.handlers[:] = [handler]
    service_log.setLevel(level)
    service_log.propagate = False
    access_log = logging.getLogger("rag.api.access")
    access_log.handlers[:] = [access]
    access_log.setLevel(level)
    access_log.propagate = False


def run(settings: Settings | None = None) -> None:
    """Serve the API on settings.host:settings.port (127.0.0.1:8000 by default) until stopped."""
    import uvicorn

    from api.app import create_app

    settings = settings or get_settings()
    configure_logging()
    where: Any = settings.index_dir
    if settings.database_url is not None:
        from rag.backends.postgres import redact

        where = redact(settings.database_url.get_secret_value())  # never the password
    print(
        f"rag: serving {where} on http://{settings.host}:{settings.port} "
        f"(writes {'enabled' if settings.api_token else 'disabled: set RAG_API_TOKEN'})",
        file=sys.stderr, flush=True,
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        # Our JSON access log replaces uvicorn's; neither ever prints request headers.
        access_log=False,
        log_level="info",
        timeout_graceful_shutdown=10,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m api.server [--host H] [--port P] [--index DIR]`; the rest comes from RAG_*."""
    parser = argparse.ArgumentParser(prog="python -m api.server", description=__doc__)
    parser.add_argument("--host", help="address to bind (default: $RAG_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: $RAG_PORT or 8000)")
    parser.add_argument("--index", help="index folder (default: $RAG_INDEX_DIR or index/)")
    parser.add_argument("--database-url", metavar="URL",
                        help="PostgreSQL + pgvector instead (default: $RAG_DATABASE_URL)")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port:
        overrides["port"] = args.port
    if args.index:
        overrides["index_dir"] = Path(args.index)
        overrides["database_url"] = None  # an explicit folder beats RAG_DATABASE_URL
    if args.database_url:
        overrides["database_url"] = args.database_url
    run(Settings(**overrides))
    return 0


if __name__ == "__main__":
    sys.exit(main())
