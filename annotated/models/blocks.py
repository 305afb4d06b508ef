"""The transformer block: attention and a feed-forward network, each inside a
residual sub-layer.

Vaswani et al. (2017, §3.1) stack blocks of two sub-layers, self-attention
then a position-wise feed-forward network (FFN); a decoder block that reads an
encoder adds cross-attention in between. Every sub-layer ``f`` sits in a
residual connection with a LayerNorm (Ba et al. 2016; or an RMSNorm, see
:mod:`annotated.models.norms`), placed in one of two ways::

    post-LN (the original):      x ← LN(x + Dropout(f(x)))
    pre-LN  (GPT-2, most since): x ← x + Dropout(f(LN(x)))
                                 (+ one final LN after the stack)

Xiong et al. (2020, "On Layer Normalization in the Transformer Architecture")
show that at initialisation post-LN has large gradients near the output, so it
needs a learning-rate warm-up, while pre-LN keeps the identity path ``x + …``
free of normalisation and trains without one. Chapter 4 measures both.

One block class serves all three architectures: :class:`EncoderBlock`
(bidirectional self-attention, BERT and the T5 encoder) and
:class:`DecoderBlock` (causal self-attention, GPT; plus cross-attention to an
encoder output, the T5 decoder) are :class:`TransformerBlock` with two flags
set. The self-attention runs the kernel a block is built with (see
:mod:`annotated.kernels`); cross-attention stays dense.

Legend: B batch, T time (queries), S encoder length (keys of cross-attention),
C d_model, F d_ff, H heads, Tk keys of self-attention (cached tokens
included).
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn as nn

from annotated.attention.cache import KVCache
from annotated.attention.multihead import MultiHeadAttention
from annotated.core.fields import check_choice
from annotated.models.config import NORM_PLACEMENTS
from annotated.models.feedforward import (
    GATED_ACTIVATIONS,
    FeedForward,
    GatedFeedForward,
    default_d_ff,
)
from annotated.models.norms import make_norm


class Residual(nn.Module):
    """A sub-layer ``f`` inside a residual connection with a norm, pre- or
    post-LN.

    ``forward(x, *args, **kwargs)`` calls ``f(h, *args, **kwargs)`` on
    ``h = LN(x)`` (pre) or ``h = x`` (post); extra arguments (an encoder
    output for cross-attention, masks, a cache) pass through untouched — in
    particular the encoder output is not normalised here. ``f`` may return a
    tensor or a tuple ``(tensor, extra)`` such as attention's
    ``(out, weights)``; the result is always ``(new x, extra or None)``.
    ``norm_type`` picks LayerNorm or RMSNorm
    (:func:`~annotated.models.norms.make_norm`; ``LN`` above stands for
    either); ``eps`` is its ε (PyTorch's and GPT-2's 1e-5; BERT's 1e-12) and
    ``norm_bias`` whether a LayerNorm has its shift.
    """

    def __init__(
        self,
        sublayer: nn.Module,
        d_model: int,
        *,
        norm: str = "pre",
        dropout: float = 0.0,
        eps: float = 1e-5,
        norm_type: str = "layernorm",
        norm_bias: bool = True,
    ):
        super().__init__()
        check_choice("norm placement", norm, NORM_PLACEMENTS)
        self.sublayer, self.norm_placement = sublayer, norm
        self.norm = make_norm(norm_type, d_model, eps=eps, bias=norm_bias)
        self.drop = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, *args, **kwargs
    ) -> tuple[torch.Tensor, object]:
        pre = self.norm_placement == "pre"
        out = self.sublayer(self.norm(x) if pre else x, *args, **kwargs)
        out, extra = out if isinstance(out, tuple) else (out, None)
        x = x + self.drop(out)  # the residual path: (B, T, C)
        return (x if pre else self.norm(x)), extra


class TransformerBlock(nn.Module):
    """Self-attention → [cross-attention] → feed-forward, each a
    :class:`Residual` sub-layer.

    Args:
        causal: self-attention sees only earlier positions (decoder) or all
            (encoder).
        cross_attention: add a cross-attention sub-layer reading an encoder
            output (``memory``); its queries come from this block, its keys
            and values from ``memory``.
        positional: a :class:`~annotated.positional.PositionalEncoding` for
            the self-attention (RoPE, ALiBi, T5 bias act there);
            cross-attention gets none.
        n_kv_heads: grouped-query attention in both attentions (see
            :class:`~annotated.attention.multihead.MultiHeadAttention`).
        kernel, kernel_params: the self-attention's kernel and its settings
            (an entry of :data:`annotated.kernels.ATTENTION_KERNELS`).
        norm_eps: the ε of every norm in the block (1e-5, as PyTorch and
            GPT-2; BERT: 1e-12).
        norm_type, norm_bias: LayerNorm (with or without its shift) or
            RMSNorm (:mod:`annotated.models.norms`).
        activation: names a plain or a gated feed-forward network
            (:mod:`annotated.models.feedforward`); ``d_ff=None`` is then
            4 · C or 8/3 · C.
        qk_norm: RMS-normalise every head's queries and keys, in both
            attentions (:mod:`annotated.attention.qk_norm`).

    ``forward`` returns ``(x (B, T, C), self weights (B, H, T, Tk) or None,
    cross weights (B, H, T, S) or None)``; weights are computed only with
    ``need_weights=True``.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int | None = None,
        *,
        n_kv_heads: int | None = None,
        causal: bool = False,
        cross_attention: bool = False,
        norm: str = "pre",
        activation: str = "gelu",
        dropout: float = 0.0,
        bias: bool = True,
        positional=None,
        kernel: str = "full",
        kernel_params: dict | None = None,
        norm_eps: float = 1e-5,
        norm_type: str = "layernorm",
        norm_bias: bool = True,
        qk_norm: bool = False,
    ):
        super().__init__()
        d_ff = default_d_ff(d_model, activation) if d_ff is None else d_ff
        self.causal = causal
        attention = partial(
            MultiHeadAttention,
            d_model,
            n_heads,
            n_kv_heads,
            bias=bias,
            dropout=dropout,
            qk_norm=qk_norm,
            norm_eps=norm_eps,
        )
        residual = partial(
            Residual,
            d_model=d_model,
            norm=norm,
            dropout=dropout,
            eps=norm_eps,
            norm_type=norm_type,
            norm_bias=norm_bias,
        )
        self.self_attn = residual(
            attention(
                positional=positional,
                kernel=kernel,
                kernel_params=kernel_params,
            )
        )
        # cross-attention: dense, and no positions
        self.cross_attn = residual(attention()) if cross_attention else None
        gated = activation in GATED_ACTIVATIONS  # SwiGLU
        ffn = GatedFeedForward if gated else FeedForward
        self.ff = residual(ffn(d_model, d_ff, activation, dropout, bias=bias))

    def residual_outputs(self) -> list[nn.Linear]:
        """The layers that write into the residual stream: each attention's
        ``out_proj`` and the feed-forward network's ``down``."""
        attentions = [self.self_attn, self.cross_attn]
        return [
            *(a.sublayer.out_proj for a in attentions if a is not None),
            self.ff.sublayer.down,
        ]

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None = None,
        *,
        mask: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
        need_weights: bool = False,
        positions: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Run the block on ``x (B, T, C)``.

        Args:
            memory: the encoder output ``(B, S, C)``; required exactly when
                the block has cross-attention.
            mask: boolean self-attention mask broadcastable to
                ``(B, H, T, Tk)``, True = may attend (e.g. key padding
                ``(B, 1, 1, Tk)``); the causal mask is added by the block.
            memory_mask: boolean mask over the encoder positions,
                broadcastable to ``(B, H, T, S)``.
            positions, cache: passed to the self-attention (see
                ``MultiHeadAttention.forward``).
        """
        if memory is None and self.cross_attn is not None:
            raise ValueError(
                "this block has cross-attention: pass the encoder output as "
                "memory"
            )
        if memory is not None and self.cross_attn is None:
            raise ValueError(
                "this block has no cross-attention, so it cannot read "
                "memory; build it with cross_attention=True"
            )
        x, self_weights = self.self_attn(
            x,
            mask=mask,
            causal=self.causal,
            need_weights=need_weights,
            positions=positions,
            cache=cache,
        )
        cross_weights = None
        if self.cross_attn is not None:
            x, cross_weights = self.cross_attn(
                x, memory, mask=memory_mask, need_weights=need_weights
            )
        x, _ = self.ff(x)
        return x, self_weights, cross_weights


class EncoderBlock(TransformerBlock):
    """Bidirectional self-attention + feed-forward (BERT, the T5 encoder):
    every position sees every other."""

    def __init__(
        self, d_model: int, n_heads: int, d_ff: int | None = None, **kwargs
    ):
        super().__init__(
            d_model,
            n_heads,
            d_ff,
            causal=False,
            cross_attention=False,
            **kwargs,
        )


class DecoderBlock(TransformerBlock):
    """Causal self-attention [+ cross-attention to an encoder output] +
    feed-forward.

    ``cross_attention=False``: a GPT block. ``True``: a T5 /
    original-transformer decoder block.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int | None = None,
        *,
        cross_attention: bool = False,
        **kwargs,
    ):
        super().__init__(
            d_model,
            n_heads,
            d_ff,
            causal=True,
            cross_attention=cross_attention,
            **kwargs,
        )
