"""The pieces of a training step: one optimizer step, its log row, and the
evaluations.

A step draws a batch (and, for a range of training lengths, its length) from
the run's data stream, sets the learning rates of the schedule, and takes one
optimizer step (AdamW, or Muon and AdamW) on the next-token cross-entropy of
the scored positions:

    loss = − mean over scored (b, t) of log softmax(logits[b, t])[target]

The gradient's total norm is measured (and clipped to ``grad_clip``, Pascanu
et al. 2013) before the step; the per-layer norms only on logged steps.

The step is kept cheap: nothing it computes is read on the host. A NaN or
inf loss or gradient norm is recorded on the device, by the run's
:class:`~annotated.training.state.StepWatch`, and read only at logging,
evaluation, checkpoint and snapshot steps (one host sync each). Among
several ranks, each step's all-reduce of the loss also carries the ranks'
stop flag, which is read on the host.

Legend: B batch, T sequence length, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from annotated.training.distributed import backward_shards
from annotated.training.evaluation import batch_positions, evaluate
from annotated.training.history import grad_norms, peak_memory_bytes
from annotated.training.optim import set_learning_rates
from annotated.training.state import TrainingRun

__all__ = [
    "evaluate_lengths",
    "evaluate_the_rest",
    "every",
    "log_step",
    "total_norm",
    "train_step",
]


def every(n: int, step: int) -> bool:
    """Whether ``step`` is a multiple of ``n``; never when ``n`` is 0."""
    return n > 0 and step % n == 0


def train_step(run: TrainingRun, step: int, *, per_layer: bool) -> dict:
    """One optimizer step on a fresh batch: this rank's shard of it, in
    ``grad_accum`` micro-batches (:mod:`annotated.training.distributed`
    says why N ranks × batch b train as one process × batch N·b). Returns
    the step's log row with the loss and gradient norms still on the device
    (no host sync); ``per_layer`` adds each layer's gradient norm."""
    config, (low, high) = run.config, run.train_range
    length = high
    if low != high:
        draw = torch.randint(low, high + 1, (1,), generator=run.data_rng)
        length = int(draw)
    # the whole step's batch, every rank's shard and micro-batch of it
    whole = config.batch_size * config.grad_accum * run.ranks.size
    batch = run.task.sample(whole, length, run.data_rng).to(run.device)
    lr = set_learning_rates(run.optimizer, step - 1, config)
    positions = batch_positions(run.model, batch, run.position_rng)
    run.optimizer.zero_grad(set_to_none=True)
    loss = backward_shards(
        run.forward, batch, positions, run.ranks, config.grad_accum
    )
    # per layer, before clipping
    norms = grad_norms(run.layers) if per_layer else {}
    total = total_norm(run.params, config.grad_clip)
    run.watch.record(step, loss.detach(), total)
    run.optimizer.step()
    run.watch.tokens += batch.inputs.numel()
    run.step = step
    row = {"step": step, "loss": loss.detach(), "lr": lr}
    row |= {"grad_norm": total, "length": length}
    return row | {f"grad_norm/{k}": v for k, v in norms.items()}


def log_step(run: TrainingRun, row: dict) -> dict:
    """Read a step's row on the host, add tokens/s, and record it."""
    row = {k: float(v) if torch.is_tensor(v) else v for k, v in row.items()}
    row["tokens_per_s"] = run.watch.throughput()
    run.history.steps.append(row)
    if run.callback:
        run.callback("step", row)
    return row


def evaluate_lengths(
    run: TrainingRun, step: int, lengths: Sequence[int]
) -> dict[int, dict]:
    """Evaluate the model at each length and record the rows:
    ``{length: row}``."""
    rows = {}
    for length in lengths:
        metrics = evaluate(
            run.model, run.task, length, run.config, run.device
        )
        rows[length] = row = {"step": step, **metrics}
        row["peak_memory_bytes"] = peak_memory_bytes(run.device)
        run.history.evals.append(row)
        if run.callback:
            run.callback("eval", row)
    return rows


def evaluate_the_rest(run: TrainingRun, step: int) -> None:
    """The final evaluation: every length not yet evaluated at ``step``."""
    seen = {int(r["length"]) for r in run.history.evals if r["step"] == step}
    evaluate_lengths(run, step, [n for n in run.lengths if n not in seen])


def total_norm(params, grad_clip: float | None) -> torch.Tensor:
    """The total gradient norm (before clipping), clipping to ``grad_clip``
    when it is set."""
    if grad_clip is not None:
        return torch.nn.utils.clip_grad_norm_(params, grad_clip)
    return torch.nn.utils.get_total_norm(
        [p.grad for p in params if p.grad is not None]
    )
