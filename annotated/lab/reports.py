"""A run's report: ``report.json`` (status, size, time, results per length,
the generalisation gap) and ``report.md`` (the same for people, with the
run's figures), written with the run's CSV files and plots.

The generalisation gap of a run is its in-distribution accuracy minus the
mean accuracy over the evaluation lengths longer than training (None if there
are none). Every file is written to a temporary name beside its target and
moved into place (:mod:`annotated.core.atomic`), so none is ever
half-written, and a report is written whole: a stop (Ctrl-C, SIGTERM) that
arrives meanwhile takes effect once it is written. ``changes`` lists the
training fields a resume changed (:mod:`annotated.lab.resuming`).
"""

from __future__ import annotations

import json
from pathlib import Path

from annotated.core.atomic import stops_held, write_atomic
from annotated.lab.plots import write_plots
from annotated.lab.tables import write_csv
from annotated.training.history import History

# what report.json keeps of each length's final evaluation (with the Wilson
# 95% interval of each accuracy)
KEPT = ("loss", "perplexity", "token_accuracy", "exact_match", "n_sequences")
KEPT += (
    "exact_match_lo",
    "exact_match_hi",
    "token_accuracy_lo",
    "token_accuracy_hi",
)


def kept(row: dict) -> dict:
    """What report.json keeps of one evaluation row."""
    return {k: row.get(k) for k in KEPT}


def summarize(info: dict, history: History | None) -> dict:
    """report.json: ``info`` (status, size, time, held-out splits…) +
    in-distribution and per-length results + the gap."""
    summary = dict(info)
    finals = history.final_evals() if history else {}
    summary["per_length"] = {
        str(n): kept(row) for n, row in sorted(finals.items())
    }
    low, high = info["train_length"]
    summary["in_distribution"] = {
        "length": high,
        **summary["per_length"].get(str(high), {}),
    }
    longer = [row for n, row in finals.items() if n > high]
    summary["generalisation_gap"] = None
    if longer and high in finals:
        summary["generalisation_gap"] = {
            k: finals[high][k] - sum(r[k] for r in longer) / len(longer)
            for k in ("token_accuracy", "exact_match")
        }
    in_range = [
        row["exact_match"] for n, row in finals.items() if low <= n <= high
    ]
    # mean over 1…L
    summary["in_range_exact_match"] = (
        sum(in_range) / len(in_range) if in_range else None
    )
    if history:
        meta = history.meta
        summary |= {
            "steps_done": meta.get("steps_done"),
            "train_time_s": meta.get("train_time_s"),
        }
        summary |= {
            k: meta[k]
            for k in ("learned", "steps_to_learn", "stop_accuracy", "changes")
            if k in meta
        }
        summary["final_train_loss"] = (
            history.steps[-1]["loss"] if history.steps else None
        )
    return summary


def _fmt(value, digits=4) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return "–" if value is None else str(value)


def markdown_report(summary: dict, plots: list[str]) -> str:
    """report.md: what ran, the results per length, the gap, the
    figures."""
    s = summary
    error = f" — `{s['error']}`" if s.get("error") else ""
    lines = [f"# {s['name']}", "", f"**Status: {s['status']}**{error}", ""]
    lines += [
        f"- task: `{s['task']}`, training length {s['train_length']}, "
        f"evaluation lengths {s['eval_lengths']}",
        f"- parameters: {_fmt(s['parameters'])}; device: {s['device']}",
        f"- steps: {s.get('steps_done')}; training time: "
        f"{_fmt(s.get('train_time_s'), 1)} s; final training loss: "
        f"{_fmt(s.get('final_train_loss'))}",
    ]
    for change in s.get("changes", []):  # {"step": 5, "lr": [old, new]}
        fields = {k: v for k, v in change.items() if k != "step"}
        lines.append(
            f"- resumed at step {change['step']} with "
            + ", ".join(f"{k} {a} → {b}" for k, (a, b) in fields.items())
        )
    if "learned" in s:
        outcome = (
            f"learned at step {s['steps_to_learn']}"
            if s["learned"]
            else "**not learned**"
        )
        lines.append(
            f"- stop rule (exact match ≥ {s.get('stop_accuracy')} at the "
            f"training lengths): {outcome}"
        )
    lines += [
        "",
        "| length | loss | token accuracy "
        "| exact match [95% Wilson interval] |",
        "|---:|---:|---:|---:|",
    ]
    rows = [
        (f"{n} (train)" if int(n) == s["in_distribution"]["length"] else n, r)
        for n, r in s["per_length"].items()
    ]
    rows += [(f"split {k}", r) for k, r in s.get("splits", {}).items()]
    for n, row in rows:
        exact = _fmt(row["exact_match"], 3)
        if row.get("exact_match_lo") is not None:
            lo, hi = row["exact_match_lo"], row["exact_match_hi"]
            exact += f" [{lo:.3f}, {hi:.3f}]"
        lines.append(
            f"| {n} | {_fmt(row['loss'])} "
            f"| {_fmt(row['token_accuracy'])} | {exact} |"
        )
    gap = s.get("generalisation_gap")
    lines += [
        "",
        "Generalisation gap (in-distribution minus mean over longer "
        "lengths): "
        + (
            f"token accuracy {gap['token_accuracy']:.4f}, exact match "
            f"{gap['exact_match']:.4f}"
            if gap
            else "no longer lengths"
        ),
        "",
    ]
    lines += [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def write_report(
    folder: Path,
    info: dict,
    history: History | None,
    *,
    model=None,
    task=None,
    length=None,
) -> dict:
    """metrics.csv, eval.csv, plots, report.json and report.md of one run
    folder, with Ctrl-C and SIGTERM held until all are written."""
    with stops_held():
        plots = []
        if history is not None:
            write_csv(folder / "metrics.csv", history.steps)
            write_csv(folder / "eval.csv", history.evals)
            plots = write_plots(folder, history, model, task, length)
            if model is None and (folder / "attention.png").is_file():
                plots.append("attention.png")
        summary = summarize(info, history)
        text = json.dumps(summary, indent=2) + "\n"
        write_atomic(folder / "report.json", text)
        write_atomic(folder / "report.md", markdown_report(summary, plots))
    return summary
