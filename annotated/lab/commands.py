"""The command line's subcommands, one function each: what ``python -m
annotated train|sweep|resume|report|list`` does once its arguments are read
(:mod:`annotated.lab.cli` reads them).

Each returns the exit status. A config, folder or file that cannot be used
raises ValueError before anything is written (the command line says it in
one line and exits 2); a run that fails while training raises with the run's
folder attached as ``error.run_folder``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from annotated.kernels import ATTENTION_KERNELS
from annotated.lab.config import (
    ExperimentConfig,
    find_config,
    shipped_configs,
)
from annotated.lab.rerender import report as rerender
from annotated.lab.runs import resume as resume_run
from annotated.lab.runs import run
from annotated.lab.sweeps import resume_sweep
from annotated.lab.sweeps import sweep as run_sweep
from annotated.lab.tables import read_csv
from annotated.positional import POSITIONAL_ENCODINGS
from annotated.tasks import (
    TASKS,
    ChecksumMismatchError,
    CorpusUnavailableError,
)
from annotated.training.torchrun import launch_command, process_group

# exit 2 when raised before training (ConfigError is a ValueError)
USER_ERRORS = (ValueError, CorpusUnavailableError, ChecksumMismatchError)


def train(config: ExperimentConfig, out: str, *, progress: bool) -> int:
    """``train``: one run into a new folder under ``out`` (under torchrun,
    trained by every rank and written by rank 0)."""
    with process_group() as ranks:
        folder = run(config, out, progress=progress)
        if ranks.is_main:
            print_run(folder)
    return 0


def sweep(
    name: str | None,
    *,
    resume: str | None,
    out: str,
    plugins: list[str],
    **where,
) -> int:
    """``sweep``: the grid of config ``name`` into a new folder under
    ``out``, or (``resume``) finish the sweep in that folder; ``where``:
    jobs, executor, address, progress. Exit 1 when a run failed."""
    if (name is None) == (resume is None):
        raise ValueError(
            "give a sweep config or --resume FOLDER (one of them)"
        )
    if resume:
        folder = resume_sweep(resume, plugins=plugins, **where)
    else:
        config = ExperimentConfig.from_file(find_config(name))
        config.plugins = [*config.plugins, *plugins]
        folder = run_sweep(config, out, **where)
    print(f"{folder}: summary.csv and report.md written")
    failed = [
        r["run"]
        for r in read_csv(folder / "summary.csv")
        if r["kind"] == "run" and r["status"] != "completed"
    ]
    if failed:
        print(
            f"error: {len(failed)} run(s) failed: {', '.join(failed)} "
            "(see their report.md)",
            file=sys.stderr,
        )
        return 1
    return 0


def resume(path: str, changes: dict | None = None, *, progress: bool) -> int:
    """``resume``: continue the stopped run in folder ``path`` with
    ``changes`` to its mid-run training fields (under torchrun, on as many
    ranks as it began with)."""
    with process_group() as ranks:
        folder = resume_run(
            existing_folder(path), changes=changes, progress=progress
        )
        if ranks.is_main:
            print_run(folder)
    return 0


def report(path: str) -> int:
    """``report``: redraw the reports of a run or sweep folder."""
    print(f"re-rendered {rerender(existing_folder(path))}")
    return 0


def list_everything() -> int:
    """``list``: tasks, positional encodings, attention kernels, shipped
    configs."""

    def first_line(obj) -> str:
        return (obj.__doc__ or "").strip().split("\n")[0]

    print("tasks (--task):")
    for name, task in sorted(TASKS.items()):
        print(f"  {name:20s} {first_line(type(task))}")
    print("positional encodings (--positional):")
    for name, cls in POSITIONAL_ENCODINGS.items():
        print(f"  {name:20s} {first_line(cls)}")
    print("attention kernels (--attention):")
    for name, kernel in ATTENTION_KERNELS.items():
        exact = "exact" if kernel.exact else "approximate"
        print(
            f"  {name:20s} {kernel.summary} ({exact}, memory {kernel.memory})"
        )
    print(
        "shipped configs (--config NAME, sweep NAME): "
        + ", ".join(shipped_configs())
    )
    return 0


def existing_folder(path: str) -> Path:
    if not Path(path).is_dir():
        raise ValueError(f"{path} is not a folder")
    return Path(path)


def print_run(folder) -> None:
    """One line: the run's folder, status and exact match per length (and
    per held-out split)."""
    summary = json.loads((Path(folder) / "report.json").read_text())
    results = ", ".join(
        [
            f"n={n}: {r['exact_match']:.3f}"
            for n, r in summary["per_length"].items()
        ]
        + [
            f"{k}: {r['exact_match']:.3f}"
            for k, r in summary.get("splits", {}).items()
        ]
    )
    print(f"{folder}: {summary['status']}; exact match {results}")


def ran(error: BaseException) -> bool:
    """Whether ``error`` stopped a run that had begun training (its folder
    is attached), rather than refusing one before anything was written."""
    return hasattr(error, "run_folder")


def resume_hint(error: BaseException) -> str:
    """Where a stopped run keeps its last good state, and the command that
    continues it, with a divergence's advice as flags; for a run stopped
    after its training had finished, the command that redraws its report
    ("" when there is nothing to continue)."""
    folder = getattr(error, "run_folder", None)
    if folder is None or not (Path(folder) / "model.pt").is_file():
        return ""
    report = Path(folder) / "report.json"
    try:
        finished = json.loads(report.read_text())["status"] == "completed"
    except (OSError, ValueError, LookupError, TypeError):
        finished = False
    if finished:
        return (  # stopped while the final report was written
            f"; training had finished and {report} says so; redraw its "
            f"plots with: python -m annotated report {folder}"
        )
    command = f"{launch_command()} -m annotated resume {folder}"
    return (
        f"; {folder}/model.pt holds its last good state — continue with: "
        f"{command}" + advice_flags(error)
    )


def advice_flags(error: BaseException) -> str:
    """A divergence's advice as ``resume``'s flags: ``" --lr 0.0001"``."""
    advice = getattr(error, "advice", {})
    return "".join(
        f" --{name.replace('_', '-')} {value}"
        for name, value in advice.items()
    )
