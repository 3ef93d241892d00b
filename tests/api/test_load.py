"""A shortened loopback load test (eval/loadtest.py) and a crash in the middle of a write."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from rag.index import check_consistency
from tests.api.conftest import ARTIFACTS, TOKEN
from tests.support import REPO, LiveServer, copy_index, synthetic_article

pytestmark = pytest.mark.integration


def test_short_load_test_has_no_errors_and_loses_no_writes(live_server: LiveServer) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "eval" / "loadtest.py"), "--clients", "8", "--duration", "8",
         "--url", live_server.url, "--json"],
        env={"RAG_API_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert result.returncode in (0, 1), result.stderr
    summary = json.loads(result.stdout)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "loadtest-short.json").write_text(json.dumps(summary, indent=2))
    assert summary["errors"] == 0, summary["error_samples"]
    assert summary["lost_writes"] == 0, summary["lost_samples"]
    assert summary["writes_acknowledged"] > 0 and summary["statuses"]["POST /ask"]["200"] > 0
    assert result.returncode == 0


def test_sigkill_during_a_write_keeps_every_acknowledged_write(
    seed_index: Path, tmp_path: Path
) -> None:
    from rag.pipeline import make_index
    from rag.settings import Settings

    index_dir = copy_index(seed_index, tmp_path / "index")
    server = LiveServer(index_dir, tmp_path / "server.log", token=TOKEN).start()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    acked: list[str] = []
    stop = threading.Event()

    def writer(n: int) -> None:
        with httpx.Client(base_url=server.url, headers=auth, timeout=60) as client:
            i = 0
            while not stop.is_set():
                i += 1
                tag = f"kill{n}x{i}" + secrets.token_hex(2)
                try:
                    response = client.post(
                        "/documents", json={"text": synthetic_article(tag), "source": f"{tag}.txt"}
                    )
                except httpx.HTTPError:
                    return  # the server died under this request: not acknowledged
                if response.status_code == 201:
                    acked.append(f"{tag}.txt")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    try:
        for thread in threads:
            thread.start()
        # The writer lock file holds the writer's pid exactly while a write is in flight.
        lock = index_dir / ".lock"
        deadline = time.monotonic() + 60
        assert server.proc is not None
        while time.monotonic() < deadline:
            holder = lock.read_text().strip() if lock.exists() else ""
            if len(acked) >= 3 and holder == str(server.proc.pid):
                break
            time.sleep(0.005)
        else:
            pytest.fail("never saw a write in flight")
        server.kill()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        server.stop()
    assert acked, "no write was acknowledged before the kill"

    restarted = LiveServer(index_dir, tmp_path / "server2.log", token=TOKEN).start()
    try:
        with httpx.Client(base_url=restarted.url, timeout=60) as client:
            listed = {d["source"] for d in client.get("/documents").json()["documents"]}
            missing = [s for s in acked if s not in listed]
            assert not missing, f"acknowledged but lost after SIGKILL: {missing}"
            for source in acked:
                tag = source.removesuffix(".txt")
                found = client.post(
                    "/ask", json={"question": f"harbour ferry {tag}", "mode": "bm25", "top_k": 10}
                ).json()
                assert source in {p["source"] for p in found["passages"]}, source
            ready = client.get("/readyz").json()
    finally:
        restarted.stop()
    index = make_index(Settings(index_dir=index_dir)).open()
    try:
        counts = check_consistency(index)
    finally:
        index.close()
    assert counts["documents"] == ready["documents"] >= 2 + len(acked)
