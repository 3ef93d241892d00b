"""`rag migrate --to URL`: the embedded index copied into PostgreSQL, nothing re-embedded."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.backends.migrate import migrate
from rag.cli import main
from rag.documents import Document, read_document
from rag.errors import RagError
from rag.retrieval import Retriever
from tests.fakes import FakeEmbedder, fake_index, fake_pg_index

SEEDS = Path(__file__).resolve().parents[2] / "seeds"


def test_migrate_copies_vectors_and_verifies_counts(tmp_path: Path, pg_url: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "index"
    embedded = fake_index(folder)
    docs = [read_document(p) for p in sorted(SEEDS.iterdir()) if p.is_file()]
    embedded.add_documents(docs)
    counts = embedded.check_consistency()
    embedded.close()

    assert main(["--index", str(folder), "migrate", "--to", pg_url]) == 0
    out = capsys.readouterr().out
    assert f"{counts['documents']} documents, {counts['chunks']} chunks" in out
    assert "counts verified, nothing re-embedded" in out

    embedder = FakeEmbedder()
    pg = fake_pg_index(pg_url, embedder=embedder, create=False)
    assert pg.check_consistency() == counts
    embedded = fake_index(folder, create=False)
    for query in ("critical technology", "industry chain in the northern region"):
        want = [(h.id, h.chunk_id) for h in Retriever(embedded).search(query, 5, mode="dense")]
        assert [(h.id, h.chunk_id) for h in Retriever(pg).search(query, 5, mode="dense")] == want
    embedder.embedded.clear()
    assert pg.add_documents(docs).chunks_embedded == 0 and not embedder.embedded
    added = pg.add_documents([Document(source="new.txt", text="A ferry sailed at dawn.")])
    new_ids = [h.id for h in Retriever(pg).search("ferry dawn", 1, mode="bm25")]
    assert added.added == ["new.txt"] and new_ids[0] > counts["chunks"]
    pg.close()

    with pytest.raises(RagError, match="already holds an index of 3 articles"):
        migrate(folder, pg_url)


def test_migrate_refuses_a_missing_index_and_a_bad_url(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--index", str(tmp_path / "none"), "migrate", "--to",
                 "postgresql://x@127.0.0.1:1/x"]) == 1
    assert "no index at" in capsys.readouterr().err
    assert main(["migrate", "--to", "mysql://x"]) == 1
    assert "must start with postgresql://" in capsys.readouterr().err
