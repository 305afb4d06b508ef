"""Top-k sparse attention: each query keeps only its ``top_k`` largest scores.

    s_i = q_i·K / √D + bias (modded, masked)
    keep_i = argtopk(s_i, k)
    out_i = softmax(s_i on keep_i) V

Scores outside the top k become −∞ before the softmax (Zhao et al. 2019,
"explicit sparse transformer"; Wang et al. 2022, KVT). It is ``attend``
with one more mask, and is built from ``attend``'s own steps. It teaches what
sparsity costs in quality, not speed: the scores are still computed densely
(O(T²)); a real implementation would need an approximate nearest-neighbour
search (Reformer, Kitaev et al. 2020).

Legend: Tq/Tk query/key length, D head dim, Dv value dim.
"""

from __future__ import annotations

import torch

from annotated.attention.attend import (
    attention_scores,
    masked_softmax,
    prepare_attention,
    visible_keys,
)
from annotated.attention.masks import MaskMod, ScoreMod
from annotated.kernels.checks import positive_sizes


def topk_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    *,
    key_padding_mask: torch.Tensor | None = None,
    causal: bool = False,
    scale: float | None = None,
    mask_mod: MaskMod | None = None,
    score_mod: ScoreMod | None = None,
    top_k: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``attend`` with all but each query's ``top_k`` visible scores hidden;
    ``top_k ≥ Tk`` is dense attention. Ties are broken by ``torch.topk``;
    gradients flow only through the kept scores. Returns ``(out, weights)``
    like ``attend``."""
    positive_sizes("topk_attention", top_k=top_k)
    scale, mask, mask_mod = prepare_attention(
        q, k, v, mask, bias, key_padding_mask, causal, scale, mask_mod
    )
    scores = attention_scores(q, k, bias, scale=scale, score_mod=score_mod)
    keep = visible_keys(mask, mask_mod, scores.shape, q.device)
    if keep is not None:  # a hidden key must not take a top-k place
        scores = scores.masked_fill(~keep, float("-inf"))  # (..., Tq, Tk)
    top = scores.topk(min(top_k, k.shape[-2]), dim=-1).indices  # (..., Tq, k)
    in_top = torch.zeros_like(scores, dtype=torch.bool).scatter(-1, top, True)
    weights = masked_softmax(scores, in_top)  # (..., Tq, Tk)
    return weights @ v, weights
