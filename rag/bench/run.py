"""`rag bench`: one command that measures build, search, memory and a peer on this machine.

Every measurement runs in its own subprocess (rag/bench/workers.py) so peak memory and
imports of one part never pollute another. Writes bench.json, bench.md and bench.png.
"""

from __future__ import annotations

import argparse
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

from rag.bench.workers import RESULT_PREFIX

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


def _get(d: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def _ratio(a: Any, b: Any) -> float | None:
    if not isinstance(a, int | float) or not isinstance(b, int | float) or not b:
        return None
    return round(a / b, 3)


def run_bench(
    sizes: Sequence[int] = DEFAULT_SIZES,
    out_dir: Path | str = Path("eval/bench"),
    *,
    real_chunks: int | None = None,
    peer: bool = True,
    quick: bool = False,
    queries: int | None = None,
    seed: int = 0,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True),
) -> dict[str, Any]:
    """Run the whole benchmark and write bench.json, bench.md and bench.png into out_dir."""
    if not sizes or any(int(s) < 100 for s in sizes):
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
                   "queries": queries, "quick": quick, "seed": seed, "peer": peer},
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
        report["ours"] = run_worker("ours", {**common, "ask_questions": 20, "skip_ask": quick,
                                             "queries": queries, "repeat": 5 if quick else 20})
        report["encode"].update(report["ours"].pop("raw_encode", {}))
        if peer:
            log("bench: peer (txtai) on the same chunks")
            report["peer"] = run_worker("txtai", {**common, "queries": queries})
        else:
            report["peer"] = {"skipped": "--no-peer"}
        if quick:
            report["onnx"] = {"skipped": "quick mode"}
            report["cold_start"] = {"skipped": "quick mode"}
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
    _summarise(report)
    report["machine"]["loadavg_end"] = list(os.getloadavg())
    report["total_s"] = round(time.perf_counter() - started, 1)
    (out / "bench.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "bench.md").write_text(render_markdown(report), encoding="utf-8")
    plot(report, out / "bench.png")
    log(f"bench: wrote {out}/bench.json, bench.md, bench.png in {report['total_s']} s")
    return report


def _summarise(report: dict[str, Any]) -> None:
    """Derived figures: build vs raw encode, ratios vs the peer, target checks."""
    enc, ours, peer = report.get("encode", {}), report.get("ours", {}), report.get("peer", {})
    raw = enc.get("raw_chunks_per_s")
    report["build_vs_encode"] = {
        "raw_encode_chunks_per_s": raw,
        "build_chunks_per_s": ours.get("chunks_per_s"),
        "build_chunks_per_s_from_chunks": ours.get("chunks_per_s_from_chunks"),
        "ratio": _ratio(ours.get("chunks_per_s"), raw),
        "ratio_from_chunks": _ratio(ours.get("chunks_per_s_from_chunks"), raw),
    }
    ours_build = None
    if isinstance(ours.get("build_s"), int | float):
        ours_build = ours["build_s"] - ours.get("chunking_s", 0.0)
    ours_p50 = _get(ours, "search_with_query_embedding", "hybrid", "p50")
    peer_p50 = _get(peer, "search_with_query_embedding", "hybrid", "p50")
    report["ratios"] = {
        # Both sides are given the same chunks; our sentence splitting is reported apart.
        "build_time": _ratio(ours_build, peer.get("build_s")),
        "search_p50": _ratio(ours_p50, peer_p50),
        "memory": _ratio(ours.get("peak_rss_mb"), peer.get("peak_rss_mb")),
        "build_time_incl_chunking": _ratio(ours.get("build_s"), peer.get("build_s")),
    }
    targets: dict[str, Any] = {}
    at100k = report.get("sizes", {}).get("100000", {})
    if at100k and "error" not in at100k:
        p50 = _get(at100k, "search", "hybrid", "p50")
        rec = _get(at100k, "recall@10", "hybrid")
        targets["hybrid_p50_100k_le_5ms"] = {"value": p50, "ok": p50 is not None and p50 <= 5}
        targets["recall@10_100k_ge_0.95"] = {
            "dense": _get(at100k, "recall@10", "dense"), "hybrid": rec,
            "ok": rec is not None and rec >= 0.95
            and (_get(at100k, "recall@10", "dense") or 0) >= 0.95,
        }
    ratio = report["build_vs_encode"]["ratio"]
    targets["build_ge_0.9_raw_encode"] = {
        "value": ratio, "from_chunks": report["build_vs_encode"]["ratio_from_chunks"],
        "ok": ratio is not None and ratio >= 0.9,
    }
    ratios = {k: v for k, v in report["ratios"].items() if k != "build_time_incl_chunking"}
    targets["ratios_le_1"] = {
        "values": ratios,
        "ok": all(v is not None and v <= 1.0 for v in ratios.values()) if ratios else None,
    }
    onnx = report.get("onnx", {})
    gold = onnx.get("gold", {}) if isinstance(onnx, dict) else {}
    if "torch" in gold and "onnx" in gold:
        speed = _ratio(onnx.get("raw_chunks_per_s"), enc.get("raw_chunks_per_s"))
        loss = max(
            round(gold["torch"][f"recall@5.{m}"] - gold["onnx"][f"recall@5.{m}"], 4)
            for m in ("dense", "hybrid")
        )
        targets["onnx_faster_recall_loss_le_0.01"] = {
            "speedup": speed, "recall@5_loss": loss,
            "ok": speed is not None and speed > 1 and loss <= 0.01,
        }
    report["targets"] = targets


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _lat(d: Any) -> str:
    if not isinstance(d, dict) or "p50" not in d:
        return "–"
    return f"{d['p50']:.2f} / {d['p95']:.2f}"


def render_markdown(report: dict[str, Any]) -> str:
    """bench.md: the tables of the report."""
    m = report["machine"]
    lines = [
        "# rag bench",
        "",
        f"{m['date']} · {m['cpu']} · {m['cores']} cores · Python {m['python']} · "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        f"Load average at start {m['loadavg_start'][0]:.2f}, at end "
        f"{_fmt(m.get('loadavg_end', [None])[0])} (other work on the machine slows every number).",
        f"Total run time {_fmt(report.get('total_s'), 1)} s.",
        "",
        "## Embedding and build on real chunks",
        "",
    ]
    enc, ours, peer = report.get("encode", {}), report.get("ours", {}), report.get("peer", {})
    bve = report.get("build_vs_encode", {})
    lines += [
        "| measure | value |", "|---|---|",
        f"| chunks (synthetic articles, real chunker) | {_fmt(enc.get('chunks'))} |",
        f"| raw `model.encode` (batch 32, one call; same process, just before the build) | "
        f"{_fmt(enc.get('raw_chunks_per_s'))} chunks/s |",
        f"| our build from articles (split, embed, store, FAISS, BM25) | "
        f"{_fmt(ours.get('chunks_per_s'))} chunks/s = {_fmt(bve.get('ratio'), 3)} × raw |",
        f"| our build from chunks (sentence splitting excluded) | "
        f"{_fmt(ours.get('chunks_per_s_from_chunks'))} chunks/s = "
        f"{_fmt(bve.get('ratio_from_chunks'), 3)} × raw |",
        f"| time split: chunking / embedding / indexing | {_fmt(ours.get('chunking_s'))} s / "
        f"{_fmt(ours.get('embedding_s'))} s / {_fmt(ours.get('indexing_s'))} s |",
        f"| query embedding p50 / p95 | {_lat(enc.get('query_embed_ms'))} ms |",
        f"| search incl. query embedding, hybrid p50 / p95 | "
        f"{_lat(_get(ours, 'search_with_query_embedding', 'hybrid'))} ms |",
        f"| peak memory of the build + search process | {_fmt(ours.get('peak_rss_mb'), 0)} MB |",
        "",
    ]
    if "error" in ours:
        lines += [f"Our run failed: {ours['error']}", ""]
    lines += ["## Peer: txtai, same model folder, same chunks", ""]
    if "build_s" in peer:
        r = report.get("ratios", {})
        lines += [
            "| | ours | txtai | ours / txtai |", "|---|---|---|---|",
            f"| build time (s) | {_fmt((ours.get('build_s') or 0) - (ours.get('chunking_s') or 0))}"
            f" | {_fmt(peer.get('build_s'))} | {_fmt(r.get('build_time'), 3)} |",
            f"| hybrid search p50 incl. query embedding (ms) | "
            f"{_fmt(_get(ours, 'search_with_query_embedding', 'hybrid', 'p50'))} | "
            f"{_fmt(_get(peer, 'search_with_query_embedding', 'hybrid', 'p50'))} | "
            f"{_fmt(r.get('search_p50'), 3)} |",
            f"| peak memory (MB) | {_fmt(ours.get('peak_rss_mb'), 0)} | "
            f"{_fmt(peer.get('peak_rss_mb'), 0)} | {_fmt(r.get('memory'), 3)} |",
            f"| index on disk (MB) | {_fmt((ours.get('disk_bytes') or 0) / 2**20, 1)} | "
            f"{_fmt((peer.get('disk_bytes') or 0) / 2**20, 1)} | |",
            "",
            f"Our build time includes no sentence splitting here (txtai is given the chunks); "
            f"with it the ratio is {_fmt(r.get('build_time_incl_chunking'), 3)}. txtai config: "
            f"`{json.dumps(peer.get('config'))}`.",
            "",
        ]
    else:
        lines += [f"Skipped: {peer.get('skipped') or peer.get('error')}", ""]
    lines += _scale_markdown(report)
    lines += _extras_markdown(report)
    return "\n".join(lines) + "\n"


def _scale_markdown(report: dict[str, Any]) -> list[str]:
    sizes = report.get("sizes", {})
    lines = [
        "## Scale (synthetic text, calibrated vectors)",
        "",
        "Latency in ms (p50 / p95), retrieval only (the query vector is given; query "
        "embedding is listed above). dense, BM25 and hybrid are `Retriever.search` calls "
        "(top-10, including the SQLite fetch of the rows); hybrid = RRF of dense top-50 and "
        "BM25 top-50. 'exact Flat' is a bare FAISS search over the same vectors, the reference "
        "for recall@10. Build chunks/s excludes embedding (vectors are given).",
        "",
        "| chunks | FAISS | build chunks/s | incremental add (s) | BM25 rebuild (s) | dense | "
        "exact Flat (FAISS alone) | BM25 | hybrid | recall@10 dense / hybrid | RSS B/chunk | "
        "disk B/chunk | open (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, r in sizes.items():
        if "error" in r:
            lines.append(f"| {int(size):,} | error: {r['error'][:200]} |")
            continue
        s = r.get("search", {})
        rec = r.get("recall@10", {})
        inc = r.get("incremental_add", {})
        lines.append(
            f"| {int(size):,} | {r.get('dense_index')} nprobe {_fmt(r.get('nprobe'))} | "
            f"{_fmt(r.get('build_chunks_per_s'), 0)} | {_fmt((inc.get('p50') or 0) / 1000)} | "
            f"{_fmt(r.get('bm25_rebuild_s'))} | {_lat(s.get('dense'))} | "
            f"{_lat(s.get('dense_exact'))} | {_lat(s.get('bm25'))} | {_lat(s.get('hybrid'))} | "
            f"{_fmt(rec.get('dense'), 3)} / {_fmt(rec.get('hybrid'), 3)} | "
            f"{_fmt(_get(r, 'open', 'rss_bytes_per_chunk'), 0)} | "
            f"{_fmt(_get(r, 'disk', 'bytes_per_chunk'), 0)} | {_fmt(_get(r, 'open', 'open_s'))} |"
        )
    lines.append("")
    for size, r in sizes.items():
        if r.get("nprobe_sweep"):
            lines.append(f"IVF nprobe sweep at {int(size):,} chunks (dense p50 ms, recall@10): "
                         + ", ".join(f"{p['nprobe']}: {p['dense_p50_ms']:.2f} ms, "
                                     f"{p['recall@10']:.3f}" for p in r["nprobe_sweep"]))
            lines.append("")
        st = r.get("sample_trained")
        if st:
            lines.append(
                f"At {int(size):,} the index path trained IVF on its first 10k stored vectors "
                f"({r.get('dense_index')}); {st['factory']} trained on a {st['train_points']:,}-"
                f"vector sample ({st['train_s']:.1f} s) gives dense p50 {st['dense']['p50']:.2f} "
                f"ms at recall@10 {st['recall@10']:.3f} (nprobe {st['nprobe']})."
            )
            lines.append("")
        mm = _get(r, "open", "dense_mmap")
        if mm and mm.get("mapped"):
            rd = r["open"]["dense_read"]
            lines.append(
                f"Memory-mapped dense index at {int(size):,}: opens in {mm['load_s']:.4f} s "
                f"(read: {rd['load_s']:.3f} s), +{mm['rss_mb_after_load']:.0f} MB resident "
                f"after opening and +{mm['rss_mb']:.0f} MB after 20 searches (read: "
                f"+{rd['rss_mb']:.0f} MB); first search {mm['first_search_ms']:.1f} ms (read: "
                f"{rd['first_search_ms']:.1f} ms), p50 {mm['search_p50_ms']:.2f} ms (read: "
                f"{rd['search_p50_ms']:.2f} ms)."
            )
            lines.append("")
    return lines


def _extras_markdown(report: dict[str, Any]) -> list[str]:
    lines: list[str] = ["## End-to-end ask, cold start, ONNX", ""]
    ask = _get(report, "ours", "ask") or {}
    if "skipped" in ask:
        lines.append(f"- `ask`: skipped ({ask['skipped']})")
        ask = {}
    for reader, r in ask.items():
        if isinstance(r, dict) and "p50" in r:
            lines.append(f"- `ask` with the {reader} reader: p50 {r['p50']:.0f} ms, p95 "
                         f"{r['p95']:.0f} ms over {r['n']} gold questions (load {r['load_s']} s).")
        else:
            lines.append(f"- `ask` with the {reader} reader: {r}")
    cold = report.get("cold_start", {})
    if "ready_s" in cold:
        lines.append(f"- Cold start to ready (new process: imports, open index, load models): "
                     f"{cold['ready_s']:.2f} s in-process, {cold['wall_s']:.2f} s wall; first "
                     f"answer {cold['first_answer_s']:.2f} s more.")
    else:
        lines.append(f"- Cold start: {cold.get('skipped') or cold.get('error')}")
    onnx = report.get("onnx", {})
    if "raw_chunks_per_s" in onnx:
        enc = report.get("encode", {})
        lines.append(
            f"- int8 ONNX embedder: {onnx['raw_chunks_per_s']:.1f} chunks/s vs torch "
            f"{_fmt(enc.get('raw_chunks_per_s'))} on the same chunks; query "
            f"{onnx['query_embed_ms']['p50']:.1f} ms vs {_fmt(_get(enc, 'query_embed_ms', 'p50'))}"
            f" ms; cosine to torch vectors mean {onnx['cosine_vs_torch']['mean']}, min "
            f"{onnx['cosine_vs_torch']['min']}."
        )
        gold = onnx.get("gold", {})
        if "torch" in gold:
            lines.append(
                f"- Gold recall@5 ({gold['questions']} answerable questions; seeds plus "
                f"{gold['distractor_docs']} synthetic distractor articles): torch dense "
                f"{gold['torch']['recall@5.dense']}, hybrid {gold['torch']['recall@5.hybrid']}; "
                f"ONNX dense {gold['onnx']['recall@5.dense']}, hybrid "
                f"{gold['onnx']['recall@5.hybrid']}."
            )
    else:
        lines.append(f"- ONNX: {onnx.get('skipped') or onnx.get('error')}")
    lines += ["", "## Targets", "", "| target | result | ok |", "|---|---|---|"]
    for name, t in report.get("targets", {}).items():
        shown = {k: v for k, v in t.items() if k != "ok"}
        lines.append(f"| {name} | `{json.dumps(shown)}` | {'yes' if t.get('ok') else 'no'} |")
    lines += ["", "## Notes", ""] + [f"- {n}" for n in report.get("notes", [])]
    return lines


def _plain_ticks(ax: Any, matplotlib: Any, *, minor: bool = True) -> None:
    """Log-axis tick labels as plain numbers (0.5, 2, 1000), not powers of ten."""
    ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(
        matplotlib.ticker.FormatStrFormatter("%g") if minor else matplotlib.ticker.NullFormatter()
    )


def plot(report: dict[str, Any], path: Path) -> None:
    """bench.png: search latency, memory and build throughput against corpus size."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(int(s), r) for s, r in report.get("sizes", {}).items() if "error" not in r]
    rows.sort()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    xs = [s for s, _ in rows]
    ax = axes[0]
    for key, label in (("dense", "dense: chosen FAISS index + row fetch"),
                       ("dense_exact", "exact Flat search alone"),
                       ("bm25", "BM25 + row fetch"), ("hybrid", "hybrid (RRF) + row fetch")):
        ys = [_get(r, "search", key, "p50") for _, r in rows]
        ax.plot(xs, ys, marker="o", label=label)
    ax.axhline(5, color="grey", linestyle=":", label="5 ms target")
    ax.set(xscale="log", yscale="log", xlabel="chunks", ylabel="p50 latency (ms)",
           title="Retrieval latency (query vector given)")
    _plain_ticks(ax, matplotlib)
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.plot(xs, [_get(r, "open", "rss_bytes_per_chunk") for _, r in rows], marker="o",
            label="resident memory after open")
    ax.plot(xs, [_get(r, "disk", "bytes_per_chunk") for _, r in rows], marker="s",
            label="on disk (store + FAISS + BM25)")
    ax.set(xscale="log", xlabel="chunks", ylabel="bytes per chunk", title="Memory per chunk")
    ax.legend(fontsize=8)
    ax = axes[2]
    ax.plot(xs, [r.get("build_chunks_per_s") for _, r in rows], marker="o",
            label="index build (no embedding), chunks/s")
    raw = _get(report, "encode", "raw_chunks_per_s")
    if raw:
        ax.axhline(raw, color="grey", linestyle=":", label=f"raw model.encode {raw:.0f} chunks/s")
    ax.set(xscale="log", yscale="log", xlabel="chunks", ylabel="chunks/s", title="Build")
    _plain_ticks(ax, matplotlib, minor=False)
    ax2 = ax.twinx()
    ax2.plot(xs, [(_get(r, "incremental_add", "p50") or 0) / 1000 for _, r in rows],
             marker="^", color="tab:red", label="incremental add (s)")
    ax2.set_ylabel("incremental add of one article (s)")
    ax.legend(fontsize=8, loc="lower left")
    ax2.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------- CLI


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(s.replace("_", "")) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--sizes takes comma-separated chunk counts such as 10000,100000, got {text!r}"
        ) from None
    if not sizes or min(sizes) < 100:
        raise argparse.ArgumentTypeError(f"--sizes must be chunk counts >= 100, got {text!r}")
    return sizes


def cmd_bench(args: argparse.Namespace) -> int:
    """rag bench [--sizes N,...] [--out DIR] [--no-peer] [--quick]"""
    sizes = args.sizes or ([2_000] if args.quick else list(DEFAULT_SIZES))
    report = run_bench(sizes, Path(args.out), peer=not args.no_peer, quick=args.quick)
    failed = [k for k in ("encode", "ours") if "error" in report.get(k, {})]
    failed += [f"size {s}" for s, r in report.get("sizes", {}).items() if "error" in r]
    if failed:
        print(f"rag: bench parts failed: {', '.join(failed)}; see {args.out}/bench.md",
              file=sys.stderr)
        return 1
    print(Path(args.out) / "bench.md")
    return 0


def add_bench_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `rag bench` on the CLI's subparsers."""
    bench = subparsers.add_parser(
        "bench", help="measure build, search, memory and a peer (txtai) on this machine"
    )
    bench.add_argument("--sizes", type=_sizes, default=None,
                       help="corpus sizes in chunks, comma-separated (default 10000,100000)")
    bench.add_argument("--out", default="eval/bench", help="output folder (default eval/bench)")
    bench.add_argument("--no-peer", action="store_true", help="skip the txtai comparison")
    bench.add_argument("--quick", action="store_true",
                       help="small real subset and few queries (a smoke run, not a measurement)")
    bench.set_defaults(func=cmd_bench)
    return bench


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m rag.bench ...`: the bench command on its own."""
    parser = argparse.ArgumentParser(prog="rag")
    add_bench_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
