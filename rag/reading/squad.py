"""SQuAD data for training and validating the span reader, split by article.

`../shared/data/squad/` (CC BY-SA 4.0; Rajpurkar et al. 2016, 2018) holds SQuAD 1.1 dev
and 2.0 dev. The 35 articles of 2.0 are among the 48 of 1.1 with the same paragraphs, so
the two files are merged by (article, paragraph, question) into one pool of ~10.6k
answerable and ~5.9k unanswerable questions. Hold-outs are whole articles: questions on
one paragraph are near-duplicates of each other, so a question-level split would leak.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from rag.errors import InvalidTrainingData

FILES = ("dev-v1.1.json", "dev-v2.0.json")


@dataclass(frozen=True)
class Example:
    """One question over one paragraph; `answers` empty means unanswerable."""

    qid: str
    title: str
    context: str
    question: str
    answers: tuple[tuple[str, int], ...]  # (text, char start) — all annotators' answers


@dataclass(frozen=True)
class Split:
    """Article-level split: train, val (model selection, reported), calib (fitting)."""

    train: list[Example]
    val: list[Example]
    calib: list[Example]
    val_titles: tuple[str, ...]
    calib_titles: tuple[str, ...]


def load(data_dir: Path) -> list[Example]:
    """Read and merge every SQuAD file in `data_dir`; checks each answer offset."""
    paths = [data_dir / name for name in FILES if (data_dir / name).is_file()]
    if not paths:
        raise InvalidTrainingData(
            f"no SQuAD files in {data_dir}: expected {' or '.join(FILES)} "
            "(pass --data with the folder that holds them)"
        )
    seen: set[tuple[str, str]] = set()
    out: list[Example] = []
    for path in paths:
        try:
            articles = json.loads(path.read_text(encoding="utf-8"))["data"]
        except (OSError, ValueError, KeyError) as exc:
            raise InvalidTrainingData(f"{path} is not a SQuAD JSON file ({exc})") from exc
        for article in articles:
            title = article["title"]
            for para in article["paragraphs"]:
                context = para["context"]
                for qa in para["qas"]:
                    key = (context, qa["question"].strip())
                    if key in seen:
                        continue
                    seen.add(key)
                    answers = tuple(
                        (a["text"], int(a["answer_start"]))
                        for a in ([] if qa.get("is_impossible") else qa["answers"])
                        if context[a["answer_start"]: a["answer_start"] + len(a["text"])]
                        == a["text"]
                    )
                    if not answers and not qa.get("is_impossible"):
                        continue  # an answerable question whose offsets do not check out
                    out.append(Example(qa["id"], title, context, key[1], answers))
    return out


def split(examples: list[Example], *, seed: int = 13, n_val: int = 4, n_calib: int = 4) -> Split:
    """Hold out whole articles that have unanswerable questions (so both halves learn no-answer)."""
    with_null = sorted({e.title for e in examples if not e.answers})
    rng = random.Random(seed)
    held = rng.sample(with_null, n_val + n_calib)
    val_t, calib_t = tuple(sorted(held[:n_val])), tuple(sorted(held[n_val:]))
    return Split(
        train=[e for e in examples if e.title not in held],
        val=[e for e in examples if e.title in val_t],
        calib=[e for e in examples if e.title in calib_t],
        val_titles=val_t,
        calib_titles=calib_t,
    )
