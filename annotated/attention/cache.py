"""The key-value cache of incremental decoding.

Decoding token by token, a causal layer would recompute k and v for the whole
prefix at every step; instead
:class:`~annotated.attention.multihead.MultiHeadAttention` appends the new
tokens' k and v to a :class:`KVCache` and attends over all of them.

Legend: B batch, Hkv k/v heads, T_past cached tokens, T_new new tokens, D head
dim.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class KVCache:
    """Keys and values of the tokens a self-attention layer has already seen
    (one per layer).

    k is stored *after* RoPE's rotation, so old keys never need re-rotating.
    The key positions are kept too, for score biases (ALiBi, T5). The cache
    holds ``n_kv_heads`` heads, which is where GQA/MQA save memory. It grows
    by concatenation — simple, not the fastest. Start a new one (or call
    :meth:`reset`) for a new batch.
    """

    k: torch.Tensor | None = None  # (B, Hkv, T_past, D)
    v: torch.Tensor | None = None  # (B, Hkv, T_past, D)
    positions: torch.Tensor | None = None  # (T_past,) or (B, T_past)

    @property
    def seq_len(self) -> int:
        """Number of tokens cached so far (the position of the next one)."""
        return 0 if self.k is None else self.k.shape[-2]

    def append(
        self, k: torch.Tensor, v: torch.Tensor, positions: torch.Tensor
    ) -> tuple:
        """Add the new tokens' ``k, v (B, Hkv, T_new, D)`` in place; return
        all ``(k, v, positions)``."""
        if self.k is None:
            self.k, self.v, self.positions = k, v, positions
            return self.k, self.v, self.positions
        if k.shape[:2] != self.k.shape[:2]:
            raise ValueError(
                f"new keys {tuple(k.shape)} do not match the cached "
                f"batch/heads {tuple(self.k.shape)}; use a fresh KVCache "
                "(or reset()) for a new batch"
            )
        old, new = self.positions, positions
        # a mix of shared (T,) and per-sequence (B, T) positions: (B, T) both
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
