"""Checks the kernels share: positive integer settings, and masks that only
drop keys."""

from __future__ import annotations

import torch


def positive_int(name: str, value, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(
            f"{name} must be a positive integer, got {value!r}; {hint}"
        )
    return value


def key_padding(
    mask: torch.Tensor | None, kernel: str
) -> torch.Tensor | None:
    """Return a key-only mask ``(..., Tk)`` or refuse masks that depend on the
    query."""
    if mask is None:
        return None
    if mask.dim() >= 2 and mask.shape[-2] != 1:
        raise ValueError(
            f"{kernel} can only honour key-padding masks of shape (..., 1, Tk) (e.g. masks.padding_mask), "
            f"got mask of shape {tuple(mask.shape)}; use causal= for causality, or use 'full' / 'blockwise' "
            "attention for arbitrary masks"
        )
    return mask[..., 0, :] if mask.dim() >= 2 else mask  # (..., Tk)
