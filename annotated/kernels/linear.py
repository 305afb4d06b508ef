"""Linear attention (Katharopoulos et al. 2020, "Transformers are RNNs"):
softmax → a kernel.

Replace exp(q·k) by φ(q)·φ(k) and the products can be reordered, so no T × T
matrix is formed. The price: linear attention never forms the scores q·k, so a
score bias or a ``score_mod`` (ALiBi, T5) has nothing to act on, and a
``mask_mod`` — which may depend on the query — cannot be honoured either; only
keys can be dropped (key-padding masks).

Legend: B batch, H heads, T time, Tq/Tk query/key length, D head dim, Dv value
dim, N number of chunks, C chunk length.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from annotated.attention.attend import prepare_attention, visible_keys
from annotated.attention.masks import MaskMod, ScoreMod
from annotated.kernels.checks import key_padding, positive_sizes


def elu_feature_map(x: torch.Tensor) -> torch.Tensor:
    """φ(x) = elu(x) + 1 (Katharopoulos et al. 2020): positive, so φ(q)·φ(k)
    can replace exp(q·k)."""
    return F.elu(x) + 1.0


def _refuse_mods(bias, mask_mod, score_mod) -> None:
    """Linear attention never forms q·k scores, so there is nothing to add a
    bias to or to mask per query."""
    if bias is not None or score_mod is not None:
        raise ValueError(
            "linear attention cannot take a score bias or score_mod (ALiBi, "
            "T5 relative bias): it never forms the q·k scores a bias would "
            "be added to. Use 'full', 'blockwise' or 'local' attention, or a "
            "positional encoding that acts on q/k (RoPE) or on the embeddings"
        )
    if mask_mod is not None:
        raise ValueError(
            "linear attention cannot take a mask_mod: a predicate may depend "
            "on the query, but linear attention can only drop keys; pass "
            "causal=True and/or key_padding_mask= (B, Tk)"
        )


def linear_attention_quadratic(
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
    feature_map: Callable[[torch.Tensor], torch.Tensor] = elu_feature_map,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear attention's model written the slow way, with its explicit
    ``Tq × Tk`` weights.

        A_ij = φ(q_i)·φ(k_j) / Σ_j' φ(q_i)·φ(k_j')      out_i = Σ_j A_ij v_j

    Same numbers as :func:`linear_attention` (tests check it) but O(T²); it
    exists to teach and to test. Any boolean mask is honoured here (masked
    terms are dropped from both sums); a score bias is refused. ``scale``
    (default 1, as in the paper) multiplies q before the feature map.
    """
    _refuse_mods(bias, mask_mod, score_mod)
    # the paper's φ(q)·φ(k) has no scale: the default is 1, not 1/√D
    scale, mask, mask_mod = prepare_attention(
        q,
        k,
        v,
        mask,
        key_padding_mask=key_padding_mask,
        causal=causal,
        scale=1.0 if scale is None else scale,
    )
    phi_q, phi_k = feature_map(q * scale), feature_map(k)
    sim = phi_q @ phi_k.transpose(-2, -1)  # (..., Tq, Tk), all > 0
    keep = visible_keys(mask, mask_mod, sim.shape, q.device)
    if keep is not None:
        sim = sim.masked_fill(~keep, 0.0)
    # (..., Tq, 1); 0 only when every key is masked
    norm = sim.sum(-1, keepdim=True)
    weights = sim / torch.where(norm > 0, norm, torch.ones_like(norm))
    return weights @ v, weights


def linear_attention(
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
    chunk_size: int = 64,
    feature_map: Callable[[torch.Tensor], torch.Tensor] = elu_feature_map,
) -> tuple[torch.Tensor, None]:
    """Linear attention (Katharopoulos et al. 2020, "Transformers are RNNs").

    Replace exp(q·k) by a kernel φ(q)·φ(k) and the products can be reordered:

        out_i = φ(q_i)ᵀ S / φ(q_i)ᵀ z,
        S = Σ_j φ(k_j) v_jᵀ  (D × Dv),   z = Σ_j φ(k_j)  (D)

    Non-causal: S and z are summed once, O(T·D·Dv) time, and no T×T matrix
    exists.

    Causal: S and z become prefix sums S_i = Σ_{j≤i} φ(k_j) v_jᵀ (the RNN
    view). Keeping all T prefix states costs O(T·D·Dv) memory, so we use the
    **chunked** form: split time into chunks of ``chunk_size`` C, keep one
    prefix state per chunk (O(T·D·Dv / C)) and do the C × C triangle inside
    each chunk exactly (O(T·C)). ``chunk_size=1`` is the plain prefix-sum
    form. The result equals :func:`linear_attention_quadratic`.

    Left out: other feature maps (pass ``feature_map``), random features
    (Performer), the recurrent one-token-at-a-time decoding API. ``scale``
    (default 1, as in the paper) multiplies q before φ. Only padding can be
    honoured, ``key_padding_mask`` (B, Tk) or a mask ``(..., 1, Tk)``
    (masked keys drop out of S and z); a
    query-dependent mask or a score bias raises ValueError. With
    ``causal=True`` the queries are the last Tq positions, as in ``attend``.
    Returns ``(out, None)``: the weights are never formed.
    """
    _refuse_mods(bias, mask_mod, score_mod)
    positive_sizes("linear_attention", chunk_size=chunk_size)
    # causality comes from the prefix sums below, not from a mask_mod
    scale, mask, _ = prepare_attention(
        q,
        k,
        v,
        mask,
        key_padding_mask=key_padding_mask,
        scale=1.0 if scale is None else scale,
    )
    key_keep = key_padding(mask, "linear attention")  # (..., Tk) or None
    # (..., Tq, D), (..., Tk, D)
    phi_q, phi_k = feature_map(q * scale), feature_map(k)
    if key_keep is not None:
        # masked keys add nothing to S or z
        phi_k = phi_k * key_keep[..., None].to(phi_k.dtype)
    if not causal:
        kv = phi_k.transpose(-2, -1) @ v  # (..., D, Dv)
        num = phi_q @ kv  # (..., Tq, Dv)
        den = phi_q @ phi_k.sum(-2)[..., None]  # (..., Tq, 1)
        return num / torch.where(den > 0, den, torch.ones_like(den)), None

    t_q, t_k = q.shape[-2], k.shape[-2]
    # queries are the last Tq positions: pad dummy queries in front, drop them
    # at the end
    if t_q < t_k:
        phi_q = F.pad(phi_q, (0, 0, t_k - t_q, 0))
    # the first Tq - Tk queries see no key: pad keys with φ = 0
    elif t_q > t_k:
        phi_k, v = (
            F.pad(phi_k, (0, 0, t_q - t_k, 0)),
            F.pad(v, (0, 0, t_q - t_k, 0)),
        )
    t = phi_q.shape[-2]
    n = math.ceil(t / chunk_size)
    # trailing pad: φ(k) = 0 there, so it changes nothing
    pad = n * chunk_size - t
    phi_q, phi_k, v = (
        F.pad(x, (0, 0, 0, pad)).unflatten(-2, (n, chunk_size))
        for x in (phi_q, phi_k, v)
    )
    # phi_q, phi_k: (..., N, C, D); v: (..., N, C, Dv)
    # (..., N, D, Dv) Σ_{j in chunk} φ(k_j) v_jᵀ
    kv_chunk = phi_k.transpose(-2, -1) @ v
    # (..., N, D, Dv) state from earlier chunks
    kv_before = torch.cumsum(kv_chunk, dim=-3) - kv_chunk
    z_chunk = phi_k.sum(-2)  # (..., N, D)
    z_before = torch.cumsum(z_chunk, dim=-2) - z_chunk  # (..., N, D)
    # (C, C)
    tri = torch.ones(
        chunk_size, chunk_size, dtype=torch.bool, device=q.device
    ).tril()
    # (..., N, C, C) causal inside the chunk
    sim = (phi_q @ phi_k.transpose(-2, -1)).masked_fill(~tri, 0.0)
    num = phi_q @ kv_before + sim @ v  # (..., N, C, Dv)
    # (..., N, C, 1)
    den = phi_q @ z_before[..., None] + sim.sum(-1, keepdim=True)
    # (..., N·C, Dv)
    out = (num / torch.where(den > 0, den, torch.ones_like(den))).flatten(
        -3, -2
    )
    return out[..., t - t_q : t, :], None
