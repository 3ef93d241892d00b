"""llama.cpp in a child process: a crash of the optional generative model is a reported
error, never a dead service.

A llama.cpp build made for another CPU (an AVX-512 kernel on a machine without it, or the
reverse) dies with SIGSEGV/SIGILL inside a C call, which no Python `try` can catch. So the
model is loaded and run only in child processes:

- `probe` runs a tiny load-and-generate in a throw-away child once per machine, llama.cpp
  build and model file, and caches the verdict (`~/.cache/rag/llm-probe.json`, or under
  `RAG_CACHE_DIR`); a build that crashed is not started again until it changes.
- `LlamaProcess` keeps one model in a long-lived child and answers calls over a pipe; if
  the child dies or hangs, calls raise `GeneratorUnavailable` and the caller falls back
  to the extractive reader.

This module imports neither torch nor the reader, so the child starts in well under a second.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import multiprocessing as mp
import os
import platform
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from rag.atomic import write_json_atomic
from rag.errors import RagError

PROBE_TIMEOUT_S = 180.0
CALL_TIMEOUT_S = 120.0
FIX = ("rebuild it portable with 'rm -f .venv/.gen-* && make gen' (llama.cpp for "
       "AVX2/FMA/F16C; see the Makefile), or use the default extractive reader")


class GeneratorUnavailable(RagError):
    """The generative model cannot run here (missing, crashed or hung)."""


def describe_exit(code: int | None) -> str:
    """'exit 3', 'killed by SIGSEGV' ... for a child's return code."""
    if code is None:
        return "no exit status"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit {code}"


# ------------------------------------------------------------------------------ probe


def cache_dir() -> Path:
    """Where per-machine verdicts are kept ($RAG_CACHE_DIR, else ~/.cache/rag)."""
    base = os.environ.get("RAG_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rag")
    return Path(base)


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return " ".join(sorted(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return platform.processor()


def build_key(model_path: Path) -> str:
    """Identity of (CPU, llama.cpp build, model file): a verdict holds while these hold."""
    parts = [platform.machine(), _cpu_flags(), sys.executable]
    try:
        dist = importlib.metadata.distribution("llama-cpp-python")
        parts.append(dist.version)
        for f in dist.files or []:
            if f.suffix in (".so", ".dylib", ".dll") or ".so." in f.name:
                st = Path(str(dist.locate_file(f))).stat()
                parts.append(f"{f}:{st.st_size}:{st.st_mtime_ns}")
    except (importlib.metadata.PackageNotFoundError, OSError):
        parts.append("llama-cpp-python missing")
    st = model_path.stat()
    parts.append(f"{model_path.resolve()}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def probe(model_path: Path, *, command: Sequence[str] | None = None,
          timeout: float = PROBE_TIMEOUT_S) -> dict[str, Any]:
    """Check once (cached) that llama.cpp loads and runs `model_path` on this machine.

    Returns the verdict ({"ok": True, "system_info": ...}); raises GeneratorUnavailable
    with the reason and the fix when the child crashed, failed or hung. `command` replaces
    the child's command line (tests give one that crashes).
    """
    if not model_path.is_file():
        raise GeneratorUnavailable(f"generator model {model_path} does not exist")
    key = build_key(model_path) if command is None else None
    path = cache_dir() / "llm-probe.json"
    cached = _read_cache(path)
    verdict = cached.get(key) if key else None
    if verdict is None:
        verdict = _run_probe(model_path, command, timeout)
        if key:
            cached[key] = verdict
            _write_cache(path, cached)
    if not verdict["ok"]:
        raise GeneratorUnavailable(
            f"the generative model failed its probe on this machine ({verdict['reason']}); "
            f"{FIX}")
    return verdict


def _run_probe(model_path: Path, command: Sequence[str] | None, timeout: float
               ) -> dict[str, Any]:
    argv = list(command or [sys.executable, "-m", "rag.reading.llm_process", str(model_path)])
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return {"ok": False, "reason": f"no answer within {timeout:.0f} s"}
    if done.returncode != 0:
        tail = " ".join((done.stderr or "").strip().splitlines()[-2:])[-300:]
        reason = f"probe child {describe_exit(done.returncode)}" + (f": {tail}" if tail else "")
        return {"ok": False, "reason": reason}
    try:
        info = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"ok": False, "reason": f"probe child printed no verdict: {done.stdout[-200:]!r}"}
    return {"ok": True, **info}


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # a missing or damaged cache only costs one probe


def _write_cache(path: Path, data: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, data)
    except OSError:
        pass  # an unwritable cache means probing again next start, nothing worse


def _probe_main(model_path: str) -> None:
    """Child side of the probe: load, generate four tokens, print what the build offers."""
    import llama_cpp

    llm = llama_cpp.Llama(model_path=model_path, n_ctx=256, n_threads=1, verbose=False, seed=0)
    out: Any = llm.create_completion("The capital of France is", max_tokens=4, temperature=0.0)
    info = llama_cpp.llama_print_system_info()
    print(json.dumps({
        "system_info": info.decode() if isinstance(info, bytes) else str(info),
        "llama_cpp_version": llama_cpp.__version__,
        "sample": out["choices"][0]["text"],
    }))


# ------------------------------------------------------------------------- the child


class LlamaProcess:
    """One llama.cpp model in a child process; `call` runs a method there and returns its
    result, or raises GeneratorUnavailable if the child is gone or does not answer."""

    def __init__(self, model_path: Path, *, n_ctx: int, threads: int,
                 logits_all: bool = False, timeout: float = CALL_TIMEOUT_S) -> None:
        self.model_path = model_path
        self.options = {"n_ctx": n_ctx, "n_threads": threads, "logits_all": logits_all}
        self.timeout = timeout
        self._proc: Any = None
        self._conn: Any = None
        self._dead: str | None = None
        self._lock = threading.Lock()  # one request on the pipe at a time

    @property
    def pid(self) -> int | None:
        """The child's process id (None before start)."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Spawn the child and wait until the model is loaded."""
        with self._lock:
            self._ensure()

    def _ensure(self) -> None:
        if self._dead:
            raise GeneratorUnavailable(self._dead)
        if self._proc is not None:
            return
        ctx = mp.get_context("spawn")  # no fork of a threaded server, no inherited torch
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_child_main, daemon=True, name="rag-llama",
                                 args=(child, str(self.model_path), self.options))
        self._proc.start()
        child.close()
        self._conn = parent
        self._receive("loading the model")

    def call(self, method: str, *args: Any) -> Any:
        """Run `method` (chat | score) in the child with `args`."""
        with self._lock:
            self._ensure()
            try:
                self._conn.send((method, args))
            except (OSError, ValueError):
                self._proc.join(5)
                self._fail(f"it was {describe_exit(self._proc.exitcode)}; the pipe broke")
            return self._receive(method)

    def _receive(self, doing: str) -> Any:
        if not self._conn.poll(self.timeout):
            self._fail(f"no answer within {self.timeout:.0f} s while {doing}")
        try:
            status, value = self._conn.recv()
        except (EOFError, OSError):
            self._proc.join(5)
            self._fail(f"it was {describe_exit(self._proc.exitcode)} while {doing}")
        if status == "error":
            raise GeneratorUnavailable(f"the generative model failed while {doing}: {value}")
        return value

    def _fail(self, why: str) -> NoReturn:
        self._dead = f"the generative model process stopped ({why}); {FIX}"
        self.close()
        raise GeneratorUnavailable(self._dead)

    def close(self) -> None:
        """Stop the child (idempotent)."""
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)
        if self._conn is not None:
            self._conn.close()


def _child_main(conn: Any, model_path: str, options: dict[str, Any]) -> None:
    """Child loop: load the model, then answer (method, args) until the pipe closes."""
    try:
        import llama_cpp

        llm = llama_cpp.Llama(model_path=model_path, verbose=False, seed=0, **options)
    except Exception as exc:  # reported to the parent, which says why
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ok", None))
    handlers: dict[str, Callable[..., Any]] = {"chat": _chat, "score": _score}
    while True:
        try:
            method, args = conn.recv()
        except EOFError:
            return
        try:
            conn.send(("ok", handlers[method](llm, *args)))
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


def _chat(llm: Any, messages: list[dict[str, str]], options: dict[str, Any]) -> str:
    out = llm.create_chat_completion(messages, **options)
    return str(out["choices"][0]["message"]["content"] or "").strip()


def _score(llm: Any, prompt_text: Sequence[str], candidates: Sequence[str], budget: int
           ) -> list[float]:
    """Mean log-probability per token of each candidate as the whole reply.

    `prompt_text` holds the chat prompt with 1..n context sentences (longest first); the
    longest that fits `budget` tokens is evaluated once, and each candidate is scored from
    the cached prefix, its end-of-reply mark included so a span stopping mid-phrase scores
    low too.
    """
    import numpy as np

    prompt: list[int] = []
    for text in prompt_text:
        prompt = llm.tokenize(text.encode(), add_bos=False, special=True)
        if len(prompt) <= budget:
            break
    prompt = prompt[-budget:]
    end = llm.tokenize(b"<|im_end|>", add_bos=False, special=True)
    llm.reset()
    llm.eval(prompt)
    n_prompt = llm.n_tokens
    out = []
    for text in candidates:
        tokens = llm.tokenize(text.encode(), add_bos=False, special=False)[:80] + end
        llm.n_tokens = n_prompt  # drop the previous candidate, keep the prompt
        llm.eval(tokens)
        # Row i holds the logits after token i: candidate token j is predicted by the row
        # before it.
        logits = np.asarray(llm.scores[n_prompt - 1 : n_prompt - 1 + len(tokens)])
        top = logits.max(axis=1, keepdims=True)
        log_z = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
        picked = logits[np.arange(len(tokens)), tokens]
        out.append(float((picked - log_z).mean()))
    return out


if __name__ == "__main__":
    _probe_main(sys.argv[1])
