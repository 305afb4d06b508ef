"""Attention masks: which keys each query may look at.

Convention used everywhere in this library (and by PyTorch's
``F.scaled_dot_product_attention`` for boolean masks): a mask is a boolean tensor
broadcastable to the score shape ``(B, H, Tq, Tk)`` and ``True`` means *may attend*.
``False`` entries get a score of ``-inf`` before the softmax.

Legend: B batch, H heads, Tq query length, Tk key length.

Every function returns a fresh boolean tensor; combine them with :func:`combine_masks`
(logical AND: a key is visible only if every mask allows it).
"""

from __future__ import annotations

import torch


def causal_mask(t_q: int, t_k: int | None = None, *, device=None) -> torch.Tensor:
    """Lower-triangular mask: query ``i`` sees keys ``0 … i`` (GPT, Radford et al. 2018).

    When ``t_k > t_q`` (new queries appended to a cached prefix), the queries are the
    *last* ``t_q`` positions, so query ``i`` sees keys ``0 … i + (t_k - t_q)``.

    >>> causal_mask(3).int()
    tensor([[1, 0, 0],
            [1, 1, 0],
            [1, 1, 1]], dtype=torch.int32)
    """
    t_k = t_q if t_k is None else t_k
    if t_q <= 0 or t_k <= 0:
        raise ValueError(f"causal_mask needs positive lengths, got t_q={t_q}, t_k={t_k}")
    offset = t_k - t_q
    return torch.ones(t_q, t_k, dtype=torch.bool, device=device).tril(diagonal=offset)  # (Tq, Tk)


def padding_mask(lengths, max_len: int | None = None, *, device=None) -> torch.Tensor:
    """Hide padded keys: sequence ``b`` has ``lengths[b]`` real tokens, then padding.

    Returns shape ``(B, 1, 1, Tk)`` so it broadcasts over heads and queries.

    >>> padding_mask([2, 3], 4)[:, 0, 0].int()
    tensor([[1, 1, 0, 0],
            [1, 1, 1, 0]], dtype=torch.int32)
    """
    lengths = torch.as_tensor(lengths, device=device)
    if lengths.dim() != 1:
        raise ValueError(f"lengths must be 1-D (one length per sequence), got shape {tuple(lengths.shape)}")
    max_len = int(lengths.max()) if max_len is None else max_len
    if (lengths < 0).any() or (lengths > max_len).any():
        raise ValueError(f"every length must lie in [0, {max_len}], got {lengths.tolist()}")
    keep = torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]  # (B, Tk)
    return keep[:, None, None, :]  # (B, 1, 1, Tk)


def sliding_window_mask(t_q: int, window: int, t_k: int | None = None, *, causal: bool = True, device=None) -> torch.Tensor:
    """Local attention (Beltagy et al. 2020): query ``i`` sees keys within ``window`` positions.

    Causal: keys ``i - window + 1 … i`` (``window`` keys including itself).
    Bidirectional: keys with ``|i - j| < window``.
    """
    if window <= 0:
        raise ValueError(f"window must be a positive number of positions, got {window}")
    t_k = t_q if t_k is None else t_k
    offset = t_k - t_q
    i = torch.arange(t_q, device=device)[:, None] + offset  # absolute query positions
    j = torch.arange(t_k, device=device)[None, :]
    dist = i - j  # (Tq, Tk)
    if causal:
        return (dist >= 0) & (dist < window)
    return dist.abs() < window


def global_token_mask(t: int, global_positions, *, device=None) -> torch.Tensor:
    """Longformer's global tokens: listed positions see everything and are seen by everyone.

    Combine with a local mask by logical OR: ``sliding_window_mask(...) | global_token_mask(...)``.
    """
    g = torch.zeros(t, dtype=torch.bool, device=device)
    g[torch.as_tensor(global_positions, dtype=torch.long, device=device)] = True
    return g[:, None] | g[None, :]  # (T, T)


def prefix_mask(t: int, prefix_len: int, *, device=None) -> torch.Tensor:
    """Prefix LM (Raffel et al. 2020): the first ``prefix_len`` tokens see each other fully,
    the rest attend causally."""
    if not 0 <= prefix_len <= t:
        raise ValueError(f"prefix_len must lie in [0, {t}], got {prefix_len}")
    m = causal_mask(t, device=device)
    m[:, :prefix_len] = True
    return m


def combine_masks(*masks: torch.Tensor | None) -> torch.Tensor | None:
    """Logical AND of the given masks (``None`` entries are ignored); broadcasting applies."""
    out = None
    for m in masks:
        if m is None:
            continue
        if m.dtype != torch.bool:
            raise ValueError(f"masks must be boolean (True = may attend), got dtype {m.dtype}")
        out = m if out is None else out & m
    return out
