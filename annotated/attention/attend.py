"""Scaled dot-product attention, written out (Vaswani et al. 2017, eq. 1).

    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k + B, masked) V

One primitive for the whole book. Everything that changes *which* keys a query
sees is a mask — a boolean tensor, or a predicate
``mask_mod(b, h, q_idx, k_idx)`` from :mod:`annotated.attention.masks`;
everything that changes a *score* is a bias tensor or a
``score_mod(score, b, h, q_idx, k_idx)`` (ALiBi, T5's relative bias). These
are the hooks of PyTorch's FlexAttention; the efficient kernels of
:mod:`annotated.kernels` take the same ones and evaluate them tile by tile.

:func:`attend` is four small steps, and the kernels reuse them:
:func:`prepare_attention` checks the call and resolves its defaults (the
scale 1/√D; causality as one more ``mask_mod``), :func:`attention_scores`
computes the scores, :func:`visible_keys` says which keys each query may read
and :func:`masked_softmax` turns the scores into weights.

Legend: B batch, H heads, Tq query length, Tk key length, D head dim, Dv value
dim. Scores are (B, H, Tq, Tk); :func:`attend` accepts any leading dims
``...`` in place of ``B, H``. Masks: boolean, ``True`` = may attend. A
``mask`` tensor is read against the scores from the right, so a 2-D mask is
always (Tq, Tk); padding has its own argument, ``key_padding_mask`` (B, Tk),
which cannot be mistaken for one even when B == Tq.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from annotated.attention.checks import check_qkv
from annotated.attention.grid import score_grid
from annotated.attention.masks import MaskMod, ScoreMod, and_masks
from annotated.attention.masks import causal as causal_mod


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    *,
    key_padding_mask: torch.Tensor | None = None,
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
            may attend. A 2-D mask is ``(Tq, Tk)``.
        bias: float tensor broadcastable to ``(..., Tq, Tk)``, added to the
            scores.
        key_padding_mask: boolean ``(B, Tk)``, B the first dim of q;
            ``True`` = a real key (the opposite of
            ``nn.MultiheadAttention``'s). ANDed with ``mask``.
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
    scale, mask, mask_mod = prepare_attention(
        q, k, v, mask, bias, key_padding_mask, causal, scale, mask_mod
    )
    scores = attention_scores(q, k, bias, scale=scale, score_mod=score_mod)
    keep = visible_keys(mask, mask_mod, scores.shape, q.device)
    weights = masked_softmax(scores, keep)  # (..., Tq, Tk)
    dropped = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
    return dropped @ v, weights  # (..., Tq, Dv), (..., Tq, Tk)


def prepare_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    key_padding_mask: torch.Tensor | None = None,
    causal: bool = False,
    scale: float | None = None,
    mask_mod: MaskMod | None = None,
    grouped_kv: bool = False,
) -> tuple[float, torch.Tensor | None, MaskMod | None]:
    """Check an attention call, resolve its defaults:
    ``(scale, mask, mask_mod)``.

    Every kernel calls it before any work. The shapes are checked
    (:func:`check_qkv`), the scale defaults to 1/√D, padding joins the mask
    tensor (``key_padding_mask`` (B, Tk) becomes (B, 1, …, 1, Tk), ANDed
    with ``mask``), and causality is a mask like any other: ``causal=True``
    ANDs :func:`annotated.attention.masks.causal` into ``mask_mod``.
    ``grouped_kv`` lets k and v have fewer heads than q.
    """
    check_qkv(q, k, v, mask, bias, key_padding_mask, grouped_kv=grouped_kv)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    if key_padding_mask is not None:
        # (B, Tk) -> (B, 1, …, 1, Tk): every head and query of a sequence
        padding = key_padding_mask.reshape(
            q.shape[0], *(1,) * (q.dim() - 2), k.shape[-2]
        )
        mask = padding if mask is None else mask & padding
    return scale, mask, and_masks(mask_mod, causal_mod if causal else None)


def attention_scores(
    q: torch.Tensor,
    k: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    scale: float,
    score_mod: ScoreMod | None = None,
) -> torch.Tensor:
    """The scores ``q kᵀ · scale + bias``, then ``score_mod``:
    ``(..., Tq, Tk)``."""
    scores = (q @ k.transpose(-2, -1)) * scale  # (..., Tq, Tk)
    if bias is not None:
        scores = scores + bias
    if score_mod is not None:
        t_q, t_k = scores.shape[-2:]
        grid = score_grid(scores.shape[:-2], t_q, t_k, q.device)
        scores = score_mod(scores, *grid)  # grid: b, h, q_idx, k_idx
    return scores


def visible_keys(
    mask: torch.Tensor | None,
    mask_mod: MaskMod | None,
    score_shape: tuple,
    device=None,
) -> torch.Tensor | None:
    """Which keys each query may read: ``mask`` AND ``mask_mod`` evaluated
    on the score grid; a boolean tensor that broadcasts to ``score_shape``
    (..., Tq, Tk), or ``None`` for every key."""
    if mask_mod is None:
        return mask
    *lead, t_q, t_k = score_shape
    keep = mask_mod(*score_grid(tuple(lead), t_q, t_k, device))
    return keep if mask is None else mask & keep


def masked_softmax(
    scores: torch.Tensor, keep: torch.Tensor | None = None
) -> torch.Tensor:
    """Softmax over the keys (the last dim) where ``keep``; a row with every
    key hidden gets zeros.

    Such a row would be softmax(−∞, …, −∞) = 0/0 = NaN; it reads nothing
    instead. A score of −∞ (e.g. from a bias) also counts as hidden.
    """
    if keep is not None:
        scores = scores.masked_fill(~keep, float("-inf"))
    empty = torch.isneginf(scores).all(dim=-1, keepdim=True)  # (..., Tq, 1)
    weights = torch.softmax(scores.masked_fill(empty, 0.0), dim=-1)
    return weights.masked_fill(empty, 0.0)


def attention_entropy(weights: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of each attention row: 0 = one key, log(Tk) =
    uniform."""
    w = weights.clamp_min(1e-12)
    return -(weights * w.log()).sum(-1)
