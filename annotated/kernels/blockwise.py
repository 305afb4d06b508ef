"""Block-wise ("flash") attention: exact, one tile of scores at a time (Dao et
al. 2022).

Softmax needs the row max and the row sum over *all* keys, but both can be
updated as key blocks arrive (the online softmax, Milakov & Gimelshein 2018).
For each query block and each key block with scores s:

    m' = max(m, max_j s_j)                      new running max
    l' = e^(m − m') l + Σ_j e^(s_j − m')        running denominator, rescaled
    a' = e^(m − m') a + Σ_j e^(s_j − m') v_j    running numerator, rescaled
    out = a / l                                 after the last block

Masks and score biases arrive as ``mask_mod`` / ``score_mod`` functions and
are evaluated on each tile's indices, so ALiBi or T5 cost a tile, never a (Tq,
Tk) tensor: forward memory is O(T·block) with every encoding. Tensor masks and
biases still work (sliced per tile), but a tensor that does not broadcast is
itself O(T²).

Legend: B batch, H heads, Tq/Tk query/key length, D head dim, Dv value dim,
bq/bk tile sizes.
"""

from __future__ import annotations

import torch

from annotated.attention.attend import prepare_attention
from annotated.attention.grid import batch_head_indices
from annotated.attention.masks import MaskMod, ScoreMod
from annotated.kernels.checks import positive_sizes


def blockwise_attention(
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
    block_size: int = 64,
    query_block_size: int | None = None,
) -> tuple[torch.Tensor, None]:
    """Exact attention by the online softmax, in plain PyTorch; equals
    ``attend``.

    The backward pass is custom, as in the paper: it keeps only ``out`` and
    the log-sum-exp ``m + log l`` per query and recomputes each tile's
    probabilities P = exp(s − lse), then dS = P ∘ (dP − rowsum(dO ∘ O)).
    Gradients reach q, k, v, a float ``bias`` tensor, and the tensors a
    ``score_mod`` closes over (T5's bucket table): the mod is re-run on each
    tile under autograd. Fully masked rows give zeros, like ``attend``.

    Left out: the fused GPU kernel (SRAM tiling is what makes FlashAttention
    *fast*; here the Python loop makes it slow, the point is the memory),
    dropout, double backward. Returns ``(out, None)``.
    """
    positive_sizes(
        "blockwise_attention",
        block_size=block_size,
        query_block_size=query_block_size,
    )
    scale, mask, mask_mod = prepare_attention(
        q, k, v, mask, bias, key_padding_mask, causal, scale, mask_mod
    )
    q_block = block_size if query_block_size is None else query_block_size
    if mask is not None and mask.dim() < 2:
        mask = mask.reshape(*(1,) * (2 - mask.dim()), *mask.shape)
    if bias is not None and bias.dim() < 2:
        bias = bias.reshape(*(1,) * (2 - bias.dim()), *bias.shape)
    mods = (mask_mod, score_mod, causal)  # causal: skip future key blocks
    captured = captured_tensors(score_mod) if score_mod is not None else []
    out = BlockwiseAttentionFunction.apply(
        q, k, v, mask, bias, mods, scale, q_block, block_size, *captured
    )
    return out, None


def _tile(q, k, mask, bias, mask_mod, rows: slice, cols: slice, scale: float):
    """One (query block, key block) tile: raw scores ``(..., bq, bk)`` (+
    bias), its index grid ``(b, h, q_idx, k_idx)`` and what may be attended
    (``None`` = everything)."""
    # (..., bq, bk)
    s = (q[..., rows, :] @ k[..., cols, :].transpose(-2, -1)) * scale
    if bias is not None:
        s = s + bias[..., rows, cols]
    b, h = batch_head_indices(q.shape[:-2], 2, q.device)
    offset = k.shape[-2] - q.shape[-2]  # queries are the last Tq keys
    # (bq, 1)
    q_idx = (
        torch.arange(rows.start, rows.stop, device=q.device)[:, None] + offset
    )
    # (1, bk)
    k_idx = torch.arange(cols.start, cols.stop, device=q.device)[None, :]
    keep = None if mask is None else mask[..., rows, cols]
    if mask_mod is not None:
        tile_keep = mask_mod(b, h, q_idx, k_idx)
        keep = tile_keep if keep is None else keep & tile_keep
    return s, (b, h, q_idx, k_idx), keep


def _key_blocks(rows: slice, t_q: int, t_k: int, block: int, causal: bool):
    """Key-block slices a query block needs; with causal, blocks wholly in the
    future are skipped."""
    stop = min(t_k, rows.stop + t_k - t_q) if causal else t_k
    return [
        slice(s, min(s + block, t_k)) for s in range(0, max(stop, 0), block)
    ]


def _masked(s: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    return s if keep is None else s.masked_fill(~keep, float("-inf"))


class BlockwiseAttentionFunction(torch.autograd.Function):
    """FlashAttention forward (online softmax) and backward (recompute the
    tiles from the log-sum-exp)."""

    @staticmethod
    def forward(
        ctx, q, k, v, mask, bias, mods, scale, q_block, k_block, *captured
    ):
        mask_mod, score_mod, causal = mods
        t_q, t_k = q.shape[-2], k.shape[-2]
        # views, no copies
        mask_x = None if mask is None else mask.expand(*q.shape[:-1], t_k)
        bias_x = None if bias is None else bias.expand(*q.shape[:-1], t_k)
        out = q.new_zeros(*q.shape[:-1], v.shape[-1])  # (..., Tq, Dv)
        # (..., Tq, 1) log Σ exp(scores)
        lse = q.new_full((*q.shape[:-1], 1), float("-inf"))
        for qs in range(0, t_q, q_block):
            rows = slice(qs, min(qs + q_block, t_q))
            # running max
            m = q.new_full((*q.shape[:-2], rows.stop - qs, 1), float("-inf"))
            l = torch.zeros_like(m)  # noqa: E741  running Σ exp(s - m)
            # running Σ exp(s - m) v
            acc = q.new_zeros(*q.shape[:-2], rows.stop - qs, v.shape[-1])
            for cols in _key_blocks(rows, t_q, t_k, k_block, causal):
                s, grid, keep = _tile(
                    q, k, mask_x, bias_x, mask_mod, rows, cols, scale
                )
                # (..., bq, bk)
                s = _masked(
                    s if score_mod is None else score_mod(s, *grid), keep
                )
                m_new = torch.maximum(m, s.amax(-1, keepdim=True))
                # rows with nothing visible yet
                m_safe = m_new.masked_fill(torch.isneginf(m_new), 0.0)
                p = torch.exp(s - m_safe)  # (..., bq, bk)
                # old terms were relative to the old max
                rescale = torch.exp(m - m_safe)
                l = rescale * l + p.sum(-1, keepdim=True)  # noqa: E741
                acc = rescale * acc + p @ v[..., cols, :]
                m = m_new
            # empty rows stay 0
            out[..., rows, :] = acc / torch.where(
                l > 0, l, torch.ones_like(l)
            )
            lse[..., rows, :] = m + torch.log(l)
        ctx.save_for_backward(q, k, v, out, lse, mask_x, bias_x)
        # the very tensors the score_mod reads, so autograd.grad can find them
        ctx.captured = captured
        ctx.setup = (
            mods,
            scale,
            q_block,
            k_block,
            None if bias is None else bias.shape,
        )
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        q, k, v, out, lse, mask_x, bias_x = ctx.saved_tensors
        captured = ctx.captured
        (mask_mod, score_mod, causal), scale, q_block, k_block, bias_shape = (
            ctx.setup
        )
        t_q, t_k = q.shape[-2], k.shape[-2]
        dq, dk, dv = (
            torch.zeros_like(q),
            torch.zeros_like(k),
            torch.zeros_like(v),
        )
        dbias = q.new_zeros(bias_shape) if ctx.needs_input_grad[4] else None
        # tensors a score_mod reads
        learn = [
            i for i, t in enumerate(captured) if ctx.needs_input_grad[9 + i]
        ]
        dcaptured = [
            torch.zeros_like(t) if i in learn else None
            for i, t in enumerate(captured)
        ]
        # (..., Tq, 1) = Σ_j P_ij dP_ij
        delta = (grad_out * out).sum(-1, keepdim=True)
        # empty rows: every P_ij is exp(-inf) = 0 anyway
        lse = lse.masked_fill(torch.isneginf(lse), 0.0)
        for qs in range(0, t_q, q_block):
            rows = slice(qs, min(qs + q_block, t_q))
            for cols in _key_blocks(rows, t_q, t_k, k_block, causal):
                raw, grid, keep = _tile(
                    q, k, mask_x, bias_x, mask_mod, rows, cols, scale
                )
                s = raw
                # re-run the mod under autograd to push dS through it
                if score_mod is not None:
                    with torch.enable_grad():
                        raw = raw.detach().requires_grad_()
                        s = score_mod(raw, *grid)
                # (..., bq, bk) softmax tile
                p = torch.exp(_masked(s.detach(), keep) - lse[..., rows, :])
                dv[..., cols, :] += (
                    p.transpose(-2, -1) @ grad_out[..., rows, :]
                )
                # (..., bq, bk)
                dp = grad_out[..., rows, :] @ v[..., cols, :].transpose(
                    -2, -1
                )
                # softmax backward: dS = P ∘ (dP − rowsum(P ∘ dP))
                ds = p * (dp - delta[..., rows, :])
                if score_mod is not None:
                    grads = torch.autograd.grad(
                        s,
                        [raw, *(captured[i] for i in learn)],
                        ds,
                        allow_unused=True,
                    )
                    ds = grads[0]  # gradient of the raw score q·k/√D (+ bias)
                    for i, g in zip(learn, grads[1:], strict=True):
                        if g is not None:
                            dcaptured[i] += g
                dq[..., rows, :] += (ds @ k[..., cols, :]) * scale
                dk[..., cols, :] += (
                    ds.transpose(-2, -1) @ q[..., rows, :]
                ) * scale
                # sum over the dims the bias was broadcast along
                if dbias is not None:
                    r = rows if bias_shape[-2] != 1 else slice(0, 1)
                    c = cols if bias_shape[-1] != 1 else slice(0, 1)
                    dbias[..., r, c] += ds.sum_to_size(dbias[..., r, c].shape)
        return dq, dk, dv, None, dbias, None, None, None, None, *dcaptured


def captured_tensors(fn) -> list[torch.Tensor]:
    """The tensors that require grad among those a function closes over
    (searching the closures of functions it closes over too): how a learned
    ``score_mod`` (T5's table) gets gradients."""
    found, stack, seen = [], [fn], set()
    while stack:
        f = stack.pop()
        if id(f) in seen:
            continue
        seen.add(id(f))
        for cell in getattr(f, "__closure__", None) or ():
            value = cell.cell_contents
            values = value if isinstance(value, list | tuple) else [value]
            for x in values:
                if isinstance(x, torch.Tensor):
                    if x.requires_grad and all(x is not t for t in found):
                        found.append(x)
                elif callable(x):
                    stack.append(x)
    return found
