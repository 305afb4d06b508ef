"""Randomized positional encodings (Ruoss et al. 2023): train on random sorted
positions.

Legend: B batch, T time, C model dim.
"""

from __future__ import annotations

import torch

from annotated.positional.absolute import SinusoidalEncoding
from annotated.positional.base import PositionalEncoding


def sample_sorted_positions(
    batch: int, length: int, max_positions: int, generator=None
) -> torch.Tensor:
    """``(B, T)`` positions: for each row a sorted subset of
    ``range(max_positions)`` drawn uniformly without replacement (Ruoss et al.
    2023, their reference implementation's
    ``np.sort(np.random.choice(L, size=T, replace=False))``)."""
    if length > max_positions:
        raise ValueError(
            f"cannot draw {length} distinct positions from "
            f"range({max_positions}); raise max_positions above the longest "
            "sequence"
        )
    noise = torch.rand(batch, max_positions, generator=generator)  # (B, L)
    # (B, T): a random sorted subset
    return noise.argsort(dim=-1)[:, :length].sort(dim=-1).values


class RandomizedPositions(PositionalEncoding):
    """Randomized positional encodings (Ruoss et al. 2023, "Randomized
    Positional Encodings Boost Length Generalization of Transformers").

    While training, each sequence of length T gets T *sorted* positions drawn
    without replacement from ``range(max_positions)`` with ``max_positions``
    much larger than the training length, so the model sees large position
    values and learns to use their order, not their values. The positions are
    then encoded by ``inner`` (sinusoidal by default).

    Randomness comes from ``generator`` (or a private one seeded with
    ``seed``); with neither, the global torch RNG is used.

    Evaluation (``self.training`` False) with no ``positions`` given uses
    ``0..T-1`` unless ``sample_in_eval=True``. The library's training loop and
    evaluation do what the paper's reference implementation does: they read
    the range this encoding declares (``position_range``) and pass random
    sorted positions in training *and* in evaluation
    (:func:`annotated.training.evaluation.evaluate` draws them from a seeded
    generator), since a model trained on large position values has never seen
    ``0..T-1``. Explicitly passed ``positions`` are always used as given.
    """

    where = "embedding"
    fixed_signal = True

    def __init__(
        self,
        d_model: int,
        max_positions: int,
        *,
        inner: PositionalEncoding | None = None,
        sample_in_eval: bool = False,
        generator: torch.Generator | None = None,
        seed: int | None = None,
    ):
        super().__init__()
        if max_positions <= 0:
            raise ValueError(
                f"max_positions must be positive, got {max_positions}"
            )
        self.max_positions, self.sample_in_eval = (
            max_positions,
            sample_in_eval,
        )
        self.inner = SinusoidalEncoding(d_model) if inner is None else inner
        if self.inner.where != "embedding":
            raise ValueError(
                "inner must be an embedding-level encoding, got "
                f"where={self.inner.where!r}"
            )
        # a table must hold every position that can be drawn
        if self.inner.table_limit and self.inner.max_len < max_positions:
            raise ValueError(
                f"positions are drawn up to {max_positions - 1} but the "
                f"inner table has max_len={self.inner.max_len} rows; set "
                f"max_len ≥ {max_positions}"
            )
        self.generator = (
            torch.Generator().manual_seed(seed)
            if generator is None and seed is not None
            else generator
        )

    @property
    def position_range(self) -> int:
        """Training draws positions from ``range(max_positions)``."""
        return self.max_positions

    def sample_positions(self, batch: int, length: int) -> torch.Tensor:
        """``(B, T)`` sorted positions, distinct within each row, from
        ``range(max_positions)``."""
        return sample_sorted_positions(
            batch, length, self.max_positions, self.generator
        )

    def forward(
        self, x: torch.Tensor, positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        if positions is None and (self.training or self.sample_in_eval):
            positions = self.sample_positions(x.shape[0], x.shape[1]).to(
                x.device
            )
        return self.inner(x, positions)

    @classmethod
    def build(cls, *, d_model, n_heads, max_len, causal=True, **kwargs):
        # the paper uses L >> N; 4x the training length here
        kwargs.setdefault("max_positions", 4 * max_len)
        return cls(d_model, **kwargs)
