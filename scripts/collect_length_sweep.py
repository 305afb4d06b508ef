"""Gather the week-6 sweeps (one sweep folder per task) into the book's stored results.

    python scripts/collect_length_sweep.py SWEEP_FOLDER... [--out annotated/data]
        [--wall-time-s SECONDS] [--command "the command lines that made the folders"]

The files go into the package (``annotated/data/`` is package data), so a chapter downloaded
on its own, or opened in Colab, finds them next to the installed library. Writes
``length_generalization_summary.csv`` (every row of every sweep's summary.csv, with ``task`` and
``train_length`` columns in front; columns a task lacks, such as another task's lengths, are
empty) and ``length_generalization_provenance.yaml`` (the commands, each sweep's config as run, and the environment
its first run recorded: library and torch versions, git commit, date). Small files only: no
weights, no per-run folders.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from annotated.reports import read_csv, write_csv  # noqa: E402

PREFIX = "length_generalization_"


def collect(folders: list[Path], out: Path, *, commands: list[str], wall_time_s: float | None) -> list[dict]:
    rows, sweeps = [], []
    for folder in folders:
        config = yaml.safe_load((folder / "sweep.yaml").read_text())
        runs = [yaml.safe_load((p / "config.yaml").read_text())["environment"]
                for p in sorted(folder.iterdir()) if (p / "config.yaml").is_file()]  # fmt: skip
        environment = runs[0] | {"created": min(r["created"] for r in runs), "last_run_created": max(r["created"] for r in runs)}
        statuses = [r["status"] for r in read_csv(folder / "summary.csv") if r["kind"] == "run"]
        sweeps.append({"folder": folder.name, "completed_runs": f"{statuses.count('completed')}/{len(statuses)}",
                       "environment": environment, "config": config})  # fmt: skip
        for row in read_csv(folder / "summary.csv"):
            rows.append({"task": config["task"], "train_length": config["train_length"]} | row)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / f"{PREFIX}summary.csv", rows)
    provenance = {"commands": commands, "wall_time_s": wall_time_s, "sweeps": sweeps}
    (out / f"{PREFIX}provenance.yaml").write_text(yaml.safe_dump(provenance, sort_keys=False, allow_unicode=True))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="sweep folders (each holds sweep.yaml and summary.csv)")
    parser.add_argument("--out", type=Path, default=ROOT / "annotated" / "data")
    parser.add_argument("--wall-time-s", type=float, default=None, help="wall time of the whole sweep")
    parser.add_argument("--command", action="append", default=[], help="a command line that made the folders")
    args = parser.parse_args(argv)
    rows = collect(args.folders, args.out, commands=args.command, wall_time_s=args.wall_time_s)
    print(f"{len(rows)} rows from {len(args.folders)} sweeps -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
