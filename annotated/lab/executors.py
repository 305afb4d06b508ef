"""Executors: where a sweep's runs train — this process, N local processes, or
a Ray cluster.

A sweep (:mod:`annotated.lab.sweeps`) turns each grid point into a
:class:`Job` — start it in a clean folder, or resume it from its checkpoint —
and hands the jobs to one executor:

``local``, ``jobs=1`` this process, one run after another (each run's own
                       progress bar; the sweep's ``callback`` sees every row)
``local``, ``jobs=N`` N worker processes
                       (:class:`concurrent.futures.ProcessPoolExecutor` over a
                       ``spawn`` context), one torch thread each, each writing
                       its run folder
``ray`` one Ray task (one CPU) per job; the task trains in a temporary folder
                       on whichever node runs it and returns the files, which
                       this process writes into the sweep folder, so the nodes
                       need no shared file system

On one machine ``--jobs 2`` on 2 cores is the laptop's setting; one torch
thread per run keeps two runs from fighting over the cores, and a run gives
the same numbers in any executor. With every run in its own process, a run's
rows cannot reach a callback in this process, so a callback needs ``jobs=1``.
Worker processes start as fresh interpreters (``spawn``), so a script that
calls ``sweep(..., jobs=2)`` does so under ``if __name__ == "__main__":``
(notebooks and the command line need nothing). Ctrl-C in a terminal reaches
every worker: each run stops, marks its report ``interrupted`` (with its
checkpoint) and the sweep re-raises; re-running the sweep on its folder
continues from there (:func:`annotated.lab.sweeps.resume_sweep`).

To run a sweep on a Ray cluster (``pip install "annotated[cluster]"`` on every
node, the same version of this library and torch everywhere)::

    ray start --head --num-cpus 8                   # on the head node; it prints the address
    ray start --address HEAD_IP:6379                # on every other node
    python -m annotated sweep CONFIG --executor ray --address HEAD_IP:6379   # or --address auto on the head

Without ``--address`` Ray connects to ``$RAY_ADDRESS`` or the cluster
``ray start`` made on this machine, else starts a local instance with this
machine's CPUs. A run's plugin files must be at the same path on the nodes (or
be installed modules). Each task asks for one CPU, so Ray runs as many at once
as the cluster has CPUs (``--jobs`` is for the local executor).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import multiprocessing
import shutil
import tempfile
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import torch

from annotated.lab.config import ExperimentConfig
from annotated.lab.runs import lock_holder, resume, run

EXECUTORS = ("local", "ray")
# start in a clean folder; continue from the folder's model.pt
ACTIONS = ("fresh", "resume")


@dataclass(frozen=True)
class Job:
    """One grid point of a sweep, its run folder, and whether to start it
    fresh or resume it."""

    config: ExperimentConfig
    folder: Path
    action: str = "fresh"


def check_executor(
    executor: str = "local",
    jobs: int = 1,
    address: str | None = None,
    callback=None,
) -> None:
    """Raise ValueError (saying what to change) for settings no executor can
    run — before any folder exists."""
    if executor not in EXECUTORS:
        raise ValueError(
            f"unknown executor {executor!r}; use one of {list(EXECUTORS)}"
        )
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(
            f"jobs must be a positive integer (processes at once), got {jobs!r}"
        )
    if executor == "local" and address is not None:
        raise ValueError(
            "an address is for the Ray executor: add --executor ray, or leave out --address"
        )
    if executor == "ray" and jobs != 1:
        raise ValueError(
            "jobs is for the local executor; Ray runs as many runs at once as the cluster has CPUs"
        )
    if callback is not None and (executor != "local" or jobs != 1):
        raise ValueError(
            "a callback sees rows in this process: run with executor='local' and jobs=1"
        )
    if executor == "ray":
        try:
            import ray  # noqa: F401
        except ImportError as error:
            raise ValueError(
                'the ray executor needs Ray: pip install "annotated[cluster]" (or pip install ray)'
            ) from error


def run_job(job: Job, *, progress: bool = False, callback=None) -> dict:
    """Train ``job`` into its folder; return ``{"run", "status", "error"}``. A
    run that fails is marked ``failed`` in its report.json and reported here;
    KeyboardInterrupt propagates."""
    if job.action not in ACTIONS:
        raise ValueError(
            f"unknown job action {job.action!r}; use one of {list(ACTIONS)}"
        )
    error = None
    try:
        if job.action == "resume":
            resume(job.folder, progress=progress, callback=callback)
        else:
            # a run stopped before its first checkpoint: nothing in it to keep
            if job.folder.exists():
                if (holder := lock_holder(job.folder)) is not None:
                    raise ValueError(
                        f"{job.folder} is being trained by process {holder['pid']} on {holder['host']}"
                    )
                shutil.rmtree(job.folder)
            job.folder.mkdir(parents=True)
            run(
                job.config,
                progress=progress,
                callback=callback,
                _folder=job.folder,
            )
    # report.json says "failed" with the traceback (unless resume refused)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    return {
        "run": job.folder.name,
        "status": run_status(job.folder),
        "error": error,
    }


def run_status(folder: Path) -> str:
    """The status in ``folder/report.json`` (``completed``, ``interrupted``,
    …), or ``missing``."""
    try:
        return json.loads(
            (folder / "report.json").read_text(encoding="utf-8")
        ).get("status", "missing")
    except (OSError, ValueError):
        return "missing"


def execute(
    jobs: list[Job],
    executor: str = "local",
    *,
    workers: int = 1,
    address=None,
    progress=False,
    callback=None,
    bar=None,
) -> list[dict]:
    """Run ``jobs`` with ``executor`` (see the module docstring); one outcome
    per job, in the order they finish. ``bar`` (a tqdm bar, or None) advances
    by one as each job finishes."""
    check_executor(executor, workers, address, callback)
    if not jobs:
        return []
    if executor == "ray":
        return _execute_ray(jobs, address, bar)
    if workers == 1:
        outcomes = []
        for job in jobs:
            report_to = (
                None
                if callback is None
                else (
                    lambda kind, row, point=job.config: callback(
                        point, kind, row
                    )
                )
            )
            outcomes.append(
                _advance(
                    bar, run_job(job, progress=progress, callback=report_to)
                )
            )
        return outcomes
    return _execute_processes(jobs, workers, bar)


def _advance(bar, outcome: dict) -> dict:
    if bar is not None:
        bar.set_postfix_str(
            f"{outcome['run']}: {outcome['status']}", refresh=False
        )
        bar.update(1)
    return outcome


def _one_thread() -> None:
    """A worker's initializer: one intra-op thread, so N workers use N
    cores."""
    torch.set_num_threads(1)


def _execute_processes(jobs: list[Job], workers: int, bar) -> list[dict]:
    # a fresh interpreter: no forked torch thread pools or locks
    context = multiprocessing.get_context("spawn")
    outcomes, waiting = [], iter(jobs)
    with ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)),
        mp_context=context,
        initializer=_one_thread,
    ) as pool:
        # one job per worker at a time: the pool would queue one more, which
        # Ctrl-C could no longer cancel
        running = {
            pool.submit(run_job, job)
            for job in itertools.islice(waiting, workers)
        }
        try:
            while running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    outcomes.append(_advance(bar, future.result()))
                    running |= {
                        pool.submit(run_job, job)
                        for job in itertools.islice(waiting, 1)
                    }
        # Ctrl-C (the workers mark their runs interrupted) or a worker that
        # died
        except BaseException:
            # start nothing new; let running runs write their state
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return outcomes


def folder_files(folder: Path) -> dict[str, bytes]:
    """A run folder's files by relative path, without temporary files and lock
    files (they belong to a process on this machine)."""
    if not folder.is_dir():
        return {}
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
        and not (path.name.startswith(".") and ".tmp" in path.name)
        and path.suffix != ".lock"
    }


def write_folder(folder: Path, files: dict[str, bytes]) -> None:
    """Replace ``folder`` by exactly ``files``: written beside it first, then
    swapped in."""
    incoming = folder.with_name(f".{folder.name}.incoming")
    shutil.rmtree(incoming, ignore_errors=True)
    for name, data in files.items():
        (incoming / name).parent.mkdir(parents=True, exist_ok=True)
        (incoming / name).write_bytes(data)
    incoming.mkdir(exist_ok=True)
    shutil.rmtree(folder, ignore_errors=True)
    incoming.rename(folder)


def ray_job(
    job: Job, files: dict[str, bytes]
) -> tuple[dict, dict[str, bytes]]:
    """A Ray task's body: rebuild the run folder from ``files`` in a temporary
    folder on this node, run the job there with one torch thread, and return
    its outcome and the folder's files."""
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="annotated-") as tmp:
        folder = Path(tmp) / job.folder.name
        write_folder(folder, files)
        outcome = run_job(dataclasses.replace(job, folder=folder))
        return outcome, folder_files(folder)


def _execute_ray(jobs: list[Job], address, bar) -> list[dict]:
    import ray

    started = not ray.is_initialized()
    if started:
        options = (
            {"address": address} if address else {"include_dashboard": False}
        )
        ray.init(**options, logging_level="WARNING", log_to_driver=False)
    task = ray.remote(num_cpus=1)(ray_job)
    pending = {
        task.remote(
            job, folder_files(job.folder) if job.action == "resume" else {}
        ): job
        for job in jobs
    }
    outcomes = []
    try:
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ref)
            try:
                outcome, files = ray.get(ref)
            # the task died (node lost, out of memory): the run is left as it
            # was
            except Exception as error:
                outcome = {
                    "run": job.folder.name,
                    "status": run_status(job.folder),
                    "error": f"ray: {error}",
                }
            else:
                write_folder(job.folder, files)
            outcomes.append(_advance(bar, outcome))
    except BaseException:
        for ref in pending:
            ray.cancel(ref)
        raise
    finally:
        if started:
            ray.shutdown()
    return outcomes
