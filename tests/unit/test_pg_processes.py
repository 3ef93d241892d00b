"""PostgreSQL backend across processes: a writer SIGKILLed mid-transaction leaves the previous
state (and no stale lock); writers in several processes lose nothing; a write by one process
is searchable by another at once. Fake embedder, real server.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rag.backends.postgres import PostgresIndex
from rag.documents import Document
from rag.retrieval import Retriever
from tests.fakes import fake_pg_index, paragraphs_article

REPO = Path(__file__).resolve().parents[2]
OLD = Document(source="crash.txt", text=paragraphs_article(3, "canal"))

CHILD = r"""
import os, signal, sys
import rag.backends.postgres as pg
from rag.documents import Document
from tests.fakes import fake_pg_index, paragraphs_article

url, point = sys.argv[1], sys.argv[2]

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

def after(real):
    def wrapper(*args, **kwargs):
        result = real(*args, **kwargs)
        die()
        return result
    return wrapper

if point == "embedding":
    pg.embed_chunks = die
elif point == "vectors":
    pg._put_vectors = after(pg._put_vectors)
elif point == "chunks":
    pg._put_chunks = after(pg._put_chunks)
elif point == "before-commit":
    pg._bump = after(pg._bump)

index = fake_pg_index(url, create=False)
index.add_documents([Document(source="crash.txt", text=paragraphs_article(9, "harbour")),
                     Document(source="other.txt", text=paragraphs_article(2, "meadow"))])
print("done")
"""


def _state(index: PostgresIndex) -> tuple[int, list[tuple[str, str]], dict[str, int]]:
    docs = [(d.source, d.content_hash) for d in index.list_documents()]
    return index.generation, docs, index.check_consistency()


@pytest.mark.parametrize("point", ["embedding", "vectors", "chunks", "before-commit"])
def test_sigkill_mid_transaction_leaves_the_previous_state(pg_url: str, point: str) -> None:
    index = fake_pg_index(pg_url)
    index.add_documents([OLD])
    before = _state(index)
    proc = subprocess.run([sys.executable, "-c", CHILD, pg_url, point], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    assert _state(index) == before
    hits = Retriever(index).search("canal pipe", 3, mode="bm25")
    assert hits and all(h.source == "crash.txt" and "canal" in h.text for h in hits)
    # The dead writer's advisory lock went with its connection: the next write proceeds.
    report = index.add_documents([Document(source="new.txt", text="A ferry sailed.")],
                                 lock_timeout=10)
    assert report.added == ["new.txt"] and report.generation == before[0] + 1
    index.close()


WRITER = r"""
import sys
from rag.documents import Document
from tests.fakes import fake_pg_index

url, n = sys.argv[1], int(sys.argv[2])
index = fake_pg_index(url, create=False)
for i in range(4):
    text = f"Ferry w{n}x{i} carried {n * 100 + i} passengers. It sails to Lantern Bay daily."
    index.add_documents([Document(source=f"w{n}x{i}.txt", text=text)], lock_timeout=60)
    print(f"w{n}x{i}.txt", flush=True)
"""


def test_writers_in_several_processes_lose_nothing(pg_url: str) -> None:
    index = fake_pg_index(pg_url)
    index.add_documents([OLD])
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, pg_url, str(n)], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in range(3)]
    acknowledged = set()
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        acknowledged |= set(out.split())
    assert len(acknowledged) == 12
    assert {d.source for d in index.list_documents()} == acknowledged | {"crash.txt"}
    assert index.generation == 1 + 12
    index.check_consistency()
    # Every write is searchable here, in another process than the one that made it.
    hit = Retriever(index).search("ferry w2x3", 1, mode="bm25")[0]
    assert hit.source == "w2x3.txt"
    index.close()
