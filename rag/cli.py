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
# The same names as rag.pipeline.READERS, spelled out so `rag --help` loads no models.
READERS = ("extractive", "rules", "generative", "hybrid")


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
    url = getattr(args, "database_url", None)
    if getattr(args, "index", None):
        if url:
            raise RagError("give either --index DIR (the embedded index folder) or "
                           "--database-url URL (PostgreSQL), not both")
        overrides["index_dir"] = Path(args.index)
        overrides["database_url"] = None  # an explicit folder beats RAG_DATABASE_URL
    if url:
        from rag.pipeline import check_database_url

        overrides["database_url"] = check_database_url(url)
    return Settings(**overrides)


# Index handles a command opened, closed when it ends (a database handle holds a pool).
_OPENED: list[Any] = []


def _opened(index: Any) -> Any:
    """Remember `index` so `main` closes it when the command ends."""
    _OPENED.append(index)
    return index


def _open_index(args: argparse.Namespace, *, create: bool = False, check: bool = True) -> Any:
    from rag.pipeline import make_index

    return _opened(make_index(_settings(args)).open(create=create, check_config=check))


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


def _read_articles(paths: Sequence[Path], overrides: Any = None) -> list[tuple[Path, Any]]:
    """Read every article first, so one bad file stops the batch before any write."""
    from rag.documents import collect_paths, read_document

    problems: list[str] = []
    docs = []
    for path in collect_paths(paths):
        try:
            doc = read_document(path)
            docs.append((path, overrides.apply(doc) if overrides else doc))
        except RagError as exc:
            problems.append(str(exc))
    if problems:
        raise RagError("; ".join(problems) + " (nothing was changed)")
    return docs


def _read_docs(paths: Sequence[Path]) -> list[Any]:
    """The articles at these paths (files or folders), all read before anything is written."""
    return [doc for _, doc in _read_articles(paths)]


def _overrides(args: argparse.Namespace) -> Any:
    """`rag add --title/--published/--url`, checked before anything is read or written."""
    from rag.documents import Overrides

    given = [f"--{name}" for name in ("title", "published", "url") if getattr(args, name, None)
             is not None]
    if not given:
        return None
    if len(args.paths) != 1 or Path(args.paths[0]).is_dir():
        what = f"{len(args.paths)} paths were given" if len(args.paths) != 1 else (
            f"{args.paths[0]} is a folder")
        raise RagError(f"{'/'.join(given)} can only be used with a single file, but {what}; "
                       "give one file, e.g. rag add --published 2026-02-25 article.txt")
    return Overrides.checked(title=args.title, published=args.published, url=args.url,
                             prefix="--")


def _note_undated(articles: Sequence[tuple[Path, Any]]) -> None:
    """One line per article without a date, saying how to give it one."""
    import shlex

    from rag.documents import missing_date_hint

    for path, doc in articles:
        if doc.published is None:
            print(f"note: {doc.source} has no date in its header; "
                  f"{missing_date_hint(doc.source)}, or use "
                  f"rag add --published YYYY-MM-DD {shlex.quote(str(path))}", file=sys.stderr)


def cmd_index_build(args: argparse.Namespace) -> int:
    """rag index build [--from DIR]"""
    settings = _settings(args)
    source_dir = Path(args.from_dir) if args.from_dir else settings.seeds_dir
    if not source_dir.is_dir():
        raise RagError(f"{source_dir}: no such folder; give --from a folder of articles")
    articles = _read_articles([source_dir])
    index = _open_index(args, create=True, check=False)
    with _progress("embedding", sys.stderr.isatty()) as progress:
        report = index.add_documents([d for _, d in articles], sync=True, progress=progress)
    _print_report(report, f"built {index.location} from {source_dir}")
    _note_undated(articles)
    return EXIT_OK


def cmd_add(args: argparse.Namespace) -> int:
    """rag add [--title T] [--published YYYY-MM-DD] [--url U] PATH..."""
    overrides = _overrides(args)
    articles = _read_articles([Path(p) for p in args.paths], overrides)
    index = _open_index(args, create=True)
    with _progress("embedding", sys.stderr.isatty()) as progress:
        report = index.add_documents([d for _, d in articles], progress=progress)
    _print_report(report, "add")
    _note_undated(articles)
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
    docs = index.list_documents()
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


def cmd_ask(args: argparse.Namespace) -> int:
    """rag ask QUESTION"""
    from rag.pipeline import make_qa

    qa = make_qa(_settings(args), reader=args.reader)
    _opened(qa.index)
    answer = qa.ask(args.question, args.top_k)
    if args.json:
        print(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
        return EXIT_OK
    if answer.answer is None:
        print(f"Not in the articles (confidence {answer.confidence:.2f}).")
    else:
        print(f"{answer.answer}   (confidence {answer.confidence:.2f})")
    for c in answer.citations:
        print(f"  [{c.source} {c.start}:{c.end}] {c.title or ''} {c.published or ''}".rstrip())
        print(f"    \"{c.quote}\"")
    t = answer.timings_ms
    rerank = f", rerank {t['rerank']:.0f}" if t.get("rerank") else ""
    print(f"  ({t.get('total', 0):.0f} ms: retrieve {t.get('retrieve', 0):.0f}{rerank}, "
          f"read {t.get('read', 0):.0f})")
    return EXIT_OK


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = ("answer.em", "answer.f1", "overall.f1", "abstention.f1", "citation.precision",
            "citation.recall", "retrieval.recall@1", "retrieval.recall@5", "retrieval.mrr",
            "latency_ms.p50", "latency_ms.p95")
    return {k: metrics.get(k) for k in keys}


def _distractor_sweep(args: argparse.Namespace, settings: Any, index: Any, qa: Any, gold: Any,
                      baseline: dict[str, Any], docs: Any) -> list[dict[str, Any]]:
    """`rag eval --distractors`: the gold metrics with 0, 100, 1,000 … distractors added."""
    from rag.bench.distractors import sweep
    from rag.evaluation import evaluate
    from rag.pipeline import make_index, make_qa

    def score(other: Any) -> dict[str, Any]:
        each = make_qa(settings, reader=qa.reader.name, index=other)
        each.calibration = qa.calibration
        with _progress(f"evaluating with {other.store.counts()[0]} articles",
                       sys.stderr.isatty()) as progress:
            return dict(evaluate(each, gold, progress=progress).metrics)

    return sweep(index, args.distractors, baseline, score,
                 lambda folder: make_index(settings, index_dir=folder), docs,
                 corpus=Path(args.distractor_corpus))


def _distractor_sizes(text: str) -> list[int]:
    """argparse type for --distractors (the error names the option and a valid value)."""
    from rag.bench.distractors import parse_sizes

    try:
        return parse_sizes(text)
    except RagError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_eval(args: argparse.Namespace) -> int:
    """rag eval"""
    from contextlib import ExitStack

    from rag.evaluation import (
        OFF_TOPIC,
        document_texts,
        evaluate,
        fit,
        load_gold_files,
        scratch_copy,
        split_by_file,
    )
    from rag.pipeline import make_index, make_qa
    from rag.report import format_table, write_report

    settings = _settings(args)
    gold_paths = [Path(p) for p in args.gold] if args.gold else sorted(Path("eval/gold").glob(
        "*.jsonl"))
    if not gold_paths:
        raise RagError("no gold files: give --gold FILE or put *.jsonl files in eval/gold/")
    gold = load_gold_files(gold_paths)
    distractor_docs: list[Any] = []
    if args.distractors is not None:  # a bad count fails now, not after the first run
        from rag.bench.distractors import corpus_for

        distractor_docs = corpus_for(args.distractors, Path(args.distractor_corpus))
    out = Path(args.out)
    if args.fit_calibration and "extractive" in ([args.reader or settings.reader] + (
            list(READERS) if args.compare else [])):
        raise RagError(
            "the extractive (learned) reader's calibration is fitted on held-out SQuAD "
            "articles by 'rag train-reader', never on gold questions; use --fit-calibration "
            "only with --reader rules, generative or hybrid (and without --compare)"
        )
    with ExitStack() as stack:
        if args.add:
            docs = _read_docs([Path(p) for p in args.add])
            base = _opened(make_index(settings).open())
            folder = stack.enter_context(scratch_copy(base))
            base.close()
            index = _opened(make_index(settings, index_dir=folder).open())
            index.add_documents(docs)
            print(f"scored on a temporary copy of the index with {len(docs)} article(s) added")
        else:
            index = _opened(make_index(settings).open())
        readers = [args.reader or settings.reader]
        if args.compare:
            readers = list(dict.fromkeys(readers + list(READERS)))
        qas = {}
        for name in readers:
            try:
                qas[name] = make_qa(settings, reader=name, index=index)
            except RagError as exc:
                _err(f"reader {name} unavailable: {exc}")
        qa = qas[readers[0]]
        rotated: dict[str, dict[str, Any]] = {}
        if args.fit_calibration:
            for name, each in qas.items():
                with _progress(f"fitting {name}", sys.stderr.isatty()) as progress:
                    off_topic = load_gold_files([OFF_TOPIC]) if OFF_TOPIC.exists() else []
                    fitted = fit(each, gold, off_topic=off_topic, progress=progress)
                calibration = fitted.calibration
                calibration.save(name, settings.calibration_file or None)
                each.calibration = calibration
                if fitted.rotated:
                    rotated[name] = _headline(fitted.rotated)
                print(f"calibration for {name} fitted ({calibration.fitted_on}); threshold "
                      f"{calibration.threshold:.3f}; saved")
        with _progress("evaluating", sys.stderr.isatty()) as progress:
            run = evaluate(qa, gold, progress=progress)
        metrics = dict(run.metrics)
        texts = document_texts(index, gold)
        per_file = split_by_file(gold, run, gold_paths, texts)
        metrics["files"] = {k: _headline(v) for k, v in per_file.items()}
        metrics["splits"] = {k: _headline(v) for k, v in run.splits.items()}
        if qa.reader.name in rotated:
            # Every quarter held out once, each scored by a calibration fitted without it.
            metrics["splits"]["rotated"] = rotated[qa.reader.name]
        if args.distractors is not None:
            metrics["distractors"] = _distractor_sweep(args, settings, index, qa, gold, metrics,
                                                       distractor_docs)
        metrics["reader"] = qa.reader.name
        metrics["reader_model"] = getattr(qa.reader, "model_id", None)
        metrics["calibration"] = qa.calibration.fitted_on
        metrics["reranker"] = qa.reranker.model_id if qa.reranker else None
        notes = [
            f"reader: {qa.reader.name}; retrieval: hybrid (dense + BM25, convex fusion)"
            + (f", cross-encoder rerank of the top {qa.reranker.depth} ({qa.reranker.when})"
               if qa.reranker else ""),
            f"abstention calibration: {qa.calibration.fitted_on} "
            f"(threshold {qa.calibration.threshold:.3f})",
            f"gold: {', '.join(str(p) for p in gold_paths)} ({len(gold)} questions)",
        ]
        split_rows = [{"split": k, **v} for k, v in metrics["splits"].items()]
        columns = ["split", "answer.f1", "overall.f1", "abstention.f1", "citation.precision",
                   "retrieval.recall@5"]
        notes.append("fitted vs held-out quarter (rotated: each quarter held out in turn, "
                     "scored by a calibration fitted on the other three):\n\n"
                     + format_table(split_rows, columns))
        write_report(metrics, out, "rag eval", notes)
        rows = [{"run": f"{qa.reader.name} / hybrid", **_headline(metrics)}]
        rows += [{"run": f"{qa.reader.name} / hybrid [{k}]", **v}
                 for k, v in metrics["files"].items()]
        if args.compare:
            for mode in ("dense", "bm25"):
                other = evaluate(qa, gold, mode=mode)
                rows.append({"run": f"{qa.reader.name} / {mode}", **_headline(other.metrics)})
            for name, other_qa in qas.items():
                if name == qa.reader.name:
                    continue
                with _progress(f"evaluating {name}", sys.stderr.isatty()) as progress:
                    other = evaluate(other_qa, gold, progress=progress)
                rows.append({"run": f"{name} / hybrid", **_headline(other.metrics)})
                rows += [{"run": f"{name} / hybrid [{k}]", **_headline(v)}
                         for k, v in split_by_file(gold, other, gold_paths, texts).items()]
            (out / "compare.md").write_text(
                format_table(rows, ["run", *_headline(metrics)]) + "\n", encoding="utf-8"
            )
        print(format_table(rows, ["run", *_headline(metrics)]))
        print()
        print(format_table(split_rows, columns))
        if args.distractors is not None:
            print(f"\ngold set with distractor articles added ({args.distractor_corpus}):\n")
            print(format_table(metrics["distractors"], list(metrics["distractors"][0])))
        print(f"\nwrote {out}/metrics.json, report.md, report.png")
        failures = []
        if args.min_recall5 is not None and metrics["retrieval.recall@5"] < args.min_recall5:
            failures.append(f"retrieval.recall@5 {metrics['retrieval.recall@5']:.3f} < "
                            f"{args.min_recall5}")
        if args.min_f1 is not None and metrics["answer.f1"] < args.min_f1:
            failures.append(f"answer.f1 {metrics['answer.f1']:.3f} < {args.min_f1}")
        if failures:
            raise RagError("regression gate failed: " + "; ".join(failures))
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    """rag serve"""
    from api.server import run

    settings = _settings(args)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    run(settings.model_copy(update=overrides))
    return EXIT_OK


def cmd_train_reader(args: argparse.Namespace) -> int:
    """rag train-reader"""
    from rag.reading.build import ship, train_reader
    from rag.reading.train import TrainConfig

    if args.epochs <= 0:
        raise RagError(f"--epochs must be positive, not {args.epochs}")
    cfg = TrainConfig(seed=args.seed, epochs=args.epochs, limit=args.limit,
                      max_steps=args.max_steps, encoder=args.encoder)
    report = train_reader(Path(args.data), Path(args.out), cfg,
                          calib_questions=args.calib_questions,
                          checkpoint_every=args.checkpoint_every,
                          news=tuple(Path(p) for p in args.news or ()),
                          index_dir=Path(args.index) if args.index else None,
                          log=lambda m: print(m, flush=True))
    val = report["heldout_int8"]["val"]
    print(f"held-out SQuAD (val articles, int8): answerable F1 {val['has_answer_f1']:.3f}, "
          f"overall F1 {val['overall_f1']:.3f}; model card: {Path(args.out) / 'model'}")
    if args.ship:
        ship(Path(args.out))
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    """rag migrate --to URL"""
    from rag.backends.migrate import migrate
    from rag.pipeline import check_database_url

    settings = _settings(args)
    counts = migrate(settings.index_dir, check_database_url(args.to),
                     progress=lambda m: print(m, file=sys.stderr))
    print(f"migrated {settings.index_dir} to {counts.pop('location')}: "
          + ", ".join(f"{v} {k}" for k, v in counts.items())
          + " (counts verified, nothing re-embedded)")
    return EXIT_OK


_DATABASE_HELP = ("PostgreSQL + pgvector instead of the index folder, e.g. "
                  "postgresql://rag:secret@db:5432/rag (default: $RAG_DATABASE_URL)")


def _database_option(parser: argparse.ArgumentParser, *, on_command: bool = True) -> None:
    """--database-url, as a global option and again on the commands that use the index."""
    # On a command, SUPPRESS keeps an unset option from hiding the global one.
    default = argparse.SUPPRESS if on_command else None
    parser.add_argument("--database-url", metavar="URL", default=default, help=_DATABASE_HELP)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    from rag.reading.encoders import DEFAULT as DEFAULT_ENCODER
    from rag.reading.encoders import ENCODERS

    parser = argparse.ArgumentParser(
        prog="rag", description="Offline question answering over news articles, with sources."
    )
    parser.add_argument("--index", help="index folder (default: $RAG_INDEX_DIR or index/)")
    _database_option(parser, on_command=False)
    sub = parser.add_subparsers(dest="command", required=True)

    idx = sub.add_parser("index", help="build the index")
    idx_sub = idx.add_subparsers(dest="index_command", required=True)
    build = idx_sub.add_parser("build", help="build the index from a folder of articles")
    build.add_argument("--from", dest="from_dir", help="folder of articles (default: seeds/)")
    _database_option(build)
    build.set_defaults(func=cmd_index_build)

    add = sub.add_parser("add", help="add or update articles (files or folders)")
    add.add_argument("paths", nargs="+")
    add.add_argument("--title", help="the article's title, instead of its header's (one file)")
    add.add_argument("--published", metavar="YYYY-MM-DD",
                     help="the article's publication date, instead of its header's (one file)")
    add.add_argument("--url", help="the article's web address, instead of its header's (one file)")
    _database_option(add)
    add.set_defaults(func=cmd_add)

    rm = sub.add_parser("remove", help="remove articles by source id")
    rm.add_argument("sources", nargs="+")
    _database_option(rm)
    rm.set_defaults(func=cmd_remove)

    ls = sub.add_parser("list", help="list indexed articles")
    ls.add_argument("--json", action="store_true")
    _database_option(ls)
    ls.set_defaults(func=cmd_list)

    search = sub.add_parser("search", help="rank passages for a query (no reader)")
    search.add_argument("query")
    search.add_argument("--top-k", type=int, default=5)
    search.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default="hybrid")
    search.add_argument("--source", action="append", help="only this article (repeatable)")
    search.add_argument("--date-from", help="only articles published on or after YYYY-MM-DD")
    search.add_argument("--date-to", help="only articles published on or before YYYY-MM-DD")
    search.add_argument("--json", action="store_true")
    _database_option(search)
    search.set_defaults(func=cmd_search)

    ask = sub.add_parser("ask", help="answer a question with cited passages")
    ask.add_argument("question")
    ask.add_argument("--top-k", type=int, default=None, help="passages to show (1-100)")
    ask.add_argument("--reader", choices=list(READERS), default=None)
    ask.add_argument("--json", action="store_true", help="print the Answer JSON")
    _database_option(ask)
    ask.set_defaults(func=cmd_ask)

    ev = sub.add_parser("eval", help="score answers against gold Q&A files")
    ev.add_argument("--gold", nargs="+", help="gold JSONL files (default: eval/gold/*.jsonl)")
    ev.add_argument("--out", default="eval/out", help="report folder (default: eval/out)")
    ev.add_argument("--reader", choices=list(READERS), default=None)
    ev.add_argument("--compare", action="store_true",
                    help="also run dense, BM25 and every reader; print one table")
    ev.add_argument("--add", nargs="+", metavar="PATH",
                    help="add these articles to a temporary copy of the index first")
    ev.add_argument("--fit-calibration", action="store_true",
                    help="refit the rules/generative/hybrid calibration on 3/4 of the gold "
                    "questions (never the learned reader's)")
    ev.add_argument("--distractors", type=_distractor_sizes, metavar="N,N,…",
                    help="also score the gold set with the first N distractor articles of "
                    "eval/distractors/squad.jsonl added to a temporary copy (e.g. 0,100,1000)")
    ev.add_argument("--distractor-corpus", default="eval/distractors/squad.jsonl",
                    metavar="JSONL",
                    help="distractor articles, hardest first (default: %(default)s)")
    ev.add_argument("--min-recall5", type=float, help="fail (exit 1) below this recall@5")
    ev.add_argument("--min-f1", type=float, help="fail (exit 1) below this answer F1")
    _database_option(ev)
    ev.set_defaults(func=cmd_eval)

    tr = sub.add_parser("train-reader", help="train the span reader on SQuAD (resumable)")
    tr.add_argument("--data", required=True, help="folder with SQuAD dev-v1.1/dev-v2.0 JSON")
    tr.add_argument("--out", required=True, help="run folder (checkpoints, model, report)")
    tr.add_argument("--epochs", type=float, default=2.0)
    tr.add_argument("--seed", type=int, default=13)
    tr.add_argument("--encoder", default=DEFAULT_ENCODER, choices=sorted(ENCODERS),
                    help="pretrained encoder to start from (see rag/reading/encoders.py)")
    tr.add_argument("--limit", type=int, default=0, help="train on N questions only (smoke)")
    tr.add_argument("--max-steps", type=int, default=0,
                    help="stop after N steps; the learning-rate schedule still spans --epochs")
    tr.add_argument("--calib-questions", type=int, default=0,
                    help="cap calib/val questions run through the pipeline (0 = all)")
    tr.add_argument("--checkpoint-every", type=int, default=200, metavar="STEPS")
    tr.add_argument("--news", nargs="+", metavar="GOLD",
                    help="development questions over the articles of --index that the "
                    "calibration also learns from (never the gold or blind sets)")
    tr.add_argument("--ship", action="store_true",
                    help="copy the finished model and calibration into the rag package")
    tr.set_defaults(func=cmd_train_reader)

    serve = sub.add_parser("serve", help="run the HTTP API and web page")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    _database_option(serve)
    serve.set_defaults(func=cmd_serve)

    mig = sub.add_parser("migrate", help="copy the index folder into PostgreSQL (no re-embedding)")
    mig.add_argument("--to", required=True, metavar="URL",
                     help="an empty PostgreSQL database with pgvector, postgresql://…")
    mig.set_defaults(func=cmd_migrate)

    try:
        from rag.bench import add_bench_parser
    except ImportError:
        pass
    else:
        add_bench_parser(sub)
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
    finally:
        while _OPENED:
            _OPENED.pop().close()


if __name__ == "__main__":
    sys.exit(main())
