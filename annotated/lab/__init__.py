"""The lab: an experiment is a config; a run is a dated folder; a sweep is a
folder of runs.

Each module imports only those above it in this list:

- ``plugins``: :func:`load_plugins`, a user's file or module that registers
  tasks; ``trackers``: the metrics also in TensorBoard or W&B
- ``config``: :class:`ExperimentConfig`, the shipped configs
  (:func:`find_config`)
- ``validation``: :func:`resolve`, the check before training, into a
  :class:`Resolved` experiment
- ``tables``, ``plots``, ``reports``: CSV files and rows over seeds, a run's
  figures, a run's report.json / report.md
- ``folders``: :func:`new_folder`, :func:`environment`, the run lock
- ``resuming``: the checks before a stopped run continues (its config
  still that of its checkpoint), and the training fields it may change
- ``ranks``: a run under torchrun: rank 0 writes it, the other ranks train
  beside it
- ``runs``: :func:`~annotated.lab.runs.run` one experiment into a dated
  folder, :func:`~annotated.lab.runs.resume` one that stopped
- ``jobs``, ``executors``, ``ray_executor``: where a sweep's runs train: this
  process, ``jobs=N`` local processes, or a Ray cluster (``ray start --head``
  on one machine, then ``executor="ray"``, ``address=``)
- ``grid``: :func:`expand_grid`, the points of a sweep; ``summary``: a
  sweep's summary.csv over seeds and its report.md
- ``sweeps``: :func:`~annotated.lab.sweeps.sweep` a grid into one folder;
  :func:`resume_sweep` finishes one on its folder
- ``rerender``: :func:`~annotated.lab.rerender.report` redraws a run's or a
  sweep's reports from its files
- ``flags``, ``commands``, ``cli``: the command line, ``python -m annotated``

``plugins`` lists Python files or modules imported first, so a task a user
registers with :func:`~annotated.tasks.register_task` runs like a built-in
one. Every public name is importable from here:
``from annotated.lab import ExperimentConfig, run, sweep``.
"""

from annotated.lab.config import (
    CONFIG_DIR,
    NAME_PATTERN,
    ExperimentConfig,
    as_config,
    find_config,
    shipped_configs,
)
from annotated.lab.executors import EXECUTORS, check_executor
from annotated.lab.folders import environment, new_folder
from annotated.lab.grid import GRID_KEYS, expand_grid, sweep_runs
from annotated.lab.plugins import load_plugins
from annotated.lab.rerender import report, rerender_run
from annotated.lab.runs import resume, run, save_checkpoint
from annotated.lab.summary import write_summary
from annotated.lab.sweeps import resume_sweep, sweep
from annotated.lab.tables import read_csv
from annotated.lab.validation import (
    LAB_DEFAULTS,
    Resolved,
    resolve,
    train_values,
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
