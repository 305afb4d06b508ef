"""Scaled dot-product attention, written out (Vaswani et al. 2017, eq. 1).

    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k + bias, masked) V

Legend for shape comments in this module: B batch, H heads, T time,
Tq query length, Tk key length, D head dim, C model dim. Scores are (B, H, Tq, Tk);
:func:`attend` itself accepts any leading dims ``...`` in place of ``B, H``.

Masks follow :mod:`annotated.masks`: boolean, ``True`` = may attend.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from annotated.masks import causal_mask, combine_masks


def _broadcastable(shape: tuple, target: tuple) -> bool:
    if len(shape) > len(target):
        return False
    return all(s in (1, t) for s, t in zip(reversed(shape), reversed(target), strict=False))


def check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask=None, bias=None) -> tuple:
    """Validate shapes and dtypes for :func:`attend`; return the score shape (..., Tq, Tk).

    Raises ``ValueError`` naming the offending shapes, so a caller sees what to change.
    """
    if q.dim() < 2 or k.dim() < 2 or v.dim() < 2:
        raise ValueError(
            f"q, k, v need at least 2 dims (..., T, D); got q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must share their last dim (d_k): q {tuple(q.shape)} vs k {tuple(k.shape)}")
    if k.shape[:-1] != v.shape[:-1]:
        raise ValueError(
            f"k and v must have the same shape up to the last dim (one value per key): "
            f"k {tuple(k.shape)} vs v {tuple(v.shape)}"
        )
    if q.shape[:-2] != k.shape[:-2]:
        raise ValueError(
            f"q and k must have the same leading (batch, head) dims: q {tuple(q.shape)} vs k {tuple(k.shape)}"
        )
    score_shape = (*q.shape[:-1], k.shape[-2])  # (..., Tq, Tk)
    _check_mask_and_bias(mask, bias, score_shape)
    return score_shape


def _check_mask_and_bias(mask, bias, score_shape: tuple) -> None:
    if mask is not None:
        if mask.dtype != torch.bool:
            raise ValueError(
                f"mask must be a boolean tensor (True = may attend), got dtype {mask.dtype}; "
                "for additive float masks pass them as bias="
            )
        if not _broadcastable(tuple(mask.shape), score_shape):
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} does not broadcast to the scores (..., Tq, Tk) = {score_shape}"
            )
    if bias is not None:
        if not bias.is_floating_point():
            raise ValueError(f"bias must be a floating-point tensor, got dtype {bias.dtype}")
        if not _broadcastable(tuple(bias.shape), score_shape):
            raise ValueError(
                f"bias of shape {tuple(bias.shape)} does not broadcast to the scores (..., Tq, Tk) = {score_shape}"
            )


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    *,
    causal: bool = False,
    scale: float | None = None,
    dropout_p: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference scaled dot-product attention that also returns the weights.

    Args:
        q: queries ``(..., Tq, D)``; k: keys ``(..., Tk, D)``; v: values ``(..., Tk, Dv)``.
        mask: optional boolean tensor broadcastable to ``(..., Tq, Tk)``; ``True`` = may attend.
        bias: optional float tensor broadcastable to ``(..., Tq, Tk)``, added to the scores
            (ALiBi, T5 relative bias, or an additive ``-inf`` mask).
        causal: also apply :func:`~annotated.masks.causal_mask` (queries are the last Tq positions).
        scale: multiplies ``q kᵀ``; default ``1/√D``. A temperature τ is ``scale = 1/(τ√D)``.
        dropout_p: dropout on the weights (only pass > 0 while training).

    Returns:
        ``(output (..., Tq, Dv), weights (..., Tq, Tk))``. The weights are the softmax
        probabilities before dropout; each row sums to 1.

    A query whose keys are *all* masked has nothing to read: its weight row is all zeros
    and its output is the zero vector (no NaN). PyTorch's
    ``F.scaled_dot_product_attention`` returns the same zeros for such rows.
    """
    check_qkv(q, k, v, mask, bias)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale  # (..., Tq, Tk)
    if bias is not None:
        scores = scores + bias
    if causal:
        mask = combine_masks(mask, causal_mask(q.shape[-2], k.shape[-2], device=q.device))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    # Rows with every key hidden would be softmax(-inf, …, -inf) = 0/0 = NaN; give them zeros.
    empty = torch.isneginf(scores).all(dim=-1, keepdim=True)  # (..., Tq, 1)
    weights = torch.softmax(scores.masked_fill(empty, 0.0), dim=-1).masked_fill(empty, 0.0)
    dropped = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
    return dropped @ v, weights  # (..., Tq, Dv), (..., Tq, Tk)


def attention_entropy(weights: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of each attention row: 0 = one key, log(Tk) = uniform."""
    w = weights.clamp_min(1e-12)
    return -(weights * w.log()).sum(-1)


# --- multi-head attention --------------------------------------------------------------------


def repeat_kv(t: torch.Tensor, groups: int) -> torch.Tensor:
    """Grouped-query attention: let ``groups`` consecutive query heads share one k/v head.

    ``(B, Hkv, T, D) -> (B, Hkv * groups, T, D)``; query head ``h`` reads k/v head ``h // groups``
    (the same grouping as ``F.scaled_dot_product_attention(..., enable_gqa=True)``).
    """
    return t if groups == 1 else t.repeat_interleave(groups, dim=-3)


_KERNEL_CALL_ARGS = ("q", "k", "v", "mask", "bias", "causal", "scale")


def check_kernel_params(kernel: str, params: dict | None) -> dict:
    """Check a kernel name and its settings before any tensor exists; return the settings as a dict.

    The name must be in :data:`annotated.efficient.ATTENTION_KERNELS`, every required setting
    (``window`` for "local", ``top_k`` for "topk") must be given, each setting must be a
    keyword of that kernel, and integer sizes must be positive.
    """
    import inspect

    from annotated.efficient import ATTENTION_KERNELS

    if kernel not in ATTENTION_KERNELS:
        raise ValueError(f"unknown attention kernel {kernel!r}; choose one of {sorted(ATTENTION_KERNELS)}")
    params = dict(params or {})
    spec = ATTENTION_KERNELS[kernel]
    accepted = [n for n in inspect.signature(spec.fn).parameters if n not in _KERNEL_CALL_ARGS and n != "dropout_p"]
    missing = [n for n in spec.params if n not in params]
    if missing:
        example = ", ".join(f"{n!r}: 64" for n in missing)
        raise ValueError(f"attention kernel {kernel!r} needs {missing}; pass e.g. {{{example}}}")
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(f"attention kernel {kernel!r} takes no setting {unknown}; it takes {accepted or 'none'}")
    for name, value in params.items():
        if name in ("window", "top_k", "block_size", "query_block_size", "chunk_size") and value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} of attention kernel {kernel!r} must be a positive integer, got {value!r}")
    return params


def kernel_weights(kernel: str, q, k, v, mask=None, bias=None, *, causal=False, scale=None, **params):
    """``(out, weights (..., Tq, Tk))`` of a kernel, written the O(T²) way so the weights exist.

    For plots and attention entropy: the weights are the ones the kernel effectively uses —
    dense attention restricted to the band for "local" (Longformer's global tokens
    included), linear attention's normalised φ(q)·φ(k) for "linear", the kept scores for
    "topk", and dense attention for the exact "full" and "blockwise". The outputs equal the
    kernel's own to float tolerance (tests check it).
    """
    from annotated.efficient import ATTENTION_KERNELS, linear_attention_quadratic, topk_attention
    from annotated.masks import global_token_mask, sliding_window_mask

    if bias is not None and not ATTENTION_KERNELS[kernel].supports_bias:
        raise ValueError(
            f"attention kernel {kernel!r} cannot take a score bias (ALiBi, T5 relative bias); use 'full', "
            "'blockwise' or 'topk', or a positional encoding that acts on q/k (RoPE) or the embeddings"
        )
    if kernel == "linear":
        feature_map = {"feature_map": params["feature_map"]} if "feature_map" in params else {}
        return linear_attention_quadratic(q, k, v, mask, bias, causal=causal, scale=scale, **feature_map)
    if kernel == "topk":
        return topk_attention(q, k, v, params["top_k"], mask, bias, causal=causal, scale=scale)
    if kernel == "local":
        t_q, t_k = q.shape[-2], k.shape[-2]
        band = sliding_window_mask(t_q, params["window"], t_k, causal=causal, device=q.device)  # (Tq, Tk)
        if params.get("global_positions") is not None and len(params["global_positions"]):
            band = band | global_token_mask(t_k, params["global_positions"], device=q.device)  # needs Tq == Tk
        mask = combine_masks(mask, band)
    return attend(q, k, v, mask, bias, causal=causal, scale=scale)


@functools.cache
def _sdpa_supports_gqa() -> bool:
    """``enable_gqa`` appeared in PyTorch 2.5; probe once instead of parsing versions."""
    try:
        x = torch.zeros(1, 2, 1, 2)
        F.scaled_dot_product_attention(x, x[:, :1], x[:, :1], enable_gqa=True)
        return True
    except (TypeError, RuntimeError):
        return False


@functools.cache
def _sdpa_zeroes_empty_rows() -> bool:
    """Recent PyTorch returns zeros for a query with every key masked; older versions gave NaN."""
    x = torch.ones(1, 1, 1, 2)
    out = F.scaled_dot_product_attention(x, x, x, attn_mask=torch.zeros(1, 1, 1, 1, dtype=torch.bool))
    return bool((out == 0).all())


@dataclass
class KVCache:
    """Keys and values of the tokens a self-attention layer has already seen (one per layer).

    Decoding token by token, a causal layer would recompute k and v for the whole prefix at
    every step; instead :class:`MultiHeadAttention` appends the new tokens' k and v here
    (k *after* RoPE rotation, so old keys never need re-rotating) and attends over all of
    them. The key positions are kept too, for score biases (ALiBi, T5). The cache holds
    ``n_kv_heads`` heads, which is where GQA/MQA save memory. It grows by concatenation —
    simple, not the fastest. Start a new one (or call :meth:`reset`) for a new batch.
    """

    k: torch.Tensor | None = None  # (B, Hkv, T_past, D)
    v: torch.Tensor | None = None  # (B, Hkv, T_past, D)
    positions: torch.Tensor | None = None  # (T_past,) or (B, T_past)

    @property
    def seq_len(self) -> int:
        """Number of tokens cached so far (the position offset of the next token)."""
        return 0 if self.k is None else self.k.shape[-2]

    def append(self, k: torch.Tensor, v: torch.Tensor, positions: torch.Tensor) -> tuple:
        """Add the new tokens' ``k, v (B, Hkv, T_new, D)`` in place; return all ``(k, v, positions)``."""
        if self.k is None:
            self.k, self.v, self.positions = k, v, positions
        else:
            if k.shape[0] != self.k.shape[0] or k.shape[1] != self.k.shape[1]:
                raise ValueError(
                    f"new keys {tuple(k.shape)} do not match the cached batch/heads {tuple(self.k.shape)}; "
                    "use a fresh KVCache (or reset()) for a new batch"
                )
            old, new = self.positions, positions
            if old.dim() != new.dim():  # mix of shared (T,) and per-sequence (B, T) positions
                old, new = (p if p.dim() == 2 else p.expand(k.shape[0], -1) for p in (old, new))
            self.k = torch.cat([self.k, k], dim=-2)  # (B, Hkv, T_past + T_new, D)
            self.v = torch.cat([self.v, v], dim=-2)
            self.positions = torch.cat([old, new], dim=-1)
        return self.k, self.v, self.positions

    def reset(self) -> None:
        self.k = self.v = self.positions = None


class MultiHeadAttention(nn.Module):
    """Multi-head attention (Vaswani et al. 2017, §3.2.2) with grouped-query attention.

        head_h = Attention(X W_q^h, C W_k^g(h), C W_v^g(h)),   out = concat(head_1..head_H) W_o

    with ``C = X`` for self-attention and ``C = context`` for cross-attention. Each head
    attends in its own ``D = d_model / n_heads``-dim subspace. With ``n_kv_heads < n_heads``
    (GQA, Ainslie et al. 2023; MQA when ``n_kv_heads = 1``, Shazeer 2019) groups of
    ``n_heads / n_kv_heads`` query heads share one key/value head: fewer k/v parameters
    and a smaller KV cache.

    ``positional`` is a :class:`~annotated.positional.PositionalEncoding` acting where it
    declares: ``where == "qk"`` (RoPE) rotates q and k here, ``"score"`` (ALiBi, T5) adds its
    bias to the scores here; ``"embedding"`` and ``"none"`` do nothing here (the model adds
    embedding encodings to its input). Cross-attention gets no positional encoding.

    Two paths, tested to agree: ``need_weights=True`` runs the readable reference
    :func:`attend` and returns the weights ``(B, H, Tq, Tk)``; otherwise the fast
    ``F.scaled_dot_product_attention`` runs with the same mask/bias meaning and no weights
    are returned. Both live in :meth:`_attend`, the one place a kernel is called.

    ``kernel`` names another kernel of :data:`annotated.efficient.ATTENTION_KERNELS`
    ("linear", "local", "topk", "blockwise"), with its settings in ``kernel_params``
    (e.g. ``{"window": 64}``); k and v are repeated to H heads before it runs. Such a
    kernel has no attention dropout (``dropout`` must be 0), and with ``need_weights=True``
    the weights *that kernel uses* are computed the O(T²) way (:func:`kernel_weights`),
    so a plot or an entropy sees the approximation, not dense attention.

    Legend: B batch, T/Tq query length, Tk key length, C d_model, H heads, Hkv k/v heads, D head dim.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        n_kv_heads: int | None = None,
        *,
        bias: bool = True,
        dropout: float = 0.0,
        positional=None,
        kernel: str = "full",
        kernel_params: dict | None = None,
    ):
        super().__init__()
        n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        if d_model <= 0 or n_heads <= 0 or n_kv_heads <= 0:
            raise ValueError(f"d_model, n_heads, n_kv_heads must be positive; got {d_model}, {n_heads}, {n_kv_heads}")
        if d_model % n_heads:
            raise ValueError(
                f"d_model={d_model} must be divisible by n_heads={n_heads} (each head gets d_model // n_heads dims); "
                "change d_model or n_heads"
            )
        if n_heads % n_kv_heads:
            raise ValueError(
                f"n_heads={n_heads} must be divisible by n_kv_heads={n_kv_heads} (each k/v head serves a whole "
                "group of query heads); pick n_kv_heads among the divisors of n_heads"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.d_model, self.n_heads, self.n_kv_heads = d_model, n_heads, n_kv_heads
        self.head_dim = d_model // n_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(d_model, n_heads * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(d_model, n_kv_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(d_model, n_kv_heads * self.head_dim, bias=bias)
        self.out_proj = nn.Linear(n_heads * self.head_dim, d_model, bias=bias)
        self.positional = positional
        self._check_positional(positional)
        self.use_kernel(kernel, kernel_params)

    def use_kernel(self, kernel: str = "full", kernel_params: dict | None = None) -> MultiHeadAttention:
        """Choose the attention kernel by name (see the class docstring); returns ``self``."""
        self.kernel, self.kernel_params = kernel, check_kernel_params(kernel, kernel_params)
        if kernel != "full" and self.dropout > 0:
            raise ValueError(
                f"kernel={kernel!r} has no attention dropout, but dropout={self.dropout}; "
                "set dropout=0 or use kernel='full'"
            )
        return self

    def extra_repr(self) -> str:
        return "" if self.kernel == "full" else f"kernel={self.kernel!r}, kernel_params={self.kernel_params}"

    def _check_positional(self, positional) -> None:
        from annotated.positional import PositionalEncoding

        if positional is None:
            return
        if not isinstance(positional, PositionalEncoding):
            raise ValueError(
                f"positional must be a PositionalEncoding module or None, got {type(positional).__name__}; "
                "build one with annotated.positional.make_positional(name, ...)"
            )
        if positional.where == "qk" and self.head_dim % 2:
            raise ValueError(
                f"RoPE rotates pairs of dims but the head dim d_model // n_heads = {self.head_dim} is odd; "
                "choose d_model and n_heads so that d_model // n_heads is even"
            )
        if getattr(positional, "head_dim", None) not in (None, self.head_dim):
            raise ValueError(
                f"positional encoding built for head_dim={positional.head_dim}, attention has {self.head_dim}"
            )
        if getattr(positional, "n_heads", None) not in (None, self.n_heads):
            raise ValueError(
                f"positional encoding built for n_heads={positional.n_heads}, attention has {self.n_heads}"
            )

    def _split_heads(self, t: torch.Tensor, n: int) -> torch.Tensor:
        b, length, _ = t.shape
        return t.view(b, length, n, self.head_dim).transpose(1, 2)  # (B, T, n*D) -> (B, n, T, D)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        *,
        mask: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
        causal: bool = False,
        need_weights: bool = False,
        positions: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend from ``x (B, T, C)`` to itself, or to ``context (B, Tk, C)`` (cross-attention).

        Args:
            mask: boolean, broadcastable to ``(B, H, T, Tk)``, ``True`` = may attend. With a
                cache, ``Tk`` counts the cached tokens too.
            bias: float, broadcastable to ``(B, H, T, Tk)``, added to the scores (on top of
                any score-level positional bias).
            causal: queries see only keys up to their own position (queries are the last T
                keys, so this is right with a cache too).
            need_weights: return the attention weights (reference path) instead of ``None``.
            positions: absolute positions of the queries, ``(T,)`` or ``(B, T)``; default
                ``arange(offset, offset + T)`` with ``offset = cache.seq_len`` (0 without cache).
                Ignored for cross-attention.
            cache: a :class:`KVCache` for incremental self-attention decoding; the new k, v
                are appended to it in place. Feeding a sequence in pieces with
                ``causal=True`` gives the same outputs as feeding it whole.

        Returns:
            ``(out (B, T, C), weights (B, H, T, Tk) or None)``.
        """
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must have shape (B, T, d_model={self.d_model}), got {tuple(x.shape)}")
        b, t, _ = x.shape
        q = self._split_heads(self.q_proj(x), self.n_heads)  # (B, H, T, D)
        if context is None:  # self-attention: positions and the cache apply
            k = self._split_heads(self.k_proj(x), self.n_kv_heads)  # (B, Hkv, T, D)
            v = self._split_heads(self.v_proj(x), self.n_kv_heads)  # (B, Hkv, T, D)
            offset = 0 if cache is None else cache.seq_len
            if positions is None:
                positions = torch.arange(offset, offset + t, device=x.device)  # (T,)
            elif positions.dim() not in (1, 2) or positions.shape[-1] != t or positions.is_floating_point():
                raise ValueError(
                    f"positions must be integers of shape (T,) or (B, T) with T={t}, got {tuple(positions.shape)}"
                )
            k_positions = positions
            pe = self.positional
            if pe is not None and pe.where == "qk":
                q, k = pe.rotate_qk(q, k, positions, positions)  # rotate before caching
            if cache is not None:
                k, v, k_positions = cache.append(k, v, positions)  # (B, Hkv, Tk, D) with Tk = offset + T
            if pe is not None and pe.where == "score":
                pos_bias = pe.score_bias(positions, k_positions).to(q.dtype)  # (H, T, Tk) or (B, H, T, Tk)
                bias = pos_bias if bias is None else bias + pos_bias
        else:  # cross-attention: keys and values from the context, no positions
            if cache is not None:
                raise ValueError("cache is for self-attention decoding; for cross-attention pass context without cache")
            if context.dim() != 3 or context.shape[0] != b or context.shape[-1] != self.d_model:
                raise ValueError(
                    f"context must have shape (B={b}, Tk, d_model={self.d_model}), got {tuple(context.shape)}"
                )
            k = self._split_heads(self.k_proj(context), self.n_kv_heads)  # (B, Hkv, Tk, D)
            v = self._split_heads(self.v_proj(context), self.n_kv_heads)  # (B, Hkv, Tk, D)
        _check_mask_and_bias(mask, bias, (b, self.n_heads, t, k.shape[-2]))
        out, weights = self._attend(q, k, v, mask, bias, causal, need_weights)  # (B, H, T, D)
        out = out.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim)  # (B, H, T, D) -> (B, T, H*D)
        return self.out_proj(out), weights

    def _attend(self, q, k, v, mask, bias, causal: bool, need_weights: bool):
        """The one kernel call: q ``(B, H, Tq, D)``, k and v ``(B, Hkv, Tk, D)`` -> ``(out, weights or None)``.

        Swap in another kernel here (e.g. :mod:`annotated.efficient`); the mask/bias meaning
        is that of :func:`attend`.
        """
        groups = self.n_heads // self.n_kv_heads
        dropout_p = self.dropout if self.training else 0.0
        if self.kernel != "full":  # an efficient kernel: same mask/bias meaning, H heads for k and v
            k, v = repeat_kv(k, groups), repeat_kv(v, groups)
            if need_weights:
                return kernel_weights(self.kernel, q, k, v, mask, bias, causal=causal, **self.kernel_params)
            from annotated.efficient import ATTENTION_KERNELS

            out, _ = ATTENTION_KERNELS[self.kernel].fn(
                q, k, v, mask=mask, bias=bias, causal=causal, **self.kernel_params
            )
            return out, None
        if need_weights:  # reference path: readable, returns the weights
            return attend(q, repeat_kv(k, groups), repeat_kv(v, groups), mask, bias, causal=causal, dropout_p=dropout_p)
        t_q, t_k = q.shape[-2], k.shape[-2]
        # SDPA's is_causal aligns queries to the *first* keys; build the bottom-right mask ourselves when needed.
        sdpa_causal = causal and mask is None and bias is None and t_q == t_k
        if causal and not sdpa_causal:
            mask = combine_masks(mask, causal_mask(t_q, t_k, device=q.device))
        attn_mask = mask  # boolean, True = may attend (SDPA's meaning too)
        if bias is not None:  # one float mask: the bias where allowed, -inf where masked
            bias = bias.to(q.dtype)
            attn_mask = bias if mask is None else torch.where(mask, bias, float("-inf"))
        gqa = {}
        if groups > 1:
            if _sdpa_supports_gqa():
                gqa = {"enable_gqa": True}
            else:
                k, v = repeat_kv(k, groups), repeat_kv(v, groups)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=sdpa_causal, **gqa
        )  # (B, H, Tq, D)
        if attn_mask is not None and not _sdpa_zeroes_empty_rows():
            hidden = ~mask if bias is None else torch.isneginf(attn_mask)
            out = out.masked_fill(hidden.all(dim=-1, keepdim=True), 0.0)  # rows with no visible key -> 0
        return out, None
