"""Multi-head attention and its key-value cache (Vaswani et al. 2017, §3.2.2).

:class:`MultiHeadAttention` projects the input into H heads, lets each head
attend with one kernel of :mod:`annotated.kernels` (dense SDPA by default, the
reference :func:`attend` when the weights are wanted) and joins the heads
again. Positional encodings act where they
declare: RoPE rotates q and k here, ALiBi and T5 hand the kernel a
``score_mod``. :class:`KVCache` keeps the keys and values of earlier tokens
for decoding.

Legend: B batch, T/Tq query length, Tk key length, C d_model, H heads, Hkv k/v
heads, D head dim.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from annotated.attention.attend import check_mask_and_bias
from annotated.kernels import ATTENTION_KERNELS, check_kernel_params
from annotated.positional import PositionalEncoding


def repeat_kv(t: torch.Tensor, groups: int) -> torch.Tensor:
    """Grouped-query attention: let ``groups`` consecutive query heads share
    one k/v head.

    ``(B, Hkv, T, D) -> (B, Hkv * groups, T, D)``; query head ``h`` reads k/v
    head ``h // groups`` (the same grouping as
    ``F.scaled_dot_product_attention(..., enable_gqa=True)``).
    """
    return t if groups == 1 else t.repeat_interleave(groups, dim=-3)


@dataclass
class KVCache:
    """Keys and values of the tokens a self-attention layer has already seen
    (one per layer).

    Decoding token by token, a causal layer would recompute k and v for the
    whole prefix at every step; instead :class:`MultiHeadAttention` appends
    the new tokens' k and v here (k *after* RoPE rotation, so old keys never
    need re-rotating) and attends over all of them. The key positions are kept
    too, for score biases (ALiBi, T5). The cache holds ``n_kv_heads`` heads,
    which is where GQA/MQA save memory. It grows by concatenation — simple,
    not the fastest. Start a new one (or call :meth:`reset`) for a new batch.
    """

    k: torch.Tensor | None = None  # (B, Hkv, T_past, D)
    v: torch.Tensor | None = None  # (B, Hkv, T_past, D)
    positions: torch.Tensor | None = None  # (T_past,) or (B, T_past)

    @property
    def seq_len(self) -> int:
        """Number of tokens cached so far (the position offset of the next
        token)."""
        return 0 if self.k is None else self.k.shape[-2]

    def append(
        self, k: torch.Tensor, v: torch.Tensor, positions: torch.Tensor
    ) -> tuple:
        """Add the new tokens' ``k, v (B, Hkv, T_new, D)`` in place; return
        all ``(k, v, positions)``."""
        if self.k is None:
            self.k, self.v, self.positions = k, v, positions
        else:
            if k.shape[0] != self.k.shape[0] or k.shape[1] != self.k.shape[1]:
                raise ValueError(
                    f"new keys {tuple(k.shape)} do not match the cached batch/heads {tuple(self.k.shape)}; "
                    "use a fresh KVCache (or reset()) for a new batch"
                )
            old, new = self.positions, positions
            # mix of shared (T,) and per-sequence (B, T) positions
            if old.dim() != new.dim():
                old, new = (
                    p if p.dim() == 2 else p.expand(k.shape[0], -1)
                    for p in (old, new)
                )
            # (B, Hkv, T_past + T_new, D)
            self.k = torch.cat([self.k, k], dim=-2)
            self.v = torch.cat([self.v, v], dim=-2)
            self.positions = torch.cat([old, new], dim=-1)
        return self.k, self.v, self.positions

    def reset(self) -> None:
        self.k = self.v = self.positions = None


class MultiHeadAttention(nn.Module):
    """Multi-head attention (Vaswani et al. 2017, §3.2.2) with grouped-query
    attention.

        head_h = Attention(X W_q^h, C W_k^g(h), C W_v^g(h)),   out = concat(head_1..head_H) W_o

    with ``C = X`` for self-attention and ``C = context`` for cross-attention.
    Each head attends in its own ``D = d_model / n_heads``-dim subspace. With
    ``n_kv_heads < n_heads`` (GQA, Ainslie et al. 2023; MQA when
    ``n_kv_heads = 1``, Shazeer 2019) groups of ``n_heads / n_kv_heads`` query
    heads share one key/value head: fewer k/v parameters and a smaller KV
    cache.

    ``positional`` is a :class:`~annotated.positional.PositionalEncoding`
    acting where it
    declares: ``where == "qk"`` (RoPE) rotates q and k here; ``"score"``
    (ALiBi, T5) hands the kernel its ``score_mod``; ``"embedding"`` and
    ``"none"`` do nothing here (the model adds embedding encodings to its
    input). Cross-attention gets no positional encoding.

    ``kernel`` names an entry of :data:`annotated.kernels.ATTENTION_KERNELS`
    ("full" = SDPA, "blockwise", "local", "linear", "topk", "flex"), with its
    settings in ``kernel_params`` (e.g. ``{"window": 64}``). With
    ``need_weights=True`` the kernel's O(T²) form runs
    (:func:`~annotated.kernels.kernel_weights`; for "full" the reference
    :func:`attend`) and returns the weights ``(B, H, Tq, Tk)`` *that kernel
    uses*, so a plot or an entropy sees the approximation, not dense
    attention. Paths are tested to agree. Only "full" has attention dropout.

    Legend: B batch, T/Tq query length, Tk key length, C d_model, H heads, Hkv
    k/v heads, D head dim.
    """

    # a callable (B, H, T, D) -> (B, H, T, D) on the heads' outputs, or None
    # (annotated.analysis.interpret)
    head_hook = None

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
            raise ValueError(
                f"d_model, n_heads, n_kv_heads must be positive; got {d_model}, {n_heads}, {n_kv_heads}"
            )
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
        self.d_model, self.n_heads, self.n_kv_heads = (
            d_model,
            n_heads,
            n_kv_heads,
        )
        self.head_dim = d_model // n_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(d_model, n_heads * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(
            d_model, n_kv_heads * self.head_dim, bias=bias
        )
        self.v_proj = nn.Linear(
            d_model, n_kv_heads * self.head_dim, bias=bias
        )
        self.out_proj = nn.Linear(n_heads * self.head_dim, d_model, bias=bias)
        self.positional = positional
        self._check_positional(positional)
        self.use_kernel(kernel, kernel_params)

    def use_kernel(
        self, kernel: str = "full", kernel_params: dict | None = None
    ) -> MultiHeadAttention:
        """Choose the attention kernel by name (see the class docstring);
        returns ``self``."""
        self.kernel, self.kernel_params = (
            kernel,
            check_kernel_params(kernel, kernel_params),
        )
        if not ATTENTION_KERNELS[kernel].dropout and self.dropout > 0:
            raise ValueError(
                f"kernel={kernel!r} has no attention dropout, but dropout={self.dropout}; "
                "set dropout=0 or use kernel='full'"
            )
        if (
            self.positional is not None
            and self.positional.where == "score"
            and not ATTENTION_KERNELS[kernel].score_mods
        ):
            raise ValueError(
                f"kernel={kernel!r} cannot apply the score_mod of {type(self.positional).__name__}; "
                "use a kernel that takes score mods or a positional encoding that acts on q/k or the embeddings"
            )
        return self

    def extra_repr(self) -> str:
        return (
            ""
            if self.kernel == "full"
            else f"kernel={self.kernel!r}, kernel_params={self.kernel_params}"
        )

    def _check_positional(self, positional) -> None:
        if positional is None:
            return
        if not isinstance(positional, PositionalEncoding):
            raise ValueError(
                f"positional must be a PositionalEncoding module or None, got {type(positional).__name__}; "
                "build one with annotated.positional.make_positional(name, ...)"
            )
        positional.check_attention(
            head_dim=self.head_dim, n_heads=self.n_heads
        )

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
                attend. With a cache, ``Tk`` counts the cached tokens too.
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
            cache: a :class:`KVCache` for incremental self-attention decoding;
                the new k, v are appended to it in place. Feeding a sequence
                in pieces with ``causal=True`` gives the same outputs as
                feeding it whole.

        Returns:
            ``(out (B, T, C), weights (B, H, T, Tk) or None)``.
        """
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(
                f"x must have shape (B, T, d_model={self.d_model}), got {tuple(x.shape)}"
            )
        b, t, _ = x.shape
        score_mod = None
        q = self._split_heads(self.q_proj(x), self.n_heads)  # (B, H, T, D)
        if context is None:  # self-attention: positions and the cache apply
            # (B, Hkv, T, D)
            k = self._split_heads(self.k_proj(x), self.n_kv_heads)
            # (B, Hkv, T, D)
            v = self._split_heads(self.v_proj(x), self.n_kv_heads)
            offset = 0 if cache is None else cache.seq_len
            if positions is None:
                # (T,)
                positions = torch.arange(offset, offset + t, device=x.device)
            elif (
                positions.dim() not in (1, 2)
                or positions.shape[-1] != t
                or positions.is_floating_point()
            ):
                raise ValueError(
                    f"positions must be integers of shape (T,) or (B, T) with T={t}, got {tuple(positions.shape)}"
                )
            k_positions = positions
            pe = self.positional
            if pe is not None and pe.where == "qk":
                # rotate before caching
                q, k = pe.rotate_qk(q, k, positions, positions)
            if cache is not None:
                # (B, Hkv, Tk, D) with Tk = offset + T
                k, v, k_positions = cache.append(k, v, positions)
            if pe is not None and pe.where == "score":
                # evaluated by the kernel, tile by tile
                score_mod = pe.score_mod(positions, k_positions)
        # cross-attention: keys and values from the context, no positions
        else:
            if cache is not None:
                raise ValueError(
                    "cache is for self-attention decoding; for cross-attention pass context without cache"
                )
            if (
                context.dim() != 3
                or context.shape[0] != b
                or context.shape[-1] != self.d_model
            ):
                raise ValueError(
                    f"context must have shape (B={b}, Tk, d_model={self.d_model}), got {tuple(context.shape)}"
                )
            # (B, Hkv, Tk, D)
            k = self._split_heads(self.k_proj(context), self.n_kv_heads)
            # (B, Hkv, Tk, D)
            v = self._split_heads(self.v_proj(context), self.n_kv_heads)
        check_mask_and_bias(mask, bias, (b, self.n_heads, t, k.shape[-2]))
        # (B, H, T, D)
        out, weights = self._attend(
            q, k, v, mask, bias, score_mod, causal, need_weights
        )
        # read or edit each head's output before W_o
        # (annotated.analysis.interpret's ablations)
        if self.head_hook is not None:
            out = self.head_hook(out)  # (B, H, T, D)
        # (B, H, T, D) -> (B, T, H*D)
        out = out.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim)
        return self.out_proj(out), weights

    def _attend(
        self, q, k, v, mask, bias, score_mod, causal: bool, need_weights: bool
    ):
        """The one kernel call: q ``(B, H, Tq, D)``, k and v
        ``(B, Hkv, Tk, D)`` -> ``(out, weights or None)``."""
        spec = ATTENTION_KERNELS[self.kernel]
        groups = self.n_heads // self.n_kv_heads
        call = {
            "causal": causal,
            "score_mod": score_mod,
            **self.kernel_params,
        }
        if spec.dropout:
            call["dropout_p"] = self.dropout if self.training else 0.0
        # the O(T²) form of the kernel, which returns the weights it uses
        if need_weights:
            return spec.weights(
                q,
                repeat_kv(k, groups),
                repeat_kv(v, groups),
                mask=mask,
                bias=bias,
                **call,
            )
        if not spec.grouped_kv:
            k, v = repeat_kv(k, groups), repeat_kv(v, groups)
        out, _ = spec.fn(q, k, v, mask=mask, bias=bias, **call)
        return out, None
