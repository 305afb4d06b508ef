"""Attention dilution on long additions: exact match and where the answer
queries look, for a model trained on coupled additions (week 6b).

A coupled-addition model writes each answer digit by reading two places of
the operands: the digits of the significance it writes (coupled id
difference −1 between query and key) and those one place below, where the
carry comes from (difference 0). The coupled bias depends only on that
difference, so nothing about a 1,000-digit problem is new to the model but
the number of keys each softmax spreads over. :func:`role_mass` measures the
weight the answer queries put on those two places, per head;
:func:`exact_match_count` counts problems answered exactly.

Exact match is read from one forward pass with the true answer as input
(teacher forcing): every answer token is the argmax given the true tokens
before it exactly when greedy decoding writes the whole answer, so the two
counts are the same, and one pass costs far less than decoding token by
token.
"""

from __future__ import annotations

import torch

ROLES = ("digit", "carry", "other operand", "rest")


def _role_keys(task, batch, n: int) -> tuple[torch.Tensor, list]:
    """The answer queries of ``batch`` and, for each of :data:`ROLES`, a
    (Tq, Tk) mask of the keys in that role."""
    ids = batch.positions[0]  # (T,): every row has the same coupled ids
    answer = batch.target_mask[0].nonzero().flatten()  # (Tq,)
    operand = torch.arange(len(ids)) < task.prompt_len(n)  # (Tk,)
    difference = ids[answer, None] - ids[None, :]  # (Tq, Tk): p_q − p_k
    keys = [
        operand & (difference == -1),
        operand & (difference == 0),
        operand & (difference != -1) & (difference != 0),
        ~operand.expand_as(difference),
    ]
    return answer, keys


@torch.no_grad()
def _forward(model, task, n: int, problems: int, seed: int, batch_size: int):
    """``(batch, logits)`` for ``problems`` fresh ``n``-digit additions
    (generator seed ``seed``), ``batch_size`` at a time."""
    generator = torch.Generator().manual_seed(seed)
    left = problems
    while left > 0:
        batch = task.sample(min(batch_size, left), n, generator, split="val")
        yield batch, model(batch.inputs, positions=batch.positions).logits
        left -= len(batch.inputs)


@torch.no_grad()
def exact_match_count(
    model, task, n: int, problems: int, *, seed: int, batch_size: int = 8
) -> int:
    """How many of ``problems`` fresh ``n``-digit additions (generator seed
    ``seed``) ``model`` answers exactly."""
    right = 0
    for batch, logits in _forward(model, task, n, problems, seed, batch_size):
        hit = (logits.argmax(-1) == batch.targets) | ~batch.target_mask
        right += int(hit.all(-1).sum())
    return right


@torch.no_grad()
def role_mass(model, task, n: int, problems: int, *, seed: int):
    """(H, 4): the mean attention weight of the answer queries (one layer:
    the first) on the keys of each of :data:`ROLES`, over ``problems``
    ``n``-digit additions, one at a time (the weights are T × T)."""
    generator = torch.Generator().manual_seed(seed)
    total = 0
    for _ in range(problems):
        batch = task.sample(1, n, generator, split="val")
        out = model(
            batch.inputs, positions=batch.positions, need_weights=True
        )
        answer, keys = _role_keys(task, batch, n)
        weights = out.attentions[0][0][:, answer]  # (H, Tq, Tk)
        mass = torch.stack(
            [(weights * k).sum(-1).mean(-1) for k in keys], dim=1
        )  # (H, 4)
        total = total + mass
    return total / problems


def exact_by_length(
    rows: list[dict], model: str | None = None
) -> dict[str, dict[int, tuple]]:
    """Rows of ``scripts/long_addition.py``'s ``_exact.csv`` summed per
    setting (``"1.0"``, ``"1.3"``, ``"log_ratio_beyond"`` …) and length:
    ``{setting: {n: (correct, problems)}}``, lengths in order; only the
    rows of ``model`` when given."""
    totals: dict[str, dict[int, list]] = {}
    for row in rows:
        if model is not None and row["model"] != model:
            continue
        setting = str(row["scale"])
        counts = totals.setdefault(setting, {}).setdefault(
            int(row["length"]), [0, 0]
        )
        counts[0] += int(row["correct"])
        counts[1] += int(row["problems"])
    return {
        setting: {n: tuple(c) for n, c in sorted(by_n.items())}
        for setting, by_n in totals.items()
    }


@torch.no_grad()
def answer_loss(
    model, task, n: int, problems: int, *, seed: int, batch_size: int = 8
) -> float:
    """The mean cross-entropy (nats) of the answer tokens over ``problems``
    ``n``-digit additions: a continuous score where exact match saturates
    (every setting right, or every one wrong)."""
    total, tokens = 0.0, 0
    for batch, logits in _forward(model, task, n, problems, seed, batch_size):
        losses = torch.nn.functional.cross_entropy(
            logits.transpose(1, 2), batch.targets, reduction="none"
        )  # (B, T)
        total += float(losses[batch.target_mask].sum())
        tokens += int(batch.target_mask.sum())
    return total / tokens
