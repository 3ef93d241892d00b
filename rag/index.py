"""The index folder: durable store + derived FAISS and BM25 files + manifest + writer lock.

Write protocol (crash-safe at every instant):
1. take the writer lock (`.lock`, holds the writer's pid);
2. one SQLite transaction changes documents, chunks and vectors and bumps `generation`;
3. the derived files for that generation are written under new names, each atomically:
   `dense-<g>.faiss`, and for BM25 only what changed: one new segment
   (`bm25-seg-<name>.npz`, never rewritten afterwards) and the deleted chunk ids
   (`bm25-del-<g>-<name>.npy`);
4. `manifest.json` is replaced atomically to point at them; files neither it nor the
   previous manifest name are removed.
A crash before 2 commits leaves the old state; after it, the next open sees the manifest
lagging the store and rebuilds the derived files from stored vectors (no re-embedding).
Merging BM25 segments changes no content: the merged segment is written under a new name,
then the manifest is replaced at the same generation, so a crash leaves either list whole.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import importlib.metadata
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.atomic import write_json_atomic
from rag.chunking import Chunker
from rag.dense import AUTO_FACTORY, DenseIndex, choose_factory, layout_outgrown
from rag.documents import Document
from rag.embedding import Embedder
from rag.errors import (
    DocumentNotFound,
    IndexLocked,
    IndexNotFound,
    ManifestMismatch,
    RagError,
)
from rag.ingest import (
    ChangeReport,
    Progress,
    check_batch,
    chunk_hashes,
    embed_chunks,
    plan,
    relative_spans,
)
from rag.segments import SEGMENT_PREFIX, Segment
from rag.sparse import BM25_PARAMS, DELETED_PREFIX, SparseIndex
from rag.store import SCHEMA_VERSION, DocumentInfo, Store, StoredChunk

if TYPE_CHECKING:
    from rag.retrieval import Filters

STORE_FILE = "store.sqlite"
MANIFEST_FILE = "manifest.json"
LOCK_FILE = ".lock"
INLINE_MERGE_CHUNKS = 20_000  # merges up to this size run inside the write (tens of ms)
MERGE_LOCK_WAIT = 5.0  # a background merge waits this long for the writer lock, then retries later

Notify = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


@dataclass(frozen=True)
class Snapshot:
    """One whole generation of the derived indexes; readers hold a reference while searching."""

    generation: int
    dense: DenseIndex
    sparse: SparseIndex
    files: dict[str, Any] = field(default_factory=dict, compare=False)  # as in the manifest


@dataclass
class EmbeddedView:
    """One snapshot plus the store: the embedded backend's SearchView."""

    snapshot: Snapshot
    store: Store
    _allowed_ids: dict[Filters, np.ndarray] = field(default_factory=dict)

    @property
    def generation(self) -> int:
        """The snapshot's generation."""
        return self.snapshot.generation

    def _allowed(self, filters: Filters | None) -> np.ndarray | None:
        if filters is None or not filters.active:
            return None
        if filters not in self._allowed_ids:  # hybrid asks twice: query the store once
            ids = self.store.chunk_ids_where(filters.sources, filters.date_from, filters.date_to)
            self._allowed_ids[filters] = np.asarray(ids, dtype=np.int64)
        return self._allowed_ids[filters]

    def dense(self, vector: np.ndarray, k: int, filters: Filters | None) -> list[tuple[int, float]]:
        """FAISS top-k (inner product of normalised vectors = cosine)."""
        return self.snapshot.dense.search(vector, k, self._allowed(filters))

    def keyword(self, query: str, k: int, filters: Filters | None) -> list[tuple[int, float]]:
        """BM25 top-k."""
        return self.snapshot.sparse.search(query, k, self._allowed(filters))

    def chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        """Chunk rows from the store."""
        return self.store.chunks_by_ids(ids)


class WriterLock:
    """An exclusive flock on `<index>/.lock`; the holder's pid is written into the file."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_FILE
        self._fd: int | None = None

    def acquire(self, timeout: float = 0.0) -> None:
        """Take the lock, waiting up to `timeout` seconds; IndexLocked names the holder."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                    os.close(fd)
                    raise IndexLocked(
                        f"index {self.path.parent} is locked by pid {holder} (another writer is "
                        "adding or removing articles); wait for it to finish and try again"
                    ) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @contextlib.contextmanager
    def held(self, timeout: float = 0.0) -> Iterator[None]:
        """Context manager form of acquire/release."""
        self.acquire(timeout)
        try:
            yield
        finally:
            self.release()


def _library_versions() -> dict[str, str]:
    versions = {"rag": __import__("rag").__version__}
    for name in ("faiss-cpu", "bm25s", "sentence-transformers", "torch", "onnxruntime", "pysbd"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


class Index:
    """An index folder; open it with `Index.open` (existing) or `Index.create_or_open`."""

    def __init__(
        self,
        folder: Path,
        embedder: Embedder,
        chunker: Chunker,
        *,
        factory: str = AUTO_FACTORY,
        notify: Notify = _stderr,
    ) -> None:
        self.folder = Path(folder)
        self.embedder = embedder
        self.chunker = chunker
        self.factory = factory
        self.notify = notify
        self.lock = WriterLock(self.folder)
        self.store: Store | None = None
        self._snapshot: Snapshot | None = None
        self._swap = threading.Lock()  # serialises in-process writers and snapshot swaps
        self._merger: threading.Thread | None = None
        self._merger_start = threading.Lock()  # at most one background merge thread
        self._merging: set[str] = set()  # segment files a background merge is writing
        # How the embedder was picked under RAG_EMBEDDER=auto (recorded in the manifest).
        self.embedder_choice: dict[str, Any] | None = None

    # ------------------------------------------------------------------ config

    def config(self) -> dict[str, Any]:
        """What must match between the index and the running code for search to be valid."""
        ident = self.embedder.identity
        return {
            "embedder": {k: ident.get(k) for k in ("name", "package", "version", "weights_sha256")},
            "dim": self.embedder.dim,
            "normalize": True,
            "chunker": self.chunker.params,
        }

    def _check_config(self, store: Store) -> None:
        stored = store.get_meta("config")
        if stored is None:
            return
        have, want = json.loads(stored), self.config()
        if have != want:
            diffs = [k for k in want if have.get(k) != want.get(k)]
            raise ManifestMismatch(
                f"index {self.folder} was built with other settings ({', '.join(diffs)} differ: "
                f"index has {json.dumps({k: have.get(k) for k in diffs})}); run "
                "'rag index build' to rebuild it with the current settings"
            )

    # ------------------------------------------------------------------ open / load

    @property
    def exists(self) -> bool:
        """Whether the folder holds a store."""
        return (self.folder / STORE_FILE).exists()

    def open(self, *, create: bool = False, check_config: bool = True) -> Index:
        """Open the store and load the derived indexes, repairing them if needed."""
        if not self.exists and not create:
            raise IndexNotFound(f"no index at {self.folder}: run 'rag index build' first")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise IndexNotFound(
                f"cannot use {self.folder} as an index folder ({exc.strerror}); give --index "
                "(or RAG_INDEX_DIR) a folder path you can write to"
            ) from None
        if self.store is None:
            self.store = Store(self.folder / STORE_FILE)
        if check_config:
            self._check_config(self.store)
        self._snapshot = self._load_or_repair()
        return self

    def wait_for_merges(self) -> None:
        """Block until a background BM25 segment merge, if one runs, has finished."""
        merger = self._merger
        if merger is not None:
            merger.join()

    def close(self) -> None:
        """Wait for a running segment merge, then release the store's connections."""
        self.wait_for_merges()
        if self.store is not None:
            self.store.close()
            self.store = None

    @property
    def snapshot(self) -> Snapshot:
        """The current whole generation of derived indexes."""
        if self._snapshot is None:
            raise IndexNotFound(f"index {self.folder} is not open")
        return self._snapshot

    def read_manifest(self) -> dict[str, Any] | None:
        """manifest.json, or None when missing or unreadable."""
        try:
            data = json.loads((self.folder / MANIFEST_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _load_files(self, manifest: dict[str, Any], reuse: Snapshot | None = None) -> Snapshot:
        """Load the files a manifest names; parts `reuse` already holds are not re-read."""
        files = manifest["files"]
        if reuse is not None and reuse.files.get("dense") == files["dense"]:
            dense = reuse.dense  # same generation's file: the same content
        else:
            built_as = manifest.get("dense_factory") or self.factory
            dense = DenseIndex.load(self.folder / files["dense"], self.embedder.dim, built_as)
        sparse = SparseIndex.load(self.folder, files["sparse"],
                                  reuse.sparse if reuse is not None else None)
        n_chunks = manifest["counts"]["chunks"]
        if dense.ntotal != n_chunks or sparse.ntotal != n_chunks:
            raise ValueError(
                f"dense holds {dense.ntotal}, BM25 {sparse.ntotal}, manifest says {n_chunks}"
            )
        return Snapshot(int(manifest["generation"]), dense, sparse, dict(files))

    def _load_or_repair(self) -> Snapshot:
        store = self._require_store()
        generation = store.generation
        stored_config = store.get_meta("config")
        if stored_config is not None and json.loads(stored_config) != self.config():
            # Built with other settings (only `rag index build` gets here): its vectors may
            # not even have this embedder's dimension, and the build replaces them all, so
            # start from nothing instead of loading or repairing the old derived files.
            return Snapshot(
                generation,
                DenseIndex(self.embedder.dim, self._factory_for(0)),
                SparseIndex.build(np.zeros(0, dtype=np.int64), []),
            )
        manifest = self.read_manifest()
        problem = None
        if manifest is None:
            problem = "manifest.json is missing or unreadable"
        elif manifest.get("schema_version") != SCHEMA_VERSION:
            problem = f"manifest schema {manifest.get('schema_version')} != {SCHEMA_VERSION}"
        elif manifest.get("bm25") != BM25_PARAMS or manifest.get("faiss_factory") != self.factory:
            problem = "BM25 or FAISS parameters changed"
        else:
            current = self._snapshot
            try:
                if (current is not None and current.files == manifest.get("files")
                        and current.generation == manifest.get("generation")):
                    snapshot = current  # what this handle wrote or loaded last: no re-read
                else:
                    snapshot = self._load_files(manifest, current)
            except Exception as exc:  # any unreadable derived file is rebuilt from the store
                problem = f"derived index files are missing or corrupt ({exc})"
            else:
                if snapshot.generation == generation:
                    _, n_chunks = store.counts()
                    if snapshot.dense.ntotal == n_chunks:
                        return snapshot
                    problem = f"dense index holds {snapshot.dense.ntotal} of {n_chunks} chunks"
                else:
                    problem = (
                        f"derived files are at generation {snapshot.generation}, "
                        f"store at {generation} (an interrupted write)"
                    )
        if generation == 0 and manifest is None:
            # A brand-new, empty index: nothing to repair, nothing to say.
            return self._rebuild_derived(persist=True, quiet=True)
        if self._another_writer():
            # Not a crash: a live writer has committed and not yet written its files (or is
            # about to replace them). Use this generation in memory; the writer saves it.
            return self._rebuild_derived(persist=False, quiet=True)
        self.notify(f"index {self.folder}: {problem}; rebuilding FAISS and BM25 from the store")
        return self._rebuild_derived(persist=True)

    def _another_writer(self) -> bool:
        """Whether another handle or process holds the writer lock at this moment."""
        if self.lock._fd is not None:  # this handle is the writer
            return False
        try:
            self.lock.acquire(timeout=0.0)
        except IndexLocked:
            return True
        self.lock.release()
        return False

    def _rebuild_derived(self, *, persist: bool, quiet: bool = False) -> Snapshot:
        """Rebuild FAISS and BM25 from stored vectors and texts: no embedding happens."""
        store = self._require_store()
        started = time.perf_counter()
        with store.snapshot():
            generation = store.generation
            dense = DenseIndex(self.embedder.dim, self._factory_for(store.counts()[1]))
            if want := dense.training_points:
                # Train IVF on a uniform sample of the whole corpus, not its first batch:
                # the first rows are the oldest articles, not a picture of the collection.
                dense.train(_sample_vectors(store, self.embedder.dim, want))
            for ids, vectors in store.iter_vectors(self.embedder.dim):
                dense.add(ids, vectors)
            ids, texts = store.all_chunk_texts()
        sparse = SparseIndex.build(ids, texts)
        snapshot = Snapshot(generation, dense, sparse)
        if persist:
            try:
                with self.lock.held(timeout=0.0):
                    if store.generation == generation:
                        snapshot = self._persist(snapshot)
            except IndexLocked:
                pass  # a live writer will write newer files itself; use ours in memory
        if not quiet:
            self.notify(
                f"rebuilt from {dense.ntotal} stored vectors without re-embedding "
                f"({time.perf_counter() - started:.2f} s)"
            )
        return snapshot

    def _require_store(self) -> Store:
        if self.store is None:
            raise IndexNotFound(f"index {self.folder} is not open")
        return self.store

    def reload_if_changed(self) -> bool:
        """Pick up writes made by another process (manifest generation moved); True if reloaded."""
        manifest = self.read_manifest()
        if manifest is None or self._snapshot is None:
            return False
        if int(manifest.get("generation", -1)) == self._snapshot.generation:
            return False
        try:
            snapshot = self._load_files(manifest, self._snapshot)
        except Exception:
            return False  # mid-write or corrupt: keep serving the whole old generation
        with self._swap:
            if self._snapshot is None or snapshot.generation > self._snapshot.generation:
                self._snapshot = snapshot
        return True

    # ------------------------------------------------------------------ the storage seam

    @property
    def location(self) -> str:
        """The index folder, for messages."""
        return str(self.folder)

    @property
    def generation(self) -> int:
        """The generation this handle serves."""
        return self.snapshot.generation

    def list_documents(self) -> list[DocumentInfo]:
        """Every indexed article, newest first."""
        return self._require_store().list_documents()

    def get_document(self, source: str) -> Document | None:
        """The stored article, or None."""
        return self._require_store().get_document(source)

    def counts(self) -> tuple[int, int]:
        """(documents, chunks) in the store."""
        return self._require_store().counts()

    @contextlib.contextmanager
    def view(self) -> Iterator[EmbeddedView]:
        """The current snapshot (FAISS + BM25 of one generation) with the store."""
        yield EmbeddedView(self.snapshot, self._require_store())

    def chunks_by_ids(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        """Chunk rows with their article's metadata, keyed by row id."""
        return self._require_store().chunks_by_ids(ids)

    def sentence_vectors_for(self, ids: Sequence[int]) -> dict[int, list[tuple[int, int, Any]]]:
        """Pooled sentence vectors of these chunks: id -> [(doc start, doc end, vector)]."""
        return self._require_store().sentence_vectors_for(ids, self.embedder.dim)

    def idf(self, terms: Sequence[str]) -> dict[str, float]:
        """BM25 idf of each stemmed term in the current snapshot."""
        return self.snapshot.sparse.idf(terms)

    def check_consistency(self) -> dict[str, int]:
        """Store, FAISS and BM25 counts, which must agree (RagError otherwise)."""
        return check_consistency(self)

    # ------------------------------------------------------------------ persist

    def _persist(self, snapshot: Snapshot) -> Snapshot:
        """Write derived files for `snapshot` under generation names, then the manifest."""
        store = self._require_store()
        g = snapshot.generation
        dense_name = f"dense-{g}.faiss"
        if snapshot.files.get("dense") != dense_name or not (self.folder / dense_name).exists():
            snapshot.dense.save(self.folder / dense_name)
        sparse_entry = snapshot.sparse.save(self.folder, g)
        n_docs, n_chunks = store.counts()
        previous = self.read_manifest() or {}
        files = {"store": STORE_FILE, "dense": dense_name, "sparse": sparse_entry}
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "generation": g,
            "created_at": previous.get("created_at") or dt.datetime.now(dt.UTC).isoformat(),
            "built_at": dt.datetime.now(dt.UTC).isoformat(),
            "embedder": self.embedder.identity,
            "dim": self.embedder.dim,
            "normalize": True,
            "faiss_factory": self.factory,
            "dense_factory": snapshot.dense.factory,
            "bm25": BM25_PARAMS,
            "chunker": self.chunker.params,
            "counts": {"documents": n_docs, "chunks": n_chunks},
            "corpus_hash": store.corpus_hash(),
            "library_versions": _library_versions(),
            "files": files,
        }
        choice = self.embedder_choice
        if not (choice and choice.get("source") == "measured"):
            # Opened by its recorded backend: keep the measurement that first chose it.
            before = previous.get("embedder_choice")
            same = isinstance(before, dict) and before.get("spec") == self.embedder.identity.get(
                "spec")
            choice = before if same else choice
        if choice:
            manifest["embedder_choice"] = choice
        write_json_atomic(self.folder / MANIFEST_FILE, manifest)
        # Readers that read the previous manifest may still be opening its files: keep them.
        keep = _sparse_files(files) | _sparse_files(previous.get("files"))
        self._cleanup({g, int(previous.get("generation", g))}, keep)
        # The JSON round trip makes `files` compare equal to a manifest read back from disk.
        return replace(snapshot, files=json.loads(json.dumps(files)))

    def _cleanup(self, keep: set[int], keep_files: set[str]) -> None:
        """Remove derived files no kept manifest names (older generations, merged segments)."""
        busy = set(self._merging)
        self._drop_temps()
        for path in self.folder.iterdir():
            name = path.name
            if name.startswith((SEGMENT_PREFIX, DELETED_PREFIX)):
                if name not in keep_files and name not in busy:
                    path.unlink(missing_ok=True)
                continue
            # bm25-<g>/ folders are the one-piece BM25 of older versions.
            for prefix, suffix in (("dense-", ".faiss"), ("bm25-", "")):
                if name.startswith(prefix) and name.endswith(suffix):
                    number = name[len(prefix) : len(name) - len(suffix) if suffix else None]
                    if number.isdigit() and int(number) not in keep:
                        if path.is_dir():
                            shutil.rmtree(path, ignore_errors=True)
                        else:
                            path.unlink(missing_ok=True)

    def _drop_temps(self) -> None:
        """Remove temp files a killed writer left (the caller holds the writer lock)."""
        busy = set(self._merging)
        for path in self.folder.iterdir():
            name = path.name
            if not (name.startswith(".") and name.endswith(".tmp")):
                continue
            if any(name.startswith(f".{b}.") for b in busy):
                continue  # this handle's background merge is writing it
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(
                missing_ok=True
            )

    # ------------------------------------------------------------------ merges

    def _merge_inline(self, snapshot: Snapshot) -> Snapshot:
        """Do small due segment merges now, under the writer lock the caller holds."""
        while (inputs := snapshot.sparse.merge_plan()) and _size(inputs) <= INLINE_MERGE_CHUNKS:
            merged = snapshot.sparse.merge(inputs)
            sparse = snapshot.sparse.replace(inputs, merged)
            if sparse is None:
                break
            merged.save(self.folder)
            snapshot = self._persist(replace(snapshot, sparse=sparse))
        return snapshot

    def _schedule_merges(self) -> None:
        """Start a background merge when a large one is due (one thread at a time)."""
        snapshot = self._snapshot
        if snapshot is None or not snapshot.sparse.merge_plan():
            return
        with self._merger_start:
            if self._merger is not None and self._merger.is_alive():
                return
            self._merger = threading.Thread(target=self._merge_quietly, name="bm25-merge",
                                            daemon=True)
            self._merger.start()

    def _merge_quietly(self) -> None:
        try:
            self.merge_segments()
        except Exception as exc:  # a failed merge loses nothing: the segments stay as they are
            self.notify(f"index {self.folder}: BM25 segment merge failed ({exc}); "
                        "it is tried again after the next write")

    def merge_segments(self) -> int:
        """Merge due BM25 segments, the slow part without the writer lock; merges done."""
        done = 0
        while True:
            snapshot = self._snapshot
            if snapshot is None or self.store is None or not snapshot.files:
                return done
            inputs = snapshot.sparse.merge_plan()
            if not inputs:
                return done
            merged = snapshot.sparse.merge(inputs)
            self._merging.add(merged.filename)
            try:
                merged.save(self.folder)
                with self._swap:
                    try:
                        self.lock.acquire(timeout=MERGE_LOCK_WAIT)
                    except IndexLocked:
                        return done  # a long write elsewhere: retried after the next write
                    try:
                        if not self._swap_in_merge(inputs, merged):
                            return done
                    finally:
                        self.lock.release()
            finally:
                self._merging.discard(merged.filename)
            done += 1

    def _swap_in_merge(self, inputs: Sequence[Segment], merged: Segment) -> bool:
        """Replace `inputs` by `merged` in a new manifest at the same generation, if still valid."""
        current = self._snapshot
        manifest = self.read_manifest() or {}
        if (current is None or not (self.folder / merged.filename).exists()
                or manifest.get("generation") != current.generation
                or manifest.get("files") != current.files):
            return False  # another process wrote since: the next write plans afresh
        sparse = current.sparse.replace(inputs, merged)
        if sparse is None:
            return False
        self._snapshot = self._persist(replace(current, sparse=sparse))
        return True

    # ------------------------------------------------------------------ writes

    def add_documents(
        self,
        docs: Sequence[Document],
        *,
        sync: bool = False,
        progress: Progress | None = None,
        lock_timeout: float = 0.0,
    ) -> ChangeReport:
        """Add or update articles; unchanged ones are skipped and cached vectors reused.

        With `sync=True` the index ends up holding exactly `docs` (articles not given are
        removed), which is what `rag index build` does. Any invalid input raises before
        anything is written.
        """
        started = time.perf_counter()
        check_batch(docs)
        with self._swap, self.lock.held(timeout=lock_timeout):
            store = self._require_store()
            self._drop_temps()
            # Another process may have written since we loaded: start from its state.
            self._snapshot = self._load_or_repair()
            reset = store.get_meta("config") != json.dumps(self.config(), sort_keys=True)
            if reset and not sync and store.get_meta("config") is not None:
                self._check_config(store)
            report = ChangeReport()
            incoming = {d.source for d in docs}
            to_remove = (
                [info.source for info in store.list_documents() if info.source not in incoming]
                if sync
                else []
            )
            work = plan(docs, store, self.chunker, report, to_remove=to_remove, reset=reset)
            if not work and not to_remove and not reset:
                report.seconds = time.perf_counter() - started
                report.generation = store.generation
                return report
            # Embed only texts whose vectors are not cached: unchanged paragraphs cost nothing.
            hashes, flat = chunk_hashes(self.embedder, work)
            cached = store.cached_vectors(flat)
            missing = [h for h in flat if h not in cached]
            report.chunks_reused = sum(len(hs) for hs in hashes) - len(missing)
            vectors, sentence_vectors = embed_chunks(
                self.embedder, [flat[h] for h in missing], progress
            )
            report.chunks_embedded = len(missing)
            old_ids: list[int] = []
            replaced = to_remove + [d.source for d, _ in work]
            for source in replaced:
                old_ids.extend(store.chunk_ids_of(source))
            orphans = None if reset else store.embed_hashes_of(replaced)
            new_ids: list[int] = []
            with store.transaction() as conn:
                if reset:
                    conn.execute("DELETE FROM chunks")
                    Store.set_meta(conn, "config", json.dumps(self.config(), sort_keys=True))
                Store.put_vectors(conn, missing, vectors)
                for h, sv in zip(missing, sentence_vectors, strict=True):
                    Store.put_sentence_vectors(conn, h, relative_spans(flat[h]), sv)
                for source in to_remove:
                    Store.delete_document(conn, source)
                for (doc, chunks), hs in zip(work, hashes, strict=True):
                    Store.put_document(conn, doc)
                    new_ids.extend(Store.put_chunks(conn, chunks, hs))
                Store.drop_unused_vectors(conn, orphans)
            # The store holds them now: drop this build's texts and vectors before the
            # derived indexes read them back, so no second copy is alive (peak memory).
            del work, flat, hashes, vectors, sentence_vectors
            report.removed = to_remove
            report.chunks_written = len(new_ids)
            if reset or self._outgrown():
                snapshot = self._rebuild_derived(persist=False, quiet=reset)
            else:
                snapshot = self._apply_delta(old_ids, new_ids)
            self._snapshot = self._merge_inline(self._persist(snapshot))
            report.generation = snapshot.generation
            report.seconds = time.perf_counter() - started
        self._schedule_merges()
        return report

    def _factory_for(self, n_chunks: int) -> str:
        """The FAISS factory for a corpus of `n_chunks`: the configured one, or by size."""
        return choose_factory(n_chunks) if self.factory == AUTO_FACTORY else self.factory

    def _outgrown(self) -> bool:
        """Whether the committed corpus size calls for another FAISS layout (under "auto")."""
        if self.factory != AUTO_FACTORY:
            return False
        return layout_outgrown(self.snapshot.dense.factory, self._require_store().counts()[1])

    def _apply_delta(self, old_ids: Sequence[int], new_ids: Sequence[int]) -> Snapshot:
        """New generation = previous indexes minus old chunks plus new ones (cost ~ the change)."""
        import faiss

        store = self._require_store()
        previous = self.snapshot
        # Copy, never mutate, the live index: concurrent readers keep searching the old one.
        dense = DenseIndex(
            self.embedder.dim, previous.dense.factory, faiss.clone_index(previous.dense.index)
        )
        dense.remove(old_ids)
        if new_ids:
            dense.add(np.asarray(new_ids, dtype=np.int64),
                      store.vectors_for(new_ids, self.embedder.dim))
        with store.snapshot():
            generation = store.generation
            texts = store.chunk_texts(new_ids)
        sparse = previous.sparse.with_changes(old_ids, np.asarray(new_ids, dtype=np.int64), texts)
        return Snapshot(generation, dense, sparse)

    def remove(self, sources: Sequence[str], *, lock_timeout: float = 0.0) -> ChangeReport:
        """Remove articles by source id; an unknown id raises before anything changes."""
        started = time.perf_counter()
        with self._swap, self.lock.held(timeout=lock_timeout):
            store = self._require_store()
            self._drop_temps()
            self._snapshot = self._load_or_repair()
            unknown = [s for s in sources if store.document_hash(s) is None]
            if unknown:
                known = ", ".join(i.source for i in store.list_documents()[:5]) or "none"
                raise DocumentNotFound(
                    f"no indexed article with source id {', '.join(map(repr, unknown))}; "
                    f"see 'rag list' (e.g. {known})"
                )
            old_ids = [i for s in sources for i in store.chunk_ids_of(s)]
            orphans = store.embed_hashes_of(sources)
            with store.transaction() as conn:
                for source in sources:
                    Store.delete_document(conn, source)
                Store.drop_unused_vectors(conn, orphans)
            if self._outgrown():
                snapshot = self._rebuild_derived(persist=False)
            else:
                snapshot = self._apply_delta(old_ids, [])
            self._snapshot = self._merge_inline(self._persist(snapshot))
            report = ChangeReport(
                removed=list(dict.fromkeys(sources)),
                seconds=time.perf_counter() - started,
                generation=snapshot.generation,
            )
        self._schedule_merges()
        return report


def _size(segments: Sequence[Segment]) -> int:
    return sum(len(s) for s in segments)


def _sparse_files(files: Any) -> set[str]:
    """The BM25 file names a manifest's `files` entry refers to (none for older layouts)."""
    entry = files.get("sparse") if isinstance(files, dict) else None
    return SparseIndex.files(entry) if isinstance(entry, dict) else set()


def copy_folder(src: Path, dst: Path) -> None:
    """Copy an index folder: the store by SQLite's backup API, derived files as they are.

    The backup API gives a consistent copy even while a writer is active; the lock and the
    store's WAL files are not copied (the copy has its own).
    """
    import sqlite3

    dst.mkdir(parents=True)
    source, target = sqlite3.connect(src / STORE_FILE), sqlite3.connect(dst / STORE_FILE)
    with target:
        source.backup(target)
    source.close()
    target.close()
    skip = {LOCK_FILE, STORE_FILE, f"{STORE_FILE}-wal", f"{STORE_FILE}-shm"}
    for path in src.iterdir():
        if path.name in skip:
            continue
        if path.is_dir():
            shutil.copytree(path, dst / path.name)
        else:
            shutil.copy2(path, dst / path.name)


def check_consistency(index: Index) -> dict[str, int]:
    """Counts that must agree in a healthy index; raises RagError when they do not."""
    store = index._require_store()
    n_docs, n_chunks = store.counts()
    snap = index.snapshot
    counts = {
        "documents": n_docs,
        "chunks": n_chunks,
        "dense": snap.dense.ntotal,
        "sparse": snap.sparse.ntotal,
    }
    if not (n_chunks == snap.dense.ntotal == snap.sparse.ntotal):
        raise RagError(f"index {index.folder} is inconsistent: {counts}")
    return counts


def _sample_vectors(store: Store, dim: int, n: int, seed: int = 0) -> np.ndarray:
    """About `n` stored vectors drawn uniformly at random, in one streaming pass."""
    total = store.counts()[1]
    keep = min(1.0, n / max(total, 1))
    rng = np.random.default_rng(seed)
    parts = [vectors[rng.random(len(vectors)) < keep]
             for _, vectors in store.iter_vectors(dim)]
    return np.vstack(parts) if parts else np.zeros((0, dim), dtype=np.float32)
