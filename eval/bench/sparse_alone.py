"""BM25 alone at N chunks: segmented build, one-article adds/removal, search, segment files.

Run from the repo root: `.venv/bin/python eval/bench/sparse_alone.py 1000000` (prints JSON).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rag.bench.measure import gold_questions, repo_root
from rag.bench.standins import ParagraphChunker, docs_for_chunks
from rag.bench.synth import SyntheticCorpus
from rag.sparse import SparseIndex


def main(n: int) -> dict[str, object]:
    """Measure the BM25 side of the index at about `n` synthetic chunks."""
    chunker = ParagraphChunker()
    t = time.time()
    docs, _ = docs_for_chunks(n, 0, chunker.chunk)
    texts = [c.text for d in docs for c in chunker.chunk(d)]
    del docs
    ids = np.arange(len(texts), dtype=np.int64)
    out: dict[str, object] = {"chunks": len(texts), "synth_s": round(time.time() - t, 1)}
    t = time.time()
    index = SparseIndex.build(ids, texts)
    out["build_s"] = round(time.time() - t, 2)
    folder = Path(tempfile.mkdtemp(prefix="sparse-alone-"))
    try:
        t = time.time()
        index.save(folder, 1)
        out["save_whole_s"] = round(time.time() - t, 2)
        corpus, adds, saves, next_id = SyntheticCorpus(0), [], [], len(texts)
        for j in range(3):
            chunks = [c.text for c in chunker.chunk(corpus.document(10_000_000 + j))]
            new = np.arange(next_id, next_id + len(chunks))
            next_id += len(chunks)
            t = time.perf_counter()
            index = index.with_changes([], new, chunks)
            adds.append(round((time.perf_counter() - t) * 1000, 2))
            t = time.perf_counter()
            index.save(folder, 2 + j)
            saves.append(round((time.perf_counter() - t) * 1000, 2))
        t = time.perf_counter()
        index = index.with_changes(list(range(100, 105)), np.zeros(0, dtype=np.int64), [])
        out.update(add_ms=adds, add_save_ms=saves, segments=len(index.segments),
                   remove_ms=round((time.perf_counter() - t) * 1000, 2))
        questions = gold_questions(repo_root())
        questions = [questions[i % len(questions)] for i in range(200)]
        for q in questions[:20]:
            index.search(q, 50)
        lat = []
        for q in questions:
            t = time.perf_counter()
            index.search(q, 50)
            lat.append(time.perf_counter() - t)
        out["search_top50_ms"] = {"p50": round(float(np.percentile(lat, 50)) * 1000, 3),
                                  "p95": round(float(np.percentile(lat, 95)) * 1000, 3)}
        entry = json.loads(json.dumps(index.save(folder, 9)))
        t = time.time()
        SparseIndex.load(folder, entry)
        out["load_s"] = round(time.time() - t, 2)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)))
