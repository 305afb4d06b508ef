"""The fast path: PyTorch's fused ``F.scaled_dot_product_attention`` (SDPA),
with ``attend``'s meaning.

SDPA takes one mask tensor, so the mods are evaluated once over the whole
(Tq, Tk) grid — the ``mask_mod`` by ``attend``'s
:func:`~annotated.attention.attend.visible_keys`, the ``score_mod`` on a
score of 0 — and folded into one float mask: the bias where a key is
visible, −inf where it is not. That assumes the ``score_mod`` *adds* to the
score (ALiBi and T5 do). A mod that also multiplies each query's row by a
factor f says so with its ``row_factor``
(:func:`~annotated.attention.scaled_scores.scale_scores`): then q is
multiplied by f and the mod is evaluated on the bias (or 0), since
f·(q·k·scale + bias + b) = (f·q)·k·scale + f·(bias + b). Any other mod
that rescales scores needs ``attend`` or the block-wise kernel. SDPA returns
no weights; tests check it equals ``attend``.

Legend: B batch, H heads, Hkv k/v heads, Tq/Tk query/key length, D head dim.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from annotated.attention.attend import prepare_attention, visible_keys
from annotated.attention.grid import score_grid
from annotated.attention.masks import MaskMod, ScoreMod


def sdpa_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    *,
    key_padding_mask: torch.Tensor | None = None,
    causal: bool = False,
    scale: float | None = None,
    dropout_p: float = 0.0,
    mask_mod: MaskMod | None = None,
    score_mod: ScoreMod | None = None,
) -> tuple[torch.Tensor, None]:
    """``attend`` through SDPA: q ``(..., H, Tq, D)``, k and v
    ``(..., Hkv, Tk, D)`` with Hkv dividing H (grouped-query attention: query
    head h reads k/v head h // (H / Hkv)). Returns ``(out, None)``."""
    t_q, t_k = q.shape[-2], k.shape[-2]
    # SDPA's is_causal takes no attn_mask and aligns queries to the *first*
    # keys: use it only with no other mask or bias, and Tq = Tk.
    plain = all(
        x is None for x in (mask, bias, key_padding_mask, mask_mod, score_mod)
    )
    sdpa_causal = causal and plain and t_q == t_k
    causal = causal and not sdpa_causal  # else a mask_mod like any other
    # the last True: k and v may have fewer heads than q (GQA)
    scale, mask, mask_mod = prepare_attention(
        q, k, v, mask, bias, key_padding_mask, causal, scale, mask_mod, True
    )
    rows = getattr(score_mod, "row_factor", None)
    if score_mod is not None and rows is not None:  # f · (whole score)
        grid = score_grid(q.shape[:-2], t_q, t_k, q.device)
        zero = torch.zeros((), dtype=q.dtype, device=q.device)
        bias = score_mod(zero if bias is None else bias.to(q.dtype), *grid)
        q = q * rows(*grid[:3], q.dtype)  # f (..., Tq, 1)
    elif score_mod is not None:  # materialised once: (..., Tq, Tk)
        grid = score_grid(q.shape[:-2], t_q, t_k, q.device)
        zero = torch.zeros((), dtype=q.dtype, device=q.device)
        extra = score_mod(zero, *grid)
        bias = extra if bias is None else bias + extra
    mask = visible_keys(mask, mask_mod, (*q.shape[:-1], t_k), q.device)
    attn_mask = mask  # boolean, True = may attend (SDPA's meaning too)
    # one float mask: the bias where allowed, -inf where masked
    if bias is not None:
        bias = bias.to(q.dtype)
        attn_mask = (
            bias if mask is None else torch.where(mask, bias, float("-inf"))
        )
    groups = q.shape[-3] // k.shape[-3]
    gqa = {}
    if groups > 1:
        if _sdpa_supports_gqa():
            gqa = {"enable_gqa": True}
        else:
            k, v = (
                k.repeat_interleave(groups, dim=-3),
                v.repeat_interleave(groups, dim=-3),
            )
    out = F.scaled_dot_product_attention(
        q,
        k,
        v,
        attn_mask=attn_mask,
        dropout_p=dropout_p,
        is_causal=sdpa_causal,
        scale=scale,
        **gqa,
    )  # (..., H, Tq, D)
    if attn_mask is not None and not _sdpa_zeroes_empty_rows():
        hidden = ~mask if bias is None else torch.isneginf(attn_mask)
        # rows with no visible key -> 0
        out = out.masked_fill(hidden.all(dim=-1, keepdim=True), 0.0)
    return out, None


@functools.cache
def _sdpa_supports_gqa() -> bool:
    """``enable_gqa`` appeared in PyTorch 2.5; probe once instead of parsing
    versions."""
    try:
        x = torch.zeros(1, 2, 1, 2)
        F.scaled_dot_product_attention(x, x[:, :1], x[:, :1], enable_gqa=True)
        return True
    except (TypeError, RuntimeError):
        return False


@functools.cache
def _sdpa_zeroes_empty_rows() -> bool:
    """Recent PyTorch returns zeros for a query with every key masked; older
    versions gave NaN."""
    x = torch.ones(1, 1, 1, 2)
    out = F.scaled_dot_product_attention(
        x, x, x, attn_mask=torch.zeros(1, 1, 1, 1, dtype=torch.bool)
    )
    return bool((out == 0).all())
