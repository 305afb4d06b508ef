"""Gather a sweep's validation curves, with the training time at each
evaluation, into one small CSV the book ships.

    python scripts/collect_curves.py SWEEP_FOLDER [--out annotated/data]
        [--prefix modern_recipe_]

Writes ``<prefix>curves.csv``: a row per completed run and evaluation —
the run, its grid values (``model.norm_type``, ``train.optimizer``, ``seed``
…), the step, the validation loss at the training length, and
``train_seconds``, the time spent in training steps up to that step. It is
summed from the throughput each run logs (``tokens_per_s`` every
``log_every`` steps in metrics.csv), so it leaves out evaluation and
checkpoints: the race between recipes is run on training time alone.
``scripts/collect_length_sweep.py`` writes the summary and provenance of the
same folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from annotated.lab.grid import sweep_runs  # noqa: E402
from annotated.lab.summary import read_report  # noqa: E402
from annotated.lab.tables import read_csv, write_csv  # noqa: E402


def train_seconds(metrics: list[dict], tokens_per_step: int) -> dict:
    """Step → seconds of training up to it, from the logged throughput."""
    seconds, done, elapsed = {0: 0.0}, 0, 0.0
    for row in metrics:
        step = int(row["step"])
        elapsed += (step - done) * tokens_per_step / float(row["tokens_per_s"])
        seconds[step], done = elapsed, step
    return seconds


def run_curve(point, run_dir: Path, keys: list[str]) -> list[dict]:
    if read_report(run_dir).get("status") != "completed":
        return []
    train = point.train
    tokens = train["batch_size"] * point.train_length
    seconds = train_seconds(read_csv(run_dir / "metrics.csv"), tokens)
    values = {key: point_value(point, key) for key in keys}
    return [
        {"run": point.name, **values, "step": int(row["step"]),
         "val_loss": float(row["loss"]),
         "train_seconds": round(seconds[int(row["step"])], 3)}
        for row in read_csv(run_dir / "eval.csv")
        if int(row["length"]) == point.train_length
    ]  # fmt: skip


def point_value(point, key: str):
    section, _, name = key.partition(".")
    if not name:
        return getattr(point, key)
    return getattr(point, section).get(name)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "annotated/data")
    parser.add_argument("--prefix", default="modern_recipe_")
    args = parser.parse_args(argv)
    keys = list(yaml.safe_load((args.folder / "sweep.yaml").read_text())[
        "grid"
    ])
    rows = [
        row
        for point, run_dir in sweep_runs(args.folder)
        for row in run_curve(point, run_dir, keys)
    ]
    out = args.out / f"{args.prefix}curves.csv"
    write_csv(out, rows)
    print(f"{out}: {len(rows)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
