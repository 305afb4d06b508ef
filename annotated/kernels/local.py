"""Sliding-window attention in chunks (Beltagy et al. 2020, Longformer):
O(T·w) memory.

Query i reads the keys of :func:`annotated.attention.masks.sliding_window` —
the same predicate the dense mask is made of — but only the keys near it are
ever gathered: queries are cut into chunks of C (default C = w), and a chunk
needs just the C + w − 1 keys (C + 2w − 2 if not causal) around it, its
*span*. Scores are (..., N, C, L) ≈ T·(C + 2w), never T × T, and every
``mask_mod`` and ``score_mod`` (ALiBi, T5) is evaluated on the span's indices.

Legend: B batch, H heads, Tq/Tk query/key length, D head dim, Dv value dim, N
chunks, C chunk length, L keys in a span, G global tokens.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from annotated.attention.attend import (
    attend,
    masked_softmax,
    prepare_attention,
)
from annotated.attention.grid import batch_head_indices
from annotated.attention.masks import (
    MaskMod,
    ScoreMod,
    and_masks,
    global_tokens,
    or_masks,
    sliding_window,
)
from annotated.kernels.checks import key_padding, positive_sizes


def local_attention(
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
    window: int,
    global_positions=None,
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, None]:
    """Attention restricted to :func:`local_window`, ANDed with ``mask_mod``;
    equals :func:`local_attention_quadratic`.

    ``global_positions`` adds Longformer's global tokens: they become G extra
    score columns, and their own rows read every key, so memory is
    O(T·(w + G)); with ``causal=True`` causality still holds. A mask
    *tensor* may only drop keys: ``key_padding_mask`` (B, Tk), or a
    ``mask`` of shape ``(..., 1, Tk)``; a bias tensor is read at the band's
    entries only, but is itself O(T²) unless it broadcasts: prefer a
    ``score_mod``.
    Left out: dilated windows, the custom CUDA kernel of the paper. Returns
    ``(out, None)``.
    """
    positive_sizes("local_attention", window=window, chunk_size=chunk_size)
    scale, mask, mask_mod = prepare_attention(
        q, k, v, mask, bias, key_padding_mask, causal, scale, mask_mod
    )
    key_keep = key_padding(mask, "local_attention")  # (..., Tk) or None
    t_q, t_k, dev = q.shape[-2], k.shape[-2], q.device
    # a view, read at the scored entries only
    bias_x = None if bias is None else bias.expand(*q.shape[:-1], t_k)

    def scored(q_part, k_part, q_idx, k_idx, keep_mod):
        """Scores of ``q_part`` against ``k_part``, the queries and keys at
        positions ``q_idx`` and ``k_idx`` (index tensors that broadcast), and
        which of them ``keep_mod`` and the key padding let through."""
        b, h = batch_head_indices(q.shape[:-2], q_idx.dim(), dev)
        s = (q_part @ k_part.transpose(-2, -1)) * scale
        if bias_x is not None:
            s = s + bias_x[..., q_idx - (t_k - t_q), k_idx]
        if score_mod is not None:
            s = score_mod(s, b, h, q_idx, k_idx)
        keep = torch.ones((), dtype=torch.bool, device=dev)
        if keep_mod is not None:
            keep = keep_mod(b, h, q_idx, k_idx)
        if key_keep is not None:
            keep = keep & key_keep[..., k_idx]
        return s, keep

    chunk = window if chunk_size is None else chunk_size
    n = math.ceil(t_q / chunk)
    span = chunk + window - 1 if causal else chunk + 2 * window - 2
    # (..., N, C, D)
    q_chunks = F.pad(q, (0, 0, 0, n * chunk - t_q)).unflatten(-2, (n, chunk))
    # (N, C, 1) query positions; pad rows repeat the last one
    rows = torch.arange(n * chunk, device=dev).view(n, chunk, 1)
    q_idx = rows.clamp(max=t_q - 1) + (t_k - t_q)
    # (N, 1, L) keys of each span
    k_idx = q_idx[:, :1, :].mT - (window - 1) + torch.arange(span, device=dev)
    in_range = (k_idx >= 0) & (k_idx < t_k)
    k_idx = k_idx.clamp(0, t_k - 1)  # in-range stand-ins for the others
    gather = k_idx[:, 0, :]  # (N, L)
    band = and_masks(sliding_window(window, causal=causal), mask_mod)
    # (..., N, C, L)
    scores, keep = scored(q_chunks, k[..., gather, :], q_idx, k_idx, band)
    keep = keep & in_range
    v_spans = v[..., gather, :]  # (..., N, L, Dv)
    g = torch.as_tensor(
        [] if global_positions is None else global_positions,
        dtype=torch.long,
        device=dev,
    ).unique()
    if g.numel() == 0:
        out = masked_softmax(scores, keep) @ v_spans  # (..., N, C, Dv)
        return out.flatten(-3, -2)[..., :t_q, :], None

    if t_q != t_k:
        raise ValueError(
            "global tokens need as many queries as keys (one sequence), "
            f"got Tq={t_q}, Tk={t_k}"
        )
    if g.min() < 0 or g.max() >= t_k:
        raise ValueError(
            f"global_positions must lie in [0, {t_k}), got {g.tolist()}"
        )
    # a global key is read through its own column, once
    keep = keep & ~torch.isin(k_idx, g)
    # Global keys: G extra columns for every query. (..., N, C, G)
    g_scores, g_keep = scored(
        q_chunks, k[..., None, g, :], q_idx, g.view(1, 1, -1), mask_mod
    )
    lead = torch.broadcast_shapes(scores.shape[:-1], g_scores.shape[:-1])
    weights = masked_softmax(
        torch.cat(
            [scores.expand(*lead, span), g_scores.expand(*lead, g.numel())],
            dim=-1,
        ),
        torch.cat(
            [keep.expand(*lead, span), g_keep.expand(*lead, g.numel())],
            dim=-1,
        ),
    )  # (..., N, C, L + G)
    # (..., N, C, Dv)
    out = (
        weights[..., :span] @ v_spans
        + weights[..., span:] @ v[..., None, g, :]
    )
    out = out.flatten(-3, -2)[..., :t_q, :]  # (..., Tq, Dv)
    # Global queries: G full rows, each reading every key (O(G·T), not T × T).
    all_keys = torch.arange(t_k, device=dev)[None, :]  # (1, Tk)
    # (..., G, Tk)
    row_scores, row_keep = scored(
        q[..., g, :], k, g[:, None], all_keys, mask_mod
    )
    g_out = masked_softmax(row_scores, row_keep) @ v  # (..., G, Dv)
    return out.index_copy(-2, g, g_out), None


def local_window(
    window: int, *, causal: bool = False, global_positions=None
) -> MaskMod:
    """The keys local attention reads: the sliding window, OR'd with the
    global tokens when there are any."""
    band = sliding_window(window, causal=causal)
    if global_positions is not None and len(global_positions):
        band = or_masks(band, global_tokens(global_positions))
    return band


def local_attention_quadratic(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    *,
    key_padding_mask: torch.Tensor | None = None,
    causal: bool = False,
    mask_mod: MaskMod | None = None,
    window: int,
    global_positions=None,
    **hooks,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Local attention the O(T²) way, with its weights: ``attend`` under
    :func:`local_window` ANDed with ``mask_mod``; ``hooks`` (``scale``,
    ``score_mod``) go to ``attend``. For plots and tests."""
    band = local_window(
        window, causal=causal, global_positions=global_positions
    )
    return attend(
        q,
        k,
        v,
        mask,
        bias,
        key_padding_mask=key_padding_mask,
        causal=causal,
        mask_mod=and_masks(band, mask_mod),
        **hooks,
    )
