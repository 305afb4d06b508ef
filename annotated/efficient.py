"""Efficient attention kernels: linear, local, top-k sparse and block-wise ("flash").

Dense attention (:func:`~annotated.attention.attend`) builds the whole ``Tq × Tk`` score
matrix, so its time and memory grow as O(T²). Each kernel here dodges that wall in a
different way, and each keeps the call shape of ``attend``::

    kernel(q, k, v, mask=None, bias=None, *, causal=False, scale=None, **params) -> (out, weights | None)

``weights`` is ``None`` when a kernel never materialises the full weight matrix.
Kernels work on any leading dims; grouped-query attention (GQA/MQA) is handled by the
caller repeating k and v to H heads first (``k.repeat_interleave(H // H_kv, dim=1)``).

| kernel | idea | exact? | memory |
|---|---|---|---|
| :func:`linear_attention` | softmax → kernel feature map, reorder the products | no (another model) | O(T) |
| :func:`local_attention` | keep only a band of width ``window`` | exact under its window mask | O(T·w) |
| :func:`topk_attention` | keep each query's ``top_k`` scores | no (k = Tk is exact) | O(T²) |
| :func:`blockwise_attention` | online softmax over key blocks | yes | O(T·block) |

:data:`ATTENTION_KERNELS` lists them with flags (exact, bias, masks) so a config can
refuse combinations a kernel cannot honour.

Legend: B batch, H heads, T time, Tq query length, Tk key length, D head dim, Dv value dim,
N number of chunks/blocks, C chunk length, L keys in a local span, G global tokens.
Masks follow :mod:`annotated.masks`: boolean, ``True`` = may attend.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from annotated.attention import attend, check_qkv
from annotated.masks import causal_mask, combine_masks


def _positive_int(name: str, value, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}; {hint}")
    return value


def _key_padding(mask: torch.Tensor | None, kernel: str) -> torch.Tensor | None:
    """Return a key-only mask ``(..., Tk)`` or refuse masks that depend on the query."""
    if mask is None:
        return None
    if mask.dim() >= 2 and mask.shape[-2] != 1:
        raise ValueError(
            f"{kernel} can only honour key-padding masks of shape (..., 1, Tk) (e.g. masks.padding_mask), "
            f"got mask of shape {tuple(mask.shape)}; use causal= for causality, or use 'full' / 'blockwise' "
            "attention for arbitrary masks"
        )
    return mask[..., 0, :] if mask.dim() >= 2 else mask  # (..., Tk)


def _masked_softmax(scores: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim of ``scores`` where ``keep``; rows with nothing kept give zeros (like attend)."""
    scores = scores.masked_fill(~keep, float("-inf"))
    empty = torch.isneginf(scores).all(dim=-1, keepdim=True)
    return torch.softmax(scores.masked_fill(empty, 0.0), dim=-1).masked_fill(empty, 0.0)


# ----------------------------------------------------------------------------- linear


def elu_feature_map(x: torch.Tensor) -> torch.Tensor:
    """φ(x) = elu(x) + 1 (Katharopoulos et al. 2020): positive, so φ(q)·φ(k) can replace exp(q·k)."""
    return F.elu(x) + 1.0


def _refuse_bias(bias, kernel: str, why: str) -> None:
    if bias is not None:
        raise ValueError(
            f"{kernel} cannot take a score bias (ALiBi, T5 relative bias): {why}. "
            "Use 'full' or 'blockwise' attention, or a positional encoding that acts on q/k (RoPE) or the embeddings"
        )


def linear_attention_quadratic(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    *,
    causal: bool = False,
    scale: float | None = None,
    feature_map: Callable[[torch.Tensor], torch.Tensor] = elu_feature_map,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear attention's model written the slow way, with its explicit ``Tq × Tk`` weights.

        A_ij = φ(q_i)·φ(k_j) / Σ_j' φ(q_i)·φ(k_j')      out_i = Σ_j A_ij v_j

    Same numbers as :func:`linear_attention` (tests check it) but O(T²); it exists to teach
    and to test. Any boolean mask is honoured here (masked terms are dropped from both
    sums); a score bias is refused. ``scale`` (default 1, as in the paper) multiplies q
    before the feature map.
    """
    check_qkv(q, k, v, mask, bias)
    _refuse_bias(bias, "linear attention", "it never forms q·k scores to add a bias to")
    phi_q, phi_k = feature_map(q * (1.0 if scale is None else scale)), feature_map(k)
    sim = phi_q @ phi_k.transpose(-2, -1)  # (..., Tq, Tk), all > 0
    if causal:
        mask = combine_masks(mask, causal_mask(q.shape[-2], k.shape[-2], device=q.device))
    if mask is not None:
        sim = sim.masked_fill(~mask, 0.0)
    norm = sim.sum(-1, keepdim=True)  # (..., Tq, 1); 0 only when every key is masked
    weights = sim / torch.where(norm > 0, norm, torch.ones_like(norm))
    return weights @ v, weights


def linear_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    *,
    causal: bool = False,
    scale: float | None = None,
    chunk_size: int = 64,
    feature_map: Callable[[torch.Tensor], torch.Tensor] = elu_feature_map,
) -> tuple[torch.Tensor, None]:
    """Linear attention (Katharopoulos et al. 2020, "Transformers are RNNs").

    Replace exp(q·k) by a kernel φ(q)·φ(k) and the products can be reordered:

        out_i = φ(q_i)ᵀ S / φ(q_i)ᵀ z,   S = Σ_j φ(k_j) v_jᵀ  (D × Dv),   z = Σ_j φ(k_j)  (D)

    Non-causal: S and z are summed once, O(T·D·Dv) time, and no T×T matrix exists.
    Causal: S and z become prefix sums S_i = Σ_{j≤i} φ(k_j) v_jᵀ (the RNN view). Keeping
    all T prefix states costs O(T·D·Dv) memory, so we use the **chunked** form: split time
    into chunks of ``chunk_size`` C, keep one prefix state per chunk (O(T·D·Dv / C)) and do
    the C × C triangle inside each chunk exactly (O(T·C)). ``chunk_size=1`` is the plain
    prefix-sum form. The result equals :func:`linear_attention_quadratic`.

    Left out: other feature maps (pass ``feature_map``), random features (Performer),
    the recurrent one-token-at-a-time decoding API. ``scale`` (default 1, as in the paper)
    multiplies q before φ. Only key-padding masks ``(..., 1, Tk)`` can be honoured (masked
    keys drop out of S and z); a query-dependent mask or a score bias raises ValueError.
    With ``causal=True`` the queries are the last Tq positions, as in ``attend``.
    Returns ``(out, None)``: the weights are never formed.
    """
    check_qkv(q, k, v, mask, bias)
    _refuse_bias(bias, "linear attention", "it never forms q·k scores to add a bias to")
    chunk_size = _positive_int("chunk_size", chunk_size, "pass e.g. chunk_size=64 (1 = plain prefix sums)")
    key_keep = _key_padding(mask, "linear attention")
    phi_q, phi_k = feature_map(q * (1.0 if scale is None else scale)), feature_map(k)  # (..., Tq, D), (..., Tk, D)
    if key_keep is not None:
        phi_k = phi_k * key_keep[..., None].to(phi_k.dtype)  # masked keys add nothing to S or z
    if not causal:
        kv = phi_k.transpose(-2, -1) @ v  # (..., D, Dv)
        num = phi_q @ kv  # (..., Tq, Dv)
        den = phi_q @ phi_k.sum(-2)[..., None]  # (..., Tq, 1)
        return num / torch.where(den > 0, den, torch.ones_like(den)), None

    t_q, t_k = q.shape[-2], k.shape[-2]
    if t_q < t_k:  # queries are the last Tq positions: pad dummy queries in front, drop them at the end
        phi_q = F.pad(phi_q, (0, 0, t_k - t_q, 0))
    elif t_q > t_k:  # the first Tq - Tk queries see no key: pad keys with φ = 0
        phi_k, v = F.pad(phi_k, (0, 0, t_q - t_k, 0)), F.pad(v, (0, 0, t_q - t_k, 0))
    t = phi_q.shape[-2]
    n = math.ceil(t / chunk_size)
    pad = n * chunk_size - t  # trailing pad: φ(k) = 0 there, so it changes nothing
    phi_q, phi_k, v = (F.pad(x, (0, 0, 0, pad)).unflatten(-2, (n, chunk_size)) for x in (phi_q, phi_k, v))
    # phi_q, phi_k: (..., N, C, D); v: (..., N, C, Dv)
    kv_chunk = phi_k.transpose(-2, -1) @ v  # (..., N, D, Dv)   Σ_{j in chunk} φ(k_j) v_jᵀ
    kv_before = torch.cumsum(kv_chunk, dim=-3) - kv_chunk  # (..., N, D, Dv) state from earlier chunks
    z_chunk = phi_k.sum(-2)  # (..., N, D)
    z_before = torch.cumsum(z_chunk, dim=-2) - z_chunk  # (..., N, D)
    tri = torch.ones(chunk_size, chunk_size, dtype=torch.bool, device=q.device).tril()  # (C, C)
    sim = (phi_q @ phi_k.transpose(-2, -1)).masked_fill(~tri, 0.0)  # (..., N, C, C) causal inside the chunk
    num = phi_q @ kv_before + sim @ v  # (..., N, C, Dv)
    den = phi_q @ z_before[..., None] + sim.sum(-1, keepdim=True)  # (..., N, C, 1)
    out = (num / torch.where(den > 0, den, torch.ones_like(den))).flatten(-3, -2)  # (..., N·C, Dv)
    return out[..., t - t_q : t, :], None


# ----------------------------------------------------------------------------- local


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
    global_positions=None,
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, None]:
    """Sliding-window attention in chunks (Beltagy et al. 2020, Longformer), O(T·w) memory.

    Query i sees keys with 0 ≤ i − j < w (causal) or |i − j| < w (not causal), exactly as
    :func:`~annotated.masks.sliding_window_mask`. Queries are cut into chunks of C
    (default C = w); a chunk needs only the C + w − 1 keys (C + 2w − 2 if not causal)
    around it, gathered into a span, so the scores are (..., N, C, L) ≈ T·(C + 2w), never
    T × T. Softmax runs over each span, masked to the band.

    ``global_positions`` adds Longformer's global tokens: they see every key and every
    query sees them (``| global_token_mask``); with ``causal=True`` causality still holds
    on top. Global keys become G extra score columns and global queries G full rows, so
    memory is O(T·(w + G)). Only key-padding masks ``(..., 1, Tk)`` are honoured; a score
    bias is refused. Left out: dilated windows, the custom CUDA kernel of the paper.
    Returns ``(out, None)``.
    """
    check_qkv(q, k, v, mask, bias)
    window = _positive_int("window", window, "pass the number of keys each query may see, e.g. window=128")
    chunk = window if chunk_size is None else _positive_int("chunk_size", chunk_size, "or leave it None (= window)")
    _refuse_bias(bias, "local_attention", "the bias would be a full Tq × Tk tensor, which this kernel avoids")
    key_keep = _key_padding(mask, "local_attention")  # (..., Tk) or None
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    t_q, t_k, dev = q.shape[-2], k.shape[-2], q.device
    offset = t_k - t_q  # queries are the last Tq positions
    n = math.ceil(t_q / chunk)
    span = chunk + window - 1 if causal else chunk + 2 * window - 2
    q_chunks = F.pad(q, (0, 0, 0, n * chunk - t_q)).unflatten(-2, (n, chunk))  # (..., N, C, D)
    q_pos = torch.arange(n * chunk, device=dev).view(n, chunk) + offset  # (N, C) absolute positions
    key_pos = q_pos[:, :1] - (window - 1) + torch.arange(span, device=dev)  # (N, L) keys of each span
    in_range = (key_pos >= 0) & (key_pos < t_k)
    idx = key_pos.clamp(0, t_k - 1)
    dist = q_pos[:, :, None] - key_pos[:, None, :]  # (N, C, L)
    keep = ((dist >= 0) & (dist < window) if causal else dist.abs() < window) & in_range[:, None, :]
    if key_keep is not None:
        keep = keep & key_keep[..., idx][..., None, :]  # (..., N, C, L)
    scores = (q_chunks @ k[..., idx, :].transpose(-2, -1)) * scale  # (..., N, C, L)
    v_spans = v[..., idx, :]  # (..., N, L, Dv)
    g = None if global_positions is None else torch.as_tensor(global_positions, dtype=torch.long, device=dev).unique()
    if g is None or g.numel() == 0:
        out = _masked_softmax(scores, keep) @ v_spans  # (..., N, C, Dv)
        return out.flatten(-3, -2)[..., :t_q, :], None

    if t_q != t_k:
        raise ValueError(f"global tokens need as many queries as keys (one sequence), got Tq={t_q}, Tk={t_k}")
    if g.min() < 0 or g.max() >= t_k:
        raise ValueError(f"global_positions must lie in [0, {t_k}), got {g.tolist()}")
    is_global = torch.zeros(t_k, dtype=torch.bool, device=dev)
    is_global[g] = True
    keep = keep & ~is_global[idx][:, None, :]  # a global key is read through its own column, once
    g_keep = (
        g[None, None, :] <= q_pos[:, :, None] if causal else torch.ones(1, 1, g.numel(), dtype=torch.bool, device=dev)
    )
    # g_keep: (N, C, G) or (1, 1, G)
    if key_keep is not None:
        g_keep = g_keep & key_keep[..., g][..., None, None, :]  # (..., N, C, G)
    g_scores = (q_chunks @ k[..., None, g, :].transpose(-2, -1)) * scale  # (..., N, C, G)
    lead = torch.broadcast_shapes(keep.shape[:-1], g_keep.shape[:-1])  # (..., N, C)
    weights = _masked_softmax(
        torch.cat([scores, g_scores], dim=-1),
        torch.cat([keep.expand(*lead, span), g_keep.expand(*lead, g.numel())], dim=-1),
    )  # (..., N, C, L + G)
    out = weights[..., :span] @ v_spans + weights[..., span:] @ v[..., None, g, :]  # (..., N, C, Dv)
    out = out.flatten(-3, -2)[..., :t_q, :]  # (..., Tq, Dv)
    row_keep = torch.arange(t_k, device=dev)[None, :] <= g[:, None] if causal else None  # (G, Tk), not Tq × Tk
    g_mask = combine_masks(row_keep, None if key_keep is None else key_keep[..., None, :])
    g_out, _ = attend(q[..., g, :], k, v, mask=g_mask, scale=scale)  # (..., G, Dv) global rows see all
    return out.index_copy(-2, g, g_out), None


# ----------------------------------------------------------------------------- top-k


def topk_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    top_k: int,
    mask: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    *,
    causal: bool = False,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k sparse attention: each query keeps only its ``top_k`` largest scores.

        s_i = q_i·K / √D + bias (masked),   keep_i = argtopk(s_i, k),   out_i = softmax(s_i on keep_i) V

    Scores outside the top k become −inf before the softmax (as in e.g. Wang et al. 2022,
    KVT / "explicit sparse transformer", Zhao et al. 2019). Ties are broken by
    ``torch.topk``; with ``top_k ≥ Tk`` this is dense attention. It teaches what sparsity
    costs in quality, not speed: the scores are still computed densely (O(T²)); a real
    implementation would need an approximate nearest-neighbour search (Reformer, Kitaev et
    al. 2020) to avoid that. Gradients flow only through the kept scores.
    Returns ``(out, weights)`` like ``attend``.
    """
    check_qkv(q, k, v, mask, bias)
    top_k = _positive_int("top_k", top_k, "pass how many keys each query keeps, e.g. top_k=32")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale  # (..., Tq, Tk)
    if bias is not None:
        scores = scores + bias
    if causal:
        mask = combine_masks(mask, causal_mask(q.shape[-2], k.shape[-2], device=q.device))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    keep = ~torch.isneginf(scores)
    if top_k < k.shape[-2]:
        top = scores.topk(top_k, dim=-1).indices  # (..., Tq, top_k)
        keep = keep & torch.zeros_like(keep).scatter(-1, top, True)
    weights = _masked_softmax(scores, keep)  # (..., Tq, Tk)
    return weights @ v, weights


# ----------------------------------------------------------------------------- block-wise


def _block_scores(q, k, mask, bias, causal, scale, rows: slice, cols: slice) -> torch.Tensor:
    """Scores of one (query block, key block) tile, masked with -inf: (..., bq, bk)."""
    s = (q[..., rows, :] @ k[..., cols, :].transpose(-2, -1)) * scale  # (..., bq, bk)
    if bias is not None:
        s = s + bias[..., rows, cols]
    keep = None if mask is None else mask[..., rows, cols]
    if causal:  # queries are the last Tq positions: key j is visible from query i when j <= i + Tk - Tq
        offset = k.shape[-2] - q.shape[-2]
        i = torch.arange(rows.start, rows.stop, device=q.device)[:, None] + offset
        tile = torch.arange(cols.start, cols.stop, device=q.device)[None, :] <= i  # (bq, bk)
        keep = tile if keep is None else keep & tile
    return s if keep is None else s.masked_fill(~keep, float("-inf"))


def _key_blocks(q_rows: slice, t_q: int, t_k: int, block: int, causal: bool):
    """Key-block slices a query block needs; with causal, blocks wholly in the future are skipped."""
    stop = min(t_k, q_rows.stop + t_k - t_q) if causal else t_k
    return [slice(s, min(s + block, t_k)) for s in range(0, max(stop, 0), block)]


class _BlockwiseAttention(torch.autograd.Function):
    """FlashAttention forward (online softmax) and backward (recompute the tiles from the log-sum-exp)."""

    @staticmethod
    def forward(ctx, q, k, v, mask, bias, causal, scale, q_block, k_block):
        t_q, t_k = q.shape[-2], k.shape[-2]
        mask_x = None if mask is None else mask.expand(*q.shape[:-1], t_k)  # views, no copies
        bias_x = None if bias is None else bias.expand(*q.shape[:-1], t_k)
        out = q.new_zeros(*q.shape[:-1], v.shape[-1])  # (..., Tq, Dv)
        lse = q.new_full((*q.shape[:-1], 1), float("-inf"))  # (..., Tq, 1) log Σ exp(scores)
        for qs in range(0, t_q, q_block):
            rows = slice(qs, min(qs + q_block, t_q))
            m = q.new_full((*q.shape[:-2], rows.stop - qs, 1), float("-inf"))  # running max
            l = torch.zeros_like(m)  # noqa: E741  running Σ exp(s - m)
            acc = q.new_zeros(*q.shape[:-2], rows.stop - qs, v.shape[-1])  # running Σ exp(s - m) v
            for cols in _key_blocks(rows, t_q, t_k, k_block, causal):
                s = _block_scores(q, k, mask_x, bias_x, causal, scale, rows, cols)  # (..., bq, bk)
                m_new = torch.maximum(m, s.amax(-1, keepdim=True))
                m_safe = m_new.masked_fill(torch.isneginf(m_new), 0.0)  # rows with nothing visible yet
                p = torch.exp(s - m_safe)  # (..., bq, bk)
                rescale = torch.exp(m - m_safe)  # old terms were relative to the old max
                l = rescale * l + p.sum(-1, keepdim=True)  # noqa: E741
                acc = rescale * acc + p @ v[..., cols, :]
                m = m_new
            out[..., rows, :] = acc / torch.where(l > 0, l, torch.ones_like(l))  # empty rows stay 0
            lse[..., rows, :] = m + torch.log(l)
        ctx.save_for_backward(q, k, v, out, lse, mask_x, bias_x)
        ctx.setup = (causal, scale, q_block, k_block, None if bias is None else bias.shape)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        q, k, v, out, lse, mask_x, bias_x = ctx.saved_tensors
        causal, scale, q_block, k_block, bias_shape = ctx.setup
        t_q, t_k = q.shape[-2], k.shape[-2]
        dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
        dbias = q.new_zeros(bias_shape) if ctx.needs_input_grad[4] else None
        delta = (grad_out * out).sum(-1, keepdim=True)  # (..., Tq, 1) = Σ_j P_ij dP_ij
        lse = lse.masked_fill(torch.isneginf(lse), 0.0)  # empty rows: every P_ij is exp(-inf) = 0 anyway
        for qs in range(0, t_q, q_block):
            rows = slice(qs, min(qs + q_block, t_q))
            for cols in _key_blocks(rows, t_q, t_k, k_block, causal):
                s = _block_scores(q, k, mask_x, bias_x, causal, scale, rows, cols)
                p = torch.exp(s - lse[..., rows, :])  # (..., bq, bk) the softmax tile, recomputed
                dv[..., cols, :] += p.transpose(-2, -1) @ grad_out[..., rows, :]
                dp = grad_out[..., rows, :] @ v[..., cols, :].transpose(-2, -1)  # (..., bq, bk)
                ds = p * (dp - delta[..., rows, :])  # softmax backward: dS = P ∘ (dP − rowsum(P ∘ dP))
                dq[..., rows, :] += (ds @ k[..., cols, :]) * scale
                dk[..., cols, :] += (ds.transpose(-2, -1) @ q[..., rows, :]) * scale
                if dbias is not None:  # sum over the dims the bias was broadcast along
                    r = rows if bias_shape[-2] != 1 else slice(0, 1)
                    c = cols if bias_shape[-1] != 1 else slice(0, 1)
                    dbias[..., r, c] += ds.sum_to_size(dbias[..., r, c].shape)
        return dq, dk, dv, None, dbias, None, None, None, None


def blockwise_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    *,
    causal: bool = False,
    scale: float | None = None,
    block_size: int = 64,
    query_block_size: int | None = None,
) -> tuple[torch.Tensor, None]:
    """Exact attention, one tile at a time (Dao et al. 2022, FlashAttention), in plain PyTorch.

    Softmax needs the row max and row sum over *all* keys, but both can be updated as key
    blocks arrive (the online softmax, Milakov & Gimelshein 2018). For each query block,
    for each key block with scores s:

        m' = max(m, max_j s_j)              new running max
        l' = e^(m − m') l + Σ_j e^(s_j − m')      running denominator, rescaled
        a' = e^(m − m') a + Σ_j e^(s_j − m') v_j  running numerator, rescaled
        out = a / l       (after the last block)

    Only a ``query_block_size × block_size`` tile of scores exists at any time, so forward
    memory is O(T·block) instead of O(T²). The backward pass is custom, as in the paper: it
    stores only ``out`` and the log-sum-exp ``m + log l`` per query and recomputes each
    tile's probabilities P = exp(s − lse); dS = P ∘ (dP − rowsum(dO ∘ O)). Values and
    gradients (q, k, v and a float ``bias``) equal ``attend`` to float tolerance. Fully
    masked rows give zeros, like ``attend``.

    Left out: the fused GPU kernel (SRAM tiling is what makes FlashAttention *fast*; here
    the Python loop makes it slow, the point is the memory), dropout, double backward. A
    ``bias`` or ``mask`` tensor you pass is itself O(T²) unless it broadcasts.
    Returns ``(out, None)``.
    """
    check_qkv(q, k, v, mask, bias)
    hint = "pass a positive tile length, e.g. 64"
    block_size = _positive_int("block_size", block_size, hint)
    q_block = block_size if query_block_size is None else _positive_int("query_block_size", query_block_size, hint)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    if mask is not None and mask.dim() < 2:
        mask = mask.reshape(*(1,) * (2 - mask.dim()), *mask.shape)
    if bias is not None and bias.dim() < 2:
        bias = bias.reshape(*(1,) * (2 - bias.dim()), *bias.shape)
    out = _BlockwiseAttention.apply(q, k, v, mask, bias, causal, scale, q_block, block_size)
    return out, None


# ----------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class AttentionKernel:
    """One entry of :data:`ATTENTION_KERNELS`: the function and what it can honour."""

    fn: Callable  # fn(q, k, v, mask=None, bias=None, *, causal=False, scale=None, **params) -> (out, weights|None)
    exact: bool  # equals attend() on the same inputs (no window, no top-k, no feature map)
    supports_bias: bool  # takes a float score bias (ALiBi, T5 relative bias)
    supports_mask: bool  # takes arbitrary boolean masks; every kernel takes key-padding masks (..., 1, Tk)
    returns_weights: bool  # second output is the (..., Tq, Tk) weights rather than None
    params: tuple[str, ...] = ()  # keyword arguments the kernel needs (no default)
    memory: str = ""  # forward activation memory in T
    summary: str = ""


ATTENTION_KERNELS: dict[str, AttentionKernel] = {
    "full": AttentionKernel(attend, True, True, True, True, (), "O(T²)", "dense softmax attention (reference)"),
    "linear": AttentionKernel(
        linear_attention, False, False, False, False, (), "O(T·D²/C + T·C)", "elu+1 feature map, prefix sums"
    ),
    "local": AttentionKernel(
        local_attention, False, False, False, False, ("window",), "O(T·w)", "sliding window (+ global tokens)"
    ),
    "topk": AttentionKernel(
        topk_attention, False, True, True, True, ("top_k",), "O(T²)", "each query keeps its top_k scores"
    ),
    "blockwise": AttentionKernel(
        blockwise_attention, True, True, True, False, (), "O(T·block)", "online softmax over tiles (flash)"
    ),
}
