"""What the workers share: the result-line protocol, memory and latency measures, settings
and gold questions, and wrappers that add up where a build's time goes."""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.chunking import Chunk
from rag.documents import Document

if TYPE_CHECKING:
    from rag.retrieval import Mode


RESULT_PREFIX = "BENCH_RESULT "
MODES: tuple[Mode, ...] = ("dense", "bm25", "hybrid")


def rss_mb() -> float:
    """Resident memory of this process now, in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    """Peak resident memory of this process since start or `reset_peak`, in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> bool:
    """Restart the peak at the current resident size (Linux `clear_refs` 5); False if not."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def pct(values: Sequence[float]) -> dict[str, float]:
    """p50/p95/mean of latencies given in seconds, as milliseconds."""
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "mean": float("nan"), "n": 0}
    ms = np.asarray(values) * 1000
    return {
        "p50": round(float(np.percentile(ms, 50)), 3),
        "p95": round(float(np.percentile(ms, 95)), 3),
        "mean": round(float(ms.mean()), 3),
        "n": len(values),
    }


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    """Wall seconds of `repeat` calls."""
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def dir_bytes(path: Path) -> int:
    """Total size of the files under `path`."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def silent(_message: str) -> None:
    """A notify callback that drops the index's progress messages."""


def make_settings(**overrides: Any) -> Any:
    """The product's Settings (defaults and RAG_ environment) with these fields overridden."""
    from rag.settings import Settings

    values: dict[str, Any] = dict(overrides)
    return Settings(**values)


def gold_questions(root: Path) -> list[str]:
    """Questions of the project's gold files (realistic query text for latency runs)."""
    out: list[str] = []
    for path in sorted((root / "eval" / "gold").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append(json.loads(line)["question"])
    return out or [
        "How much will the government earmark for the innovation centre?",
        "Who is the president of the university?",
        "Where will the facility be built?",
    ]


def repo_root() -> Path:
    """The project folder (seeds/ and eval/ live there)."""
    return Path(__file__).resolve().parents[2]


class TimedChunker:
    """Wraps a chunker, adding up the time spent splitting documents."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.params = inner.params
        self.seconds = 0.0

    def chunk(self, doc: Document) -> list[Chunk]:
        """The inner chunker's chunks."""
        t = time.perf_counter()
        try:
            return list(self.inner.chunk(doc))
        finally:
            self.seconds += time.perf_counter() - t


def time_methods(obj: Any, names: Sequence[str]) -> dict[str, float]:
    """Wrap the named methods of `obj` (instance attributes) to add up their wall time."""
    spent = {"seconds": 0.0}
    for name in names:
        method = getattr(obj, name, None)
        if method is None:
            continue

        def wrapper(*args: Any, _m: Any = method, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return _m(*args, **kwargs)
            finally:
                spent["seconds"] += time.perf_counter() - t

        setattr(obj, name, wrapper)
    return spent


def search_latencies(retriever: Any, questions: list[str], qvecs: np.ndarray,
                      k: int = 10) -> dict[str, Any]:
    """p50/p95 of `Retriever.search` per mode, the query vectors given."""
    out: dict[str, Any] = {}
    for mode in MODES:
        lat = []
        for q, v in zip(questions, qvecs, strict=True):
            t = time.perf_counter()
            retriever.search(q, k, mode=mode, query_vector=v)
            lat.append(time.perf_counter() - t)
        out[mode] = pct(lat)
    return out
