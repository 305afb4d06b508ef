"""Abacus embeddings (McLeish et al. 2024): a learned vector per digit place,
shifted at random in training.

Legend: B batch, T time, C model dim, K offset range. Ids are integer tensors
of shape (T,) or (B, T).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from annotated.positional.base import (
    PositionalEncoding,
    check_positions,
    default_positions,
)


class AbacusEncoding(PositionalEncoding):
    """Abacus embeddings (McLeish et al. 2024, "Transformers Can Do Arithmetic
    with the Right Embeddings", §3.1): every digit gets the learned vector of
    its *place within its own number*, so digits of the same significance look
    alike wherever the number stands::

        x_t ← x_t + E[p_t + k]   if p_t > 0
        x_t ← x_t + E[0]         if p_t = 0

    with ``k ~ U{0, …, K−1}`` per sequence while training and ``k = 0`` at
    evaluation.

    ``p_t`` comes from the task as ``positions`` (1, 2, 3, … along each
    number, 0 for other tokens; see
    :func:`annotated.tasks.extrapolation.digit_places`). The random offset
    ``k`` lets the rows beyond the training lengths' places be trained too:
    trained on numbers of up to ``n`` digits with offsets below ``K``, places
    up to ``n + K − 1`` have seen gradient, so a model evaluated without
    offset has vectors for numbers of up to about ``n + K − 1`` digits (the
    paper: K = 100, trained on 20 digits, tested to 100). The reference code
    (``mcleish7/arithmetic``, ``abacus.py``) draws one ``k`` per batch; here
    each sequence draws its own (``generator`` or ``seed`` for a private
    stream; neither: the global RNG).

    Given coupled ids instead
    (:class:`~annotated.tasks.extrapolation.ReversedAdditionTask` with
    ``position_ids="coupled"``), this is the published form of position
    coupling (Cho et al. 2024): a learned absolute table over coupled ids with
    a random start in training. Without ``positions`` the ids are ``0 … T−1``
    (a learned absolute table with random offsets).

    McLeish et al. add Abacus on top of NoPE or FIRE in deeper models; alone
    it is Abacus + NoPE (the causal mask still orders the tokens). The table
    has ``max_len`` rows: an id ``+ k`` past the table raises ``ValueError``
    (the ids are digit places, not sequence positions, so the table is checked
    here rather than by ``table_limit``).
    """

    where = "embedding"
    learned = True

    def __init__(
        self,
        max_len: int,
        d_model: int,
        *,
        max_offset: int = 0,
        init_std: float = 0.02,
        generator: torch.Generator | None = None,
        seed: int | None = None,
    ):
        super().__init__()
        if max_len <= 0:
            raise ValueError(
                f"max_len must be a positive table size, got {max_len}"
            )
        if (
            isinstance(max_offset, bool)
            or not isinstance(max_offset, int)
            or not 0 <= max_offset < max_len
        ):
            raise ValueError(
                f"max_offset must be an int in [0, max_len={max_len}), got "
                f"{max_offset!r}"
            )
        self.max_len, self.max_offset = max_len, max_offset
        # (max_len, C): row p = place p, row 0 = not a digit
        self.table = nn.Embedding(max_len, d_model)
        nn.init.normal_(self.table.weight, std=init_std)
        self.generator = (
            torch.Generator().manual_seed(seed)
            if generator is None and seed is not None
            else generator
        )

    def offsets(self, batch: int) -> torch.Tensor:
        """``(B, 1)`` random offsets ``k`` in ``[0, max_offset)``, one per
        sequence (0 when ``max_offset`` < 2)."""
        if self.max_offset < 2:
            return torch.zeros(batch, 1, dtype=torch.long)
        # (B, 1)
        return torch.randint(
            0, self.max_offset, (batch, 1), generator=self.generator
        )

    def shifted(self, positions: torch.Tensor, batch: int) -> torch.Tensor:
        """The table rows read: ``p + k`` where ``p > 0`` in training, ``p``
        at evaluation; (B, T) or (T,)."""
        if not self.training or self.max_offset < 2:
            return positions
        k = self.offsets(batch).to(positions.device)  # (B, 1)
        # (B, T): places shift, 0 stays
        return torch.where(positions > 0, positions + k, positions)

    def forward(
        self, x: torch.Tensor, positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        positions = default_positions(x, positions)
        check_positions(positions, x.shape[1])
        if (positions < 0).any():
            raise ValueError(
                "Abacus ids must be >= 0 (0 = not a digit), got min "
                f"{int(positions.min())}"
            )
        rows = self.shifted(positions, x.shape[0])
        if (rows >= self.max_len).any():
            offset = (
                f" plus a training offset below {self.max_offset}"
                if self.training
                else ""
            )
            raise ValueError(
                f"AbacusEncoding has max_len={self.max_len} rows but id "
                f"{int(positions.max())}{offset} was asked for; raise the "
                "model's max_len above the longest number's digit count "
                "(+ max_offset in training)"
            )
        return x + self.table(rows).to(x.dtype)  # (B, T, C)

    @classmethod
    def build(cls, *, d_model, n_heads, max_len, causal=True, **kwargs):
        """From a model config: ``max_len`` rows and, unless given, offsets
        below ``max_len // 2``, so training on numbers of up to ``n`` digits
        trains the rows up to ``n + max_len // 2``."""
        kwargs.setdefault("max_offset", max_len // 2)
        return cls(max_len, d_model, **kwargs)
