"""Encodings added to the token embeddings: sinusoidal (fixed) and learned
absolute (a table).

Legend: B batch, T time, C model dim. Positions are integer tensors of shape
(T,) or (B, T).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from annotated.positional.base import (
    PositionalEncoding,
    check_positions,
    default_positions,
)


def sinusoidal_encoding(
    positions: torch.Tensor, d_model: int, base: float = 10000.0
) -> torch.Tensor:
    """Vaswani et al. 2017, §3.5: ``PE[p, 2i] = sin(p / base^(2i/C))``,
    ``PE[p, 2i+1] = cos(...)``.

    Returns ``(*positions.shape, C)``. Computed from the positions, so there
    is no table and no largest position; whether a model *generalises* to
    unseen positions is another matter.
    """
    i = torch.arange(
        (d_model + 1) // 2, device=positions.device, dtype=torch.float32
    )
    inv_freq = base ** (-2 * i / d_model)  # (ceil(C/2),)
    # (..., ceil(C/2))
    angles = positions.to(torch.float32)[..., None] * inv_freq
    # (..., 2*ceil(C/2)) interleaved sin, cos
    pe = torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(-2)
    return pe[..., :d_model]


class SinusoidalEncoding(PositionalEncoding):
    """Sines and cosines added to the embeddings (Vaswani et al. 2017)."""

    where = "embedding"
    fixed_signal = True

    def __init__(self, d_model: int, base: float = 10000.0):
        super().__init__()
        self.d_model, self.base = d_model, base

    def forward(
        self, x: torch.Tensor, positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        positions = default_positions(x, positions)
        check_positions(positions, x.shape[1])
        # (B, T, C)
        return x + sinusoidal_encoding(positions, self.d_model, self.base).to(
            x.dtype
        )

    @classmethod
    def build(cls, *, d_model, n_heads, max_len, causal=True, **kwargs):
        return cls(d_model, **kwargs)


class LearnedAbsoluteEncoding(PositionalEncoding):
    """A trained vector per position, added to the embeddings (GPT-2; Radford
    et al. 2019).

    The table has ``max_len`` rows, so a position ``>= max_len`` has no
    vector: by default that raises ``ValueError`` (the encoding cannot
    extrapolate). ``overflow="clamp"`` is the explicit fallback: every
    position past the table reuses the last learned row.
    """

    where = "embedding"
    table_limit = True
    learned = True
    OVERFLOW_CHOICES = ("error", "clamp")

    def __init__(
        self,
        max_len: int,
        d_model: int,
        *,
        overflow: str = "error",
        init_std: float = 0.02,
    ):
        super().__init__()
        if overflow not in self.OVERFLOW_CHOICES:
            raise ValueError(
                f"overflow must be one of {self.OVERFLOW_CHOICES}, got "
                f"{overflow!r}"
            )
        if max_len <= 0:
            raise ValueError(
                f"max_len must be a positive table size, got {max_len}"
            )
        self.max_len, self.overflow = max_len, overflow
        self.table = nn.Embedding(max_len, d_model)  # (max_len, C)
        nn.init.normal_(self.table.weight, std=init_std)

    def forward(
        self, x: torch.Tensor, positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        positions = default_positions(x, positions)
        check_positions(positions, x.shape[1])
        if (positions < 0).any():
            raise ValueError(
                f"positions must be >= 0, got min {int(positions.min())}"
            )
        if self.overflow == "clamp":
            positions = positions.clamp(max=self.max_len - 1)
        elif (positions >= self.max_len).any():
            raise ValueError(
                "LearnedAbsoluteEncoding cannot extrapolate: its table has "
                f"max_len={self.max_len} positions (0..{self.max_len - 1}) "
                f"but position {int(positions.max())} was asked for. Use a "
                "larger max_len, or pass overflow='clamp' to reuse the last "
                "learned position for every later one."
            )
        return x + self.table(positions).to(x.dtype)  # (B, T, C)

    @classmethod
    def build(cls, *, d_model, n_heads, max_len, causal=True, **kwargs):
        return cls(max_len, d_model, **kwargs)
