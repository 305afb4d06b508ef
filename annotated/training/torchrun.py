"""Joining torchrun's ranks: the process group, the signals that stop every
rank at once, and the command that launched this process
(:mod:`annotated.training.distributed` says what each rank computes).

::

    torchrun --standalone --nproc_per_node 2 -m annotated train …
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv-backend c10d \\
        --rdzv-endpoint HOST:29500 --rdzv-id RUN -m annotated train …

Within :func:`process_group` the process is one rank of the run: ``gloo``
carries CPU tensors, ``nccl`` CUDA ones (each rank on the GPU of its
``LOCAL_RANK``), every collective gives up after
:data:`~annotated.training.distributed.TIMEOUT`, and SIGINT or SIGTERM
only ask the ranks to stop (:func:`stop_signals`): torchrun passes Ctrl-C
on to every rank, and a ``kill`` of any one rank reaches the others
through the next step's all-reduce, so all of them stop at the same step.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import torch
import torch.distributed as dist

from annotated.training.distributed import (
    STOP_REQUESTED,
    TIMEOUT,
    Ranks,
    current_ranks,
    launched_by_torchrun,
)

__all__ = ["launch_command", "process_group", "stop_signals"]


def launch_command() -> str:
    """How this process was started, as the start of a command line:
    ``python``, or torchrun with its machines and ranks per machine."""
    if not launched_by_torchrun():
        return "python"
    world = int(os.environ["WORLD_SIZE"])
    per_machine = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    machines = world // per_machine
    nodes = f" --nnodes {machines}" if machines > 1 else ""
    return f"torchrun{nodes} --nproc_per_node {per_machine}"


@contextmanager
def process_group(timeout: timedelta = TIMEOUT) -> Iterator[Ranks]:
    """Within the block, this process is one of torchrun's ranks: the
    process group is joined (when launched by torchrun and not yet joined;
    ``gloo``, and ``nccl`` for CUDA tensors with each rank on the GPU of its
    ``LOCAL_RANK``) and signals only ask the ranks to stop. On leaving it,
    the ranks wait for each other (so rank 0 finishes writing) and the
    group is left. Yields the :class:`Ranks`."""
    joins = launched_by_torchrun() and not dist.is_initialized()
    if joins:
        backend, local = "gloo", int(os.environ.get("LOCAL_RANK", "0"))
        if local < torch.cuda.device_count():  # a GPU for this rank
            torch.cuda.set_device(local)
            backend = "cpu:gloo,cuda:nccl"
        dist.init_process_group(backend, timeout=timeout)
    ranks = current_ranks()
    try:
        with stop_signals(ranks):
            yield ranks
        if joins:
            dist.barrier()
    except KeyboardInterrupt:
        if joins:
            dist.barrier()
        raise
    finally:
        if joins:
            dist.destroy_process_group()


@contextmanager
def stop_signals(ranks: Ranks) -> Iterator[None]:
    """Among several ranks, SIGINT and SIGTERM set ``STOP_REQUESTED``
    instead of raising, so that every rank stops at the same step
    (:meth:`Ranks.sum_loss`). Alone, or off the main thread, nothing
    changes."""
    main = threading.current_thread() is threading.main_thread()
    if ranks.size == 1 or not main:
        yield
        return
    names = (signal.SIGINT, signal.SIGTERM)
    previous = {name: signal.getsignal(name) for name in names}
    if request_stop not in previous.values():  # the outermost block
        STOP_REQUESTED.clear()
    for name in names:
        signal.signal(name, request_stop)
    try:
        yield
    finally:
        for name, handler in previous.items():
            signal.signal(name, handler)


def request_stop(signum, frame) -> None:
    """The signal handler of :func:`stop_signals`."""
    STOP_REQUESTED.set()
