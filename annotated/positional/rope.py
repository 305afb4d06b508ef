"""Rotary position embedding (Su et al. 2021): positions rotate q and k inside
attention.

Legend: B batch, H heads, T time, D head dim.
"""

from __future__ import annotations

import torch

from annotated.positional.base import PositionalEncoding


def apply_rope(
    x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0
) -> torch.Tensor:
    """Rotary position embedding (Su et al. 2021, "RoFormer", eq. 34).

    Dims are taken in adjacent pairs ``(x[2i], x[2i+1])`` and pair ``i`` at
    position ``m`` is rotated by the angle ``m θ_i`` with
    ``θ_i = base^(-2i/D)``. Rotations preserve norms, and
    ``<R(mθ) q, R(nθ) k> = <q, R((n-m)θ) k>`` depends on positions only
    through ``n - m``. (HF's Llama pairs dim ``i`` with ``i + D/2`` instead:
    the same thing with permuted dims.)

    Args:
        x: ``(..., T, D)`` with D even, e.g. ``(B, H, T, D)``.
        positions: ``(T,)``, or ``(B, T)`` when x is ``(B, H, T, D)``.
    """
    d = x.shape[-1]
    RotaryEncoding.check_head_dim(d)
    # float32 at least, float64 when given
    dtype = torch.promote_types(x.dtype, torch.float32)
    # (D/2,)
    theta = base ** (-torch.arange(0, d, 2, device=x.device, dtype=dtype) / d)
    # (..., T, D/2)
    angles = positions.to(device=x.device, dtype=dtype)[..., None] * theta
    if positions.dim() == 2 and x.dim() == 4:
        # (B, 1, T, D/2): same positions for every head
        angles = angles[:, None]
    cos, sin = angles.cos(), angles.sin()
    # each (..., T, D/2)
    x1, x2 = x.to(dtype).unflatten(-1, (d // 2, 2)).unbind(-1)
    # (..., T, D/2, 2)
    rotated = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return rotated.flatten(-2).to(x.dtype)  # (..., T, D)


class RotaryEncoding(PositionalEncoding):
    """RoPE (Su et al. 2021): rotate q and k by their positions inside every
    attention layer.

    No parameters. ``head_dim`` is optional and only used to fail early on an
    odd head dim.
    """

    where = "qk"
    even_head_dim = True

    def __init__(self, head_dim: int | None = None, base: float = 10000.0):
        super().__init__()
        if head_dim is not None:
            self.check_head_dim(head_dim)
        self.head_dim, self.base = head_dim, base

    def rotate_qk(self, q, k, q_pos, k_pos):
        # (B, H, Tq, D), (B, H, Tk, D)
        return apply_rope(q, q_pos, self.base), apply_rope(
            k, k_pos, self.base
        )

    @classmethod
    def build(cls, *, d_model, n_heads, max_len, causal=True, **kwargs):
        return cls(d_model // n_heads, **kwargs)
