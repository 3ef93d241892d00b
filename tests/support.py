"""Test support: the seed index, synthetic articles, the real server in a subprocess."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "seeds"


def build_seed_index(folder: Path) -> Path:
    """Index every article in seeds/ into `folder` with the real packaged embedder."""
    from rag.documents import read_document
    from rag.pipeline import make_index
    from rag.settings import Settings

    index = make_index(Settings(index_dir=folder)).open(create=True)
    try:
        docs = [read_document(p) for p in sorted(SEEDS.iterdir()) if p.is_file()]
        index.add_documents(docs, sync=True)
    finally:
        index.close()
    return folder


def copy_index(source: Path, target: Path) -> Path:
    """A private copy of an index folder (without its lock file)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".lock", "*.tmp"))
    return target


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """`python -m api.server` on a free loopback port, its log in a file."""

    def __init__(self, index_dir: Path, log_path: Path, *, token: str | None = None,
                 reload_interval_s: float = 0.5) -> None:
        self.index_dir = index_dir
        self.log_path = log_path
        self.token = token
        self.reload_interval_s = reload_interval_s
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> LiveServer:
        """Start the server and wait until /readyz says the index is loaded."""
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
        env.update(
            RAG_INDEX_DIR=str(self.index_dir),
            RAG_RELOAD_INTERVAL_S=str(self.reload_interval_s),
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
        )
        if self.token:
            env["RAG_API_TOKEN"] = self.token
        log = open(self.log_path, "ab")  # the child keeps its own copy of the descriptor
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "api.server", "--port", str(self.port)],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server not ready after {timeout} s:\n{self.log()}")

    def log(self) -> str:
        """Everything the server printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no cleanup, no graceful shutdown (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit within 15 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


def synthetic_article(tag: str) -> str:
    """A short made-up article whose facts (and the word `tag`) appear nowhere else."""
    return (
        f"Harbour ferry {tag} sets a record\n\n"
        f"The harbour ferry {tag} carried 4,321 passengers on its first day of service, "
        f"the operator said on Tuesday. The vessel {tag} runs between Quarry Point and "
        "Lantern Bay every twenty minutes. Officials said a second boat would join the route "
        "next spring if demand stays high."
    )
