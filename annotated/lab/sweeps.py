"""Sweeps: the cross product of a grid, run inside one folder and
summarised.

:func:`sweep` runs every point of a ``grid``
(``{"model.positional": [...], "seed": [...]}``, :mod:`annotated.lab.grid`)
as a run folder inside one sweep folder (``sweep.yaml`` keeps the config) and
writes summary.csv and a comparative report.md
(:mod:`annotated.lab.summary`). The command line's ``sweep`` and the
comparison dashboard both run their grids here.

The runs go to an executor (:mod:`annotated.lab.executors`): this process,
``jobs=N`` local processes, or Ray (``executor="ray"``, ``address=``).
:func:`resume_sweep` re-runs a sweep on its own folder, so a long sweep can be
run in chunks: a run whose report.json says ``completed`` is skipped (its
files are left as they are), a run with a checkpoint (model.pt) is resumed
from it, and a run without one starts again in a clean folder.
``python -m annotated sweep --resume FOLDER``.
"""

from __future__ import annotations

from pathlib import Path

from annotated.core.atomic import write_atomic
from annotated.lab.config import ExperimentConfig, as_config
from annotated.lab.executors import check_executor, execute
from annotated.lab.folders import new_folder
from annotated.lab.grid import expand_grid, sweep_runs
from annotated.lab.jobs import Job, run_status
from annotated.lab.runs import sigterm_as_interrupt
from annotated.lab.summary import write_summary
from annotated.lab.validation import resolve


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
    check_executor(executor, jobs, address, callback)
    config = as_config(config)
    points = expand_grid(config)
    for point in points:
        resolve(point)
    folder = new_folder(Path(out_dir), config.name)
    write_atomic(folder / "sweep.yaml", config.to_yaml())
    where = {"jobs": jobs, "executor": executor, "address": address}
    return _finish(folder, points, progress, callback, **where)


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
    clean folder; then write summary.csv and report.md again. ``plugins``
    are imported besides the sweep's own; the other arguments as
    :func:`sweep`."""
    check_executor(executor, jobs, address, callback)
    folder = Path(folder)
    points = [point for point, _ in sweep_runs(folder)]
    for point in points:
        point.plugins = [*point.plugins, *plugins]
        resolve(point)
    where = {"jobs": jobs, "executor": executor, "address": address}
    return _finish(folder, points, progress, callback, **where)


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
            action = "resume" if (run_dir / "model.pt").is_file() else "fresh"
            jobs.append(Job(point, run_dir, action))
    return jobs, done


def _finish(
    folder: Path, points, progress, callback, *, jobs, executor, address
) -> Path:
    """Run the jobs left in ``folder``, then write its summary (also after
    Ctrl-C: the summary says which runs are done)."""
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
