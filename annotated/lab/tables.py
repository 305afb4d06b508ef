"""The lab's tables: CSV files, a run's results as one row, and the rows
that sum up a group of runs over their seeds.

A sweep's summary.csv holds one ``kind=run`` row per run (:func:`run_row`),
then one ``kind=group`` row per setting of the grid's other keys
(:func:`group_statistics`): the mean, the sample standard deviation
(``*_std``) and a 95% Student-t interval over the seeds (``*_ci_lo``,
``*_ci_hi``). Files are written to a temporary name and moved into place
(:mod:`annotated.core.atomic`), so none is ever half-written.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from annotated.analysis.intervals import t_interval
from annotated.core.atomic import write_atomic


def write_csv(path: Path, rows: list[dict]) -> None:
    """``rows`` as CSV, one column per key any row has, in first-seen
    order."""
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
    """The rows of a CSV file, numbers read as numbers and empty cells as
    None; ``[]`` when there is no file."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [
            {k: _cell(v) for k, v in row.items()} for row in csv.DictReader(f)
        ]


def run_row(summary: dict) -> dict:
    """One run's results as a flat row (a row of a sweep's summary.csv, of
    the dashboard's table): size, time, final training loss, in-distribution
    loss and accuracies, the gaps, and ``exact_match@n`` /
    ``token_accuracy@n`` / ``loss@n`` per evaluated length ``n``."""
    in_dist = summary.get("in_distribution", {})
    gap = summary.get("generalisation_gap") or {}
    row = {
        "parameters": summary.get("parameters"),
        "train_time_s": summary.get("train_time_s"),
        "final_train_loss": summary.get("final_train_loss"),
    }
    for metric in ("token_accuracy", "exact_match"):
        row[f"in_dist_{metric}"] = in_dist.get(metric)
        row[f"gap_{metric}"] = gap.get(metric)
    row["in_dist_loss"] = in_dist.get("loss")
    row["in_range_exact_match"] = summary.get("in_range_exact_match")
    if "learned" in summary:
        row["learned"] = int(bool(summary["learned"]))
        row["steps_to_learn"] = summary.get("steps_to_learn")
    for n, result in summary.get("per_length", {}).items():
        row[f"exact_match@{n}"] = result["exact_match"]
        row[f"token_accuracy@{n}"] = result["token_accuracy"]
        row[f"loss@{n}"] = result.get("loss")
        # Wilson 95% interval for this run's test set
        if result.get("exact_match_lo") is not None:
            row[f"exact_match_lo@{n}"] = result["exact_match_lo"]
            row[f"exact_match_hi@{n}"] = result["exact_match_hi"]
    return row


def group_statistics(rows: list[dict], keys: list[str]) -> list[dict]:
    """Mean, sample std and a 95% Student-t interval (``*_ci_lo``,
    ``*_ci_hi``) over seeds: one ``kind=group`` row per setting of the
    non-seed grid keys, with ``learned`` = seeds that learned."""
    group_keys = [k for k in keys if k != "seed"]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        label = tuple(str(row[k]) for k in group_keys)
        groups.setdefault(label, []).append(row)
    skip = ("kind", "run", "status", "learned", *keys)
    metrics = [
        k
        for k in dict.fromkeys(k for r in rows for k in r)
        if k not in skip and "_lo@" not in k and "_hi@" not in k
    ]
    group_rows = []
    for label, members in groups.items():
        completed = sum(m["status"] == "completed" for m in members)
        group = {
            "kind": "group",
            "run": "",
            "status": f"{completed}/{len(members)} completed",
        }
        group |= dict(zip(group_keys, label))
        group |= {"seed": "*"} if "seed" in keys else {}
        for metric in metrics:
            values = [
                m[metric]
                for m in members
                if isinstance(m.get(metric), int | float)
            ]
            group |= _statistics(metric, values)
        if any("learned" in m for m in members):
            learned = sum(int(m.get("learned") or 0) for m in members)
            group["learned"] = f"{learned}/{len(members)}"
        group_rows.append(group)
    return group_rows


def _statistics(metric: str, values: list[float]) -> dict:
    """``metric``, ``metric_std``, ``metric_ci_lo``, ``metric_ci_hi`` over
    ``values`` (None where there are too few)."""
    if not values:
        return dict.fromkeys(
            [metric, *(f"{metric}_{s}" for s in ("std", "ci_lo", "ci_hi"))]
        )
    mean = sum(values) / len(values)
    std = (
        math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
        if len(values) > 1
        else 0.0
    )
    accuracy = (
        "accuracy" in metric or "exact_match" in metric
    ) and not metric.startswith("gap_")
    # an accuracy's interval stays in [0, 1]; a gap's may not
    _, lo, hi = t_interval(values, bounds=(0.0, 1.0) if accuracy else None)
    return {
        metric: mean,
        f"{metric}_std": std,
        # one seed: no interval (None, not NaN)
        f"{metric}_ci_lo": not_nan(lo, None),
        f"{metric}_ci_hi": not_nan(hi, None),
    }


def not_nan(value, default):
    """``value`` unless it is None or NaN (an interval that one seed cannot
    give)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return default
    return value
