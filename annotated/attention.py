"""Scaled dot-product attention, written out (Vaswani et al. 2017, eq. 1).

    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k + bias, masked) V

Legend for shape comments in this module: B batch, H heads, T time,
Tq query length, Tk key length, D head dim, C model dim. Scores are (B, H, Tq, Tk);
:func:`attend` itself accepts any leading dims ``...`` in place of ``B, H``.

Masks follow :mod:`annotated.masks`: boolean, ``True`` = may attend.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from annotated.masks import causal_mask, combine_masks


def _broadcastable(shape: tuple, target: tuple) -> bool:
    if len(shape) > len(target):
        return False
    return all(s in (1, t) for s, t in zip(reversed(shape), reversed(target)))


def check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask=None, bias=None) -> tuple:
    """Validate shapes and dtypes for :func:`attend`; return the score shape (..., Tq, Tk).

    Raises ``ValueError`` naming the offending shapes, so a caller sees what to change.
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
            raise ValueError(f"bias must be a floating-point tensor, got dtype {bias.dtype}")
        if not _broadcastable(tuple(bias.shape), score_shape):
            raise ValueError(
                f"bias of shape {tuple(bias.shape)} does not broadcast to the scores (..., Tq, Tk) = {score_shape}"
            )
    return score_shape


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
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference scaled dot-product attention that also returns the weights.

    Args:
        q: queries ``(..., Tq, D)``; k: keys ``(..., Tk, D)``; v: values ``(..., Tk, Dv)``.
        mask: optional boolean tensor broadcastable to ``(..., Tq, Tk)``; ``True`` = may attend.
        bias: optional float tensor broadcastable to ``(..., Tq, Tk)``, added to the scores
            (ALiBi, T5 relative bias, or an additive ``-inf`` mask).
        causal: also apply :func:`~annotated.masks.causal_mask` (queries are the last Tq positions).
        scale: multiplies ``q kᵀ``; default ``1/√D``. A temperature τ is ``scale = 1/(τ√D)``.
        dropout_p: dropout on the weights (only pass > 0 while training).

    Returns:
        ``(output (..., Tq, Dv), weights (..., Tq, Tk))``. The weights are the softmax
        probabilities before dropout; each row sums to 1.

    A query whose keys are *all* masked has nothing to read: its weight row is all zeros
    and its output is the zero vector (no NaN). PyTorch's
    ``F.scaled_dot_product_attention`` returns the same zeros for such rows.
    """
    check_qkv(q, k, v, mask, bias)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale  # (..., Tq, Tk)
    if bias is not None:
        scores = scores + bias
    if causal:
        mask = combine_masks(mask, causal_mask(q.shape[-2], k.shape[-2], device=q.device))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    # Rows with every key hidden would be softmax(-inf, …, -inf) = 0/0 = NaN; give them zeros.
    empty = torch.isneginf(scores).all(dim=-1, keepdim=True)  # (..., Tq, 1)
    weights = torch.softmax(scores.masked_fill(empty, 0.0), dim=-1).masked_fill(empty, 0.0)
    dropped = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
    return dropped @ v, weights  # (..., Tq, Dv), (..., Tq, Tk)


def attention_entropy(weights: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of each attention row: 0 = one key, log(Tk) = uniform."""
    w = weights.clamp_min(1e-12)
    return -(weights * w.log()).sum(-1)
