"""`rag train-reader`: train → export int8 → held-out scores → calibration → model card.

Each stage writes its result into `--out` and is skipped when that result is already
there, so a run cut off at any point continues where it stopped (training itself resumes
from its checkpoint). `--ship` copies the finished model, tokenizer, card and calibration
into the package (`rag/reading/model/`, `rag/calibration.json`), where the service loads
them from.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.decision import DEFAULT_CALIBRATION, Calibration
from rag.reading.encoders import CREDITS
from rag.reading.encoders import DEFAULT as DEFAULT_ENCODER
from rag.reading.model import MODEL_DIR, MODEL_FILE, SpanModel, sha256
from rag.reading.train import TrainConfig

Log = Callable[[str], None]
CARD = "MODEL_CARD.md"


def train_reader(data: Path, out: Path, cfg: TrainConfig, *, calib_questions: int = 0,
                 checkpoint_every: int = 200, news: tuple[Path, ...] = (),
                 index_dir: Path | None = None, log: Log = print) -> dict[str, Any]:
    """Run every stage not yet done; returns the full report (also `out/report.json`)."""
    import torch

    from rag.reading import calibrate, export, squad, train

    out.mkdir(parents=True, exist_ok=True)
    report_path = out / "report.json"
    report: dict[str, Any] = (
        json.loads(report_path.read_text()) if report_path.is_file() else {}
    )

    def save() -> None:
        report_path.write_text(json.dumps(report, indent=2, default=str) + "\n")

    if not (out / "weights.pt").is_file():
        report["training"] = train.train(data, out, cfg, checkpoint_every=checkpoint_every,
                                         log=log)
        save()
    model_dir = out / "model"
    if not (model_dir / MODEL_FILE).is_file():
        log("exporting to int8 ONNX")
        export.export(out / "weights.pt", model_dir, cfg.encoder)
    if "heldout_int8" not in report:
        log("scoring held-out SQuAD articles (paragraph given), torch and int8")
        torch_model = train.SpanModel.from_encoder(train.encoder_dir(cfg.encoder))
        torch_model.load_state_dict(torch.load(out / "weights.pt", weights_only=True))
        torch_model.eval()
        report["heldout_torch"] = train.evaluate(train.torch_runner(torch_model), data, cfg)
        report["heldout_int8"] = train.evaluate(SpanModel(model_dir).logits, data, cfg)
        save()
    rows_file = model_dir / "calibration_rows.json"
    if not (model_dir / "calibration.json").is_file():
        span_model = SpanModel(model_dir)
        if rows_file.is_file():  # rows already collected with these weights: refit only
            fit_rows, val_rows = calibrate.load_rows(rows_file)
        else:
            from rag.reading.reader import LearnedReader

            log("collecting ranker/calibration rows through the real pipeline on held-out "
                "articles")
            split = squad.split(squad.load(data), seed=cfg.seed, n_val=cfg.holdout,
                                n_calib=cfg.holdout)
            cal_ex, val_ex = split.calib, split.val
            if calib_questions:
                cal_ex, val_ex = cal_ex[:calib_questions], val_ex[:calib_questions]
            fit_rows, val_rows = calibrate.pipeline_rows(
                cal_ex, val_ex, lambda index, enc: LearnedReader(index, enc, span_model),
                log=log, rows_file=rows_file)
        # One fit for a first run and a resumed one alike, with the development questions
        # over news when --news is given.
        dev = _news_rows(news, index_dir, span_model, log) if news else []
        calib = calibrate.fit(calibrate.with_news(fit_rows, dev), note=(
            f"{len(fit_rows)} questions on held-out SQuAD articles (+ generic off-topic)"
            + (f" and {len(dev)} development questions over news ("
               + ", ".join(p.name for p in news) + ")" if dev else "")
            + " through the real pipeline; never gold or blind data"))
        fitted = calibrate.report(calib, fit_rows, val_rows)
        if dev:
            fitted["news_dev"] = calibrate.score(calib, dev)
            fitted["news_dev_cv"] = calibrate.cross_validated(fit_rows, dev)
            fitted["news_files"] = [str(p) for p in news]
        calib.fitted_on += f"; span model sha256 {span_model.sha256[:16]}"
        calib.save("extractive", model_dir / "calibration.json")
        report["calibration"] = fitted
        save()
    report["model"] = {"file": MODEL_FILE, "sha256": sha256(model_dir / MODEL_FILE),
                       "bytes": (model_dir / MODEL_FILE).stat().st_size}
    report["command"] = " ".join(["rag", *sys.argv[1:]]) if sys.argv else ""
    save()
    (model_dir / CARD).write_text(model_card(report))
    shutil.copyfile(report_path, model_dir / "report.json")
    return report


def _news_rows(news: tuple[Path, ...], index_dir: Path | None, span_model: SpanModel,
               log: Log) -> list[Any]:
    """Candidate rows of development questions over the articles of an index."""
    from rag.evaluation import ALWAYS_ANSWER
    from rag.pipeline import QA, make_index
    from rag.reading import calibrate
    from rag.reading.reader import LearnedReader
    from rag.settings import Settings

    settings = Settings(index_dir=index_dir) if index_dir else Settings()
    index = make_index(settings, notify=lambda _m: None).open()
    qa = QA(index, reader=None, notify=lambda _m: None)  # type: ignore[arg-type]
    qa.reader = LearnedReader(index, qa.encode, span_model)
    log(f"news rows: {', '.join(str(p) for p in news)} over {settings.index_dir}")
    rows = calibrate.news_rows(lambda q: qa.trace(q, calibration=ALWAYS_ANSWER).readings, news)
    index.close()
    return rows


def ship(out: Path, log: Log = print) -> None:
    """Copy a finished model into the package and its calibration into calibration.json."""
    model_dir = out / "model"
    for name in (MODEL_FILE, "tokenizer.json", CARD, "report.json"):
        shutil.copyfile(model_dir / name, MODEL_DIR / name)
    Calibration.load(model_dir / "calibration.json", "extractive").save(
        "extractive", DEFAULT_CALIBRATION)
    log(f"shipped {MODEL_DIR / MODEL_FILE} and its calibration")


def _pct(x: float) -> str:
    return f"{x:.3f}"


def model_card(report: dict[str, Any]) -> str:
    """The model card: what it is, data and licence credit, command, scores, hash."""
    t = report.get("training", {})
    cfg = t.get("config", {})
    d = t.get("data", {})
    encoder = cfg.get("encoder", DEFAULT_ENCODER)
    news_files = (report.get("calibration") or {}).get("news_files", [])
    lines = [
        f"# Span reader: {encoder} + start/end head, trained on SQuAD (int8 ONNX)",
        "",
        "The learned extractive reader of `rag` (see `rag/reading/`). Given a question and a",
        "passage it scores every token as the start and the end of the answer; position 0",
        "([CLS]) is the no-answer slot (SQuAD 2.0 style).",
        "",
        "## Base model and data (credit)",
        f"- Encoder: {CREDITS.get(encoder, encoder)}.",
        "- Training data: SQuAD 1.1 dev and SQuAD 2.0 dev (CC BY-SA 4.0; Rajpurkar et al.,",
        "  \"SQuAD: 100,000+ Questions for Machine Comprehension of Text\", 2016; \"Know What",
        "  You Don't Know: Unanswerable Questions for SQuAD\", 2018), merged and split by",
        "  article. The weights are a derivative of that data and are shared under the same",
        "  CC BY-SA 4.0 terms.",
        f"- Held out (never trained on): val {', '.join(d.get('val_titles', []))}; "
        f"calib {', '.join(d.get('calib_titles', []))}.",
        f"- {d.get('train_questions', '?')} training questions → "
        f"{d.get('train_windows', '?')} windows of ≤{cfg.get('max_len', '?')} tokens.",
        "",
        "## Reproduce",
        "```",
        f"rag train-reader --data ../shared/data/squad --out runs/reader --epochs "
        f"{cfg.get('epochs')} --max-steps {cfg.get('max_steps') or 0} --encoder {encoder}"
        + "".join(f" --news {' '.join(files)}" for files in [news_files] if files)
        + " --ship",
        "```",
        f"Seeded (seed {cfg.get('seed')}): epochs {cfg.get('epochs')}, batch "
        f"{cfg.get('batch_size')}, AdamW lr {cfg.get('lr')} (warm-up "
        f"{cfg.get('warmup')}, linear decay), weight decay {cfg.get('weight_decay')}; "
        f"{t.get('steps', '?')} steps; mean loss {t.get('loss_start', 0):.3f} over the first "
        f"{t.get('loss_window')} steps → {t.get('loss_end', 0):.3f} over the last. "
        "The learning-rate schedule spans all epochs; `--max-steps` stops it early (on 2 "
        "CPU cores a step of 16 windows takes ~2.5 s with minilm-l6, ~4 s with marco-l12).",
        "",
        "The int8 file is quantised per channel: one scale per tensor lost 0.020 answerable "
        "F1 on the val articles, per channel nothing measurable. Spans are widened to whole "
        "words (`decode.snap`; WordPiece splits \"HK$220\"), -0.002 F1 on SQuAD.",
        "",
        "## Held-out SQuAD scores (gold paragraph given)",
        "No-answer threshold fitted on the calib articles, reported on the val articles.",
        "",
        "| weights | answerable F1 | answerable EM | SQuAD-2.0 overall F1 | overall EM | n |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, label in (("heldout_torch", "fp32 (torch)"), ("heldout_int8", "int8 (ONNX)")):
        v = report.get(key, {}).get("val")
        if v:
            lines.append(f"| {label} | {_pct(v['has_answer_f1'])} | {_pct(v['has_answer_em'])} "
                         f"| {_pct(v['overall_f1'])} | {_pct(v['overall_em'])} | {v['n']} |")
    cal = report.get("calibration")
    if cal:
        lines += [
            "",
            "## Through the real pipeline (retrieval over the held-out articles)",
            "Ranker/calibration fitted on the calib articles' questions (+ generic off-topic",
            "questions), scored on the val articles' questions. Ablation: each feature dropped",
            "in turn and the calibration refitted.",
            "",
            "`ranked F1`: the top candidate's F1 on answerable questions (ranking alone);",
            "`overall F1 @25%`: SQuAD-2.0 F1 weighted as if a quarter of the questions were",
            "unanswerable (what the threshold is chosen for; the val articles are half",
            "unanswerable); `answer F1`: answerable questions, abstentions scoring 0.",
            "",
            "| features | ranked F1 | overall F1 @25% | answer F1 | abstention F1 | overall F1 |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, v in cal["ablation_val"].items():
            lines.append(f"| {name} | {_pct(v['ranked_f1'])} | "
                         f"{_pct(v.get('overall_f1_at_share', 0.0))} | {_pct(v['answer_f1'])} | "
                         f"{_pct(v['abstention_f1'])} | {_pct(v['overall_f1'])} |")
    dev = (cal or {}).get("news_dev")
    if dev:
        lines += ["", "The calibration also learned from our development questions over news "
                  f"(`--news`, {dev['n']} questions; repeated to weigh as much as SQuAD): on "
                  f"them, fitted, answer F1 {_pct(dev['answer_f1'])}, ranked F1 "
                  f"{_pct(dev['ranked_f1'])}, abstention F1 {_pct(dev['abstention_f1'])}."]
        cv = (cal or {}).get("news_dev_cv")
        if cv:
            lines[-1] += (f" Held out ({cv['folds']}-fold cross-validation: each part decided "
                          "by a calibration fitted without it): answer F1 "
                          f"{_pct(cv['answer_f1'])}, ranked F1 {_pct(cv['ranked_f1'])}, "
                          f"abstention F1 {_pct(cv['abstention_f1'])}.")
    m = report.get("model", {})
    lines += ["", "## File", f"- `{m.get('file')}`: {m.get('bytes', 0) / 1e6:.1f} MB, sha256 "
              f"`{m.get('sha256')}`", "- `tokenizer.json`: the encoder's WordPiece tokenizer.",
              ""]
    return "\n".join(lines)
