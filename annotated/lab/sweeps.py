"""Sweeps: the cross product of a grid, run inside one folder and summarised.

:func:`sweep` runs every point of a ``grid`` (``{"model.positional": [...], "seed": [...]}``)
as a run folder inside one sweep folder (``sweep.yaml`` keeps the config) and writes
summary.csv (``kind=run`` rows, then ``kind=group`` rows: mean and ``*_std`` over the seeds of
each group) and a comparative report.md. The command line's ``sweep`` and the comparison
dashboard both run their grids here.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

from annotated.files import write_atomic
from annotated.lab.config import ExperimentConfig, as_config, resolve
from annotated.lab.runs import new_folder, run
from annotated.reports import group_statistics, run_row, sweep_markdown, write_csv

GRID_KEYS = ("task", "task_kwargs", "train_length", "eval_lengths", "seed", "model", "train")


def expand_grid(config: ExperimentConfig) -> list[ExperimentConfig]:
    """One config per point of the grid's cross product, named ``<name>-<key>=<value>-…``."""
    if not config.grid:
        raise ValueError("a sweep needs a grid, e.g. grid: {model.positional: [rope, alibi], seed: [0, 1]}")
    for key, values in config.grid.items():
        if key.split(".")[0] not in GRID_KEYS or (key.split(".")[0] in ("model", "train")) != ("." in key):
            raise ValueError(f"grid key {key!r} is not sweepable; use one of {list(GRID_KEYS)} or model.X / train.X")
        if not isinstance(values, list) or not values:
            raise ValueError(f"grid[{key!r}] must be a non-empty list of values, got {values!r}")
    configs = []
    for point in itertools.product(*config.grid.values()):
        values = config.to_dict() | {"grid": {}}
        values["model"], values["train"] = dict(values["model"]), dict(values["train"])
        parts = []
        for key, value in zip(config.grid, point):
            head, _, rest = key.partition(".")
            (values[head].__setitem__(rest, value) if rest else values.__setitem__(head, value))
            parts.append(f"{rest or head}={re.sub(r'[^A-Za-z0-9_.]+', '_', str(value))}")
        values["name"] = "-".join([config.name, *parts])
        configs.append(ExperimentConfig.from_dict(values, base_dir=config.base_dir))
    return configs


def sweep(config, out_dir="experiments", *, progress: bool = False, callback=None) -> Path:
    """Run every point of ``config.grid`` inside one new folder, then write summary.csv and report.md.
    Every config is checked first; a run that fails is marked and the sweep goes on.
    ``callback(point, kind, row)`` sees each run's rows as :func:`~annotated.lab.runs.run` makes them."""
    config = as_config(config)
    points = expand_grid(config)
    for point in points:
        resolve(point)
    folder = new_folder(Path(out_dir), config.name)
    write_atomic(folder / "sweep.yaml", config.to_yaml())
    for point in points:
        report_to = None if callback is None else (lambda kind, row, point=point: callback(point, kind, row))
        try:
            run(point, progress=progress, callback=report_to, _folder=new_folder(folder, point.name, stamp=False))
        except KeyboardInterrupt:
            raise
        except Exception:  # marked "failed" in its report.json; the summary shows it
            continue
    write_summary(folder)
    return folder


def sweep_runs(folder) -> list[tuple[ExperimentConfig, Path]]:
    """Each point of the sweep in ``folder`` (from its sweep.yaml) and that point's run folder."""
    folder = Path(folder)
    return [(point, folder / point.name) for point in expand_grid(ExperimentConfig.from_file(folder / "sweep.yaml"))]


def write_summary(folder: Path) -> list[dict]:
    """summary.csv (a row per run, then mean and std over seeds per group) and a comparative report.md."""
    sweep_config = ExperimentConfig.from_file(folder / "sweep.yaml")
    keys = list(sweep_config.grid)
    rows = []
    for point, run_dir in sweep_runs(folder):
        summary = json.loads((run_dir / "report.json").read_text()) if (run_dir / "report.json").is_file() else {}
        values = point.to_dict()
        row = {"kind": "run", "run": point.name, "status": summary.get("status", "missing")}
        for key in keys:
            head, _, rest = key.partition(".")
            row[key] = values[head][rest] if rest else values[head]
        rows.append(row | run_row(summary))
    group_rows = group_statistics(rows, keys)
    write_csv(folder / "summary.csv", rows + group_rows)
    write_atomic(folder / "report.md", sweep_markdown(folder, sweep_config.name, sweep_config.grid, rows, group_rows))
    return rows + group_rows
