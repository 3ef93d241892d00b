"""Train the span reader on SQuAD: `rag train-reader --data DIR --out DIR`.

A linear start/end head on a packaged encoder (`rag.reading.encoders`), trained SQuAD-2.0
style (an unanswerable question, or a window without the answer, points both ends at
[CLS]). Whole articles are held out (`rag.reading.squad.split`): `val` is reported,
`calib` is kept for fitting the answer/abstain calibration the reader never trained on.

The run is seeded and checkpointed every `--checkpoint-every` steps (model, optimiser,
scheduler, step) with an atomic replace, so a killed run resumes where it stopped and
finishes with the same weights it would have had. At the end the weights are exported
to ONNX and quantised to int8 (`rag.reading.export`), and `report.json` records the
held-out scores of both.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rag.metrics import exact_match, f1
from rag.reading.decode import best_spans, snap
from rag.reading.encoders import encoder_dir
from rag.reading.squad import Example, load, split
from rag.reading.windows import Window, Windower, allowed, batch

# Batch of model inputs → (start logits, end logits): torch in training, onnxruntime shipped.
Runner = Callable[[dict[str, np.ndarray]], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the trained weights."""

    seed: int = 13
    epochs: float = 2.0
    batch_size: int = 16
    lr: float = 1e-4
    warmup: float = 0.06
    weight_decay: float = 0.01
    max_len: int = 256
    limit: int = 0  # train on the first N examples only (smoke tests); 0 = all
    holdout: int = 4  # articles held out for val, and as many again for calib
    max_steps: int = 0  # stop after this many steps (the schedule still spans all epochs)
    encoder: str = "minilm-l6"  # rag.reading.encoders.ENCODERS


class SpanModel(nn.Module):
    """Encoder + linear start/end head; forward returns (start_logits, end_logits)."""

    def __init__(self, encoder: nn.Module, hidden: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.qa = nn.Linear(hidden, 2)

    @classmethod
    def from_encoder(cls, path: Path) -> SpanModel:
        """A fresh head on the pretrained encoder folder at `path`."""
        from transformers import AutoModel

        enc = AutoModel.from_pretrained(str(path))
        return cls(enc, int(enc.config.hidden_size))

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Start and end logits, one per token."""
        h = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        logits = self.qa(h)
        return logits[..., 0], logits[..., 1]


@dataclass(frozen=True)
class Feature:
    """A training window with its target token positions (0, 0 = no answer here)."""

    window: Window
    start: int
    end: int


def label(window: Window, answer: tuple[str, int] | None) -> tuple[int, int]:
    """Token targets of the first answer in this window, or (0, 0) if it is not inside."""
    if answer is None:
        return 0, 0
    a = answer[1]
    b = a + len(answer[0])
    offs = window.offsets
    inside = np.nonzero(offs[:, 0] >= 0)[0]
    if len(inside) == 0 or offs[inside[0], 0] > a or offs[inside[-1], 1] < b:
        return 0, 0
    starts = inside[offs[inside, 1] > a]
    ends = inside[offs[inside, 0] < b]
    if len(starts) == 0 or len(ends) == 0 or ends[-1] < starts[0]:
        return 0, 0
    return int(starts[0]), int(ends[-1])


def features(windower: Windower, examples: Sequence[Example]) -> list[Feature]:
    """Every window of every example, labelled."""
    out = []
    for ex in examples:
        answer = ex.answers[0] if ex.answers else None
        for w in windower.windows(ex.question, ex.context):
            s, e = label(w, answer)
            out.append(Feature(w, s, e))
    return out


def batches(feats: list[Feature], size: int, rng: random.Random) -> list[list[int]]:
    """Length-grouped, shuffled batches: similar lengths pad little and train faster."""
    order = list(range(len(feats)))
    rng.shuffle(order)
    group = size * 50
    out: list[list[int]] = []
    for g in range(0, len(order), group):
        block = sorted(order[g: g + group], key=lambda i: len(feats[i].window))
        out.extend(block[i: i + size] for i in range(0, len(block), size))
    rng.shuffle(out)
    return out


def _tensors(feats: list[Feature]) -> dict[str, torch.Tensor]:
    arrays = batch([f.window for f in feats])
    n = arrays["input_ids"].shape[1]
    ok = np.zeros((len(feats), n), dtype=bool)
    for i, f in enumerate(feats):
        ok[i, : len(f.window)] = allowed(f.window)
    out = {k: torch.from_numpy(v) for k, v in arrays.items()}
    out["allowed"] = torch.from_numpy(ok)
    out["start"] = torch.tensor([f.start for f in feats])
    out["end"] = torch.tensor([f.end for f in feats])
    return out


def loss_of(model: SpanModel, t: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean of start and end cross-entropy over the allowed positions."""
    s, e = model(t["input_ids"], t["attention_mask"], t["token_type_ids"])
    neg = torch.finfo(s.dtype).min / 2
    s = s.masked_fill(~t["allowed"], neg)
    e = e.masked_fill(~t["allowed"], neg)
    ce = nn.functional.cross_entropy
    return (ce(s, t["start"]) + ce(e, t["end"])) / 2


def _save_atomic(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train(
    data_dir: Path,
    out_dir: Path,
    cfg: TrainConfig,
    *,
    checkpoint_every: int = 200,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train (or resume), evaluate on the held-out articles, export; returns the report."""
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(max(os.cpu_count() or 1, 1))
    data = split(load(data_dir), seed=cfg.seed, n_val=cfg.holdout, n_calib=cfg.holdout)
    train_ex = data.train[: cfg.limit] if cfg.limit else data.train
    windower = Windower(encoder_dir(cfg.encoder) / "tokenizer.json", cfg.max_len)
    feats = features(windower, train_ex)
    per_epoch = math.ceil(len(feats) / cfg.batch_size)
    total = max(int(per_epoch * cfg.epochs), 1)
    log(f"{len(train_ex)} training questions → {len(feats)} windows; {total} steps "
        f"(held out: val {data.val_titles}, calib {data.calib_titles})")

    model = SpanModel.from_encoder(encoder_dir(cfg.encoder))
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay},
         {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    warm = max(int(total * cfg.warmup), 1)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(total - s, 0) / max(total - warm, 1)))
    ckpt = out_dir / "checkpoint.pt"
    step, losses = 0, []
    if ckpt.is_file():
        state = torch.load(ckpt, weights_only=False)
        # Keys added to TrainConfig later compare at their defaults; a different stopping
        # step only trains less or further along the same schedule.
        if any(asdict(cfg).get(k) != v for k, v in state["config"].items() if k != "max_steps"):
            raise SystemExit(f"{ckpt} was made with other settings; delete it to start over")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optim"])
        sched.load_state_dict(state["sched"])
        step, losses = state["step"], state["losses"]
        if "rng" in state:  # dropout masks continue exactly as in an unbroken run
            torch.set_rng_state(state["rng"])
        log(f"resumed at step {step}/{total}")

    model.train()
    t0, done0 = time.monotonic(), step
    stop = min(cfg.max_steps, total) if cfg.max_steps else total
    for i, idx in enumerate(_schedule(feats, cfg, stop)):
        if i < step:
            continue
        loss = loss_of(model, _tensors([feats[j] for j in idx]))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        losses.append(loss.item())
        if step % 50 == 0 or step == stop:
            rate = (step - done0) * cfg.batch_size / (time.monotonic() - t0)
            log(f"step {step}/{total} loss {np.mean(losses[-50:]):.3f} ({rate:.1f} windows/s)")
        if step % checkpoint_every == 0 or step == stop:
            _save_atomic({"model": model.state_dict(), "optim": opt.state_dict(),
                          "sched": sched.state_dict(), "step": step, "losses": losses,
                          "config": asdict(cfg), "rng": torch.get_rng_state()}, ckpt)
    model.eval()
    torch.save(model.state_dict(), out_dir / "weights.pt")
    report: dict[str, Any] = {
        "config": asdict(cfg),
        "data": {"train_questions": len(train_ex), "train_windows": len(feats),
                 "val_titles": data.val_titles, "calib_titles": data.calib_titles,
                 "val_questions": len(data.val), "calib_questions": len(data.calib)},
        # Mean loss over the first and last stretch of steps (50, or a third of a short run).
        "loss_window": (w := max(1, min(50, len(losses) // 3))),
        "loss_start": float(np.mean(losses[:w])), "loss_end": float(np.mean(losses[-w:])),
        "steps": step,
    }
    return report


def _schedule(feats: list[Feature], cfg: TrainConfig, total: int) -> Iterator[list[int]]:
    """The seeded batch order over all epochs (recomputed identically on resume)."""
    rng = random.Random(cfg.seed)
    n = 0
    while True:
        for idx in batches(feats, cfg.batch_size, rng):
            if n == total:
                return
            yield idx
            n += 1


@dataclass(frozen=True)
class Prediction:
    """The reader's best span over all windows of an example and its no-answer margin."""

    text: str
    margin: float  # best span score minus the smallest null score; > threshold → answer


def predict(
    run: Runner,
    windower: Windower,
    examples: Sequence[Example],
    batch_size: int = 32,
) -> list[Prediction]:
    """Best span and margin for each example, given the paragraph (SQuAD protocol)."""
    items = [(k, w) for k, ex in enumerate(examples)
             for w in windower.windows(ex.question, ex.context)]
    best: dict[int, tuple[float, str]] = {}
    null: dict[int, float] = {}
    for b in range(0, len(items), batch_size):
        chunk = items[b: b + batch_size]
        s, e = run(batch([w for _, w in chunk]))
        for (k, w), si, ei in zip(chunk, s, e, strict=True):
            spans = best_spans(w, si, ei, k=1)
            null[k] = min(null.get(k, math.inf), float(si[0] + ei[0]))
            if spans and spans[0].score > best.get(k, (-math.inf, ""))[0]:
                a, b = snap(examples[k].context, spans[0].start, spans[0].end)
                best[k] = (spans[0].score, examples[k].context[a:b])
    return [Prediction(best.get(k, (0.0, ""))[1], best.get(k, (-math.inf, ""))[0] - null[k])
            for k in range(len(examples))]


def score(preds: Sequence[Prediction], examples: Sequence[Example], threshold: float) -> dict:
    """SQuAD metrics: answerable-only F1/EM (span alone) and SQuAD-2.0 overall F1/EM."""
    has = [(p, ex) for p, ex in zip(preds, examples, strict=True) if ex.answers]
    golds = [[a for a, _ in ex.answers] for ex in examples]
    said = [p.text if p.margin > threshold else None for p in preds]
    return {
        "has_answer_f1": float(np.mean([f1(p.text, [a for a, _ in ex.answers]) for p, ex in has])),
        "has_answer_em": float(np.mean([exact_match(p.text, [a for a, _ in ex.answers])
                                        for p, ex in has])),
        "overall_f1": float(np.mean([f1(s, g) for s, g in zip(said, golds, strict=True)])),
        "overall_em": float(np.mean([exact_match(s, g) for s, g in zip(said, golds, strict=True)])),
        "threshold": threshold,
        "n": len(examples),
        "n_answerable": len(has),
    }


def best_threshold(preds: Sequence[Prediction], examples: Sequence[Example]) -> float:
    """The no-answer margin threshold that maximises overall F1 on these examples."""
    margins = sorted({round(p.margin, 2) for p in preds if math.isfinite(p.margin)})
    return max(margins, key=lambda t: score(preds, examples, t)["overall_f1"], default=0.0)


def torch_runner(model: SpanModel) -> Runner:
    """Batch of numpy inputs → numpy start/end logits, through the torch model."""

    def run(inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            s, e = model(*(torch.from_numpy(inputs[k])
                           for k in ("input_ids", "attention_mask", "token_type_ids")))
        return s.numpy(), e.numpy()

    return run


def evaluate(
    run: Runner,
    data_dir: Path,
    cfg: TrainConfig,
) -> dict[str, Any]:
    """Held-out SQuAD scores: threshold fitted on `calib`, reported on `val`."""
    data = split(load(data_dir), seed=cfg.seed, n_val=cfg.holdout, n_calib=cfg.holdout)
    windower = Windower(encoder_dir(cfg.encoder) / "tokenizer.json")
    calib = predict(run, windower, data.calib)
    val = predict(run, windower, data.val)
    t = best_threshold(calib, data.calib)
    return {"val": score(val, data.val, t), "calib": score(calib, data.calib, t)}


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m rag.reading.train ...` is `rag train-reader ...`."""
    import sys

    from rag.cli import main as cli

    return cli(["train-reader", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
