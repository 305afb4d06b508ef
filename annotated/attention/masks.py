"""Attention masks as small functions: which keys each query may look at.

A mask is a *predicate* over one score entry, PyTorch FlexAttention's
``mask_mod``::

    mask_mod(b, h, q_idx, k_idx) -> bool
        True = query q_idx of (batch b, head h) may read key k_idx

and a score modification is FlexAttention's ``score_mod``::

    score_mod(score, b, h, q_idx, k_idx) -> score
        e.g. ALiBi: score - slope[h] * (q_idx - k_idx)

Both are written for one entry but called with *index tensors that broadcast*
to a block of scores (B, H, Tq, Tk), or to one tile of it: a kernel that works
tile by tile asks only for the tile's entries, so no (Tq, Tk) tensor ever has
to exist. Where a dense tensor is the lesson (a heat map, the SDPA fast path),
:func:`materialize_mask` and :func:`materialize_score` evaluate a mod over the
whole grid.

Index convention (the library's everywhere): ``k_idx`` is a key's index
``0 … Tk-1`` and the queries are the *last* Tq positions of the keys, so
``q_idx = (Tk - Tq) + i`` for query row ``i``. With Tq = Tk that is just
``i``; with a KV cache (new queries after cached keys) "causal" stays
``q_idx >= k_idx``.

Tensor masks follow PyTorch's ``F.scaled_dot_product_attention``: boolean,
broadcastable to (B, H, Tq, Tk), ``True`` = may attend; the ``*_mask``
functions below return them.

Legend: B batch, H heads, Tq query length, Tk key length.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable

import torch

from annotated.attention.grid import score_grid

MaskMod = Callable[..., torch.Tensor]  # (b, h, q_idx, k_idx) -> bool
ScoreMod = Callable[..., torch.Tensor]  # (score, b, h, q_idx, k_idx) -> score


# --- predicates -------------------------------------------------------------


def causal(b, h, q_idx, k_idx):
    """GPT's causal mask (Radford et al. 2018): a query sees itself and the
    keys before it."""
    return q_idx >= k_idx


def sliding_window(window: int, *, causal: bool = True) -> MaskMod:
    """Local attention (Beltagy et al. 2020): keys within ``window`` positions
    of the query.

    Causal: keys ``i - window + 1 … i`` (``window`` keys including itself);
    bidirectional: ``|i - j| < window``.
    """
    _check_count("window", window, least=1)

    def in_window(b, h, q_idx, k_idx):
        distance = q_idx - k_idx
        return (
            (distance >= 0) & (distance < window)
            if causal
            else distance.abs() < window
        )

    return in_window


def padding(lengths) -> MaskMod:
    """Hide padded keys: sequence ``b`` has ``lengths[b]`` real tokens, then
    padding."""
    lengths = _lengths(lengths)

    def not_padding(b, h, q_idx, k_idx):
        return k_idx < lengths.to(k_idx.device)[b]

    return not_padding


def _check_count(name: str, value, *, least: int) -> None:
    """A number of positions: an integer, at least ``least``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        kind = "positive" if least == 1 else f"≥ {least}"
        raise ValueError(f"{name} must be a {kind} integer, got {value!r}")


def _lengths(lengths, device=None) -> torch.Tensor:
    """One length per sequence, as a 1-D tensor."""
    lengths = torch.as_tensor(lengths, device=device)
    if lengths.dim() != 1:
        raise ValueError(
            "lengths must be 1-D (one length per sequence), "
            f"got shape {tuple(lengths.shape)}"
        )
    return lengths


def prefix(prefix_len: int) -> MaskMod:
    """Prefix LM (Raffel et al. 2020): the first ``prefix_len`` keys are
    visible to every query, the rest causally."""
    _check_count("prefix_len", prefix_len, least=0)

    def prefix_or_causal(b, h, q_idx, k_idx):
        return (k_idx < prefix_len) | (q_idx >= k_idx)

    return prefix_or_causal


def global_tokens(positions) -> MaskMod:
    """Longformer's global tokens: listed positions see every key and every
    query sees them.

    On its own this hides everything else; combine it with a window:
    ``or_masks(window, globals)``.
    """
    positions = torch.as_tensor(positions, dtype=torch.long).unique()

    def touches_global(b, h, q_idx, k_idx):
        g = positions.to(q_idx.device)
        return torch.isin(q_idx, g) | torch.isin(k_idx, g)

    return touches_global


def and_masks(*mods: MaskMod | None) -> MaskMod | None:
    """A key is visible when *every* mod allows it (``None`` entries are
    ignored)."""
    mods = [m for m in mods if m is not None]
    if len(mods) <= 1:
        return mods[0] if mods else None
    return _combine(mods, operator.and_)


def or_masks(*mods: MaskMod) -> MaskMod:
    """A key is visible when *any* mod allows it."""
    if not mods:
        raise ValueError("or_masks needs at least one mask_mod")
    return _combine(mods, operator.or_)


def _combine(mods, op) -> MaskMod:
    """One mask_mod: the answers of ``mods`` joined by ``op`` (& or |)."""

    def combined(b, h, q_idx, k_idx):
        return functools.reduce(op, (m(b, h, q_idx, k_idx) for m in mods))

    return combined


# --- evaluating mods on a grid ----------------------------------------------


def materialize_mask(
    mask_mod: MaskMod,
    t_q: int,
    t_k: int | None = None,
    *,
    batch=None,
    heads=None,
    device=None,
):
    """Evaluate a predicate on every (query, key): ``(Tq, Tk)``, or
    ``(B|1, H|1, Tq, Tk)`` when ``batch`` or ``heads`` is given. This is the
    O(Tq·Tk) tensor tiled kernels never build."""
    t_k = t_q if t_k is None else t_k
    if t_q <= 0 or t_k <= 0:
        raise ValueError(
            f"a mask needs positive lengths, got t_q={t_q}, t_k={t_k}"
        )
    lead = () if batch is None and heads is None else (batch or 1, heads or 1)
    keep = mask_mod(*score_grid(lead, t_q, t_k, device))
    return keep.expand(*lead, t_q, t_k)


def materialize_score(
    score_mod: ScoreMod,
    t_q: int,
    t_k: int | None = None,
    *,
    batch=None,
    heads=None,
    device=None,
):
    """The bias an *additive* score_mod adds: ``score_mod(0, …)`` on every
    (query, key)."""
    t_k = t_q if t_k is None else t_k
    lead = () if batch is None and heads is None else (batch or 1, heads or 1)
    b, h, q_idx, k_idx = score_grid(lead, t_q, t_k, device)
    bias = score_mod(torch.zeros((), device=device), b, h, q_idx, k_idx)
    return bias.expand(*torch.broadcast_shapes(bias.shape, (*lead, t_q, t_k)))


# --- dense masks, for plots and for callers that want a tensor --------------


def causal_mask(
    t_q: int, t_k: int | None = None, *, device=None
) -> torch.Tensor:
    """:func:`causal` as a ``(Tq, Tk)`` tensor.

    >>> causal_mask(3).int()
    tensor([[1, 0, 0],
            [1, 1, 0],
            [1, 1, 1]], dtype=torch.int32)
    """
    return materialize_mask(causal, t_q, t_k, device=device)


def padding_mask(
    lengths, max_len: int | None = None, *, device=None
) -> torch.Tensor:
    """:func:`padding` as a ``(B, 1, 1, Tk)`` tensor that broadcasts over
    heads and queries.

    >>> padding_mask([2, 3], 4)[:, 0, 0].int()
    tensor([[1, 1, 0, 0],
            [1, 1, 1, 0]], dtype=torch.int32)
    """
    lengths = _lengths(lengths, device)
    max_len = int(lengths.max()) if max_len is None else max_len
    if (lengths < 0).any() or (lengths > max_len).any():
        raise ValueError(
            f"every length must lie in [0, {max_len}], got {lengths.tolist()}"
        )
    # (B, 1, 1, Tk)
    return materialize_mask(
        padding(lengths), 1, max_len, batch=len(lengths), device=device
    )


def sliding_window_mask(
    t_q: int,
    window: int,
    t_k: int | None = None,
    *,
    causal: bool = True,
    device=None,
):
    """:func:`sliding_window` as a ``(Tq, Tk)`` tensor."""
    return materialize_mask(
        sliding_window(window, causal=causal), t_q, t_k, device=device
    )


def global_token_mask(
    t: int, global_positions, *, device=None
) -> torch.Tensor:
    """:func:`global_tokens` as a ``(T, T)`` tensor; OR it with a window
    mask."""
    return materialize_mask(global_tokens(global_positions), t, device=device)


def prefix_mask(t: int, prefix_len: int, *, device=None) -> torch.Tensor:
    """:func:`prefix` as a ``(T, T)`` tensor."""
    if not 0 <= prefix_len <= t:
        raise ValueError(f"prefix_len must lie in [0, {t}], got {prefix_len}")
    return materialize_mask(prefix(prefix_len), t, device=device)


def combine_masks(*masks: torch.Tensor | None) -> torch.Tensor | None:
    """Logical AND of boolean mask tensors (``None`` entries are ignored);
    broadcasting applies."""
    out = None
    for m in masks:
        if m is None:
            continue
        if m.dtype != torch.bool:
            raise ValueError(
                "masks must be boolean (True = may attend), "
                f"got dtype {m.dtype}"
            )
        out = m if out is None else out & m
    return out


def key_padding_mask(
    padding_mask: torch.Tensor | None, idx: torch.Tensor, pad_id: int | None
) -> torch.Tensor | None:
    """A (B, T) padding mask (True = real token) → attention mask (B, 1, 1,
    T); from ``pad_id`` if not given."""
    if padding_mask is None:
        if pad_id is None:
            return None
        padding_mask = idx != pad_id
    if padding_mask.dtype != torch.bool or padding_mask.shape != idx.shape:
        raise ValueError(
            f"padding_mask must be boolean of shape {tuple(idx.shape)} "
            f"(True = real token), got {padding_mask.dtype} "
            f"{tuple(padding_mask.shape)}"
        )
    # (B, 1, 1, T): broadcast over heads and queries
    return padding_mask[:, None, None, :]
