"""Encodings that act on the attention scores, as a ``score_mod``: ALiBi and
T5's relative bias.

Each returns a ``score_mod(score, b, h, q_idx, k_idx)`` (FlexAttention's hook,
see :mod:`annotated.attention.masks`) that reads the positions of the query
and key it is asked about, so a tiled kernel evaluates the bias one tile at a
time and no (H, Tq, Tk) tensor is built. ``score_bias`` materialises the same
function for plots.

Legend: B batch, H heads, Tq/Tk query/key length. Positions are integer
tensors (T,) or (B, T); the kernels number queries as the last Tq keys
(``q_idx = Tk - Tq + i``).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from annotated.attention.masks import ScoreMod
from annotated.positional.base import PositionalEncoding


def position_lookup(q_pos: torch.Tensor, k_pos: torch.Tensor):
    """``distance(b, q_idx, k_idx)``: query position minus key position, read
    from the position tensors."""
    # q_idx counts from the first key
    offset = k_pos.shape[-1] - q_pos.shape[-1]

    def at(pos, b, idx):
        return pos[idx] if pos.dim() == 1 else pos[b, idx]

    def distance(b, q_idx, k_idx):
        return at(q_pos, b, q_idx - offset) - at(k_pos, b, k_idx)  # i - j

    return distance


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """ALiBi head slopes (Press et al. 2022, §3).

    For n a power of two: the geometric sequence
    ``2^(-8/n), 2^(-16/n), ..., 2^-8``.
    Otherwise (the paper's rule): the slopes for the closest power of two
    ``2^floor(log2 n)``, followed by every other slope of
    ``2 * 2^floor(log2 n)`` heads until there are n.
    """
    if n_heads <= 0:
        raise ValueError(f"n_heads must be positive, got {n_heads}")

    def geometric(n: int) -> list[float]:
        return [2.0 ** (-8.0 * (i + 1) / n) for i in range(n)]

    closest = 2 ** math.floor(math.log2(n_heads))
    slopes = (
        geometric(closest) + geometric(2 * closest)[0::2][: n_heads - closest]
    )
    return torch.tensor(slopes)  # (H,)


class AlibiBias(PositionalEncoding):
    """Attention with Linear Biases (Press et al. 2022):
    ``score(i, j) += -slope_h * (i - j)``.

    Causal form: ``-slope * (i - j)``; for the visible keys ``j <= i`` it is 0
    on the diagonal and falls linearly with distance (keys ``j > i`` must be
    masked). The paper's code adds ``slope * j`` instead, which differs by
    ``slope * i`` per row: softmax does not see that. Bidirectional
    (symmetric) form for encoders: ``-slope * |i - j|``. No parameters.
    """

    where = "score"

    def __init__(self, n_heads: int, *, causal: bool = True):
        super().__init__()
        self.n_heads, self.causal = n_heads, causal
        # (H,)
        self.register_buffer(
            "slopes", alibi_slopes(n_heads), persistent=False
        )

    def score_mod(self, q_pos, k_pos) -> ScoreMod:
        distance, slopes, causal = (
            position_lookup(q_pos, k_pos.to(q_pos.device)),
            self.slopes,
            self.causal,
        )

        def alibi(score, b, h, q_idx, k_idx):
            d = distance(b, q_idx, k_idx)  # i - j
            return score - slopes[h] * (d if causal else d.abs())

        return alibi

    @classmethod
    def build(cls, *, d_model, n_heads, max_len, causal=True, **kwargs):
        return cls(n_heads, causal=causal, **kwargs)


def t5_relative_bucket(
    relative_position: torch.Tensor,
    bidirectional: bool = True,
    num_buckets: int = 32,
    max_distance: int = 128,
) -> torch.Tensor:
    """T5's bucket of each relative position ``key - query`` (Raffel et al.
    2020; as in HF T5).

    Bidirectional: half the buckets for keys after the query
    (``+ num_buckets/2``), half for keys before. Causal: keys after the query
    all fall in bucket 0. Within a half of ``n`` buckets, distances
    ``0 .. n/2 - 1`` get a bucket each; larger distances share logarithmically
    wider buckets up to ``max_distance``; all beyond share the last bucket.

    >>> relative = torch.tensor([-1, 0, 1, -20, -200])
    >>> t5_relative_bucket(relative, bidirectional=True).tolist()
    [1, 0, 17, 10, 15]
    """
    buckets = torch.zeros_like(relative_position, dtype=torch.long)
    if bidirectional:
        num_buckets //= 2
        buckets += (relative_position > 0).long() * num_buckets
        distance = relative_position.abs()
    else:
        distance = (-relative_position).clamp(min=0)  # future keys -> 0
    max_exact = num_buckets // 2
    is_small = distance < max_exact
    log_ratio = torch.log(
        distance.float().clamp(min=1) / max_exact
    ) / math.log(max_distance / max_exact)
    large = (
        max_exact + (log_ratio * (num_buckets - max_exact)).long()
    ).clamp(max=num_buckets - 1)
    return buckets + torch.where(is_small, distance, large)


class T5RelativeBias(PositionalEncoding):
    """T5 relative position bias (Raffel et al. 2020): a learned scalar per
    (bucket, head).

    ``score(i, j) += embedding[bucket(j - i), h]``. ``bidirectional=True`` for
    encoders, ``False`` for decoders. T5 shares one such table across all
    layers of a stack (pass the same module to every layer) and does not scale
    scores by ``1/√D``; our attention does.
    """

    where = "score"
    learned = True

    def __init__(
        self,
        n_heads: int,
        *,
        bidirectional: bool = False,
        num_buckets: int = 32,
        max_distance: int = 128,
    ):
        super().__init__()
        self.n_heads, self.bidirectional = n_heads, bidirectional
        self.num_buckets, self.max_distance = num_buckets, max_distance
        # (num_buckets, H)
        self.bucket_bias = nn.Embedding(num_buckets, n_heads)
        nn.init.normal_(self.bucket_bias.weight, std=0.02)

    def score_mod(self, q_pos, k_pos) -> ScoreMod:
        # (buckets, H)
        distance, table = (
            position_lookup(q_pos, k_pos.to(q_pos.device)),
            self.bucket_bias.weight,
        )
        bidirectional, num_buckets, max_distance = (
            self.bidirectional,
            self.num_buckets,
            self.max_distance,
        )

        def t5_bias(score, b, h, q_idx, k_idx):
            bucket = t5_relative_bucket(
                -distance(b, q_idx, k_idx),
                bidirectional,
                num_buckets,
                max_distance,
            )
            # the learned scalar of (bucket, head)
            return score + table[bucket, h]

        return t5_bias

    @classmethod
    def build(cls, *, d_model, n_heads, max_len, causal=True, **kwargs):
        return cls(n_heads, bidirectional=not causal, **kwargs)
