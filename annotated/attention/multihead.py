"""Multi-head attention (Vaswani et al. 2017, §3.2.2).

:class:`MultiHeadAttention` projects the input into H heads, lets each head
attend with one kernel of :mod:`annotated.kernels` (dense SDPA by default, the
reference :func:`attend` when the weights are wanted) and joins the heads
again; a :class:`~annotated.attention.cache.KVCache` keeps the keys and
values of earlier tokens for decoding. What a layer's sizes, encoding and
kernel must agree on is written once, in
:func:`~annotated.attention.rules.check_attention`; with ``qk_norm`` the
queries and keys are RMS-normalised per head
(:mod:`annotated.attention.qk_norm`).

Legend: B batch, T/Tq query length, Tk key length, C d_model, H heads, Hkv k/v
heads, D head dim.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn as nn

from annotated.attention.cache import KVCache
from annotated.attention.qk_norm import head_projection
from annotated.attention.rules import check_attention
from annotated.kernels import ATTENTION_KERNELS
from annotated.positional import PositionalEncoding
from annotated.positional.base import NoPositionalEncoding, check_positions


def repeat_kv(t: torch.Tensor, groups: int) -> torch.Tensor:
    """Grouped-query attention: let ``groups`` consecutive query heads share
    one k/v head.

    ``(B, Hkv, T, D) -> (B, Hkv * groups, T, D)``; query head ``h`` reads k/v
    head ``h // groups`` (the same grouping as
    ``F.scaled_dot_product_attention(..., enable_gqa=True)``).
    """
    return t if groups == 1 else t.repeat_interleave(groups, dim=-3)


class MultiHeadAttention(nn.Module):
    """Multi-head attention (Vaswani et al. 2017, §3.2.2) with grouped-query
    attention::

        head_h = Attention(X W_q^h, C W_k^g(h), C W_v^g(h))
        out    = concat(head_1, …, head_H) W_o

    with ``C = X`` for self-attention and ``C = context`` for cross-attention.
    Each head attends in its own ``D = d_model / n_heads``-dim subspace. With
    ``n_kv_heads < n_heads`` (GQA, Ainslie et al. 2023; MQA when
    ``n_kv_heads = 1``, Shazeer 2019) groups of ``n_heads / n_kv_heads`` query
    heads share one key/value head: fewer k/v parameters and a smaller KV
    cache.

    ``positional`` is a :class:`~annotated.positional.PositionalEncoding`.
    Self-attention calls its two attention hooks: ``rotate_qk`` (RoPE turns
    q and k; the others return them unchanged) and ``score_mod`` (ALiBi and
    T5 return one for the kernel; the others None). Embedding-level encodings
    act on the model's input instead, and cross-attention gets no positions.

    ``kernel`` names an entry of :data:`annotated.kernels.ATTENTION_KERNELS`
    ("full" = SDPA, "blockwise", "local", "linear", "topk", "flex"), with its
    settings in ``kernel_params`` (e.g. ``{"window": 64}``). With
    ``need_weights=True`` the kernel's O(T²) form runs
    (:func:`~annotated.kernels.kernel_weights`; for "full" the reference
    :func:`attend`) and returns the weights ``(B, H, Tq, Tk)`` *that kernel
    uses*, so a plot or an entropy sees the approximation, not dense
    attention. Paths are tested to agree. Only "full" has attention dropout.
    ``qk_norm`` RMS-normalises every head's q and k (ε ``norm_eps``) as they
    are projected, before positions and scores
    (:mod:`annotated.attention.qk_norm`).
    """

    # a callable (B, H, T, D) -> (B, H, T, D) on the heads' outputs, or None
    # (annotated.analysis.ablation)
    head_hook = None

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        n_kv_heads: int | None = None,
        *,
        bias: bool = True,
        dropout: float = 0.0,
        positional: PositionalEncoding | None = None,
        kernel: str = "full",
        kernel_params: dict | None = None,
        qk_norm: bool = False,
        norm_eps: float = 1e-5,
    ):
        super().__init__()
        n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        # no encoding: both attention hooks do nothing
        pe = NoPositionalEncoding() if positional is None else positional
        self.kernel_params = check_attention(
            d_model,
            n_heads,
            n_kv_heads,
            positional=pe,
            kernel=kernel,
            kernel_params=kernel_params,
            dropout=dropout,
        )
        self.d_model, self.n_heads = d_model, n_heads
        self.n_kv_heads, self.head_dim = n_kv_heads, d_model // n_heads
        kv_dim = n_kv_heads * self.head_dim
        # with qk_norm each head's q and k are RMS-normalised (qk_norm.py)
        project = partial(
            head_projection, d_model, bias=bias, qk_norm=qk_norm, eps=norm_eps
        )
        self.q_proj = project(n_heads, self.head_dim)
        self.k_proj = project(n_kv_heads, self.head_dim)
        self.v_proj = nn.Linear(d_model, kv_dim, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        self.positional, self.kernel, self.dropout = pe, kernel, dropout

    def extra_repr(self) -> str:
        if self.kernel == "full":
            return ""
        return f"kernel={self.kernel!r}, kernel_params={self.kernel_params}"

    def _split_heads(self, t: torch.Tensor, n: int) -> torch.Tensor:
        b, length, _ = t.shape
        # (B, T, n*D) -> (B, n, T, D)
        return t.view(b, length, n, self.head_dim).transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        *,
        mask: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
        causal: bool = False,
        need_weights: bool = False,
        positions: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend from ``x (B, T, C)`` to itself, or to ``context (B, Tk, C)``
        (cross-attention).

        Args:
            mask: boolean, broadcastable to ``(B, H, T, Tk)``, ``True`` = may
                attend; a 2-D mask is ``(T, Tk)``. With a cache, ``Tk``
                counts the cached tokens too.
            key_padding_mask: boolean ``(B, Tk)``, ``True`` = a real key
                (unlike ``nn.MultiheadAttention``'s); never read as (T, Tk).
            bias: float, broadcastable to ``(B, H, T, Tk)``, added to the
                scores (on top of any score-level positional bias).
            causal: queries see only keys up to their own position (queries
                are the last T keys, so this is right with a cache too).
            need_weights: return the attention weights (reference path)
                instead of ``None``.
            positions: absolute positions of the queries, ``(T,)`` or
                ``(B, T)``; default ``arange(offset, offset + T)`` with
                ``offset = cache.seq_len`` (0 without cache). Ignored for
                cross-attention.
            cache: a :class:`~annotated.attention.cache.KVCache` for
                incremental self-attention decoding; the new k, v are
                appended to it in place. Feeding a sequence in pieces with
                ``causal=True`` gives the same outputs as feeding it whole.

        Returns:
            ``(out (B, T, C), weights (B, H, T, Tk) or None)``.
        """
        self._check_inputs(x, context, positions, cache)
        b, t, _ = x.shape
        source = x if context is None else context  # what k and v read
        q = self._split_heads(self.q_proj(x), self.n_heads)  # (B, H, T, D)
        # (B, Hkv, Tk, D)
        k = self._split_heads(self.k_proj(source), self.n_kv_heads)
        v = self._split_heads(self.v_proj(source), self.n_kv_heads)
        score_mod = None
        if context is None:  # self-attention: positions and the cache apply
            offset = 0 if cache is None else cache.seq_len
            if positions is None:  # (T,)
                positions = torch.arange(offset, offset + t, device=x.device)
            # RoPE turns q and k; the cache then keeps the turned keys
            q, k = self.positional.rotate_qk(q, k, positions, positions)
            k_positions = positions
            if cache is not None:  # (B, Hkv, Tk, D) with Tk = offset + T
                k, v, k_positions = cache.append(k, v, positions)
            # ALiBi, T5: a score_mod the kernel evaluates tile by tile
            score_mod = self.positional.score_mod(positions, k_positions)
        masks = {"mask": mask, "key_padding_mask": key_padding_mask}
        out, weights = self._attend(  # (B, H, T, D)
            q, k, v, masks, bias, score_mod, causal, need_weights
        )
        # read or edit each head's output (annotated.analysis.ablation)
        if self.head_hook is not None:
            out = self.head_hook(out)  # (B, H, T, D)
        # (B, H, T, D) -> (B, T, H*D)
        out = out.transpose(1, 2).reshape(b, t, self.d_model)
        return self.out_proj(out), weights

    def _attend(self, q, k, v, masks, bias, score_mod, causal, need_weights):
        """The one kernel call: q ``(B, H, Tq, D)``, k and v
        ``(B, Hkv, Tk, D)``, ``masks`` the ``mask`` and
        ``key_padding_mask`` -> ``(out, weights or None)``."""
        spec = ATTENTION_KERNELS[self.kernel]
        settings = dict(self.kernel_params)
        if spec.dropout:
            settings["dropout_p"] = self.dropout if self.training else 0.0
        # a kernel that reads k/v per query head gets each k/v head repeated
        if need_weights or not spec.grouped_kv:
            groups = self.n_heads // self.n_kv_heads
            k, v = repeat_kv(k, groups), repeat_kv(v, groups)
        # the O(T²) form of the kernel returns the weights it uses
        kernel = spec.weights if need_weights else spec.fn
        out, weights = kernel(
            q,
            k,
            v,
            bias=bias,
            causal=causal,
            score_mod=score_mod,
            **masks,
            **settings,
        )
        return out, (weights if need_weights else None)

    def _check_inputs(self, x, context, positions, cache) -> None:
        """Refuse shapes a caller can get wrong (a config rules out more)."""
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(
                f"x must have shape (B, T, d_model={self.d_model}), got "
                f"{tuple(x.shape)}"
            )
        if context is None and positions is not None:
            check_positions(positions, x.shape[1])
        if context is not None and (
            cache is not None
            or context.dim() != 3
            or context.shape[::2] != x.shape[::2]
        ):
            raise ValueError(
                f"cross-attention reads a context of shape (B={x.shape[0]}, "
                f"Tk, d_model={self.d_model}) and no cache (a cache is for "
                f"self-attention decoding); got {tuple(context.shape)}"
            )
