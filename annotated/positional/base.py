"""The positional-encoding interface: where an encoding acts, and what it
needs.

Self-attention without positions treats its input as a set. Each encoding puts
order back in at exactly one of three places, declared by its class attribute
``where``:

=============  ========================================  ====================
``where``      what the encoding does                    encodings
=============  ========================================  ====================
"embedding"    ``x + p(position)`` before the layers     sinusoidal, learned,
                                                         randomized, Abacus
"qk"           rotates q and k inside attention          RoPE
"score"        a ``score_mod`` on the attention scores   ALiBi, T5, FIRE,
                                                         coupled bias
"none"         nothing (causal masking alone)            NoPE
=============  ========================================  ====================

Every encoding answers all three hooks (``forward``, ``rotate_qk``,
``score_mod``); the ones it does not act at do nothing, so
:class:`~annotated.attention.multihead.MultiHeadAttention` and the models call
the hooks without copying a ``forward`` per encoding. An encoding also
declares what it needs and has (``even_head_dim``, ``table_limit``,
``fixed_signal``, ``learned``, ``position_range``, ``scales_scores``), so no
other module tests an encoding by its name.

Legend: B batch, T time, C model dim, H heads, D head dim, Tq/Tk query/key
length. Positions are integer tensors of shape (T,) or (B, T).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from annotated.attention.masks import ScoreMod, materialize_score


class PositionalEncoding(nn.Module):
    """Base class: identity at all three hooks. Subclasses set ``where`` and
    override one hook."""

    where: str = "none"
    # rotates pairs of head dims, so the head dim must be even
    even_head_dim: bool = False
    # a table of max_len rows: positions >= max_len have no vector
    table_limit: bool = False
    # adds an untrained, amplitude-1 signal to the embeddings (tokens × √C)
    fixed_signal: bool = False
    learned: bool = False  # has trained parameters
    # > 0: trained on sorted positions drawn from range(position_range)
    position_range: int = 0
    # multiplies whole scores (annotated.attention.scaled_scores): needs a
    # kernel that forms them
    scales_scores: bool = False
    # the sizes a module was built for (None: any)
    n_heads: int | None = None
    head_dim: int | None = None

    def forward(
        self, x: torch.Tensor, positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Embedding hook: ``(B, T, C) -> (B, T, C)``; identity unless
        ``where == "embedding"``."""
        return x

    def rotate_qk(
        self, q, k, q_pos, k_pos
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """q/k hook on ``(B, H, T, D)`` tensors; identity unless
        ``where == "qk"``."""
        return q, k

    def score_mod(
        self, q_pos: torch.Tensor, k_pos: torch.Tensor
    ) -> ScoreMod | None:
        """Score hook: a ``score_mod(score, b, h, q_idx, k_idx)`` for queries
        at ``q_pos`` and keys at ``k_pos``; ``None`` unless
        ``where == "score"``."""
        return None

    def score_bias(
        self, q_pos: torch.Tensor, k_pos: torch.Tensor
    ) -> torch.Tensor | None:
        """The score hook as a dense bias ``(H, Tq, Tk)`` (``(B, H, Tq, Tk)``
        for per-sequence positions), for plots and tests; ``None`` unless
        ``where == "score"``."""
        mod = self.score_mod(q_pos, k_pos)
        if mod is None:
            return None
        batch = q_pos.shape[0] if q_pos.dim() == 2 else None
        bias = materialize_score(
            mod,
            q_pos.shape[-1],
            k_pos.shape[-1],
            batch=batch,
            heads=self.n_heads,
            device=q_pos.device,
        )
        return bias if batch is not None else bias[0]

    @classmethod
    def check_head_dim(cls, head_dim: int) -> None:
        """Refuse a head dim this encoding cannot use."""
        if cls.even_head_dim and head_dim % 2:
            raise ValueError(
                f"{cls.__name__} rotates pairs of dims but the head dim "
                f"d_model // n_heads = {head_dim} is odd; choose d_model and "
                "n_heads so that d_model // n_heads is even, or another "
                "positional encoding"
            )

    @classmethod
    def build(
        cls,
        *,
        d_model: int,
        n_heads: int,
        max_len: int,
        causal: bool = True,
        **kwargs,
    ):
        """Build from the model-level sizes :func:`make_positional` passes."""
        return cls(**kwargs)


class NoPositionalEncoding(PositionalEncoding):
    """NoPE: no positional information (Kazemnejad et al. 2023). A causal mask
    alone still lets a decoder infer positions; an unmasked encoder stays
    permutation-equivariant."""

    where = "none"


def default_positions(
    x: torch.Tensor, positions: torch.Tensor | None
) -> torch.Tensor:
    return (
        torch.arange(x.shape[1], device=x.device)
        if positions is None
        else positions.to(x.device)
    )


def check_positions(positions: torch.Tensor, t: int) -> None:
    if (
        positions.dtype not in (torch.int32, torch.int64)
        or positions.dim() not in (1, 2)
        or positions.shape[-1] != t
    ):
        raise ValueError(
            f"positions must be an integer tensor of shape (T,) or (B, T) "
            f"with T = {t}; got dtype {positions.dtype}, shape "
            f"{tuple(positions.shape)}"
        )
