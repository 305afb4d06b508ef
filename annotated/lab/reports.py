"""Reports of the lab: CSV files, plots, report.json / report.md of a run, and
a sweep's summary.

Everything here turns results that :mod:`annotated.lab` already has (a
:class:`~annotated.training.history.History`, run summaries) into files; every
file is written to a temporary name beside its target and moved into place
(:mod:`annotated.core.atomic`), so none is ever half-written.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import torch

from annotated.analysis.intervals import format_interval, t_interval
from annotated.core.atomic import write_atomic
from annotated.figures import viz
from annotated.training.history import History


def write_csv(path: Path, rows: list[dict]) -> None:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buffer.getvalue())


def _cell(text: str):
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [
            {k: _cell(v) for k, v in row.items()} for row in csv.DictReader(f)
        ]


def summarize(info: dict, history: History | None) -> dict:
    """report.json: ``info`` (status, size, time…) + in-distribution and
    per-length results + the gap."""
    summary = dict(info)
    finals = history.final_evals() if history else {}
    keep = (
        "loss",
        "perplexity",
        "token_accuracy",
        "exact_match",
        "n_sequences",
    )
    # Wilson 95%
    keep += (
        "exact_match_lo",
        "exact_match_hi",
        "token_accuracy_lo",
        "token_accuracy_hi",
    )
    summary["per_length"] = {
        str(n): {k: row.get(k) for k in keep}
        for n, row in sorted(finals.items())
    }
    train_high = info["train_length"][1]
    summary["in_distribution"] = {
        "length": train_high,
        **summary["per_length"].get(str(train_high), {}),
    }
    longer = [row for n, row in finals.items() if n > train_high]
    summary["generalisation_gap"] = None
    if longer and train_high in finals:
        summary["generalisation_gap"] = {
            k: finals[train_high][k] - sum(r[k] for r in longer) / len(longer)
            for k in ("token_accuracy", "exact_match")
        }
    low = info["train_length"][0]
    in_range = [
        row["exact_match"]
        for n, row in finals.items()
        if low <= n <= train_high
    ]
    # mean over 1…L
    summary["in_range_exact_match"] = (
        sum(in_range) / len(in_range) if in_range else None
    )
    if history:
        summary |= {
            "steps_done": history.meta.get("steps_done"),
            "train_time_s": history.meta.get("train_time_s"),
        }
        summary |= {
            k: history.meta[k]
            for k in ("learned", "steps_to_learn", "stop_accuracy")
            if k in history.meta
        }
        summary["final_train_loss"] = (
            history.steps[-1]["loss"] if history.steps else None
        )
    return summary


def run_row(summary: dict) -> dict:
    """One run's results as a flat row (a row of a sweep's summary.csv, of the
    dashboard's table): size, time, final training loss, in-distribution loss
    and accuracies, the gaps, and ``exact_match@n`` / ``token_accuracy@n`` /
    ``loss@n`` per evaluated length ``n``."""
    row = {
        "parameters": summary.get("parameters"),
        "train_time_s": summary.get("train_time_s"),
    }
    row |= {"final_train_loss": summary.get("final_train_loss")}
    for metric in ("token_accuracy", "exact_match"):
        row[f"in_dist_{metric}"] = summary.get("in_distribution", {}).get(
            metric
        )
        row[f"gap_{metric}"] = (summary.get("generalisation_gap") or {}).get(
            metric
        )
    row["in_dist_loss"] = summary.get("in_distribution", {}).get("loss")
    row["in_range_exact_match"] = summary.get("in_range_exact_match")
    if "learned" in summary:
        row["learned"], row["steps_to_learn"] = (
            int(bool(summary["learned"])),
            summary.get("steps_to_learn"),
        )
    for n, result in summary.get("per_length", {}).items():
        row[f"exact_match@{n}"], row[f"token_accuracy@{n}"] = (
            result["exact_match"],
            result["token_accuracy"],
        )
        row[f"loss@{n}"] = result.get("loss")
        # Wilson 95% interval for this run's test set
        if result.get("exact_match_lo") is not None:
            row[f"exact_match_lo@{n}"], row[f"exact_match_hi@{n}"] = (
                result["exact_match_lo"],
                result["exact_match_hi"],
            )
    return row


def _fmt(value, digits=4) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return (
        "–"
        if value is None
        else f"{value:.{digits}f}"
        if isinstance(value, float)
        else str(value)
    )


def markdown_report(summary: dict, plots: list[str]) -> str:
    lines = [
        f"# {summary['name']}",
        "",
        f"**Status: {summary['status']}**"
        + (f" — `{summary['error']}`" if summary.get("error") else ""),
        "",
    ]
    lines += [
        f"- task: `{summary['task']}`, training length {summary['train_length']}, evaluation lengths {summary['eval_lengths']}"
    ]
    lines += [
        f"- parameters: {_fmt(summary['parameters'])}; device: {summary['device']}"
    ]
    lines += [
        f"- steps: {summary.get('steps_done')}; training time: {_fmt(summary.get('train_time_s'), 1)} s; "
        f"final training loss: {_fmt(summary.get('final_train_loss'))}"
    ]
    if "learned" in summary:
        lines += [
            f"- stop rule (exact match ≥ {summary.get('stop_accuracy')} at the training lengths): "
            + (
                f"learned at step {summary['steps_to_learn']}"
                if summary["learned"]
                else "**not learned**"
            )
        ]
    lines += [
        "",
        "| length | loss | token accuracy | exact match [95% Wilson interval] |",
        "|---:|---:|---:|---:|",
    ]
    for n, row in summary["per_length"].items():
        mark = (
            " (train)"
            if int(n) == summary["in_distribution"]["length"]
            else ""
        )
        exact = _fmt(row["exact_match"], 3)
        if row.get("exact_match_lo") is not None:
            exact += (
                f" [{row['exact_match_lo']:.3f}, {row['exact_match_hi']:.3f}]"
            )
        lines.append(
            f"| {n}{mark} | {_fmt(row['loss'])} | {_fmt(row['token_accuracy'])} | {exact} |"
        )
    gap = summary.get("generalisation_gap")
    lines += [
        "",
        "Generalisation gap (in-distribution minus mean over longer lengths): "
        + (
            f"token accuracy {gap['token_accuracy']:.4f}, exact match {gap['exact_match']:.4f}"
            if gap
            else "no longer lengths"
        ),
        "",
    ]
    lines += [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def save_figure(fig, path: Path) -> None:
    write_atomic(path, viz.figure_png(fig))


def write_plots(
    folder: Path, history: History, model=None, task=None, length=None
) -> list[str]:
    if not history.steps:
        return []
    plots = {}
    fig = viz.new_figure(figsize=(11, 3.6))
    ax_loss, ax_acc = fig.subplots(1, 2)
    viz.loss_curves(history, ax_loss)
    if history.evals:
        viz.accuracy_curves(history, ax_acc)
    plots["curves.png"] = fig
    fig = viz.new_figure(figsize=(6, 3.6))
    viz.grad_norm_curves(history, fig.subplots())
    plots["grad_norms.png"] = fig
    finals = history.final_evals()
    if finals:
        fig = viz.new_figure(figsize=(6, 3.6))
        ax = fig.subplots()
        lengths = sorted(finals)
        curves = {
            m.replace("_", " "): (lengths, [finals[n][m] for n in lengths])
            for m in ("exact_match", "token_accuracy")
        }
        viz.accuracy_vs_length(
            curves, ax, train_length=length, ylabel="accuracy"
        )
        plots["accuracy_vs_length.png"] = fig
    attentions = None
    if model is not None and task is not None and length is not None:
        batch = task.sample(
            1, length, torch.Generator().manual_seed(0), split="val"
        )
        with torch.no_grad():
            # L × (1, H, T, T)
            attentions = model.eval()(
                batch.inputs, need_weights=True
            ).attentions
    if attentions and all(w is not None for w in attentions):
        stack = torch.cat([w[0] for w in attentions])  # (L*H, T, T)
        heads = attentions[0].shape[1]
        ids = batch.inputs[0].tolist()
        labels = (
            [task.token_names[i] for i in ids] if len(ids) <= 40 else None
        )
        fig = viz.new_figure(
            figsize=(3.2 * heads + 0.8, 3.0 * len(attentions))
        )
        viz.head_grid(
            stack,
            query_labels=labels,
            key_labels=labels,
            ncols=heads,
            fig=fig,
            titles=[
                f"layer {i // heads} head {i % heads}"
                for i in range(len(stack))
            ],
        )
        plots["attention.png"] = fig
    for name, fig in plots.items():
        save_figure(fig, folder / name)
    return list(plots)


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
    folder."""
    plots = []
    if history is not None:
        write_csv(folder / "metrics.csv", history.steps)
        write_csv(folder / "eval.csv", history.evals)
        plots = write_plots(folder, history, model, task, length)
        if model is None and (folder / "attention.png").is_file():
            plots.append("attention.png")
    summary = summarize(info, history)
    write_atomic(folder / "report.json", json.dumps(summary, indent=2) + "\n")
    write_atomic(folder / "report.md", markdown_report(summary, plots))
    return summary


def group_statistics(rows: list[dict], keys: list[str]) -> list[dict]:
    """Mean, sample std and a 95% Student-t interval (``*_ci_lo``,
    ``*_ci_hi``) over seeds: one ``kind=group`` row per setting of the
    non-seed grid keys, with ``learned`` = seeds that learned."""
    group_keys = [k for k in keys if k != "seed"]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(str(row[k]) for k in group_keys), []).append(
            row
        )
    skip = ("kind", "run", "status", "learned", *keys)
    metrics = [
        k
        for k in dict.fromkeys(k for r in rows for k in r)
        if k not in skip and "_lo@" not in k and "_hi@" not in k
    ]
    group_rows = []
    for label, members in groups.items():
        group = {
            "kind": "group",
            "run": "",
            "status": f"{sum(m['status'] == 'completed' for m in members)}/{len(members)} completed",
        }
        group |= dict(zip(group_keys, label)) | (
            {"seed": "*"} if "seed" in keys else {}
        )
        for metric in metrics:
            values = [
                m[metric]
                for m in members
                if isinstance(m.get(metric), int | float)
            ]
            mean = sum(values) / len(values) if values else None
            std = (
                math.sqrt(
                    sum((v - mean) ** 2 for v in values) / (len(values) - 1)
                )
                if len(values) > 1
                else (0.0 if values else None)
            )
            group[metric], group[f"{metric}_std"] = mean, std
            accuracy = (
                "accuracy" in metric or "exact_match" in metric
            ) and not metric.startswith("gap_")
            # an accuracy's interval stays in [0, 1]; a gap's may not
            bounds = (0.0, 1.0) if accuracy else None
            # one seed: none (None, not NaN)
            _, lo, hi = (
                t_interval(values, bounds=bounds) if values else (None,) * 3
            )
            group[f"{metric}_ci_lo"], group[f"{metric}_ci_hi"] = (
                _or(lo, None),
                _or(hi, None),
            )
        if any("learned" in m for m in members):
            group["learned"] = (
                f"{sum(int(m.get('learned') or 0) for m in members)}/{len(members)}"
            )
        group_rows.append(group)
    return group_rows


def _or(value, default):
    """``value`` unless it is None or NaN (an interval that one seed cannot
    give)."""
    return (
        default
        if value is None or (isinstance(value, float) and math.isnan(value))
        else value
    )


def sweep_markdown(
    folder: Path,
    name: str,
    grid: dict,
    rows: list[dict],
    group_rows: list[dict],
) -> str:
    """The sweep's report.md: the group table (mean [95% t-interval] over
    seeds), accuracy vs length, runs side by side."""
    group_keys = [k for k in grid if k != "seed"]
    lengths = sorted(
        {
            int(k.split("@")[1])
            for r in rows
            for k in r
            if k.startswith("exact_match@")
        }
    )

    # mean [95% t-interval], or – when the metric is missing
    def pm(g: dict, k: str) -> str:
        if g.get(k) is None:
            return "–"
        return format_interval(
            g[k],
            _or(g[f"{k}_ci_lo"], math.nan),
            _or(g[f"{k}_ci_hi"], math.nan),
            3,
        )

    lines = [
        f"# Sweep {name}",
        "",
        f"Grid: `{json.dumps(grid)}`; {len(rows)} runs. Mean over seeds [95% t-interval over seeds].",
        "",
    ]
    learned = any("learned" in g for g in group_rows)
    head = [
        *group_keys,
        "runs",
        *(["learned"] if learned else []),
        "in-distribution exact match",
    ]
    head += [*[f"exact match n={n}" for n in lengths], "gap (exact)"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for g in group_rows:
        cells = [str(g[k]) for k in group_keys] + [
            g["status"],
            *([g.get("learned", "–")] if learned else []),
        ]
        cells += [pm(g, "in_dist_exact_match")]
        cells += [pm(g, f"exact_match@{n}") for n in lengths] + [
            pm(g, "gap_exact_match")
        ]
        lines.append("| " + " | ".join(cells) + " |")
    curves = {}
    for g in group_rows:
        present = [
            n for n in lengths if g.get(f"exact_match@{n}") is not None
        ]
        means = [g[f"exact_match@{n}"] for n in present]
        lows = [
            _or(g.get(f"exact_match@{n}_ci_lo"), m)
            for n, m in zip(present, means)
        ]
        highs = [
            _or(g.get(f"exact_match@{n}_ci_hi"), m)
            for n, m in zip(present, means)
        ]
        errors = [
            [max(m - lo, 0.0) for m, lo in zip(means, lows)],
            [max(hi - m, 0.0) for m, hi in zip(means, highs)],
        ]
        curves[", ".join(str(g[k]) for k in group_keys) or name] = (
            present,
            means,
            errors,
        )
    fig = viz.new_figure(figsize=(7, 4))
    viz.accuracy_vs_length(
        curves,
        fig.subplots(),
        ylabel="exact match (mean, 95% interval over seeds)",
    )
    save_figure(fig, folder / "accuracy_vs_length.png")
    lines += [
        "",
        "![accuracy vs length](accuracy_vs_length.png)",
        "",
        "## Runs side by side",
        "",
    ]
    lines += [
        "| run | status | curves | accuracy vs length | attention |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        pics = [
            f'<img src="{r["run"]}/{p}" width="320">'
            if (folder / r["run"] / p).is_file()
            else "–"
            for p in ("curves.png", "accuracy_vs_length.png", "attention.png")
        ]
        lines.append(
            f"| [{r['run']}]({r['run']}/report.md) | {r['status']} | "
            + " | ".join(pics)
            + " |"
        )
    return "\n".join(lines) + "\n"
