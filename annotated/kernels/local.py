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

from annotated.attention.attend import check_qkv
from annotated.attention.masks import (
    MaskMod,
    ScoreMod,
    and_masks,
    batch_head_indices,
    sliding_window,
)
from annotated.attention.masks import causal as causal_mod
from annotated.kernels.checks import key_padding, positive_int


def local_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    window: int,
    mask: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    *,
    causal: bool = True,
    scale: float | None = None,
    mask_mod: MaskMod | None = None,
    score_mod: ScoreMod | None = None,
    global_positions=None,
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, None]:
    """Attention restricted to ``sliding_window(window, causal=causal)``,
    ANDed with ``mask_mod``.

    Equals ``attend(q, k, v, mask_mod=and_masks(sliding_window(w), mask_mod), score_mod=...)``.
    ``global_positions`` adds Longformer's global tokens (``or_masks`` with
    :func:`annotated.attention.masks.global_tokens`): they become G extra score columns, and their own
    rows read every key, so memory is O(T·(w + G)); with ``causal=True`` causality still holds.
    A mask *tensor* may only drop keys (``(..., 1, Tk)``, e.g. ``masks.padding_mask``); a bias
    tensor is read at the band's entries only, but is itself O(T²) unless it broadcasts: prefer
    a ``score_mod``.
    Left out: dilated windows, the custom CUDA kernel of the paper. Returns ``(out, None)``.
    """
    check_qkv(q, k, v, mask, bias)
    window = positive_int(
        "window",
        window,
        "pass the number of keys each query may see, e.g. window=128",
    )
    chunk = (
        window
        if chunk_size is None
        else positive_int(
            "chunk_size", chunk_size, "or leave it None (= window)"
        )
    )
    key_keep = key_padding(mask, "local_attention")  # (..., Tk) or None
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    t_q, t_k, dev = q.shape[-2], k.shape[-2], q.device
    n = math.ceil(t_q / chunk)
    span = chunk + window - 1 if causal else chunk + 2 * window - 2
    # (..., N, C, D)
    q_chunks = F.pad(q, (0, 0, 0, n * chunk - t_q)).unflatten(-2, (n, chunk))
    # (N, C, 1); pad rows repeat
    rows = (
        torch.arange(n * chunk, device=dev)
        .view(n, chunk, 1)
        .clamp(max=t_q - 1)
    )
    q_idx = rows + (t_k - t_q)  # (N, C, 1) query positions
    # (N, 1, L) keys of each span
    k_idx = q_idx[:, :1, :].mT - (window - 1) + torch.arange(span, device=dev)
    # (N, L) in-range stand-ins for the keys outside [0, Tk)
    gather = k_idx[:, 0, :].clamp(0, t_k - 1)
    b, h = batch_head_indices(q.shape[:-2], 3, dev)
    band = and_masks(sliding_window(window, causal=causal), mask_mod)
    # (..., N, C, L)
    keep = band(b, h, q_idx, k_idx) & (k_idx >= 0) & (k_idx < t_k)
    if key_keep is not None:
        keep = keep & key_keep[..., gather][..., None, :]  # (..., N, C, L)
    # (..., N, C, L)
    scores = (q_chunks @ k[..., gather, :].transpose(-2, -1)) * scale
    # a view: read at the band only
    bias_x = None if bias is None else bias.expand(*q.shape[:-2], t_q, t_k)
    if bias_x is not None:
        scores = scores + bias_x[..., rows, k_idx.clamp(0, t_k - 1)]
    if score_mod is not None:
        scores = score_mod(scores, b, h, q_idx, k_idx.clamp(0, t_k - 1))
    v_spans = v[..., gather, :]  # (..., N, L, Dv)
    g = (
        None
        if global_positions is None
        else torch.as_tensor(
            global_positions, dtype=torch.long, device=dev
        ).unique()
    )
    if g is None or g.numel() == 0:
        out = _masked_softmax(scores, keep) @ v_spans  # (..., N, C, Dv)
        return out.flatten(-3, -2)[..., :t_q, :], None

    if t_q != t_k:
        raise ValueError(
            f"global tokens need as many queries as keys (one sequence), got Tq={t_q}, Tk={t_k}"
        )
    if g.min() < 0 or g.max() >= t_k:
        raise ValueError(
            f"global_positions must lie in [0, {t_k}), got {g.tolist()}"
        )
    # a global key is read through its own column, once
    keep = keep & ~torch.isin(k_idx, g)
    # Global keys: G extra columns for every query.
    g_idx = g.view(1, 1, -1)  # (1, 1, G)
    g_keep = and_masks(causal_mod if causal else None, mask_mod)
    g_keep = (
        torch.ones((), dtype=torch.bool, device=dev)
        if g_keep is None
        else g_keep(b, h, q_idx, g_idx)
    )
    if key_keep is not None:
        # (..., N, C, G)
        g_keep = g_keep & key_keep[..., g][..., None, None, :]
    # (..., N, C, G)
    g_scores = (q_chunks @ k[..., None, g, :].transpose(-2, -1)) * scale
    if bias_x is not None:
        g_scores = g_scores + bias_x[..., rows, g_idx]
    if score_mod is not None:
        g_scores = score_mod(g_scores, b, h, q_idx, g_idx)
    # (..., N, C)
    lead = torch.broadcast_shapes(
        keep.shape[:-1], g_keep.shape[:-1], g_scores.shape[:-1]
    )
    weights = _masked_softmax(
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
    b, h = batch_head_indices(q.shape[:-2], 2, dev)
    # (G, 1), (1, Tk)
    row_q, row_k = g[:, None], torch.arange(t_k, device=dev)[None, :]
    row_scores = (q[..., g, :] @ k.transpose(-2, -1)) * scale  # (..., G, Tk)
    if bias_x is not None:
        row_scores = row_scores + bias_x[..., g, :]
    if score_mod is not None:
        row_scores = score_mod(row_scores, b, h, row_q, row_k)
    row_mod = and_masks(causal_mod if causal else None, mask_mod)
    row_keep = (
        torch.ones((), dtype=torch.bool, device=dev)
        if row_mod is None
        else row_mod(b, h, row_q, row_k)
    )
    if key_keep is not None:
        row_keep = row_keep & key_keep[..., None, :]
    # (..., G, Dv)
    g_out = _masked_softmax(row_scores, row_keep.expand_as(row_scores)) @ v
    return out.index_copy(-2, g, g_out), None


def _masked_softmax(scores: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim where ``keep``; rows with nothing kept give
    zeros (like attend)."""
    scores = scores.masked_fill(~keep, float("-inf"))
    empty = torch.isneginf(scores).all(dim=-1, keepdim=True)
    return torch.softmax(scores.masked_fill(empty, 0.0), dim=-1).masked_fill(
        empty, 0.0
    )
