"""bench.md: the report's tables and notes, rendered from the bench.json dictionary."""

from __future__ import annotations

import json
from typing import Any

from rag.bench.summary import lookup


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
        f"| raw encode (batch 32, one call; same process, just before the build) with the "
        f"backend the build uses, `{enc.get('backend') or 'torch'}` | "
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
        f"{_lat(lookup(ours, 'search_with_query_embedding', 'hybrid'))} ms |",
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
            f"{_fmt(lookup(ours, 'search_with_query_embedding', 'hybrid', 'p50'))} | "
            f"{_fmt(lookup(peer, 'search_with_query_embedding', 'hybrid', 'p50'))} | "
            f"{_fmt(r.get('search_p50'), 3)} |",
            f"| peak memory (MB) | {_fmt(ours.get('peak_rss_mb'), 0)} | "
            f"{_fmt(peer.get('peak_rss_mb'), 0)} | {_fmt(r.get('memory'), 3)} |",
            f"| index on disk (MB, settled) | {_fmt((ours.get('disk_bytes') or 0) / 2**20, 2)} | "
            f"{_fmt((peer.get('disk_bytes') or 0) / 2**20, 2)} | "
            f"{_fmt(lookup(report, 'targets', 'disk_le_2x_peer', 'value'), 3)} |",
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
    if not sizes:
        return ["## Scale (synthetic text, calibrated vectors)", "", "Not run (--peer-only).", ""]
    lines = [
        "## Scale (synthetic text, calibrated vectors)",
        "",
        "Latency in ms (p50 / p95), retrieval only (the query vector is given; query "
        "embedding is listed above). dense, BM25 and hybrid are `Retriever.search` calls "
        "(top-10, including the SQLite fetch of the rows); hybrid = convex fusion of dense "
        "top-50 and BM25 top-50. 'exact Flat' is a bare FAISS search over the same vectors, "
        "the reference for recall@10. Build chunks/s excludes embedding (vectors are given).",
        "",
        "| chunks | FAISS | build chunks/s | incremental add (s) | BM25 full build (s) | dense | "
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
            f"{_fmt(lookup(r, 'open', 'rss_bytes_per_chunk'), 0)} | "
            f"{_fmt(lookup(r, 'disk', 'bytes_per_chunk'), 0)} | "
            f"{_fmt(lookup(r, 'open', 'open_s'))} |"
        )
    lines.append("")
    for size, r in sizes.items():
        if r.get("bm25_segments") is not None:
            lines.append(
                f"BM25 segments at {int(size):,} chunks: {r['bm25_segments']} after the build and "
                f"adds; the BM25 part of a one-article add {_fmt(lookup(r, 'bm25_add', 'p50'))} "
                f"ms (a whole rebuild: {_fmt(r.get('bm25_rebuild_s'))} s); BM25 search alone "
                f"p50 / p95 {_lat(r.get('search_bm25_only'))} ms; share of queries whose top-10 "
                f"scores equal a one-shot build's over the same chunks "
                f"{_fmt(r.get('bm25_agreement@10'), 4)} (chunk-id overlap, which ties lower: "
                f"{_fmt(r.get('bm25_id_overlap@10'), 4)})."
            )
            lines.append("")
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
        mm = lookup(r, "open", "dense_mmap")
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
    ask = lookup(report, "ours", "ask") or {}
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
            f"{_fmt(onnx.get('torch_raw_chunks_per_s') or enc.get('raw_chunks_per_s'))} on "
            "the same chunks; query "
            f"{onnx['query_embed_ms']['p50']:.1f} ms vs "
            f"{_fmt(lookup(enc, 'query_embed_ms', 'p50'))} ms; cosine to torch vectors mean "
            f"{onnx['cosine_vs_torch']['mean']}, min "
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
