"""Evaluation at many lengths: loss, perplexity, token accuracy, exact match
and attention entropy.

A model trained at one length is judged on held-out batches of each length it
is asked about (DeepMind's randomized-PE protocol evaluates every length of a
range). Held-out data come from a generator seeded apart from the training
stream (``seed * EVAL_SEED_OFFSET + length``), so every evaluation of a run
sees the same batches. Lengths a model cannot run are refused before any
training (:func:`check_lengths`).

Legend: B batch, T sequence length, V vocabulary, L layers, H heads.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from annotated.analysis.intervals import wilson_interval
from annotated.attention.attend import attention_entropy
from annotated.positional.randomized import sample_sorted_positions
from annotated.tasks import Task
from annotated.training.config import TrainConfig

# held-out stream: seed * this + length, never the training stream
EVAL_SEED_OFFSET = 1_000_003
# randomized positions at evaluation: their own stream, apart from the data's
POSITION_SEED_SHIFT = 500_001


def length_range(train_length) -> tuple[int, int]:
    """``8`` → (8, 8); ``(4, 8)`` → every step draws a length in 4..8
    (in-distribution = up to 8)."""
    pair = (
        [train_length] * 2 if isinstance(train_length, int) else train_length
    )
    if (
        isinstance(pair, Sequence)
        and not isinstance(pair, str)
        and len(pair) == 2
    ):
        low, high = pair
        if (
            all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
            and 1 <= low <= high
        ):
            return low, high
    raise ValueError(
        "train_length must be a positive int or a pair [low, high] with "
        f"low ≤ high, got {train_length!r}"
    )


def check_lengths(model_config, task: Task, lengths: Sequence[int]) -> None:
    """Refuse, before any training, a length a model cannot run: the task's
    own limits, and (for a learned absolute encoding, which has no vector past
    its table) ``seq_len > max_len``."""
    for length in lengths:
        task.check_length(length)
        if (
            model_config is None
            or not model_config.positional_encoding.table_limit
        ):
            continue
        needed, rows = task.seq_len(length), model_config.max_len
        if needed > rows:
            raise ValueError(
                f"length {length} needs {needed} positions but the learned "
                f"positional encoding has max_len={rows} rows; raise model "
                f"max_len to ≥ {needed}, drop that evaluation length, or "
                "choose an encoding that extrapolates (rope, alibi, "
                "sinusoidal, …)"
            )


def default_eval_lengths(model_config, task: Task, longest: int) -> list[int]:
    """The lengths a run is evaluated at when none are given: every length
    from 1 to twice the longest training length (the protocol of the
    length-generalisation papers), less those :func:`check_lengths` refuses
    (the task's limits, a learned table's rows)."""
    lengths = []
    for length in range(1, 2 * longest + 1):
        try:
            check_lengths(model_config, task, [length])
        except ValueError:
            continue
        lengths.append(length)
    return lengths


def batch_positions(model, batch, generator: torch.Generator) -> dict:
    """The ``positions=`` keyword for one batch: the task's own ids (coupling,
    Abacus), else for a randomized model (``model.position_range > 0``) a
    sorted random draw per sequence from ``generator`` (Ruoss et al. draw them
    at training *and* test time), else nothing (0…T−1)."""
    if batch.positions is not None:
        return {"positions": batch.positions}
    limit = getattr(model, "position_range", 0)
    if not limit:
        return {}
    b, t = batch.inputs.shape
    return {
        "positions": sample_sorted_positions(b, t, limit, generator).to(
            batch.inputs.device
        )
    }


def expand_lengths(spec) -> list[int]:
    """Evaluation lengths from a list of ints, or a range written ``"1..40"``
    / ``"2..40:2"`` (every length from 1 to 40, or every second one), as
    accuracy-vs-length curves need."""
    if isinstance(spec, str):
        match = re.fullmatch(
            r"\s*(\d+)\s*\.\.\s*(\d+)\s*(?::\s*(\d+))?\s*", spec
        )
        if (
            not match
            or int(match[1]) < 1
            or int(match[1]) > int(match[2])
            or match[3] == "0"
        ):
            raise ValueError(
                "a length range reads 'LOW..HIGH' or 'LOW..HIGH:STEP' with "
                f"1 ≤ LOW ≤ HIGH, got {spec!r}"
            )
        return list(
            range(int(match[1]), int(match[2]) + 1, int(match[3] or 1))
        )
    if isinstance(spec, Sequence):
        out = []
        for item in spec:
            out += expand_lengths(item) if isinstance(item, str) else [item]
        if all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1
            for v in out
        ):
            return sorted(set(out))
    raise ValueError(
        "eval_lengths must be positive integers or ranges like '1..40', "
        f"got {spec!r}"
    )


def model_logits(model, inputs, **kwargs):
    """``(logits (B, T, V), attention weights per layer or None)`` of a model
    that returns either a :class:`~annotated.models.transformer.ModelOutput`
    or bare logits."""
    out = model(inputs, **kwargs)
    return (
        (out.logits, getattr(out, "attentions", None))
        if hasattr(out, "logits")
        else (out, None)
    )


@torch.no_grad()
def evaluate(
    model,
    task: Task,
    length: int,
    config: TrainConfig,
    device: torch.device,
    *,
    split: str = "val",
) -> dict:
    """Loss, perplexity, token accuracy, exact match and attention entropy on
    held-out batches of one length (of the task's ``split``).

    Exact match counts a sequence when every scored token is right; entropy is
    the mean over the scored queries, one value per layer and head
    (``entropy/L0H1``).
    """
    seed = config.seed * EVAL_SEED_OFFSET + length
    generator = torch.Generator().manual_seed(seed)
    position_rng = torch.Generator().manual_seed(seed + POSITION_SEED_SHIFT)
    was_training = model.training
    model.eval()
    loss_sum, correct, scored, exact, sequences = 0.0, 0, 0, 0, 0
    entropy = None
    for i in range(config.eval_batches):
        batch = task.sample(
            config.eval_batch_size or config.batch_size,
            length,
            generator,
            split=split,
        ).to(device)
        # None, the task's ids, or a random sorted draw
        positions = batch_positions(model, batch, position_rng)
        # (B, T, V); L × (B, H, T, Tk), weights for the first batch only
        logits, attentions = model_logits(
            model, batch.inputs, need_weights=i == 0, **positions
        )
        mask = batch.target_mask  # (B, T)
        loss_sum += float(
            F.cross_entropy(
                logits[mask].float(), batch.targets[mask], reduction="sum"
            )
        )
        # (B, T): right, or not scored
        hits = (logits.argmax(-1) == batch.targets) | ~mask
        correct += int((hits & mask).sum())
        scored += int(mask.sum())
        exact += int(hits.all(dim=1).sum())
        sequences += batch.inputs.shape[0]
        if attentions and all(w is not None for w in attentions):
            entropy = scored_entropy(attentions, mask)
    model.train(was_training)
    loss = loss_sum / max(scored, 1)
    row = {"length": length, "loss": loss}
    row["perplexity"] = math.exp(min(loss, 700.0))
    row["token_accuracy"] = correct / max(scored, 1)
    row["exact_match"] = exact / sequences
    row |= {"n_sequences": sequences, "n_scored": scored}
    row["exact_match_lo"], row["exact_match_hi"] = wilson_interval(
        exact, sequences
    )
    row["token_accuracy_lo"], row["token_accuracy_hi"] = wilson_interval(
        correct, scored
    )
    if entropy is not None:
        row |= {
            f"entropy/L{i}H{h}": float(e)
            for i, layer in enumerate(entropy.tolist())
            for h, e in enumerate(layer)
        }
    return row


def evaluate_splits(
    model, task: Task, length: int, config: TrainConfig, device
) -> dict[str, dict]:
    """:func:`evaluate` on each held-out split a task names in
    ``eval_splits`` (new forms, new years…): ``{split: row}``; ``{}`` for
    a task without them."""
    return {
        split: evaluate(model, task, length, config, device, split=split)
        for split in getattr(task, "eval_splits", ())
    }


def scored_entropy(attentions, mask: torch.Tensor) -> torch.Tensor:
    """The attention entropy of each layer and head, (L, H): the mean over
    the scored queries (``mask``, (B, T)) of every sequence."""
    # (L, B, H, T)
    per_query = torch.stack(
        [attention_entropy(w.float()) for w in attentions]
    )
    weights = mask[None, :, None, :].float()
    total = (per_query * weights).sum((1, 3))
    return total / weights.sum((1, 3)).clamp_min(1)
