"""Checks the kernels share: positive integer settings, and masks that only
drop keys."""

from __future__ import annotations

import torch


def positive_sizes(owner: str, **sizes) -> None:
    """Each size that is given (not ``None``) must be a positive integer.

    ``owner`` names what the sizes belong to in the message, e.g.
    ``"local_attention"`` or ``"attention kernel 'local'"``.
    """
    for name, value in sizes.items():
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value <= 0
        ):
            raise ValueError(
                f"{name} of {owner} must be a positive integer, got {value!r}"
            )


def key_padding(
    mask: torch.Tensor | None, kernel: str
) -> torch.Tensor | None:
    """Return a key-only mask ``(..., Tk)`` or refuse masks that depend on the
    query."""
    if mask is None:
        return None
    if mask.dim() >= 2 and mask.shape[-2] != 1:
        raise ValueError(
            f"{kernel} can only honour key-padding masks "
            "(key_padding_mask= (B, Tk), or a mask of shape (..., 1, Tk)), "
            "got mask of shape "
            f"{tuple(mask.shape)}; use causal= for causality, or 'full' / "
            "'blockwise' attention for arbitrary masks"
        )
    return mask[..., 0, :] if mask.dim() >= 2 else mask  # (..., Tk)
