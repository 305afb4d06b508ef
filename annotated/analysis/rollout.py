"""Attention rollout: attention followed back to the input tokens.

Abnar and Zuidema 2020, "Quantifying Attention Flow in Transformers".

Raw attention of a late layer says where that layer reads, but what it reads
is already a mix of earlier positions. Rollout follows the mix back to the
input tokens. Each layer's residual connection keeps the token itself, so the
layer is modelled as half attention, half identity, averaged over heads and
re-normalised:

    Â_l = normalise_rows(½ · mean_h A_l,h + ½ · I),
    R_l = Â_l · R_{l-1},   R_0 = I,

and ``R_L[t, j]`` is how much of position ``t``'s representation after the
last layer traces back to input token ``j``. It is a linear approximation: it
ignores the values, the feed-forward layers and the norms, and it assumes
heads matter equally. Legend: L layers, H heads, T time.
"""

from __future__ import annotations

import torch


def attention_rollout(attentions, *, residual: float = 0.5) -> torch.Tensor:
    """Rollout of per-layer weights ``attentions``, each ``(..., H, T, T)``,
    ordered from the first layer; ``residual`` is the identity's share (½ in
    the paper). Returns ``(L, ..., T, T)``: the rollout after each layer (the
    last entry is the full rollout)."""
    if not 0.0 <= residual <= 1.0:
        raise ValueError(f"residual must lie in [0, 1], got {residual}")
    out, rolled = [], None
    for weights in attentions:
        mean = weights.float().mean(-3)  # (..., T, T): average the heads
        eye = torch.eye(mean.shape[-1], dtype=mean.dtype, device=mean.device)
        mixed = (1.0 - residual) * mean + residual * eye
        mixed = mixed / mixed.sum(-1, keepdim=True)  # rows sum to 1 again
        # R_l = Â_l R_{l-1}
        rolled = mixed if rolled is None else mixed @ rolled
        out.append(rolled)
    return torch.stack(out)
