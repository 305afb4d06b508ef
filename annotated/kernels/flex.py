"""PyTorch's FlexAttention on CUDA: the same ``mask_mod`` / ``score_mod``
compiled into one kernel.

``torch.nn.attention.flex_attention`` (PyTorch ≥ 2.5) takes exactly this
library's hooks and generates a fused, tiled kernel from them (see
pytorch-labs/attention-gym); a ``BlockMask`` built from the ``mask_mod`` lets
it skip tiles that are wholly masked. It runs on CUDA here; on a CPU use
``blockwise``, which evaluates the same mods tile by tile in Python.

FlexAttention numbers queries ``0 … Tq-1``; this library numbers them as the
last Tq keys, so the mods are called with ``q_idx + (Tk - Tq)``. Tensor masks
and biases are read by index inside the mods. Returns ``(out, None)``.
"""

from __future__ import annotations

import importlib.util

import torch

from annotated.attention.attend import prepare_attention
from annotated.attention.masks import MaskMod, ScoreMod, and_masks


def flex_available(device) -> bool:
    """True on a CUDA device with a PyTorch that ships
    ``torch.nn.attention.flex_attention``."""
    if torch.device(device).type != "cuda" or not torch.cuda.is_available():
        return False
    return (
        importlib.util.find_spec("torch.nn.attention.flex_attention")
        is not None
    )


def flex_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    *,
    key_padding_mask: torch.Tensor | None = None,
    causal: bool = False,
    scale: float | None = None,
    mask_mod: MaskMod | None = None,
    score_mod: ScoreMod | None = None,
) -> tuple[torch.Tensor, None]:
    """``attend``'s meaning through FlexAttention; q, k, v are
    ``(B, H, T, D)``."""
    scale, mask, mask_mod = prepare_attention(
        q, k, v, mask, bias, key_padding_mask, causal, scale, mask_mod
    )
    if not flex_available(q.device):
        raise ValueError(
            "the 'flex' kernel needs a CUDA device and "
            "torch.nn.attention.flex_attention, got device "
            f"{q.device}; on a CPU use 'blockwise' (the same mods, tile by "
            "tile)"
        )
    from torch.nn.attention.flex_attention import create_block_mask
    from torch.nn.attention.flex_attention import flex_attention as _flex

    if q.dim() != 4:
        raise ValueError(
            "flex_attention needs q, k, v of shape (B, H, T, D), "
            f"got q {tuple(q.shape)}"
        )
    (n_b, n_h, t_q, _), t_k = q.shape, k.shape[-2]
    offset = t_k - t_q
    if mask is not None:  # the tensor, read by index inside a mask_mod
        mask_x = mask.expand(n_b, n_h, t_q, t_k)
        mask_mod = and_masks(
            mask_mod, lambda b, h, qi, ki: mask_x[b, h, qi - offset, ki]
        )
    if bias is not None:
        bias_x, inner = bias.expand(n_b, n_h, t_q, t_k), score_mod

        def score_mod(s, b, h, qi, ki):
            s = s + bias_x[b, h, qi - offset, ki]
            return s if inner is None else inner(s, b, h, qi, ki)

    block_mask = None
    if mask_mod is not None:
        block_mask = create_block_mask(
            lambda b, h, qi, ki: mask_mod(b, h, qi + offset, ki),
            n_b,
            n_h,
            t_q,
            t_k,
            device=q.device,
        )
    shifted = (
        None
        if score_mod is None
        else (lambda s, b, h, qi, ki: score_mod(s, b, h, qi + offset, ki))
    )
    out = _flex(
        q, k, v, score_mod=shifted, block_mask=block_mask, scale=scale
    )
    return out, None
