"""The real server on the seed index, for the browser tests."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import LiveServer, build_seed_index

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(scope="session")
def page_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`python -m api.server` on a fresh seed index, writes enabled."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: run 'bash tests/setup_browser.sh' (apt chromium)")
    base = tmp_path_factory.mktemp("browser")
    server = LiveServer(build_seed_index(base / "index"), base / "server.log",
                        token="browser-" + secrets.token_hex(8))
    server.start()
    try:
        yield server
    finally:
        server.stop()
