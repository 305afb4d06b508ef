"""Position coupling read through a relative bias: a learned scalar per head
and clipped id difference.

Legend: B batch, H heads, Tq/Tk query/key length, R the clip distance. Ids are
integer tensors (T,) or (B, T); the kernels number queries as the last Tq keys
(``q_idx = Tk - Tq + i``).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from annotated.attention.masks import ScoreMod
from annotated.positional.base import PositionalEncoding
from annotated.positional.bias import position_lookup


class CoupledRelativeBias(PositionalEncoding):
    """Position coupling (Cho et al. 2024, "Position Coupling: Improving
    Length Generalization of Arithmetic Transformers Using Task Structure")
    with the coupled ids used as *relative* positions::

        score(i, j) += b[clip(p_i − p_j, −R, R), h]

    with ``b`` a learned ``(2R + 1, H)`` table and ``R = 3``.

    ``p_i`` is the coupled id of token ``i``, given by the task as
    ``positions``: operand and answer digits of the same significance share an
    id (:class:`~annotated.tasks.extrapolation.ReversedAdditionTask` with
    ``position_ids="coupled"``), so "read the operand digits one place above
    mine" is the same bias entry at every length. This is the
    ``coupled_relative_bias`` of the paper's code
    (``HanseulJo/position-coupling``: a T5-style table of ``2R + 1 = 7``
    buckets on the clipped difference); the paper's main method feeds the same
    ids to a *learned absolute* table with a random start instead
    (:class:`~annotated.positional.abacus.AbacusEncoding` given coupled ids
    does that).

    Why the relative form: with an absolute table a query id meets during
    training only the key ids near itself, so a longer input pairs ids that
    were never trained together; the clipped difference has no such gap, as
    every pair of ids falls on one of the ``2R + 1`` trained entries.

    ``lr_scale`` multiplies the table, ``b = lr_scale · θ`` with ``θ`` the
    trained parameter (zero at the start): under Adam, whose steps do not
    depend on the gradient's scale, that trains ``b`` with ``lr_scale`` × the
    learning rate without a separate optimizer group. One instance is shared
    by all layers of a stack (the paper's code has one table per layer).
    Without ``positions`` the ids are ``0 … T−1``: a relative bias with exact
    buckets up to ``R``.
    """

    where = "score"
    learned = True

    def __init__(
        self, n_heads: int, *, max_distance: int = 3, lr_scale: float = 20.0
    ):
        super().__init__()
        if (
            isinstance(max_distance, bool)
            or not isinstance(max_distance, int)
            or max_distance < 0
        ):
            raise ValueError(
                "max_distance must be an int ≥ 0 (the clip R of p_i − p_j), "
                f"got {max_distance!r}"
            )
        if not lr_scale > 0:
            raise ValueError(f"lr_scale must be positive, got {lr_scale!r}")
        self.n_heads, self.max_distance, self.lr_scale = (
            n_heads,
            max_distance,
            float(lr_scale),
        )
        # (2R + 1, H); b = lr_scale · θ
        self.theta = nn.Parameter(torch.zeros(2 * max_distance + 1, n_heads))

    @property
    def table(self) -> torch.Tensor:
        """The bias ``b`` (2R + 1, H): row ``d + R`` holds each head's bias
        for a clipped difference ``d``."""
        return self.lr_scale * self.theta

    def score_mod(self, q_pos, k_pos) -> ScoreMod:
        difference, table, r = (
            position_lookup(q_pos, k_pos.to(q_pos.device)),
            self.table,
            self.max_distance,
        )

        def coupled_bias(score, b, h, q_idx, k_idx):
            # clip(p_i − p_j, −R, R) + R
            row = difference(b, q_idx, k_idx).clamp(-r, r) + r
            return score + table[row, h]

        return coupled_bias

    @classmethod
    def build(cls, *, d_model, n_heads, max_len, causal=True, **kwargs):
        return cls(n_heads, **kwargs)
