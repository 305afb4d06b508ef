"""A sweep's unit of work: one grid point, its run folder, and whether to
start it in a clean folder or resume it from its checkpoint.

:func:`run_job` trains one job wherever it is called (this process, a worker
process, a Ray task) and returns its outcome, so every executor
(:mod:`annotated.lab.executors`) runs a job the same way.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from annotated.lab.config import ExperimentConfig
from annotated.lab.folders import refuse_if_locked
from annotated.lab.runs import resume, run

# start in a clean folder; continue from the folder's model.pt
ACTIONS = ("fresh", "resume")


@dataclass(frozen=True)
class Job:
    """One grid point of a sweep, its run folder, and whether to start it
    fresh or resume it."""

    config: ExperimentConfig
    folder: Path
    action: str = "fresh"


def run_job(job: Job, *, progress: bool = False, callback=None) -> dict:
    """Train ``job`` into its folder; return ``{"run", "status", "error"}``.
    A run that fails is marked ``failed`` in its report.json and reported
    here; KeyboardInterrupt propagates."""
    if job.action not in ACTIONS:
        raise ValueError(
            f"unknown job action {job.action!r}; use one of {list(ACTIONS)}"
        )
    error = None
    try:
        if job.action == "resume":
            resume(job.folder, progress=progress, callback=callback)
        else:
            # a run stopped before its first checkpoint: nothing in it to
            # keep
            if job.folder.exists():
                refuse_if_locked(job.folder)
                shutil.rmtree(job.folder)
            job.folder.mkdir(parents=True)
            run(
                job.config,
                progress=progress,
                callback=callback,
                _folder=job.folder,
            )
    except Exception as exc:
        # report.json says "failed" with the traceback (unless resume
        # refused)
        error = f"{type(exc).__name__}: {exc}"
    return {
        "run": job.folder.name,
        "status": run_status(job.folder),
        "error": error,
    }


def run_status(folder: Path) -> str:
    """The status in ``folder/report.json`` (``completed``,
    ``interrupted``, …), or ``missing``."""
    try:
        report = json.loads((folder / "report.json").read_text("utf-8"))
    except (OSError, ValueError):
        return "missing"
    return report.get("status", "missing")


def advance(bar, outcome: dict) -> dict:
    """Move a sweep's progress bar (a tqdm bar, or None) on by one finished
    job; return the job's outcome."""
    if bar is not None:
        bar.set_postfix_str(
            f"{outcome['run']}: {outcome['status']}", refresh=False
        )
        bar.update(1)
    return outcome
