"""A sweep's summary: ``summary.csv`` and a comparative ``report.md``, made
from the run folders' report.json files.

summary.csv has a ``kind=run`` row per grid point (its values of the grid's
keys, then :func:`~annotated.lab.tables.run_row`), then a ``kind=group`` row
per setting of the keys other than the seed: mean and ``*_std`` over the
seeds, with a 95% Student-t interval
(:func:`~annotated.lab.tables.group_statistics`). report.md shows the group
table, the accuracy-vs-length figure of the groups and every run's figures
side by side.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from annotated.analysis.intervals import format_interval
from annotated.core.atomic import write_atomic
from annotated.lab.config import ExperimentConfig, read_json_file
from annotated.lab.grid import sweep_runs
from annotated.lab.plots import plot_group_accuracy
from annotated.lab.tables import group_statistics, not_nan, run_row, write_csv

# the figures of each run that report.md shows side by side
RUN_FIGURES = ("curves.png", "accuracy_vs_length.png", "attention.png")


def read_report(run_dir: Path) -> dict:
    """A run folder's report.json, or {} when the run has not written one
    (not started)."""
    path = run_dir / "report.json"
    return read_json_file(path) if path.is_file() else {}


def point_row(point, keys, report: dict) -> dict:
    """The first columns of a grid point's summary row: kind, run name,
    status and its value of each grid key."""
    values = point.to_dict()
    row = {
        "kind": "run",
        "run": point.name,
        "status": report.get("status", "missing"),
    }
    for key in keys:
        head, _, rest = key.partition(".")
        row[key] = values[head][rest] if rest else values[head]
    return row


def write_summary(folder: Path) -> list[dict]:
    """summary.csv (a row per run, then mean and std over seeds per group)
    and a comparative report.md."""
    sweep_config = ExperimentConfig.from_file(folder / "sweep.yaml")
    keys = list(sweep_config.grid)
    rows = []
    for point, run_dir in sweep_runs(folder):
        summary = read_report(run_dir)
        rows.append(point_row(point, keys, summary) | run_row(summary))
    group_rows = group_statistics(rows, keys)
    write_csv(folder / "summary.csv", rows + group_rows)
    text = sweep_markdown(
        folder, sweep_config.name, sweep_config.grid, rows, group_rows
    )
    write_atomic(folder / "report.md", text)
    return rows + group_rows


def _mean_and_interval(group: dict, metric: str) -> str:
    """mean [95% t-interval] of ``metric`` in a group row, or – when it is
    missing."""
    if group.get(metric) is None:
        return "–"
    return format_interval(
        group[metric],
        not_nan(group[f"{metric}_ci_lo"], math.nan),
        not_nan(group[f"{metric}_ci_hi"], math.nan),
        3,
    )


def sweep_markdown(
    folder: Path,
    name: str,
    grid: dict,
    rows: list[dict],
    group_rows: list[dict],
) -> str:
    """The sweep's report.md: the group table (mean [95% t-interval] over
    seeds), accuracy vs length, runs side by side. Draws the figure into
    ``folder``."""
    group_keys = [k for k in grid if k != "seed"]
    lengths = sorted(
        {
            int(k.split("@")[1])
            for r in rows
            for k in r
            if k.startswith("exact_match@")
        }
    )
    lines = [
        f"# Sweep {name}",
        "",
        f"Grid: `{json.dumps(grid)}`; {len(rows)} runs. Mean over seeds "
        "[95% t-interval over seeds].",
        "",
    ]
    learned = any("learned" in g for g in group_rows)
    head = [*group_keys, "runs", *(["learned"] if learned else [])]
    head += ["in-distribution exact match"]
    head += [*[f"exact match n={n}" for n in lengths], "gap (exact)"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    metrics = [
        "in_dist_exact_match",
        *(f"exact_match@{n}" for n in lengths),
        "gap_exact_match",
    ]
    for g in group_rows:
        cells = [str(g[k]) for k in group_keys] + [g["status"]]
        cells += [g.get("learned", "–")] if learned else []
        cells += [_mean_and_interval(g, m) for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    plot_group_accuracy(
        folder / "accuracy_vs_length.png",
        group_rows,
        group_keys,
        lengths,
        name,
    )
    lines += [
        "",
        "![accuracy vs length](accuracy_vs_length.png)",
        "",
        "## Runs side by side",
        "",
        "| run | status | curves | accuracy vs length | attention |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        pics = [
            f'<img src="{r["run"]}/{p}" width="320">'
            if (folder / r["run"] / p).is_file()
            else "–"
            for p in RUN_FIGURES
        ]
        lines.append(
            f"| [{r['run']}]({r['run']}/report.md) | {r['status']} | "
            + " | ".join(pics)
            + " |"
        )
    return "\n".join(lines) + "\n"
