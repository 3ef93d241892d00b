"""The `rag` command: a thin shell over library calls; errors become exit code 1."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rag.errors import RagError

EXIT_OK, EXIT_USER, EXIT_USAGE = 0, 1, 2


def _err(message: str) -> None:
    print(f"rag: {message}", file=sys.stderr)


@contextmanager
def _progress(label: str, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar (on a terminal) fed by (done, total) callbacks."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), transient=True, console=None,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _settings(args: argparse.Namespace) -> Any:
    from rag.settings import Settings

    overrides: dict[str, Any] = {}
    if getattr(args, "index", None):
        overrides["index_dir"] = Path(args.index)
    return Settings(**overrides)


def _open_index(args: argparse.Namespace, *, create: bool = False, check: bool = True) -> Any:
    from rag.pipeline import make_index

    return make_index(_settings(args)).open(create=create, check_config=check)


def _print_report(report: Any, verb: str) -> None:
    parts = []
    for name in ("added", "updated", "removed", "unchanged"):
        items = getattr(report, name)
        if items:
            parts.append(f"{len(items)} {name}")
    summary = ", ".join(parts) or "nothing to do"
    print(
        f"{verb}: {summary}; {report.chunks_written} chunks written, "
        f"{report.chunks_embedded} embedded, {report.chunks_reused} reused from cache "
        f"({report.seconds:.2f} s)"
    )
    for name in ("added", "updated", "removed"):
        for source in getattr(report, name):
            print(f"  {name:8s} {source}")
    for source in report.unchanged:
        print(f"  skipped  {source} (unchanged)")


def _read_docs(paths: Sequence[Path]) -> list[Any]:
    """Read every article first, so one bad file stops the batch before any write."""
    from rag.documents import collect_paths, read_document

    problems: list[str] = []
    docs = []
    for path in collect_paths(paths):
        try:
            docs.append(read_document(path))
        except RagError as exc:
            problems.append(str(exc))
    if problems:
        raise RagError("; ".join(problems) + " (nothing was changed)")
    return docs


def cmd_index_build(args: argparse.Namespace) -> int:
    """rag index build [--from DIR]"""
    settings = _settings(args)
    source_dir = Path(args.from_dir) if args.from_dir else settings.seeds_dir
    if not source_dir.is_dir():
        raise RagError(f"{source_dir}: no such folder; give --from a folder of articles")
    docs = _read_docs([source_dir])
    index = _open_index(args, create=True, check=False)
    with _progress("embedding", sys.stderr.isatty()) as progress:
        report = index.add_documents(docs, sync=True, progress=progress)
    _print_report(report, f"built {index.folder} from {source_dir}")
    return EXIT_OK


def cmd_add(args: argparse.Namespace) -> int:
    """rag add PATH..."""
    docs = _read_docs([Path(p) for p in args.paths])
    index = _open_index(args, create=True)
    with _progress("embedding", sys.stderr.isatty()) as progress:
        report = index.add_documents(docs, progress=progress)
    _print_report(report, "add")
    return EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    """rag remove SOURCE..."""
    index = _open_index(args)
    report = index.remove(args.sources)
    print(f"removed {len(report.removed)}: {', '.join(report.removed)}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    """rag list"""
    index = _open_index(args)
    docs = index._require_store().list_documents()
    if args.json:
        print(json.dumps([asdict(d) for d in docs], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not docs:
        print("the index is empty: add articles with 'rag add PATH'")
    for d in docs:
        print(f"{d.source}\t{d.published or '-'}\t{d.chunks} chunks\t{d.title or '(no title)'}")
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    """rag search QUERY"""
    from rag.retrieval import Filters, Retriever

    index = _open_index(args)
    filters = Filters(tuple(args.source or ()), args.date_from, args.date_to)
    hits = Retriever(index).search(args.query, args.top_k, mode=args.mode, filters=filters)
    if args.json:
        print(json.dumps([asdict(h) for h in hits], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not hits:
        print("no matching passages")
    for rank, h in enumerate(hits, start=1):
        scores = f"score {h.score:.4f}"
        if h.dense_score is not None:
            scores += f" cos {h.dense_score:.3f}"
        if h.bm25_score is not None:
            scores += f" bm25 {h.bm25_score:.2f}"
        print(f"{rank}. {h.source} [{h.start}:{h.end}] {scores}")
        print(f"   {h.text[:300]}{'…' if len(h.text) > 300 else ''}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="rag", description="Offline question answering over news articles, with sources."
    )
    parser.add_argument("--index", help="index folder (default: $RAG_INDEX_DIR or index/)")
    sub = parser.add_subparsers(dest="command", required=True)

    idx = sub.add_parser("index", help="build the index")
    idx_sub = idx.add_subparsers(dest="index_command", required=True)
    build = idx_sub.add_parser("build", help="build the index from a folder of articles")
    build.add_argument("--from", dest="from_dir", help="folder of articles (default: seeds/)")
    build.set_defaults(func=cmd_index_build)

    add = sub.add_parser("add", help="add or update articles (files or folders)")
    add.add_argument("paths", nargs="+")
    add.set_defaults(func=cmd_add)

    rm = sub.add_parser("remove", help="remove articles by source id")
    rm.add_argument("sources", nargs="+")
    rm.set_defaults(func=cmd_remove)

    ls = sub.add_parser("list", help="list indexed articles")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)

    search = sub.add_parser("search", help="rank passages for a query (no reader)")
    search.add_argument("query")
    search.add_argument("--top-k", type=int, default=5)
    search.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default="hybrid")
    search.add_argument("--source", action="append", help="only this article (repeatable)")
    search.add_argument("--date-from", help="only articles published on or after YYYY-MM-DD")
    search.add_argument("--date-to", help="only articles published on or before YYYY-MM-DD")
    search.add_argument("--json", action="store_true")
    search.set_defaults(func=cmd_search)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `rag` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except RagError as exc:
        _err(str(exc))
        return EXIT_USER
    except KeyboardInterrupt:
        _err("interrupted; the index keeps its last complete state")
        return 130


if __name__ == "__main__":
    sys.exit(main())
