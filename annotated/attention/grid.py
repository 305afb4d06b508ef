"""Index grids: the ``(b, h, q_idx, k_idx)`` a mod is evaluated on.

A ``mask_mod`` or ``score_mod`` (:mod:`annotated.attention.masks`) is written
for one score entry and called with index tensors that *broadcast* to a block
of scores: the whole (..., Tq, Tk) grid for dense attention, or one tile or
band of it for the kernels that never build the full grid. Queries are the
last Tq keys: ``q_idx = (Tk - Tq) + i`` for query row ``i``.

Legend: B batch, H heads, Tq query length, Tk key length.
"""

from __future__ import annotations

import torch


def batch_head_indices(
    lead: tuple, trailing: int, device=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``b`` and ``h`` index tensors for scores whose leading dims are
    ``lead`` (``(B, H)``, ``(H,)`` or ``()``), each followed by ``trailing``
    singleton dims so they broadcast against the (q, k) indices of a grid or a
    tile."""
    ones = (1,) * trailing
    b = torch.zeros((), dtype=torch.long, device=device)
    h = torch.zeros((), dtype=torch.long, device=device)
    if len(lead) >= 1:
        # (H, 1, …)
        h = torch.arange(lead[-1], device=device).view(lead[-1], *ones)
    if len(lead) >= 2:
        # (B, 1, 1, …)
        b = torch.arange(lead[-2], device=device).view(lead[-2], 1, *ones)
    return b, h


def score_grid(
    lead: tuple, t_q: int, t_k: int, device=None
) -> tuple[torch.Tensor, ...]:
    """``(b, h, q_idx, k_idx)`` for the full ``(*lead, Tq, Tk)`` score grid;
    queries are the last Tq keys."""
    b, h = batch_head_indices(lead, 2, device)
    q_idx = torch.arange(t_k - t_q, t_k, device=device)[:, None]  # (Tq, 1)
    k_idx = torch.arange(t_k, device=device)[None, :]  # (1, Tk)
    return b, h, q_idx, k_idx
