"""The checks every attention call passes before any work: shapes and
dtypes of q, k, v, of a mask, a bias and a key-padding mask.

:func:`check_qkv` is called once per call, by
:func:`~annotated.attention.attend.prepare_attention`, which every kernel
runs first; each message names the offending shapes, so a caller sees what
to change. A ``mask`` or ``bias`` broadcasts to the scores from the right
(a 2-D one is (Tq, Tk)); a ``key_padding_mask`` is (B, Tk).

Legend: B batch, Tq query length, Tk key length, D head dim.
"""

from __future__ import annotations

import torch


def check_qkv(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask=None,
    bias=None,
    key_padding_mask=None,
    *,
    grouped_kv: bool = False,
) -> tuple:
    """Validate the shapes and dtypes of an attention call; return the score
    shape (..., Tq, Tk).

    With ``grouped_kv``, k and v may have Hkv heads (dim -3) where q has H,
    Hkv dividing H (grouped-query attention). Raises ``ValueError`` naming
    the offending shapes, so a caller sees what to change.
    """
    # "q (2, 5, 8)": each tensor's name and shape, for the messages
    q_shape, k_shape, v_shape = (
        f"{name} {tuple(x.shape)}" for name, x in zip("qkv", (q, k, v))
    )
    if q.dim() < 2 or k.dim() < 2 or v.dim() < 2:
        raise ValueError(
            "q, k, v need at least 2 dims (..., T, D); "
            f"got {q_shape}, {k_shape}, {v_shape}"
        )
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q and k must share their last dim (d_k): {q_shape} vs {k_shape}"
        )
    if k.shape[:-1] != v.shape[:-1]:
        raise ValueError(
            "k and v must have the same shape up to the last dim "
            f"(one value per key): {k_shape} vs {v_shape}"
        )
    if grouped_kv and not (
        q.dim() >= 3
        and q.shape[:-3] == k.shape[:-3]
        and q.shape[-3] % k.shape[-3] == 0
    ):
        raise ValueError(
            "grouped-query attention needs q (..., H, Tq, D), k and v "
            f"(..., Hkv, Tk, D) with Hkv dividing H: {q_shape} vs {k_shape}"
        )
    if not grouped_kv and q.shape[:-2] != k.shape[:-2]:
        raise ValueError(
            "q and k must have the same leading (batch, head) dims: "
            f"{q_shape} vs {k_shape}"
        )
    score_shape = (*q.shape[:-1], k.shape[-2])  # (..., Tq, Tk)
    check_mask_and_bias(mask, bias, score_shape)
    check_key_padding(key_padding_mask, score_shape)
    return score_shape


def check_mask_and_bias(mask, bias, score_shape: tuple) -> None:
    """A mask must be boolean and a bias floating point, each broadcastable to
    ``score_shape``."""
    if mask is not None and mask.dtype != torch.bool:
        raise ValueError(
            "mask must be a boolean tensor (True = may attend), got "
            f"dtype {mask.dtype}; pass additive float masks as bias="
        )
    if bias is not None and not bias.is_floating_point():
        raise ValueError(
            f"bias must be a floating-point tensor, got dtype {bias.dtype}"
        )
    for name, x in (("mask", mask), ("bias", bias)):
        if x is not None and not _broadcastable(tuple(x.shape), score_shape):
            raise ValueError(
                f"{name} of shape {tuple(x.shape)} does not broadcast to "
                f"the scores (..., Tq, Tk) = {score_shape}"
                + (PADDING_HINT if name == "mask" else "")
            )


# what a mask that does not fit the scores most likely was
PADDING_HINT = (
    "; a 2-D mask is (Tq, Tk): pass a (B, Tk) padding mask as "
    "key_padding_mask="
)


def check_key_padding(key_padding_mask, score_shape: tuple) -> None:
    """A key-padding mask is boolean ``(B, Tk)``: one row per sequence of
    the batch (the scores' first dim), one entry per key."""
    if key_padding_mask is None:
        return
    wanted = (score_shape[0], score_shape[-1])
    got = tuple(key_padding_mask.shape)
    if (
        len(score_shape) < 3
        or key_padding_mask.dtype != torch.bool
        or got != wanted
    ):
        raise ValueError(
            f"key_padding_mask must be a boolean (B, Tk) = {wanted} tensor "
            "(True = a real key) for scores (B, ..., Tq, Tk) = "
            f"{score_shape}, got {key_padding_mask.dtype} {got}"
        )


def _broadcastable(shape: tuple, target: tuple) -> bool:
    if len(shape) > len(target):
        return False
    return all(
        s in (1, t)
        for s, t in zip(reversed(shape), reversed(target), strict=False)
    )
