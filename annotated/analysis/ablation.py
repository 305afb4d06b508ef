"""Ablations: remove one head and measure what the loss loses.

The loss is measured overall and per character class.

A head's output ``o_h = A_h V_h`` reaches the residual stream only through the
output projection, ``out = concat(o_1 … o_H) W_o``. Ablating head ``h``
replaces ``o_h`` before ``W_o`` (Michel et al. 2019 prune heads this way;
Olsson et al. 2022 and Wang et al. 2022 use the same knife):

* **zero ablation**: ``o_h ← 0``; simple, but a zero the model never saw can
  push later layers off their usual inputs;
* **mean ablation**: ``o_h ← E[o_h]``, the head's mean output at each position
  over reference windows; it keeps the "typical" signal and removes only what
  depends on the input.

The loss change ``ΔL = L(ablated) − L(model)`` is measured on the same windows
(paired), so its 95 % interval (1.96 standard errors of the per-window
differences) is narrow. Per character class the positions are grouped by the
character the model has just read — after a space it must guess a word's first
letter, after a letter it mostly completes a word.

Hooks go through
:attr:`annotated.attention.multihead.MultiHeadAttention.head_hook`;
:func:`ablate_head` is a context manager that always removes its hook. Legend:
B batch, L layers, H heads, T time, D head dim.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

ABLATIONS = ("zero", "mean")


def attention_layers(model) -> list:
    """The self-attention module of every decoder block, in order."""
    return [block.self_attn.sublayer for block in model.decoder.blocks]


@contextlib.contextmanager
def ablate_head(
    model,
    layer: int,
    head: int,
    *,
    mode: str = "zero",
    mean: torch.Tensor | None = None,
):
    """Within the ``with`` block, head ``head`` of layer ``layer`` outputs
    zeros (``mode="zero"``) or ``mean (T, D)`` (``mode="mean"``, from
    :func:`head_means`) instead of its own output."""
    layers = attention_layers(model)
    if not 0 <= layer < len(layers) or not 0 <= head < layers[layer].n_heads:
        raise ValueError(
            f"no head {head} in layer {layer}: the model has {len(layers)} "
            f"layers of {layers[0].n_heads} heads (both counted from 0)"
        )
    if mode not in ABLATIONS:
        raise ValueError(f"mode must be one of {ABLATIONS}, got {mode!r}")
    if mode == "mean" and mean is None:
        raise ValueError(
            "mode='mean' needs mean=(T, D), the head's mean output: "
            "see head_means()"
        )

    def hook(out: torch.Tensor) -> torch.Tensor:  # (B, H, T, D)
        out = out.clone()
        out[:, head] = (
            0.0 if mode == "zero" else mean[: out.shape[2]].to(out.dtype)
        )
        return out

    attention = layers[layer]
    attention.head_hook = hook
    try:
        yield model
    finally:
        attention.head_hook = None


@torch.no_grad()
def head_means(
    model, inputs: torch.Tensor, batch_size: int = 128
) -> torch.Tensor:
    """Every head's mean output at each position over ``inputs (N, T)``.

    Returns ``(L, H, T, D)``."""
    layers, sums = attention_layers(model), None
    captured: list[torch.Tensor] = []

    def capture(out):  # (B, H, T, D)
        captured.append(out.sum(0))
        return out

    was_training = model.training
    model.eval()
    try:
        for attention in layers:
            attention.head_hook = capture
        for start in range(0, len(inputs), batch_size):
            captured.clear()
            model(inputs[start : start + batch_size])
            batch = torch.stack(captured)  # (L, H, T, D)
            sums = batch if sums is None else sums + batch
    finally:
        for attention in layers:
            attention.head_hook = None
        model.train(was_training)
    return sums / len(inputs)


@torch.no_grad()
def token_losses(
    model, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int = 128
) -> torch.Tensor:
    """Next-token loss (nats) at every position: ``(N, T)``."""
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(inputs), batch_size):
        logits = model(inputs[start : start + batch_size]).logits  # (B, T, V)
        out.append(
            F.cross_entropy(
                logits.transpose(1, 2).float(),
                targets[start : start + batch_size],
                reduction="none",
            )
        )
    model.train(was_training)
    return torch.cat(out)


def class_of_positions(
    inputs: torch.Tensor, classes: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """``{"after " + name: (N, T) mask}``: the positions whose input character
    (the one just read) is in each class of
    :func:`~annotated.analysis.head_scores.character_classes`, plus
    ``"all"``."""
    out = {"all": torch.ones_like(inputs, dtype=torch.bool)}
    return out | {
        f"after {name}": mask[inputs] for name, mask in classes.items()
    }


def loss_change(
    base: torch.Tensor, ablated: torch.Tensor, where: torch.Tensor
) -> tuple[float, float]:
    """Mean ``ablated − base`` over the positions ``where`` (N, T), and the
    half-width of its 95 % interval from the per-window means (windows are
    independent draws; positions in one are not)."""
    diff = (ablated - base) * where  # (N, T)
    counts = where.sum(1)  # (N,)
    keep = counts > 0
    per_window = diff.sum(1)[keep] / counts[keep]  # (N',)
    mean = float(diff.sum() / where.sum().clamp_min(1))
    half = (
        1.96
        * float(per_window.std(unbiased=True))
        / max(len(per_window), 1) ** 0.5
        if len(per_window) > 1
        else 0.0
    )
    return mean, half


@torch.no_grad()
def ablation_table(
    model, inputs, targets, classes, *, modes=ABLATIONS, mean_inputs=None
) -> list[dict]:
    """One row per head and mode: ``layer, head, mode`` and, per position
    class, the loss change and its 95 % half-width (``"Δ all"``, ``"± all"``,
    ``"Δ after space"``, …). The base loss comes first as the row with
    ``mode="none"``. Means for mean ablation come from ``mean_inputs``
    (default: ``inputs``)."""
    base = token_losses(model, inputs, targets)  # (N, T)
    where = class_of_positions(inputs, classes)
    rows = [
        {"layer": None, "head": None, "mode": "none"}
        | {f"L {k}": float(base[m].mean()) for k, m in where.items()}
    ]
    means = (
        head_means(model, inputs if mean_inputs is None else mean_inputs)
        if "mean" in modes
        else None
    )
    for layer, attention in enumerate(attention_layers(model)):
        for head in range(attention.n_heads):
            for mode in modes:
                mean = None if means is None else means[layer, head]
                with ablate_head(model, layer, head, mode=mode, mean=mean):
                    ablated = token_losses(model, inputs, targets)
                row = {"layer": layer, "head": head, "mode": mode}
                for name, mask in where.items():
                    row[f"Δ {name}"], row[f"± {name}"] = loss_change(
                        base, ablated, mask
                    )
                rows.append(row)
    return rows
