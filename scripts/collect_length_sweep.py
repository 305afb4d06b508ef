"""Gather length-generalisation sweeps (one sweep folder per task) into the book's stored results.

    python scripts/collect_length_sweep.py SWEEP_FOLDER... [--out annotated/data]
        [--prefix length_generalization_] [--wall-time-s SECONDS]
        [--command "the command lines that made the folders"]

The files go into the package (``annotated/data/`` is package data), so a chapter downloaded
on its own, or opened in Colab, finds them next to the installed library. Writes
``<prefix>summary.csv`` (a row per run of every sweep, then mean, std and 95% t-interval over
seeds per group, with ``task`` and ``train_length`` columns in front; columns a task lacks, such
as another task's lengths, are empty) and ``<prefix>provenance.yaml`` (the commands, and per
sweep: its config as run, how many runs completed, the environment its first run recorded —
library and torch versions, git commit, date — and its wall time). Small files only: no
weights, no per-run folders.

The rows are made from the run folders' report.json files, as ``annotated.lab.write_summary``
makes summary.csv, so a sweep that is still running can be collected: a run that has not
completed keeps its row (with its status) but no numbers, and the groups average completed
runs only. The week-6 chapter states how many runs each sweep had completed.

    # the protocol sweeps of week 6
    python scripts/collect_length_sweep.py --prefix length_protocol_ runs/*_randomized_sort \\
        runs/*_length_counting_copy runs/*_length_copy_eos runs/*_length_addition_coupled
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from annotated.lab.folders import unclean_provenance  # noqa: E402
from annotated.lab.grid import sweep_runs  # noqa: E402
from annotated.lab.summary import point_row, read_report  # noqa: E402
from annotated.lab.tables import (  # noqa: E402
    group_statistics,
    read_csv,
    run_row,
    write_csv,
)

PREFIX = "length_generalization_"


def sweep_rows(folder: Path) -> tuple[list[dict], list[dict]]:
    """(rows of summary.csv, each run's report.json) from a sweep folder's runs; numbers only for completed runs."""
    config = yaml.safe_load((folder / "sweep.yaml").read_text())
    keys = list(config["grid"])
    rows, reports = [], []
    for point, run_dir in sweep_runs(folder):
        report = read_report(run_dir)
        row = point_row(point, keys, report)
        row.setdefault(
            "model.positional", point.model.get("positional")
        )  # a sweep over seeds only
        rows.append(
            row | (run_row(report) if row["status"] == "completed" else {})
        )
        reports.append(report | {"folder": run_dir})
    return rows + group_statistics(rows, keys), reports


def wall_time(reports: list[dict]) -> dict:
    """The runs' summed wall time, and the span from the first run's start to the last run's end."""
    done = [r for r in reports if r.get("status") == "completed"]
    if not done:
        return {"runs_wall_time_s": 0.0, "span_s": None}
    starts, ends = [], []
    for report in done:
        created = yaml.safe_load(
            (report["folder"] / "config.yaml").read_text()
        )["environment"]["created"]
        start = datetime.fromisoformat(str(created))
        starts.append(start)
        ends.append(start + timedelta(seconds=report["wall_time_s"]))
    return {"runs_wall_time_s": round(sum(r["wall_time_s"] for r in done), 1),
            "runs_cpu_time_s": round(sum(r.get("cpu_time_s") or 0.0 for r in done), 1),
            "span_s": round((max(ends) - min(starts)).total_seconds(), 1)}  # fmt: skip


def merged(out: Path, prefix: str, rows: list[dict], provenance: dict):
    """The stored files with the tasks of ``rows`` replaced in place (the
    other tasks' rows, sweeps and commands kept as they were)."""
    tasks = {r["task"] for r in rows}
    old_rows = read_csv(out / f"{prefix}summary.csv")
    old = yaml.safe_load((out / f"{prefix}provenance.yaml").read_text())
    at = next(i for i, r in enumerate(old_rows) if r["task"] in tasks)
    kept = [r for r in old_rows if r["task"] not in tasks]
    sweeps = old["sweeps"]
    where = next(i for i, s in enumerate(sweeps) if s["config"]["task"] in tasks)
    sweeps = [s for s in sweeps if s["config"]["task"] not in tasks]
    names = {s["config"]["name"] for s in provenance["sweeps"]}
    commands = [c for c in old["commands"]
                if not any(f"sweep {n} " in c for n in names)]  # fmt: skip
    return kept[:at] + rows + kept[at:], old | {
        "commands": commands + provenance["commands"],
        "sweeps": sweeps[:where] + provenance["sweeps"] + sweeps[where:],
    }


def collect(folders: list[Path], out: Path, *, commands: list[str], wall_time_s: float | None,
            prefix: str = PREFIX, allow_dirty: bool = False, merge: bool = False) -> list[dict]:  # fmt: skip
    rows, sweeps = [], []
    for folder in folders:
        config = yaml.safe_load((folder / "sweep.yaml").read_text())
        summary, reports = sweep_rows(folder)
        runs = [yaml.safe_load((p / "config.yaml").read_text())["environment"]
                for p in sorted(folder.iterdir()) if (p / "config.yaml").is_file()]  # fmt: skip
        if not runs:
            raise ValueError(
                f"{folder}: no run has started yet (no run folder holds a config.yaml)"
            )
        problem = unclean_provenance(runs)
        if problem and not allow_dirty:
            raise SystemExit(f"error: {folder}: {problem}")
        environment = runs[0] | {
            "created": min(r["created"] for r in runs),
            "last_run_created": max(r["created"] for r in runs),
        }
        statuses = [r["status"] for r in summary if r["kind"] == "run"]
        sweeps.append({"folder": folder.name, "completed_runs": f"{statuses.count('completed')}/{len(statuses)}",
                       "statuses": dict(Counter(statuses)), "wall_time": wall_time(reports),
                       "environment": environment, "clean": problem is None, "config": config})  # fmt: skip
        for row in summary:
            rows.append(
                {
                    "task": config["task"],
                    "train_length": config["train_length"],
                }
                | row
            )
    out.mkdir(parents=True, exist_ok=True)
    provenance = {
        "commands": commands,
        "wall_time_s": wall_time_s,
        "sweeps": sweeps,
    }
    if merge:
        rows, provenance = merged(out, prefix, rows, provenance)
    write_csv(out / f"{prefix}summary.csv", rows)
    (out / f"{prefix}provenance.yaml").write_text(
        yaml.safe_dump(provenance, sort_keys=False, allow_unicode=True)
    )
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "folders",
        nargs="+",
        type=Path,
        help="sweep folders (each holds sweep.yaml and run folders)",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "annotated" / "data"
    )
    parser.add_argument(
        "--prefix",
        default=PREFIX,
        help=f"file name prefix of the two files (default {PREFIX})",
    )
    parser.add_argument(
        "--wall-time-s",
        type=float,
        default=None,
        help="wall time of the whole sweep",
    )
    parser.add_argument(
        "--command",
        action="append",
        default=[],
        help="a command line that made the folders",
    )
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="store runs made from a tree that differed from its commit (their diff's SHA-256 is recorded)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="replace only these sweeps' tasks in the stored files (the "
        "other tasks' rows and provenance stay as they were)",
    )
    args = parser.parse_args(argv)
    rows = collect(
        args.folders,
        args.out,
        commands=args.command,
        wall_time_s=args.wall_time_s,
        prefix=args.prefix,
        allow_dirty=args.allow_dirty,
        merge=args.merge,
    )
    print(
        f"{len(rows)} rows from {len(args.folders)} sweeps -> {args.out}/{args.prefix}{{summary.csv,provenance.yaml}}"
    )
    for folder in args.folders:
        print(f"  {folder.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
