"""Data-parallel training under torchrun: one model trained by N processes
(ranks), each on its own shard of every batch, with PyTorch's
DistributedDataParallel (DDP; Li et al. 2020, "PyTorch Distributed").

::

    torchrun --nproc_per_node 2 -m annotated train --task sort …

torchrun starts the ranks and tells each its ``RANK``, ``WORLD_SIZE`` and
where to meet; :func:`~annotated.training.torchrun.process_group` joins
them. :func:`~annotated.training.loop.train` trains data-parallel whenever
a process group is joined; alone, nothing here runs.

N ranks × batch b train exactly as 1 process × batch N·b, up to float
summation order:

- **the data**: every rank draws the step's whole batch (N·K·b sequences;
  K = ``grad_accum``) from the same seeded stream and keeps its rows
  (:meth:`Ranks.rows`), so the stream, and a resume, do not depend on N;
- **the loss**: a shard's cross-entropy is *summed* and divided by the
  number of scored tokens of the whole batch, which every rank knows since
  it drew the whole batch; DDP averages the ranks' gradients, so each shard
  is also multiplied by N (:func:`backward_shards`). The ranks' gradients
  then add up to the gradient of the whole batch's mean loss, however the
  scored tokens (``target_mask``) fall between shards; a mean per shard
  would weigh a shard with few scored tokens like one with many;
- **gradient accumulation**: K micro-batches per rank, their gradients
  summed locally (``no_sync``) and reduced across ranks once per step.

Dropout draws its masks per rank, from a stream of its own
(:func:`dropout_seed`), so with dropout the runs agree in distribution, not
digit for digit. The logged loss is the whole batch's (an all-reduce per
step); tokens/s counts every rank's tokens.

Who does what: every rank trains and keeps snapshots; **rank 0 alone
evaluates** (on its own, the held-out batches not split across ranks),
records and writes (run folder, metrics, plots, checkpoints); the others
wait for it and receive its stop decision
(:meth:`Ranks.from_main`). SIGINT or SIGTERM on any rank sets a flag
(:func:`~annotated.training.torchrun.stop_signals`); the step's all-reduce
carries it, so every rank stops at the same step with
KeyboardInterrupt and rank 0 saves the last snapshot marked
``interrupted``. A rank that dies makes the others' next collective fail
(gloo sees the connection close; a hang ends after :data:`TIMEOUT`):
:class:`RankLost` says so.

Legend: B the step's whole batch, b one micro-batch of it, T sequence
length, V vocabulary.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from annotated.training.evaluation import model_logits

__all__ = [
    "TIMEOUT",
    "RankLost",
    "Ranks",
    "backward_shards",
    "check_examples_per_step",
    "current_ranks",
    "dropout_seed",
    "launched_by_torchrun",
]

# how long a rank waits in a collective before giving up (rank 0's
# evaluation included)
TIMEOUT = timedelta(minutes=10)
# set by SIGINT/SIGTERM while torchrun.stop_signals() holds the handlers
STOP_REQUESTED = threading.Event()
# dropout's stream on rank r: seed + 1 + r * this (rank 0: seed + 1)
RANK_SEED_SHIFT = 1_000_033


class RankLost(RuntimeError):
    """A collective failed: another rank stopped or died, or did not answer
    within the timeout."""


@dataclass(frozen=True)
class Ranks:
    """This process's place among the ranks that train one model; the
    default, rank 0 of 1, is a process training alone."""

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that evaluates, records and writes."""
        return self.rank == 0

    def rows(self, batch_size: int, micro: int, grad_accum: int) -> slice:
        """The rows of a whole step's batch that micro-batch ``micro`` of
        this rank trains on: rank r takes the r-th of N equal shards, cut
        into ``grad_accum`` micro-batches."""
        per = batch_size // (self.size * grad_accum)
        start = (self.rank * grad_accum + micro) * per
        return slice(start, start + per)

    def wrap(self, model: torch.nn.Module, device: torch.device):
        """``model`` in DDP when there are several ranks, else itself.
        Buffers are not broadcast: they are the same on every rank."""
        if self.size == 1:
            return model
        ids = None
        if device.type == "cuda":  # "cuda" alone: this rank's GPU
            index = device.index
            ids = [torch.cuda.current_device() if index is None else index]
        return DistributedDataParallel(
            model, device_ids=ids, forward_sync_buffers=False
        )

    def from_main(self, make: Callable[[], object]):
        """``make()`` called on rank 0 alone and its value (or the error it
        raised) sent to every rank."""
        if self.size == 1:
            return make()
        box: list = [None]
        if self.is_main:
            try:
                box[0] = (make(), None)
            except Exception as error:
                box[0] = (None, error)
        dist.broadcast_object_list(box, src=0)
        value, error = box[0]
        if error is not None:
            raise error
        return value

    def gather(self, value) -> list:
        """``value`` of every rank, in rank order, on every rank."""
        if self.size == 1:
            return [value]
        values: list = [None] * self.size
        dist.all_gather_object(values, value)
        return values

    def sum_loss(self, loss_sum: torch.Tensor) -> torch.Tensor:
        """The loss summed over ranks; KeyboardInterrupt on every rank at
        once when a signal reached any of them."""
        if self.size == 1:
            return loss_sum
        stop = float(STOP_REQUESTED.is_set())
        packed = torch.stack([loss_sum.float(), loss_sum.new_tensor(stop)])
        dist.all_reduce(packed)
        if packed[1] > 0:
            raise KeyboardInterrupt("a signal reached one of the ranks")
        return packed[0]

    def lost(self, error: BaseException, step: int) -> RankLost | None:
        """The error, said plainly, when ``error`` is a failed collective;
        None for any other error."""
        words = ("gloo", "nccl", "connection", "timed out", "timeout")
        text = str(error).lower()
        failed = isinstance(error, dist.DistError) or (
            type(error) is RuntimeError and any(w in text for w in words)
        )
        if self.size == 1 or not failed:
            return None
        seconds = TIMEOUT.total_seconds()
        return RankLost(
            f"rank {self.rank} of {self.size} lost the other ranks after "
            f"step {step}: one of them stopped or died (its own output says "
            f"why), or did not answer within {seconds:.0f} s; rank 0 keeps "
            f"the last snapshot to resume from ({error})"
        )


def current_ranks() -> Ranks:
    """This process's :class:`Ranks`: from the joined process group, else
    rank 0 of 1; an error for a rank of torchrun's that has not joined (it
    would train alone and write a run of its own)."""
    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size())
    if launched_by_torchrun():
        raise RuntimeError(
            "this process is one of torchrun's ranks but has not joined "
            "them: train inside annotated.training.torchrun.process_group()"
        )
    return Ranks()


def launched_by_torchrun() -> bool:
    """Whether a launcher started this process as one of several ranks
    (``WORLD_SIZE`` > 1, as torchrun sets it)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def backward_shards(
    forward, batch, positions: dict, ranks: Ranks, grad_accum: int
) -> torch.Tensor:
    """Forward and backward over this rank's micro-batches of a whole
    step's ``batch``; returns the whole batch's mean loss (every rank's).

    Each micro-batch's summed cross-entropy is scaled by N / (scored tokens
    of the whole batch), so that after DDP's mean over ranks the gradient is
    that of

        loss = − mean over every scored (b, t) of the whole batch of
               log softmax(logits[b, t])[target]
    """
    mask = batch.target_mask  # (B, T)
    scored = mask.sum()
    loss_sum = torch.zeros((), device=mask.device)
    for micro in range(grad_accum):
        rows = ranks.rows(len(mask), micro, grad_accum)
        # reduce across ranks on the last micro-batch only
        last = micro == grad_accum - 1
        with nullcontext() if last else no_sync(forward):
            kwargs = {k: v[rows] for k, v in positions.items()}
            # (b, T, V)
            logits, _ = model_logits(forward, batch.inputs[rows], **kwargs)
            keep, targets = mask[rows], batch.targets[rows]
            summed = F.cross_entropy(
                logits[keep].float(), targets[keep], reduction="sum"
            )
            (summed / scored * ranks.size).backward()
        loss_sum = loss_sum + summed.detach()
    return ranks.sum_loss(loss_sum) / scored


def no_sync(forward):
    """DDP's ``no_sync`` (gradients kept on this rank), or nothing for a
    model trained alone."""
    return getattr(forward, "no_sync", nullcontext)()


def dropout_seed(seed: int, ranks: Ranks) -> int:
    """The seed of dropout's stream on this rank (``seed + 1`` on rank
    0)."""
    return seed + 1 + ranks.rank * RANK_SEED_SHIFT


def check_examples_per_step(state: dict, config, ranks: Ranks) -> None:
    """Refuse to resume ``state`` with a different number of examples per
    step (ranks × ``batch_size`` × ``grad_accum``): the data stream would
    go on, but not as the run began."""
    saved = state.get("train_config", {})
    had = state.get("history", {}).get("meta", {}).get("ranks", 1)
    before = had * saved.get("batch_size", config.batch_size)
    before *= saved.get("grad_accum", 1)
    now = ranks.size * config.batch_size * config.grad_accum
    if before != now:
        raise ValueError(
            f"this run took {before} examples per step ({had} rank(s) × "
            "batch_size × grad_accum); resuming it with "
            f"{ranks.size} rank(s) × {config.batch_size} × "
            f"{config.grad_accum} would take {now}: launch it with "
            f"torchrun --nproc_per_node {had} (one machine) or keep "
            "ranks × batch_size × grad_accum the same"
        )
