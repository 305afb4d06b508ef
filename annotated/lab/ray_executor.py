"""The Ray executor: a sweep's jobs as Ray tasks on a cluster.

Each job is one Ray task asking for one CPU, so Ray runs as many at once as
the cluster has CPUs (``--jobs`` is for the local executor). The task trains
in a temporary folder on whichever node runs it and returns the folder's
files, which this process writes into the sweep folder, so the nodes need no
shared file system; a job that resumes takes its run folder's files along.

To run a sweep on a Ray cluster (``pip install "annotated[cluster]"`` on
every node, the same version of this library and torch everywhere)::

    ray start --head --num-cpus 8        # on the head node; it prints HEAD_IP
    ray start --address HEAD_IP:6379     # on every other node
    python -m annotated sweep CONFIG --executor ray --address HEAD_IP:6379

(``--address auto`` on the head node). Without ``--address`` Ray connects to
``$RAY_ADDRESS`` or the cluster ``ray start`` made on this machine, else
starts a local instance with this machine's CPUs. A run's plugin files must
be at the same path on the nodes (or be installed modules).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path

import torch

from annotated.lab.jobs import Job, advance, run_job, run_status


def folder_files(folder: Path) -> dict[str, bytes]:
    """A run folder's files by relative path, without temporary files and
    lock files (they belong to a process on this machine)."""
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
    """A Ray task's body: rebuild the run folder from ``files`` in a
    temporary folder on this node, run the job there with one torch thread,
    and return its outcome and the folder's files."""
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="annotated-") as tmp:
        folder = Path(tmp) / job.folder.name
        write_folder(folder, files)
        outcome = run_job(dataclasses.replace(job, folder=folder))
        return outcome, folder_files(folder)


def execute_ray(jobs: list[Job], address, bar) -> list[dict]:
    """Run ``jobs`` as Ray tasks (on the cluster at ``address``, or a local
    instance); one outcome per job, in the order they finish."""
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
            except Exception as error:
                # the task died (node lost, out of memory): the run is left
                # as it was
                outcome = {
                    "run": job.folder.name,
                    "status": run_status(job.folder),
                    "error": f"ray: {error}",
                }
            else:
                write_folder(job.folder, files)
            outcomes.append(advance(bar, outcome))
    except BaseException:
        for ref in pending:
            ray.cancel(ref)
        raise
    finally:
        if started:
            ray.shutdown()
    return outcomes
