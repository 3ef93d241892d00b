"""Evaluation report: metrics.json, a Markdown summary and one PNG chart, written atomically."""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# Headline rows of report.md, in reading order: answers, retrieval, citations, abstention, speed.
_HEADLINE = (
    ("answer.em", "Answer EM (answerable)"),
    ("answer.f1", "Answer F1 (answerable)"),
    ("overall.em", "Overall EM (SQuAD 2.0)"),
    ("overall.f1", "Overall F1 (SQuAD 2.0)"),
    ("retrieval.recall@1", "Retrieval recall@1"),
    ("retrieval.recall@5", "Retrieval recall@5"),
    ("retrieval.mrr", "Retrieval MRR"),
    ("citation.precision", "Citation precision"),
    ("citation.recall", "Citation recall"),
    ("abstention.precision", "Abstention precision"),
    ("abstention.recall", "Abstention recall"),
    ("abstention.f1", "Abstention F1"),
    ("latency_ms.p50", "Latency p50 (ms)"),
    ("latency_ms.p95", "Latency p95 (ms)"),
    ("reranked.share", "Share reranked (second look)"),
)
_WORST_N = 10
_MISSING = "—"


def _cell(value: Any) -> str:
    """Render one table cell: floats to 3 places, None as a dash, no pipes or newlines."""
    if value is None:
        return _MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return _MISSING if math.isnan(value) else f"{value:.3f}"
    # A "|" or a line break inside a cell would split the Markdown row.
    return str(value).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Render rows as a Markdown table with the given columns; numeric columns align right."""
    if not columns:
        raise ValueError("format_table needs at least one column")
    header = "| " + " | ".join(_cell(c) for c in columns) + " |"
    aligns = []
    for col in columns:
        present = [r.get(col) for r in rows if r.get(col) is not None]
        numeric = bool(present) and all(_is_number(v) for v in present)
        aligns.append("---:" if numeric else "---")
    lines = [header, "| " + " | ".join(aligns) + " |"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(col)) for col in columns) + " |")
    return "\n".join(lines) + "\n"


def _atomic_write(path: Path, data: bytes) -> None:
    """Write bytes so readers see the old file or the new one, never a partial one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates 0600; keep the old file's mode, else the usual 0644 for reports.
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # Persist the rename itself; not every platform lets a directory be opened for fsync.
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def _worst(per_question: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Questions that failed, worst first (lowest F1; ties keep the gold order)."""
    failed = [q for q in per_question if q.get("failure")]
    return sorted(failed, key=lambda q: q.get("f1") or 0.0)[:_WORST_N]


def render_markdown(metrics: Mapping[str, Any], title: str, notes: Sequence[str] = ()) -> str:
    """The text of report.md: title, notes, headline table, per-type table, worst questions."""
    parts = [f"# {title}\n"]
    if notes:
        parts.append("\n".join(f"- {n}" for n in notes) + "\n")
    parts.append(
        f"{metrics.get('n_questions', 0)} questions: {metrics.get('n_answerable', 0)} "
        f"answerable, {metrics.get('n_unanswerable', 0)} unanswerable.\n"
    )
    headline = [
        {"metric": label, "key": f"`{key}`", "value": metrics[key]}
        for key, label in _HEADLINE
        if key in metrics
    ]
    parts.append("## Headline\n\n" + format_table(headline, ["metric", "key", "value"]))

    by_type = metrics.get("by_type") or {}
    type_rows = [{"type": t, **v} for t, v in sorted(by_type.items())]
    parts.append(
        "## By question type\n\n"
        "EM/F1 are SQuAD 2.0 per question (abstaining on an unanswerable question scores 1).\n\n"
        + format_table(type_rows, ["type", "n", "em", "f1", "recall@5"])
    )

    worst = [
        {
            "id": q.get("id"),
            "type": q.get("type"),
            "question": q.get("question"),
            "prediction": "(abstained)" if q.get("prediction") is None else q.get("prediction"),
            "gold": "(unanswerable)" if q.get("gold") is None else q.get("gold"),
            "f1": q.get("f1"),
            "failed at": q.get("failure"),
        }
        for q in _worst(metrics.get("per_question") or [])
    ]
    section = f"## Worst {_WORST_N} questions\n\n"
    if worst:
        section += (
            "`retrieval`: the evidence was not in the top 5 passages; `reading`: it was, but "
            "the answer is wrong or the reader abstained; `false_answer`: answered a question "
            "the articles do not answer.\n\n"
            + format_table(
                worst, ["id", "type", "question", "prediction", "gold", "f1", "failed at"]
            )
        )
    else:
        section += "No question failed.\n"
    parts.append(section)
    return "\n".join(parts)


def render_png(metrics: Mapping[str, Any], title: str) -> bytes:
    """The bytes of report.png: F1 and recall@5 by type, and the latency histogram."""
    # Imported here so `import rag.report` stays cheap; the Agg canvas is used directly
    # (no pyplot) so no global backend state leaks into a server process.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    by_type = metrics.get("by_type") or {}
    types = sorted(by_type)
    f1s = [by_type[t].get("f1") or 0.0 for t in types]
    # A type without evidence (unanswerable) has no recall: leave its bar out, not at zero.
    recalls = [
        math.nan if by_type[t].get("recall@5") is None else by_type[t]["recall@5"] for t in types
    ]
    latencies = [
        float(q["latency_ms"])
        for q in metrics.get("per_question") or []
        if q.get("latency_ms") is not None
    ]

    fig = Figure(figsize=(12, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax_type, ax_lat = fig.subplots(1, 2, width_ratios=(3, 2))

    width = 0.4
    xs = list(range(len(types)))
    ax_type.bar([x - width / 2 for x in xs], f1s, width, label="F1 (SQuAD 2.0)", color="#4C72B0")
    ax_type.bar(
        [x + width / 2 for x in xs], recalls, width, label="retrieval recall@5", color="#DD8452"
    )
    ax_type.set_xticks(xs, [f"{t}\n(n={by_type[t].get('n', 0)})" for t in types], fontsize=8)
    ax_type.set_ylim(0, 1.15)  # headroom for the legend above the bars
    ax_type.set_xlabel("question type")
    ax_type.set_ylabel("score (0-1)")
    ax_type.set_title("Answer F1 and retrieval recall@5 by question type")
    ax_type.legend(loc="upper center", ncols=2, fontsize=8)
    ax_type.grid(axis="y", alpha=0.3)

    if latencies:
        ax_lat.hist(latencies, bins=min(30, max(5, len(latencies) // 3)), color="#55A868")
        for key, style, label in (("latency_ms.p50", "--", "p50"), ("latency_ms.p95", ":", "p95")):
            if metrics.get(key) is not None:
                value = float(metrics[key])
                ax_lat.axvline(
                    value, color="black", linestyle=style, label=f"{label} = {value:.0f} ms"
                )
        ax_lat.legend(fontsize=8)
    else:
        ax_lat.text(0.5, 0.5, "no latency data", ha="center", va="center")
    ax_lat.set_xlabel("end-to-end latency per question (ms)")
    ax_lat.set_ylabel("questions")
    ax_lat.set_title("Latency")

    fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def write_report(
    metrics: dict[str, Any], out_dir: Path, title: str, notes: Sequence[str] = ()
) -> None:
    """Write metrics.json, report.md and report.png into out_dir, each atomically."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Render everything before writing anything, so a bad metrics dict leaves the old
    # report in place; allow_nan=False because NaN is not valid JSON.
    metrics_json = json.dumps(metrics, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    markdown = render_markdown(metrics, title, notes)
    png = render_png(metrics, title)
    _atomic_write(out_dir / "metrics.json", metrics_json.encode("utf-8"))
    _atomic_write(out_dir / "report.md", markdown.encode("utf-8"))
    _atomic_write(out_dir / "report.png", png)
