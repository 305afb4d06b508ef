"""The networks the throughput benchmark times, and their sizes.

The library's decoder and :class:`ReferenceDecoder`, the same network built
from PyTorch's own layers, at the sizes of :data:`THROUGHPUT_SIZES`.

The library's decoder-only LM
(:class:`~annotated.models.transformer.DecoderOnly`: pre-LN, GELU, dropout 0,
learned positions or none ("nope"), tied head) against
``nn.TransformerEncoderLayer`` (``norm_first=True, batch_first=True``, causal
mask, the same ``d_ff``, dropout 0, GELU; token embedding + learned positions
+ final LayerNorm + tied head). The two have the same parameters and compute
the same function (:func:`copy_library_weights` copies the weights across; a
test compares the logits), so the ratio of their step times is the price of
the library's readable code.

The sizes are nanoGPT's CPU recipe for Tiny Shakespeare (README, "I only
have a macbook": 4 layers, 4 heads, width 128, context 64, batch 12,
vocabulary 65) and a wide-batch small model (2 layers, width 64, context 32,
batch 64).

Legend: B batch, T context, C width (d_model), V vocabulary, L layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from annotated.models.config import ModelConfig
from annotated.models.transformer import DecoderOnly, build_model


@dataclass(frozen=True)
class ThroughputSize:
    """One model and batch shape to time."""

    name: str
    n_layers: int
    n_heads: int
    d_model: int
    context: int  # T: tokens per sequence
    batch: int  # B: sequences per step
    vocab_size: int = 65  # Tiny Shakespeare's characters

    @property
    def tokens(self) -> int:
        """Tokens per training step, ``B · T``."""
        return self.batch * self.context


#: The timed sizes: nanoGPT's CPU recipe and a small model with a wide batch.
THROUGHPUT_SIZES = (
    ThroughputSize(
        "nanoGPT CPU",
        n_layers=4,
        n_heads=4,
        d_model=128,
        context=64,
        batch=12,
    ),
    ThroughputSize(
        "small", n_layers=2, n_heads=4, d_model=64, context=32, batch=64
    ),
)
# the library's encoding -> the reference has a position table
POSITIONS = {"learned": True, "nope": False}


class ReferenceDecoder(nn.Module):
    """A GPT built from PyTorch's layers.

    Embeddings (+ learned positions) → ``nn.TransformerEncoder`` of pre-LN
    layers under a causal mask → final LayerNorm → head tied to the token
    embedding."""

    def __init__(
        self,
        size: ThroughputSize,
        *,
        positions: bool = True,
        d_ff: int | None = None,
    ):
        super().__init__()
        c = size.d_model
        self.tok_emb = nn.Embedding(size.vocab_size, c)  # (V, C)
        # (T, C)
        self.pos_emb = nn.Embedding(size.context, c) if positions else None
        layer = nn.TransformerEncoderLayer(
            c,
            size.n_heads,
            d_ff or 4 * c,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, size.n_layers, enable_nested_tensor=False
        )
        self.final_norm = nn.LayerNorm(c)
        self.lm_head = nn.Linear(c, size.vocab_size, bias=False)
        # tied, as the library's default
        self.lm_head.weight = self.tok_emb.weight
        # (T, T): 0 or -inf
        causal = nn.Transformer.generate_square_subsequent_mask(size.context)
        self.register_buffer("causal_mask", causal, persistent=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Token ids ``(B, T)`` → logits ``(B, T, V)``."""
        t = idx.shape[1]
        x = self.tok_emb(idx)  # (B, T, C)
        if self.pos_emb is not None:
            # (T, C) broadcast over B
            x = x + self.pos_emb(torch.arange(t, device=idx.device))
        # (B, T, C)
        x = self.encoder(x, mask=self.causal_mask[:t, :t], is_causal=True)
        return self.lm_head(self.final_norm(x))  # (B, T, V)


def library_decoder(
    size: ThroughputSize, positional: str = "learned"
) -> DecoderOnly:
    """The library's decoder at ``size``, configured as the reference.

    Pre-LN, GELU, dropout 0, tied head, ``max_len`` = context."""
    if positional not in POSITIONS:
        raise ValueError(
            f"positional must be one of {sorted(POSITIONS)} (the reference "
            f"has no other), got {positional!r}"
        )
    config = ModelConfig(
        arch="decoder",
        vocab_size=size.vocab_size,
        d_model=size.d_model,
        n_layers=size.n_layers,
        n_heads=size.n_heads,
        max_len=size.context,
        positional=positional,
        norm="pre",
        activation="gelu",
        dropout=0.0,
        tie_weights=True,
    )
    return build_model(config)


@torch.no_grad()
def copy_library_weights(
    reference: ReferenceDecoder, library: DecoderOnly
) -> ReferenceDecoder:
    """Load ``library``'s weights into ``reference``; returns it.

    q, k and v are stacked into ``in_proj``."""
    reference.tok_emb.weight.copy_(library.tok_emb.weight)
    if reference.pos_emb is not None:
        reference.pos_emb.weight.copy_(
            library.decoder.positional.table.weight
        )
    for ours, theirs in zip(
        library.decoder.blocks, reference.encoder.layers, strict=True
    ):
        attn = ours.self_attn.sublayer
        projections = (attn.q_proj, attn.k_proj, attn.v_proj)
        # (3C, C)
        theirs.self_attn.in_proj_weight.copy_(
            torch.cat([p.weight for p in projections])
        )
        # (3C,)
        theirs.self_attn.in_proj_bias.copy_(
            torch.cat([p.bias for p in projections])
        )
        pairs = [
            (attn.out_proj, theirs.self_attn.out_proj),
            (ours.ff.sublayer.up, theirs.linear1),
            (ours.ff.sublayer.down, theirs.linear2),
            (ours.self_attn.norm, theirs.norm1),
            (ours.ff.norm, theirs.norm2),
            (library.decoder.final_norm, reference.final_norm),
        ]
        for source, target in pairs:
            target.weight.copy_(source.weight)
            target.bias.copy_(source.bias)
    return reference
