"""Shared fixtures: one seed index per session, the real app with the real models."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from rag.settings import Settings
from tests.support import LiveServer, build_seed_index, copy_index

TOKEN = "test-token-" + secrets.token_hex(12)
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeds/ articles indexed once per session (never written to: copy it first)."""
    return build_seed_index(tmp_path_factory.mktemp("seed") / "index")


@pytest.fixture(scope="session")
def settings(seed_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of the in-process app: a private index copy, a token, fast reloads."""
    folder = copy_index(seed_index, tmp_path_factory.mktemp("app") / "index")
    return Settings(index_dir=folder, api_token=TOKEN, reload_interval_s=0.3)


@pytest.fixture(scope="session")
def app(settings: Settings) -> FastAPI:
    """The real app (models load when the client starts its lifespan)."""
    from api.app import create_app

    return create_app(settings)


@pytest.fixture(scope="session")
def client(app: FastAPI) -> Iterator[TestClient]:
    """A TestClient with the lifespan running: models and index loaded once."""
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def auth() -> dict[str, str]:
    """The write header."""
    return {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="session")
def live_server(seed_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The real server in a subprocess on its own index copy (fuzzing and load tests)."""
    base = tmp_path_factory.mktemp("live")
    server = LiveServer(copy_index(seed_index, base / "index"), base / "server.log", token=TOKEN)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        assert TOKEN not in server.log(), "the server printed the API token"
