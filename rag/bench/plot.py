"""bench.png: search latency, memory and build throughput against corpus size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag.bench.summary import lookup


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
                       ("bm25", "BM25 + row fetch"),
                       ("hybrid", "hybrid (convex fusion) + row fetch")):
        ys = [lookup(r, "search", key, "p50") for _, r in rows]
        ax.plot(xs, ys, marker="o", label=label)
    ax.axhline(5, color="grey", linestyle=":", label="5 ms target")
    ax.set(xscale="log", yscale="log", xlabel="chunks", ylabel="p50 latency (ms)",
           title="Retrieval latency (query vector given)")
    _plain_ticks(ax, matplotlib)
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.plot(xs, [lookup(r, "open", "rss_bytes_per_chunk") for _, r in rows], marker="o",
            label="resident memory after open")
    ax.plot(xs, [lookup(r, "disk", "bytes_per_chunk") for _, r in rows], marker="s",
            label="on disk (store + FAISS + BM25)")
    ax.set(xscale="log", xlabel="chunks", ylabel="bytes per chunk", title="Memory per chunk")
    ax.legend(fontsize=8)
    ax = axes[2]
    ax.plot(xs, [r.get("build_chunks_per_s") for _, r in rows], marker="o",
            label="index build (no embedding), chunks/s")
    raw = lookup(report, "encode", "raw_chunks_per_s")
    if raw:
        ax.axhline(raw, color="grey", linestyle=":", label=f"raw model.encode {raw:.0f} chunks/s")
    ax.set(xscale="log", yscale="log", xlabel="chunks", ylabel="chunks/s", title="Build")
    _plain_ticks(ax, matplotlib, minor=False)
    ax2 = ax.twinx()
    ax2.plot(xs, [(lookup(r, "incremental_add", "p50") or 0) / 1000 for _, r in rows],
             marker="^", color="tab:red", label="incremental add (s)")
    ax2.set_ylabel("incremental add of one article (s)")
    ax.legend(fontsize=8, loc="lower left")
    ax2.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
