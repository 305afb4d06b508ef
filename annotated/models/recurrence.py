"""Segment-level recurrence with a memory of the previous segment
(Transformer-XL, Dai et al. 2019).

A decoder-only model reads a long sequence in segments of length S. Without
recurrence each segment starts from nothing, so no token can see past its
segment's start. Transformer-XL keeps, for every layer l, the inputs of that
layer for the last M tokens of the previous segment(s), the memory m^l, and
lets the segment's queries attend over both:

    h̃^l = [SG(m^l) ; h^l]           (B, M + S, C): memory, then the segment
    k^l, v^l = h̃^l W_k, h̃^l W_v     q^l = h^l W_q: queries for the segment
    h^(l+1) = Block(q^l attends causally to k^l, v^l)

SG is stop-gradient: the memory is detached, so backpropagation stays inside
the segment (truncated backpropagation through time) and memory costs no
activations; the weights W_k, W_v still receive gradient from the memory's
keys and values, which are recomputed from the cached hidden states with the
current weights. The receptive field grows by M per layer, so an L-layer model
can see up to L·M tokens back.

Positions. We keep each token's absolute index in the stream (segment n starts
at n·S) and require an encoding that depends only on distances: RoPE (rotates
q and k, the default), ALiBi or T5's relative bias (score biases from
``q_pos − k_pos``), or NoPE. The memory's keys then sit at the right distance
from the current queries. Embedding-level absolute encodings (learned,
sinusoidal, randomized) are refused: they would add positions far beyond the
training range to the segment's input. Transformer-XL's own relative scheme
(with its u, v bias vectors) is left out; RoPE plays its role.

How: for each layer the memory's keys and values are put in a fresh
:class:`~annotated.attention.cache.KVCache` by running that layer's
self-attention sub-layer on the memory (its own outputs are thrown away); then
the block runs on the segment with that cache, exactly as in cached decoding.
Nothing of attention or the feed-forward network is re-implemented here. Left
out: the relative positional scheme of the paper, adaptive softmax, memory for
encoder or encoder-decoder models.

Legend: B batch, S segment length, M memory length, C d_model, V vocab, L
layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from annotated.attention.cache import KVCache
from annotated.core.fields import check_token_ids as _check_ids
from annotated.models.transformer import DecoderOnly, ModelOutput


@dataclass
class SegmentMemory:
    """What one segment leaves for the next: per-layer hidden states and their
    positions.

    ``states[l]`` holds the inputs of layer ``l`` for the last ``M`` tokens,
    detached ``(B, M, C)``; ``positions`` their absolute indices in the stream
    ``(M,)``; ``next_position`` where the stream goes on (also when
    ``M = 0``).
    """

    states: list[torch.Tensor]
    positions: torch.Tensor
    next_position: int  # absolute index of the next segment's first token

    @property
    def length(self) -> int:
        return self.positions.numel()


def check_recurrent_model(model) -> None:
    """Refuse a model segment recurrence cannot serve; say what to change."""
    if not isinstance(model, DecoderOnly):
        raise ValueError(
            "segment recurrence needs a decoder-only model, got "
            f"{type(model).__name__}"
        )
    if model.decoder.positional.where == "embedding":
        raise ValueError(
            "segment recurrence needs a relative positional encoding, but "
            f"positional={model.config.positional!r} adds absolute positions "
            "to the embeddings; use positional='rope', 'alibi', 't5' or "
            "'nope'"
        )


def forward_segment(
    model: DecoderOnly,
    idx: torch.Tensor,
    memory: SegmentMemory | None = None,
    *,
    mem_len: int | None = None,
    need_weights: bool = False,
) -> tuple[ModelOutput, SegmentMemory]:
    """Run one segment ``idx (B, S)`` after ``memory``; return its output and
    the new memory.

    The segment's tokens sit at positions
    ``memory.next_position + 0 … S − 1``. The new memory keeps the last
    ``mem_len`` (default S) tokens of ``[old memory ; this segment]`` per
    layer, detached. ``mem_len=0`` keeps none (segments become independent).
    With ``need_weights``, the attentions are ``(B, H, S, M + S)``: memory
    keys first.
    """
    check_recurrent_model(model)
    _check_ids(idx, model.config.vocab_size)
    b, s = idx.shape
    mem_len = s if mem_len is None else mem_len
    if (
        isinstance(mem_len, bool)
        or not isinstance(mem_len, int)
        or mem_len < 0
    ):
        raise ValueError(
            "mem_len must be a non-negative integer (tokens kept per "
            f"layer), got {mem_len!r}"
        )
    stack = model.decoder
    if memory is not None and (
        len(memory.states) != len(stack.blocks)
        or memory.states[0].shape[0] != b
    ):
        raise ValueError(
            f"memory holds {len(memory.states)} layers of batch "
            f"{memory.states[0].shape[0]}, but the model has "
            f"{len(stack.blocks)} layers and this segment a batch of {b}; "
            "start with memory=None for a new stream"
        )
    start = 0 if memory is None else memory.next_position
    # (S,) absolute positions in the stream
    positions = torch.arange(start, start + s, device=idx.device)
    # (B, S, C); no-op for relative encodings
    x = stack.drop(stack.positional(model.embed(idx), positions))
    # (M_old,)
    old_positions = positions[:0] if memory is None else memory.positions
    # the new memory: the last mem_len tokens
    keep_from = max(0, old_positions.numel() + s - mem_len)
    states, attentions = [], []
    for i, block in enumerate(stack.blocks):
        cache = KVCache()
        # the memory's keys and values, from the current weights
        if memory is not None and memory.length:
            block.self_attn(
                memory.states[i],
                causal=True,
                positions=memory.positions,
                cache=cache,
            )
        old = memory.states[i] if memory is not None else x[:, :0]
        # (B, ≤ M, C) layer inputs, detached
        states.append(torch.cat([old, x], dim=1)[:, keep_from:].detach())
        # (B, S, C)
        x, weights, _ = block(
            x, need_weights=need_weights, positions=positions, cache=cache
        )
        attentions.append(weights)
    kept = torch.cat([old_positions, positions])[keep_from:]  # (≤ M,)
    logits = model.lm_head(stack.final_norm(x))  # (B, S, V)
    return ModelOutput(
        logits, attentions if need_weights else None
    ), SegmentMemory(states, kept, start + s)


def forward_in_segments(
    model: DecoderOnly,
    idx: torch.Tensor,
    segment_len: int,
    *,
    mem_len: int | None = None,
) -> ModelOutput:
    """Logits ``(B, T, V)`` of a long sequence read in segments of
    ``segment_len`` with memory.

    Gradients flow within each segment only (the memory is detached), so a
    loss on the result trains exactly like Transformer-XL's truncated
    backpropagation. With ``mem_len ≥ T`` every past token stays in memory
    and, the model being causal, the logits equal the plain model's on the
    whole sequence (tests check it).
    """
    if (
        isinstance(segment_len, bool)
        or not isinstance(segment_len, int)
        or segment_len <= 0
    ):
        raise ValueError(
            f"segment_len must be a positive integer, got {segment_len!r}"
        )
    memory, pieces = None, []
    for start in range(0, idx.shape[1], segment_len):
        out, memory = forward_segment(
            model,
            idx[:, start : start + segment_len],
            memory,
            mem_len=segment_len if mem_len is None else mem_len,
        )
        pieces.append(out.logits)
    return ModelOutput(torch.cat(pieces, dim=1))
