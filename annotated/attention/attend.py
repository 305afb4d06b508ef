"""Scaled dot-product attention, written out (Vaswani et al. 2017, eq. 1).

    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k + B, masked) V

One primitive for the whole book. Everything that changes *which* keys a query
sees is a mask — a boolean tensor, or a predicate
``mask_mod(b, h, q_idx, k_idx)`` from :mod:`annotated.attention.masks`;
everything that changes a *score* is a bias tensor or a
``score_mod(score, b, h, q_idx, k_idx)`` (ALiBi, T5's relative bias). These
are the hooks of PyTorch's FlexAttention; the efficient kernels of
:mod:`annotated.kernels` take the same ones and evaluate them tile by tile.

Legend: B batch, H heads, Tq query length, Tk key length, D head dim, Dv value
dim. Scores are (B, H, Tq, Tk); :func:`attend` accepts any leading dims
``...`` in place of ``B, H``. Masks: boolean, ``True`` = may attend.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from annotated.attention.masks import MaskMod, ScoreMod, and_masks, score_grid
from annotated.attention.masks import causal as causal_mod


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    *,
    causal: bool = False,
    scale: float | None = None,
    dropout_p: float = 0.0,
    mask_mod: MaskMod | None = None,
    score_mod: ScoreMod | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference scaled dot-product attention that also returns the weights.

    Args:
        q: queries ``(..., Tq, D)``; k: keys ``(..., Tk, D)``; v: values
            ``(..., Tk, Dv)``.
        mask: boolean tensor broadcastable to ``(..., Tq, Tk)``; ``True`` =
            may attend.
        bias: float tensor broadcastable to ``(..., Tq, Tk)``, added to the
            scores.
        causal: also apply :func:`annotated.attention.masks.causal` (queries
            are the last Tq keys).
        scale: multiplies ``q kᵀ``; default ``1/√D``. A temperature τ is
            ``scale = 1/(τ√D)``.
        dropout_p: dropout on the weights (only pass > 0 while training).
        mask_mod: predicate ``(b, h, q_idx, k_idx) -> bool``, ANDed with
            ``mask``.
        score_mod: ``(score, b, h, q_idx, k_idx) -> score``, applied after
            ``bias``.

    Returns:
        ``(output (..., Tq, Dv), weights (..., Tq, Tk))``: the softmax
        probabilities before dropout; each row sums to 1. A query whose keys
        are *all* masked reads nothing: its weights and output are zeros (no
        NaN), as in ``F.scaled_dot_product_attention``.
    """
    check_qkv(q, k, v, mask, bias)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale  # (..., Tq, Tk)
    if bias is not None:
        scores = scores + bias
    mask_mod = and_masks(mask_mod, causal_mod if causal else None)
    if score_mod is not None or mask_mod is not None:
        # b, h, q_idx, k_idx
        grid = score_grid(
            scores.shape[:-2], q.shape[-2], k.shape[-2], q.device
        )
        if score_mod is not None:
            scores = score_mod(scores, *grid)
        if mask_mod is not None:
            keep = mask_mod(*grid)
            mask = keep if mask is None else mask & keep
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    # A row with every key hidden would be softmax(-inf, …, -inf) = 0/0 = NaN:
    # give it zeros.
    empty = torch.isneginf(scores).all(dim=-1, keepdim=True)  # (..., Tq, 1)
    weights = torch.softmax(
        scores.masked_fill(empty, 0.0), dim=-1
    ).masked_fill(empty, 0.0)
    dropped = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
    return dropped @ v, weights  # (..., Tq, Dv), (..., Tq, Tk)


def attention_entropy(weights: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of each attention row: 0 = one key, log(Tk) =
    uniform."""
    w = weights.clamp_min(1e-12)
    return -(weights * w.log()).sum(-1)


# --- input checks (shared by every kernel) ----------------------------------


def check_qkv(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask=None, bias=None
) -> tuple:
    """Validate the shapes and dtypes of an attention call; return the score
    shape (..., Tq, Tk).

    Raises ``ValueError`` naming the offending shapes, so a caller sees what
    to change.
    """
    if q.dim() < 2 or k.dim() < 2 or v.dim() < 2:
        raise ValueError(
            f"q, k, v need at least 2 dims (..., T, D); got q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q and k must share their last dim (d_k): q {tuple(q.shape)} vs k {tuple(k.shape)}"
        )
    if k.shape[:-1] != v.shape[:-1]:
        raise ValueError(
            f"k and v must have the same shape up to the last dim (one value per key): "
            f"k {tuple(k.shape)} vs v {tuple(v.shape)}"
        )
    if q.shape[:-2] != k.shape[:-2]:
        raise ValueError(
            f"q and k must have the same leading (batch, head) dims: q {tuple(q.shape)} vs k {tuple(k.shape)}"
        )
    score_shape = (*q.shape[:-1], k.shape[-2])  # (..., Tq, Tk)
    check_mask_and_bias(mask, bias, score_shape)
    return score_shape


def check_mask_and_bias(mask, bias, score_shape: tuple) -> None:
    """A mask must be boolean and a bias floating point, each broadcastable to
    ``score_shape``."""
    if mask is not None:
        if mask.dtype != torch.bool:
            raise ValueError(
                f"mask must be a boolean tensor (True = may attend), got dtype {mask.dtype}; "
                "for additive float masks pass them as bias="
            )
        if not _broadcastable(tuple(mask.shape), score_shape):
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} does not broadcast to the scores (..., Tq, Tk) = {score_shape}"
            )
    if bias is not None:
        if not bias.is_floating_point():
            raise ValueError(
                f"bias must be a floating-point tensor, got dtype {bias.dtype}"
            )
        if not _broadcastable(tuple(bias.shape), score_shape):
            raise ValueError(
                f"bias of shape {tuple(bias.shape)} does not broadcast to the scores (..., Tq, Tk) = {score_shape}"
            )


def _broadcastable(shape: tuple, target: tuple) -> bool:
    if len(shape) > len(target):
        return False
    return all(
        s in (1, t)
        for s, t in zip(reversed(shape), reversed(target), strict=False)
    )
