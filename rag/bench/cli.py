"""The `rag bench` subcommand: its arguments, and `python -m rag.bench` on its own."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.bench.run import DEFAULT_SIZES, run_bench, run_pg_bench


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
    """rag bench [--sizes N,...] [--out DIR] [--no-peer] [--quick] [--backend B]"""
    sizes = args.sizes or ([2_000] if args.quick else list(DEFAULT_SIZES))
    if args.backend == "postgres":
        pg = run_pg_bench(sizes, Path(args.out), quick=args.quick)
        errors = [f"size {s}" for s, r in pg["sizes"].items() if "error" in r]
        if errors:
            print(f"rag: bench parts failed: {', '.join(errors)}; see {args.out}/"
                  "bench-postgres.md", file=sys.stderr)
            return 1
        print(Path(args.out) / "bench-postgres.md")
        return 0
    if args.peer_only and args.no_peer:
        raise SystemExit("rag bench: --peer-only and --no-peer leave nothing to run")
    report = run_bench(sizes, Path(args.out), peer=not args.no_peer, quick=args.quick,
                       peer_only=args.peer_only)
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
    bench.add_argument("--peer-only", action="store_true",
                       help="only the real-chunk comparison with txtai (build, search, memory, "
                            "disk), written to bench_peer.json/.md: no ask, ONNX, cold start "
                            "or scale runs")
    bench.add_argument("--backend", choices=["embedded", "postgres"], default="embedded",
                       help="postgres: the scale run on a local PostgreSQL + pgvector server")
    bench.set_defaults(func=cmd_bench)
    return bench


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m rag.bench ...`: the bench command on its own."""
    parser = argparse.ArgumentParser(prog="rag")
    add_bench_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))
