"""Question + passage → fixed-size token windows, shared by training and inference.

Training and serving must tokenise identically, so both go through `Windower`: the
question is tokenised alone (capped), the passage alone with character offsets, and the
passage tokens are cut into overlapping windows laid out as BERT pairs:
``[CLS] question [SEP] passage-window [SEP]``. Position 0 ([CLS]) is the no-answer slot
(SQuAD 2.0 style). Offsets map every passage token back to characters in the passage, so
a predicted token span is always a verbatim character span.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

MAX_LEN = 256
MAX_QUESTION = 48
OVERLAP = 64


@dataclass(frozen=True)
class Window:
    """One model input; `offsets[i]` is the passage char span of token i (or (-1,-1))."""

    ids: np.ndarray  # int64 [n]
    type_ids: np.ndarray  # int64 [n]
    offsets: np.ndarray  # int64 [n, 2]; -1 outside the passage
    first: int  # index of the first passage token

    def __len__(self) -> int:
        return int(self.ids.shape[0])


class Windower:
    """Tokenises question/passage pairs into `Window`s with a packaged WordPiece tokenizer."""

    def __init__(self, tokenizer_json: Path, max_len: int = MAX_LEN) -> None:
        self.tok = Tokenizer.from_file(str(tokenizer_json))
        self.tok.no_truncation()
        self.tok.no_padding()
        self.max_len = max_len
        cls, sep = self.tok.token_to_id("[CLS]"), self.tok.token_to_id("[SEP]")
        if cls is None or sep is None:
            raise ValueError(f"{tokenizer_json} is not a BERT WordPiece tokenizer ([CLS]/[SEP])")
        self.cls, self.sep = int(cls), int(sep)

    def question_ids(self, question: str) -> list[int]:
        """WordPiece ids of the question, without special tokens, capped."""
        return self.tok.encode(question, add_special_tokens=False).ids[:MAX_QUESTION]

    def passage(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """WordPiece ids and character offsets of a passage."""
        enc = self.tok.encode(text, add_special_tokens=False)
        return enc.ids, enc.offsets

    def windows(self, question: str | list[int], text: str) -> list[Window]:
        """All overlapping windows of `text` paired with `question`."""
        q = self.question_ids(question) if isinstance(question, str) else question
        ids, offsets = self.passage(text)
        room = self.max_len - len(q) - 3
        step = max(room - OVERLAP, 1)
        out: list[Window] = []
        start = 0
        while True:
            part = ids[start: start + room]
            offs = offsets[start: start + room]
            n = len(q) + len(part) + 3
            w_ids = np.empty(n, dtype=np.int64)
            w_ids[0] = self.cls
            w_ids[1: 1 + len(q)] = q
            w_ids[1 + len(q)] = self.sep
            first = 2 + len(q)
            w_ids[first: first + len(part)] = part
            w_ids[-1] = self.sep
            types = np.zeros(n, dtype=np.int64)
            types[first:] = 1
            w_off = np.full((n, 2), -1, dtype=np.int64)
            if offs:
                w_off[first: first + len(part)] = np.asarray(offs, dtype=np.int64)
            out.append(Window(w_ids, types, w_off, first))
            if start + room >= len(ids):
                return out
            start += step


def batch(windows: list[Window]) -> dict[str, np.ndarray]:
    """Pad windows to the longest one: the model's three int64 inputs."""
    n = max(len(w) for w in windows)
    ids = np.zeros((len(windows), n), dtype=np.int64)
    types = np.zeros_like(ids)
    mask = np.zeros_like(ids)
    for i, w in enumerate(windows):
        ids[i, : len(w)] = w.ids
        types[i, : len(w)] = w.type_ids
        mask[i, : len(w)] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def allowed(window: Window) -> np.ndarray:
    """Positions a prediction may use: [CLS] (no answer) and passage tokens."""
    ok = window.offsets[:, 0] >= 0
    ok[0] = True
    return ok
