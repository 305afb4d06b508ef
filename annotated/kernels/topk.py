"""Top-k sparse attention: each query keeps only its ``top_k`` largest scores.

    s_i = q_i·K / √D + bias (modded, masked),   keep_i = argtopk(s_i, k),   out_i = softmax(s_i on keep_i) V

Scores outside the top k become −inf before the softmax (as in e.g. Wang et
al. 2022, KVT / "explicit sparse transformer", Zhao et al. 2019). It teaches
what sparsity costs in quality, not speed: the scores are still computed
densely (O(T²)); a real implementation would need an approximate
nearest-neighbour search (Reformer, Kitaev et al. 2020).

Legend: Tq/Tk query/key length, D head dim, Dv value dim.
"""

from __future__ import annotations

import math

import torch

from annotated.attention.attend import check_qkv
from annotated.attention.masks import MaskMod, ScoreMod, and_masks, score_grid
from annotated.attention.masks import causal as causal_mod
from annotated.kernels.checks import positive_int


def topk_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    top_k: int,
    mask: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    *,
    causal: bool = False,
    scale: float | None = None,
    mask_mod: MaskMod | None = None,
    score_mod: ScoreMod | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``attend`` with all but each query's ``top_k`` visible scores hidden;
    ``top_k ≥ Tk`` is dense attention. Ties are broken by ``torch.topk``;
    gradients flow only through the kept scores. Returns ``(out, weights)``
    like ``attend``."""
    check_qkv(q, k, v, mask, bias)
    top_k = positive_int(
        "top_k", top_k, "pass how many keys each query keeps, e.g. top_k=32"
    )
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale  # (..., Tq, Tk)
    if bias is not None:
        scores = scores + bias
    mask_mod = and_masks(mask_mod, causal_mod if causal else None)
    grid = score_grid(scores.shape[:-2], q.shape[-2], k.shape[-2], q.device)
    if score_mod is not None:
        scores = score_mod(scores, *grid)
    keep = (
        torch.ones_like(scores, dtype=torch.bool)
        if mask is None
        else mask.expand_as(scores)
    )
    if mask_mod is not None:
        keep = keep & mask_mod(*grid)
    scores = scores.masked_fill(~keep, float("-inf"))
    if top_k < k.shape[-2]:
        top = scores.topk(top_k, dim=-1).indices  # (..., Tq, top_k)
        keep = keep & torch.zeros_like(keep).scatter(-1, top, True)
    scores = scores.masked_fill(~keep, float("-inf"))
    # rows with nothing kept give zeros
    empty = torch.isneginf(scores).all(dim=-1, keepdim=True)
    # (..., Tq, Tk)
    weights = torch.softmax(
        scores.masked_fill(empty, 0.0), dim=-1
    ).masked_fill(empty, 0.0)
    return weights @ v, weights
