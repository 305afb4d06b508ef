"""QK-norm: every head's queries and keys RMS-normalised before they meet.

A score ``q·k / √D`` grows with the lengths of q and k, and in a long or
fast training run those lengths can grow until the softmax saturates and
the loss spikes. Dehghani et al. (2023, "Scaling Vision Transformers to 22
Billion Parameters", §2) normalise q and k before the product; Gemma 3 and
Qwen3 do it as here, with an RMSNorm over each head's D dims and one learned
gain of D shared by the heads::

    q_h ← q_h / √(mean(q_h²) + ε) · g_q,   k_h ← k_h / √(mean(k_h²) + ε) · g_k

The norm acts on the projection's output, so it comes before RoPE turns q
and k, before the KV cache keeps k, and before any kernel forms the scores;
values are not normalised. :class:`HeadNormLinear` is that projection, an
``nn.Linear`` with the norm after it, so a layer built with QK-norm keeps
its ``q_proj`` and ``k_proj`` (and their ``weight``).

Legend: B batch, T time, n heads of this projection, D head dim.
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["HeadNormLinear", "head_projection"]


class HeadNormLinear(nn.Linear):
    """``nn.Linear(d_in, n_heads · head_dim)`` whose output is RMS-normalised
    head by head (``self.norm``, an ``nn.RMSNorm(head_dim)``)."""

    def __init__(
        self,
        d_in: int,
        n_heads: int,
        head_dim: int,
        *,
        bias: bool = True,
        eps: float = 1e-5,
    ):
        super().__init__(d_in, n_heads * head_dim, bias=bias)
        self.head_dim = head_dim
        self.norm = nn.RMSNorm(head_dim, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)  # (B, T, n*D)
        # (B, T, n*D) -> (B, T, n, D): each head normalised -> (B, T, n*D)
        return self.norm(y.unflatten(-1, (-1, self.head_dim))).flatten(-2)


def head_projection(
    d_in: int,
    n_heads: int,
    head_dim: int,
    *,
    bias: bool = True,
    qk_norm: bool = False,
    eps: float = 1e-5,
) -> nn.Linear:
    """The projection to ``n_heads`` heads of ``head_dim``: a plain
    ``nn.Linear``, or with ``qk_norm`` a :class:`HeadNormLinear`."""
    if qk_norm:
        return HeadNormLinear(d_in, n_heads, head_dim, bias=bias, eps=eps)
    return nn.Linear(d_in, n_heads * head_dim, bias=bias)
