"""The lab: an experiment is a config; a run is a dated folder; a sweep is a
folder of runs.

Each module imports only those above it in this list:

- ``plugins``: :func:`load_plugins`, a user's file or module that registers
  tasks
- ``config``: :class:`ExperimentConfig`, the shipped configs
  (:func:`find_config`), :func:`resolve`
- ``runs``: :func:`run` one experiment into a dated folder, :func:`resume` one
  that stopped
- ``executors``: where a sweep's runs train: this process, ``jobs=N`` local
  processes, or a Ray cluster (``ray start --head`` on one machine, then
  ``executor="ray"``, ``address=``; see its docstring)
- ``sweeps``: :func:`sweep` a grid into one folder, summary.csv over seeds
  (:func:`expand_grid`); :func:`resume_sweep` finishes one on its folder
- ``rerender``: :func:`~annotated.lab.rerender.report` redraws a run's or a
  sweep's reports from its files

``plugins`` lists Python files or modules imported first, so a task a user
registers with :func:`~annotated.tasks.register_task` runs like a built-in
one. The generalisation gap of a run is its in-distribution accuracy minus the
mean accuracy over the evaluation lengths longer than training (None if there
are none). Every public name is importable from here:
``from annotated.lab import ExperimentConfig, run, sweep``.
"""

from annotated.lab.config import (
    CONFIG_DIR,
    LAB_DEFAULTS,
    NAME_PATTERN,
    ExperimentConfig,
    Resolved,
    as_config,
    find_config,
    resolve,
    shipped_configs,
    train_values,
)
from annotated.lab.executors import EXECUTORS, check_executor
from annotated.lab.plugins import load_plugins
from annotated.lab.reports import read_csv
from annotated.lab.rerender import report, rerender_run
from annotated.lab.runs import (
    environment,
    new_folder,
    resume,
    run,
    save_checkpoint,
)
from annotated.lab.sweeps import (
    GRID_KEYS,
    expand_grid,
    resume_sweep,
    sweep,
    sweep_runs,
    write_summary,
)

__all__ = [
    "CONFIG_DIR",
    "EXECUTORS",
    "GRID_KEYS",
    "LAB_DEFAULTS",
    "NAME_PATTERN",
    "ExperimentConfig",
    "Resolved",
    "as_config",
    "check_executor",
    "environment",
    "expand_grid",
    "find_config",
    "load_plugins",
    "new_folder",
    "read_csv",
    "report",
    "rerender_run",
    "resolve",
    "resume",
    "resume_sweep",
    "run",
    "save_checkpoint",
    "shipped_configs",
    "sweep",
    "sweep_runs",
    "train_values",
    "write_summary",
]
