"""FIRE (Li et al. 2024): a relative bias computed by a small MLP from a
progressively normalised distance.

Legend: B batch, H heads, Tq/Tk query/key length, W the MLP's hidden width.
Positions are integer tensors (T,) or (B, T); the kernels number queries as
the last Tq keys (``q_idx = Tk - Tq + i``).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from annotated.attention.masks import ScoreMod
from annotated.positional.base import PositionalEncoding
from annotated.positional.bias import position_lookup


class FireBias(PositionalEncoding):
    """Functional Interpolation for Relative Positions (Li et al. 2024,
    "Functional Interpolation for Relative Positions Improves Long Context
    Transformers", ICLR 2024)::

        score(i, j) += f_θ( ψ(i − j) / ψ(max(L, i)) )_h
        ψ(x) = log(c·x + 1)

    ``f_θ`` is an MLP ``1 → W → H`` (ReLU; W = 32 as in the paper), ``c > 0``
    and the threshold ``L`` are learned (``c`` starts at 1, ``L`` at
    ``threshold``). Dividing by ``ψ(i)`` maps every distance a query can see
    into [0, 1], so a longer input *interpolates* within the range seen in
    training instead of reaching unseen distances; ``L`` keeps short contexts
    from being stretched. McLeish et al. (2024) pair it with Abacus embeddings
    for addition.

    Causal: keys after the query (``i − j < 0``) are masked by the kernel;
    their distance is taken as 0 here so ψ stays defined. The MLP is evaluated
    once per (query, key) of a tile, then each head reads its own output. One
    instance is shared by all layers of a stack (the paper shares it too).
    """

    where = "score"
    learned = True

    def __init__(
        self, n_heads: int, *, hidden: int = 32, threshold: float = 512.0
    ):
        super().__init__()
        if not threshold > 0:
            raise ValueError(
                "threshold (the initial L) must be positive, got "
                f"{threshold!r}"
            )
        self.n_heads = n_heads
        # f_θ: 1 → W → H
        self.mlp = nn.Sequential(
            nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, n_heads)
        )
        # c = exp(log_c) > 0, starts at 1
        self.log_c = nn.Parameter(torch.zeros(()))
        self.threshold = nn.Parameter(torch.tensor(float(threshold)))  # L

    def psi(self, x: torch.Tensor) -> torch.Tensor:
        """ψ(x) = log(c·x + 1) for distances x ≥ 0."""
        return torch.log1p(self.log_c.exp() * x)

    def score_mod(self, q_pos, k_pos) -> ScoreMod:
        distance, psi, mlp = (
            position_lookup(q_pos, k_pos.to(q_pos.device)),
            self.psi,
            self.mlp,
        )
        offset, threshold = k_pos.shape[-1] - q_pos.shape[-1], self.threshold

        def query_position(b, q_idx):
            return (
                q_pos[q_idx - offset]
                if q_pos.dim() == 1
                else q_pos[b, q_idx - offset]
            ).float()

        def fire(score, b, h, q_idx, k_idx):
            # i − j; future keys (masked) → 0
            d = distance(b, q_idx, k_idx).clamp(min=0).float()
            # ψ(max(L, i))
            scale = psi(
                torch.maximum(query_position(b, q_idx), F.relu(threshold))
            )
            # (..., H): every head's bias
            out = mlp((psi(d) / scale.clamp(min=1e-6))[..., None])
            shape = torch.broadcast_shapes(d.shape, h.shape)
            # (..., 1): which head each entry belongs to
            head = h.expand(shape)[..., None]
            return (
                score
                + out.expand(*shape, out.shape[-1]).gather(-1, head)[..., 0]
            )

        return fire

    @classmethod
    def build(cls, *, d_model, n_heads, max_len, causal=True, **kwargs):
        """From a model config: ``L`` starts at ``max_len`` unless given."""
        kwargs.setdefault("threshold", float(max_len))
        return cls(n_heads, **kwargs)
