"""Distractor articles: does retrieval (and the answer) hold when the corpus grows?

The gold questions are asked of the seed articles alone, which flatters retrieval: a real
newsroom corpus holds hundreds to thousands of articles on overlapping topics. The
distractor corpus (`eval/distractors/squad.jsonl`) is built from the Wikipedia paragraphs
of SQuAD 1.1 dev (CC BY-SA 4.0, Rajpurkar et al. 2016): consecutive paragraphs of one
Wikipedia article become one distractor article, and the articles are ordered by how close
they come to the *seed articles* (max cosine of the article to any seed chunk), so the
first N are the hardest N. They were never written from the seeds (unlike recombined seed
sentences, which manufacture near-duplicate evidence) and never chosen by looking at a
gold question.

`rag eval --distractors 0,100,1000` scores the gold set on temporary copies of the index
with the first N distractors added; the copy with all of them is cached under
`~/.cache/rag/distractors/` (or `$RAG_CACHE_DIR/distractors/`), keyed by the index and
the corpus file, so the articles are embedded once per machine, not once per run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from rag.documents import Document
from rag.errors import RagError
from rag.index import Index, copy_folder
from rag.reading.llm_process import cache_dir

CORPUS = Path("eval/distractors/squad.jsonl")
PER_ARTICLE = 2  # Wikipedia paragraphs per distractor article (~1,500 characters)


def parse_sizes(text: str) -> list[int]:
    """`0,100,1000` -> [0, 100, 1000]; a clear error for anything else."""
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise RagError(
            f"--distractors {text!r}: give comma-separated article counts, e.g. 0,100,1000"
        ) from None
    if not sizes or any(n < 0 for n in sizes):
        raise RagError(f"--distractors {text!r}: counts must be 0 or more, e.g. 0,100,1000")
    return sorted(set(sizes))


def load_corpus(path: Path = CORPUS) -> list[Document]:
    """The distractor articles in their stored (hardest-first) order."""
    if not path.exists():
        raise RagError(
            f"{path}: no distractor corpus; build it with "
            "python -m rag.bench.distractors --squad ../shared/data/squad"
        )
    docs = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RagError(f"{path}:{n}: not JSON ({exc.msg}); rebuild the corpus") from None
        try:
            docs.append(Document(source=row["file"], text=row["text"], title=row.get("title"),
                                 url=row.get("url"), outlet=row.get("outlet")))
        except (KeyError, TypeError, RagError) as exc:
            raise RagError(f"{path}:{n}: not a distractor article ({exc}); rebuild the "
                           "corpus") from None
    return docs


def candidate_articles(squad_dir: Path) -> list[dict[str, Any]]:
    """Consecutive SQuAD dev paragraphs grouped into articles (title, url, text)."""
    path = squad_dir / "dev-v1.1.json"
    if not path.exists():
        raise RagError(f"{path}: not found; give the folder holding SQuAD dev-v1.1.json")
    out = []
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        title = article["title"].replace("_", " ")
        slug = "".join(ch if ch.isalnum() else "-" for ch in article["title"].lower())
        paragraphs = [p["context"].strip() for p in article["paragraphs"]]
        for part, i in enumerate(range(0, len(paragraphs), PER_ARTICLE), 1):
            out.append({
                "file": f"squad-{slug}-{part:03d}.txt",
                "title": f"{title} ({part})",
                "url": f"https://en.wikipedia.org/wiki/{article['title']}",
                "outlet": "Wikipedia (SQuAD 1.1 dev, CC BY-SA 4.0)",
                "text": "\n\n".join(paragraphs[i : i + PER_ARTICLE]),
            })
    return out


def rank_by_seed_similarity(
    candidates: list[dict[str, Any]], seed_vectors: np.ndarray, embed: Any
) -> list[dict[str, Any]]:
    """Candidates, closest to any seed chunk first (ties by source, so the order is fixed)."""
    vectors = embed([c["text"] for c in candidates])
    closeness = (vectors @ seed_vectors.T).max(axis=1)
    order = sorted(range(len(candidates)), key=lambda i: (-float(closeness[i]),
                                                          candidates[i]["file"]))
    return [{**candidates[i], "closeness": round(float(closeness[i]), 4)} for i in order]


def cache_key(index: Index, corpus: Path) -> str:
    """Identifies a cached distractor index: the base index's articles and config + corpus."""
    store = index.store
    assert store is not None
    digest = hashlib.sha256()
    digest.update(store.corpus_hash().encode())
    digest.update(json.dumps(index.config(), sort_keys=True).encode())
    digest.update(hashlib.sha256(corpus.read_bytes()).digest())
    return digest.hexdigest()[:16]


def _import_vectors(store_file: Path, donors: Sequence[Path]) -> None:
    """Reuse vectors from older cached copies, so a changed base index embeds nothing twice."""
    conn = sqlite3.connect(store_file)
    try:
        for donor in donors:
            conn.execute("ATTACH DATABASE ? AS donor", (str(donor),))
            with conn:
                conn.execute("INSERT OR IGNORE INTO vectors SELECT * FROM donor.vectors")
                conn.execute(
                    "INSERT OR IGNORE INTO sentence_vectors SELECT * FROM donor.sentence_vectors"
                )
            conn.execute("DETACH DATABASE donor")
    finally:
        conn.close()


def full_index(base: Index, docs: Sequence[Document], corpus: Path, make: Any,
               cache: Path | None = None) -> Path:
    """The cached folder holding the base index plus every distractor (built on first use).

    `make(folder)` returns an unopened Index over `folder` configured like `base`.
    """
    cache = cache or cache_dir() / "distractors"
    key = cache_key(base, corpus)
    target = cache / key
    if (target / "complete").exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    building = cache / f"{key}.building"
    shutil.rmtree(building, ignore_errors=True)
    copy_folder(base.folder, building)
    donors = [p / "store.sqlite" for p in cache.iterdir()
              if p.is_dir() and (p / "complete").exists()]
    _import_vectors(building / "store.sqlite", donors)
    index = make(building).open()
    print(f"embedding {len(docs)} distractor articles once (cached in {target})",
          file=sys.stderr)
    index.add_documents(docs)
    index.close()
    (building / "complete").write_text("ok\n")
    shutil.rmtree(target, ignore_errors=True)
    building.rename(target)  # readers only ever see a complete folder
    for old in donors:  # one cached copy per machine is enough
        if old.parent != target:
            shutil.rmtree(old.parent, ignore_errors=True)
    return target


@contextmanager
def with_distractors(full: Path, docs: Sequence[Document], n: int, make: Any,
                     scratch: Path) -> Iterator[Index]:
    """An open index on a scratch copy of `full` keeping only the first `n` distractors."""
    folder = scratch / f"n{n}"
    copy_folder(full, folder)
    index = make(folder).open()
    drop = [d.source for d in docs[n:]]
    if drop:
        index.remove(drop)
    try:
        yield index
    finally:
        index.close()
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Build eval/distractors/squad.jsonl from SQuAD dev, ranked against the seed index."""
    from rag.pipeline import make_index
    from rag.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m rag.bench.distractors",
                                     description=main.__doc__)
    parser.add_argument("--squad", type=Path, required=True, help="folder with dev-v1.1.json")
    parser.add_argument("--out", type=Path, default=CORPUS)
    parser.add_argument("--count", type=int, default=1000, help="articles to keep")
    args = parser.parse_args(argv)
    settings = get_settings()
    index = make_index(settings, index_dir=settings.index_dir).open()  # the folder's vectors
    assert isinstance(index, Index)
    store = index.store
    assert store is not None
    seeds = np.vstack([v for _, v in store.iter_vectors(index.embedder.dim)])
    ranked = rank_by_seed_similarity(candidate_articles(args.squad), seeds,
                                     index.embedder.embed)[: args.count]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as fh:
        for row in ranked:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{args.out}: {len(ranked)} articles; closeness "
          f"{ranked[0]['closeness']:.3f} (first) .. {ranked[-1]['closeness']:.3f} (last)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


SWEEP_KEYS = ("retrieval.recall@1", "retrieval.recall@5", "retrieval.mrr", "answer.f1",
              "abstention.f1", "citation.precision", "latency_ms.p50", "latency_ms.p95",
              "reranked.share")


def corpus_for(sizes: Sequence[int], corpus: Path = CORPUS) -> list[Document]:
    """The distractor articles, checked to hold at least max(sizes) of them."""
    docs = load_corpus(corpus)
    if max(sizes) > len(docs):
        raise RagError(f"--distractors {max(sizes)}: {corpus} holds only {len(docs)} articles; "
                       f"ask for at most {len(docs)}")
    return docs


def sweep(base: Any, sizes: Sequence[int], baseline: dict[str, Any], score: Any,
          make: Any, docs: Sequence[Document], corpus: Path = CORPUS,
          cache: Path | None = None) -> list[dict[str, Any]]:
    """One row per distractor count: corpus size and the gold metrics on that corpus.

    `baseline` holds the metrics of the run on `base` itself (the N = 0 row); `score(index)`
    evaluates the gold set on another index and returns its metrics; `make(folder)` returns
    an unopened Index over `folder` configured like `base`; `docs` is `corpus_for(sizes,
    corpus)`, read once by the caller before the first run.
    """
    import tempfile

    if not isinstance(base, Index):
        raise RagError(
            f"'rag eval --distractors' scores on temporary copies of an index folder, and "
            f"{base.location} is a database; run it on the folder (before 'rag migrate')"
        )

    def row(n: int, index: Index, metrics: dict[str, Any]) -> dict[str, Any]:
        counted = index.store
        assert counted is not None
        articles, chunks = counted.counts()
        return {"distractors": n, "articles": articles, "chunks": chunks,
                **{k: metrics.get(k) for k in SWEEP_KEYS}}

    rows = [row(0, base, baseline)] if 0 in sizes else []
    wanted = [n for n in sizes if n > 0]
    if not wanted:
        return rows
    full = full_index(base, docs, corpus, make, cache)  # all of them, so one cache serves every N
    with tempfile.TemporaryDirectory(prefix="rag-distractors-") as tmp:
        for n in wanted:
            with with_distractors(full, docs, n, make, Path(tmp)) as index:
                rows.append(row(n, index, score(index)))
    return rows
