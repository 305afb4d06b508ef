"""Sweeps: the cross product of a grid, run inside one folder and summarised.

:func:`sweep` runs every point of a ``grid``
(``{"model.positional": [...], "seed": [...]}``) as a run folder inside one
sweep folder (``sweep.yaml`` keeps the config) and writes summary.csv
(``kind=run`` rows, then ``kind=group`` rows: mean and ``*_std`` over the
seeds of each group) and a comparative report.md. The command line's ``sweep``
and the comparison dashboard both run their grids here.

Every grid point has its own run folder, ``<name>-<key>=<value>-…``; a grid
that repeats a value (``seed: [0, 0]``) gives its equal points the suffix
``-p<index>`` (the point's index in the cross product), so no two points share
a folder and the summary has a row for each.

The runs go to an executor (:mod:`annotated.lab.executors`): this process,
``jobs=N`` local processes, or Ray (``executor="ray"``, ``address=``).
:func:`resume_sweep` re-runs a sweep on its own folder, so a long sweep can be
run in chunks: a run whose report.json says ``completed`` is skipped (its
files are left as they are), a run with a checkpoint (model.pt) is resumed
from it, and a run without one starts again in a clean folder.
``python -m annotated sweep --resume FOLDER``.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from pathlib import Path

from annotated.core.atomic import write_atomic
from annotated.lab.config import ExperimentConfig, as_config, resolve
from annotated.lab.executors import Job, check_executor, execute, run_status
from annotated.lab.reports import (
    group_statistics,
    run_row,
    sweep_markdown,
    write_csv,
)
from annotated.lab.runs import new_folder, sigterm_as_interrupt

GRID_KEYS = (
    "task",
    "task_kwargs",
    "train_length",
    "eval_lengths",
    "seed",
    "model",
    "train",
)


def expand_grid(config: ExperimentConfig) -> list[ExperimentConfig]:
    """One config per point of the grid's cross product, named
    ``<name>-<key>=<value>-…`` (and ``-p<index>`` where a repeated value would
    give two points one name)."""
    if not config.grid:
        raise ValueError(
            "a sweep needs a grid, e.g. grid: {model.positional: [rope, alibi], seed: [0, 1]}"
        )
    for key, values in config.grid.items():
        if key.split(".")[0] not in GRID_KEYS or (
            key.split(".")[0] in ("model", "train")
        ) != ("." in key):
            raise ValueError(
                f"grid key {key!r} is not sweepable; use one of {list(GRID_KEYS)} or model.X / train.X"
            )
        if not isinstance(values, list) or not values:
            raise ValueError(
                f"grid[{key!r}] must be a non-empty list of values, got {values!r}"
            )
    check_overrides(config.overrides)
    points = []
    for point in itertools.product(*config.grid.values()):
        values = config.to_dict() | {"grid": {}, "overrides": []}
        values["model"], values["train"] = (
            dict(values["model"]),
            dict(values["train"]),
        )
        parts = []
        for key, value in zip(config.grid, point):
            head, _, rest = key.partition(".")
            (
                values[head].__setitem__(rest, value)
                if rest
                else values.__setitem__(head, value)
            )
            parts.append(
                f"{rest or head}={re.sub(r'[^A-Za-z0-9_.]+', '_', str(value))}"
            )
        # per-point settings, e.g. a larger max_len for one encoding
        for override in config.overrides:
            if all(
                _get(values, key) == value
                for key, value in override["when"].items()
            ):
                for key, value in override["set"].items():
                    _set(values, key, value)
        values["name"] = "-".join([config.name, *parts])
        points.append(values)
    taken = Counter(values["name"] for values in points)
    # equal names (a repeated value): each point's index makes its own
    for index, values in enumerate(points):
        if taken[values["name"]] > 1:
            # cannot meet another point's name: theirs end in key=value
            values["name"] += f"-p{index}"
    return [
        ExperimentConfig.from_dict(values, base_dir=config.base_dir)
        for values in points
    ]


def check_overrides(overrides) -> None:
    """``overrides``: a list of
    ``{"when": {key: value, …}, "set": {key: value, …}}`` with grid-style
    keys."""
    example = "overrides: [{when: {model.positional: learned}, set: {model.max_len: 90}}]"
    if not isinstance(overrides, list):
        raise ValueError(
            f"overrides must be a list, e.g. {example}; got {overrides!r}"
        )
    for item in overrides:
        if not (
            isinstance(item, dict)
            and set(item) == {"when", "set"}
            and all(isinstance(item[k], dict) for k in item)
        ):
            raise ValueError(
                f"each override is a mapping with 'when' and 'set' mappings, e.g. {example}; got {item!r}"
            )
        for key in [*item["when"], *item["set"]]:
            head = key.split(".")[0]
            if head not in GRID_KEYS or (head in ("model", "train")) != (
                "." in key
            ):
                raise ValueError(
                    f"override key {key!r}: use one of {list(GRID_KEYS)} or model.X / train.X"
                )


def _get(values: dict, key: str):
    head, _, rest = key.partition(".")
    return values[head].get(rest) if rest else values.get(head)


def _set(values: dict, key: str, value) -> None:
    head, _, rest = key.partition(".")
    (
        values[head].__setitem__(rest, value)
        if rest
        else values.__setitem__(head, value)
    )


def sweep(
    config,
    out_dir="experiments",
    *,
    jobs: int = 1,
    executor: str = "local",
    address: str | None = None,
    progress: bool = False,
    callback=None,
) -> Path:
    """Run every point of ``config.grid`` inside one new folder, then write
    summary.csv and report.md. Every config and the executor's settings are
    checked first (ValueError, no folder made); a run that fails is marked and
    the sweep goes on. ``jobs``: local processes at once; ``executor``:
    ``"local"`` or ``"ray"`` (``address``: the cluster's; see
    :mod:`annotated.lab.executors`). ``callback(point, kind, row)`` sees each
    run's rows as :func:`~annotated.lab.runs.run` makes them (``jobs=1``
    only). ``progress``: one bar for the sweep (and each run's own with
    ``jobs=1``)."""
    config = as_config(config)
    points = expand_grid(config)
    for point in points:
        resolve(point)
    check_executor(executor, jobs, address, callback)
    folder = new_folder(Path(out_dir), config.name)
    write_atomic(folder / "sweep.yaml", config.to_yaml())
    return _finish(
        folder,
        points,
        jobs=jobs,
        executor=executor,
        address=address,
        progress=progress,
        callback=callback,
    )


def resume_sweep(
    folder,
    *,
    jobs: int = 1,
    executor: str = "local",
    address: str | None = None,
    plugins=(),
    progress: bool = False,
    callback=None,
) -> Path:
    """Finish the sweep in ``folder`` (made by :func:`sweep`): skip its
    completed runs, resume the ones with a checkpoint, start the others in a
    clean folder; then write summary.csv and report.md again. ``plugins`` are
    imported besides the sweep's own; the other arguments as :func:`sweep`."""
    folder = Path(folder)
    points = [point for point, _ in sweep_runs(folder)]
    for point in points:
        point.plugins = list(point.plugins) + list(plugins)
        resolve(point)
    check_executor(executor, jobs, address, callback)
    return _finish(
        folder,
        points,
        jobs=jobs,
        executor=executor,
        address=address,
        progress=progress,
        callback=callback,
    )


def plan(
    folder: Path, points: list[ExperimentConfig]
) -> tuple[list[Job], list[str]]:
    """The jobs left in a sweep folder, and the names of the runs already
    completed (skipped)."""
    jobs, done = [], []
    for point in points:
        run_dir = folder / point.name
        if run_status(run_dir) == "completed":
            done.append(point.name)
        else:
            jobs.append(
                Job(
                    point,
                    run_dir,
                    "resume" if (run_dir / "model.pt").is_file() else "fresh",
                )
            )
    return jobs, done


def _finish(
    folder: Path, points, *, jobs, executor, address, progress, callback
) -> Path:
    from tqdm.auto import tqdm

    todo, done = plan(folder, points)
    bar = tqdm(
        total=len(points),
        initial=len(done),
        desc=f"sweep {folder.name}",
        unit="run",
        disable=not progress,
    )
    try:
        # kill PID stops the sweep as Ctrl-C does: workers save, the summary
        # is written
        with sigterm_as_interrupt():
            outcomes = execute(
                todo,
                executor,
                workers=jobs,
                address=address,
                progress=progress and jobs == 1,
                callback=callback,
                bar=bar,
            )
    finally:
        bar.close()
        # also after Ctrl-C: the summary says which runs are done
        write_summary(folder)
    refused = [
        f"{o['run']}: {o['error']}"
        for o in outcomes
        if o["error"] and o["status"] != "failed"
    ]
    if refused:  # nothing in the run's report.json says why
        raise RuntimeError(
            f"{len(refused)} run(s) could not run: " + "; ".join(refused)
        )
    return folder


def sweep_runs(folder) -> list[tuple[ExperimentConfig, Path]]:
    """Each point of the sweep in ``folder`` (from its sweep.yaml) and that
    point's run folder."""
    folder = Path(folder)
    if not (folder / "sweep.yaml").is_file():
        raise ValueError(
            f"{folder} is not a sweep folder (it has no sweep.yaml); give the folder a sweep wrote"
        )
    return [
        (point, folder / point.name)
        for point in expand_grid(
            ExperimentConfig.from_file(folder / "sweep.yaml")
        )
    ]


def read_report(run_dir: Path) -> dict:
    """A run folder's report.json, or {} when the run has not written one (not
    started)."""
    return (
        json.loads((run_dir / "report.json").read_text())
        if (run_dir / "report.json").is_file()
        else {}
    )


def point_row(point, keys, report: dict) -> dict:
    """The first columns of a grid point's summary row: kind, run name, status
    and its value of each grid key."""
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
    """summary.csv (a row per run, then mean and std over seeds per group) and
    a comparative report.md."""
    sweep_config = ExperimentConfig.from_file(folder / "sweep.yaml")
    keys = list(sweep_config.grid)
    rows = []
    for point, run_dir in sweep_runs(folder):
        summary = read_report(run_dir)
        rows.append(point_row(point, keys, summary) | run_row(summary))
    group_rows = group_statistics(rows, keys)
    write_csv(folder / "summary.csv", rows + group_rows)
    write_atomic(
        folder / "report.md",
        sweep_markdown(
            folder, sweep_config.name, sweep_config.grid, rows, group_rows
        ),
    )
    return rows + group_rows
