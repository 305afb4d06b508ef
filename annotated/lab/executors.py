"""Executors: where a sweep's runs train — this process, N local processes,
or a Ray cluster.

A sweep (:mod:`annotated.lab.sweeps`) turns each grid point into a
:class:`~annotated.lab.jobs.Job` — start it in a clean folder, or resume it
from its checkpoint — and hands the jobs to one executor:

- ``local`` with ``jobs=1``: this process, one run after another (each run's
  own progress bar; the sweep's ``callback`` sees every row);
- ``local`` with ``jobs=N``: N worker processes
  (:class:`concurrent.futures.ProcessPoolExecutor` over a ``spawn``
  context), one torch thread each, each writing its run folder;
- ``ray``: one Ray task (one CPU) per job (:mod:`annotated.lab.ray_executor`).

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
"""

from __future__ import annotations

import itertools
import multiprocessing
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

import torch

from annotated.lab.jobs import Job, advance, run_job
from annotated.lab.ray_executor import execute_ray

EXECUTORS = ("local", "ray")


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
            "jobs must be a positive integer (processes at once), got "
            f"{jobs!r}"
        )
    if executor == "local" and address is not None:
        raise ValueError(
            "an address is for the Ray executor: add --executor ray, or "
            "leave out --address"
        )
    if executor == "ray" and jobs != 1:
        raise ValueError(
            "jobs is for the local executor; Ray runs as many runs at once "
            "as the cluster has CPUs"
        )
    if callback is not None and (executor != "local" or jobs != 1):
        raise ValueError(
            "a callback sees rows in this process: run with "
            "executor='local' and jobs=1"
        )
    if executor == "ray":
        try:
            import ray  # noqa: F401
        except ImportError as error:
            raise ValueError(
                'the ray executor needs Ray: pip install "annotated[cluster]"'
                " (or pip install ray)"
            ) from error


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
    """Run ``jobs`` with ``executor`` (see the module docstring; its
    settings are those :func:`check_executor` accepts); one outcome per job,
    in the order they finish. ``bar`` (a tqdm bar, or None) advances by one
    as each job finishes."""
    if not jobs:
        return []
    if executor == "ray":
        return execute_ray(jobs, address, bar)
    if workers > 1:
        return _execute_processes(jobs, workers, bar)
    outcomes = []
    for job in jobs:
        report_to = None
        if callback is not None:

            def report_to(kind, row, point=job.config):
                callback(point, kind, row)

        outcome = run_job(job, progress=progress, callback=report_to)
        outcomes.append(advance(bar, outcome))
    return outcomes


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
                    outcomes.append(advance(bar, future.result()))
                    running |= {
                        pool.submit(run_job, job)
                        for job in itertools.islice(waiting, 1)
                    }
        except BaseException:
            # Ctrl-C (the workers mark their runs interrupted) or a worker
            # that died: start nothing new; let running runs write their
            # state
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return outcomes
