"""Attention kernels: one call shape, many ways to compute it.

Dense attention (:func:`~annotated.attention.attend.attend`) builds the whole
``Tq × Tk`` score matrix, so its time and memory grow as O(T²). Each kernel
here dodges that wall in a different way, and each keeps ``attend``'s call
shape and hooks::

    kernel(q, k, v, mask=None, bias=None, *, causal=False, scale=None,
           mask_mod=None, score_mod=None, **settings) -> (out, weights | None)

=================================== ================================================== ====================== ============
kernel                              idea                                               exact?                 memory
=================================== ================================================== ====================== ============
``full`` (:func:`sdpa_attention`)   PyTorch's fused SDPA, mods materialised once       yes                    O(T²) on CPU
:func:`linear_attention`            softmax → kernel feature map, reorder the products no (another model)     O(T)
:func:`local_attention`             keep only a band of width ``window``               exact under its window O(T·w)
:func:`topk_attention`              keep each query's ``top_k`` scores                 no (k = Tk is exact)   O(T²)
:func:`blockwise_attention`         online softmax over tiles, mods per tile           yes                    O(T·block)
:func:`flex_attention`              PyTorch's FlexAttention (CUDA): mods compiled      yes                    O(T·block)
=================================== ================================================== ====================== ============

:data:`ATTENTION_KERNELS` lists them; each :class:`AttentionKernel` carries
what it can honour as fields, so a config can refuse a combination without
knowing kernel names.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from annotated.attention.attend import attend
from annotated.attention.masks import (
    and_masks,
    global_tokens,
    or_masks,
    sliding_window,
)
from annotated.kernels.blockwise import blockwise_attention
from annotated.kernels.flex import flex_attention
from annotated.kernels.linear import (
    elu_feature_map,
    linear_attention,
    linear_attention_quadratic,
)
from annotated.kernels.local import local_attention
from annotated.kernels.sdpa import sdpa_attention
from annotated.kernels.topk import topk_attention

CALL_ARGS = (
    "q",
    "k",
    "v",
    "mask",
    "bias",
    "causal",
    "scale",
    "dropout_p",
    "mask_mod",
    "score_mod",
)


@dataclass(frozen=True)
class AttentionKernel:
    """One entry of :data:`ATTENTION_KERNELS`: the function and what it can
    honour."""

    # fn(q, k, v, mask=None, bias=None, *, causal, scale, mask_mod, score_mod,
    # **settings)
    fn: Callable
    # the same attention written the O(T²) way, returning (out, weights): for
    # plots
    weights: Callable
    # equals attend() on the same inputs (no window, no top-k, no feature map)
    exact: bool
    score_mods: bool  # takes a score_mod (ALiBi, T5 relative bias)
    # takes a mask_mod (a predicate over (b, h, q_idx, k_idx))
    mask_mods: bool
    # takes any mask tensor; otherwise key-padding masks (..., 1, Tk) only
    query_masks: bool
    dropout: bool = False  # applies attention-weight dropout while training
    # reads k/v with fewer heads than q (GQA) without repeating them first
    grouped_kv: bool = False
    sizes: tuple[str, ...] = ()  # settings that are positive integers
    required: tuple[str, ...] = ()  # settings with no default
    devices: tuple[str, ...] = ("cpu", "cuda")
    memory: str = ""  # forward activation memory in T
    summary: str = ""

    def settings(self) -> list[str]:
        """The keyword settings the kernel takes beyond attend's call
        shape."""
        return [
            n
            for n in inspect.signature(self.fn).parameters
            if n not in CALL_ARGS
        ]


def _local_weights(
    q,
    k,
    v,
    mask=None,
    bias=None,
    *,
    causal=True,
    scale=None,
    mask_mod=None,
    score_mod=None,
    window,
    global_positions=None,
    chunk_size=None,
):
    """Dense attention under the band local attention reads (global tokens
    included)."""
    band = sliding_window(window, causal=causal)
    if global_positions is not None and len(global_positions):
        band = or_masks(band, global_tokens(global_positions))
    return attend(
        q,
        k,
        v,
        mask,
        bias,
        causal=causal,
        scale=scale,
        mask_mod=and_masks(band, mask_mod),
        score_mod=score_mod,
    )


def _dense_weights(
    q,
    k,
    v,
    mask=None,
    bias=None,
    *,
    causal=False,
    scale=None,
    dropout_p=0.0,
    mask_mod=None,
    score_mod=None,
    **settings,
):
    """The reference :func:`attend`, for the exact kernels (their settings
    change no number)."""
    return attend(
        q,
        k,
        v,
        mask,
        bias,
        causal=causal,
        scale=scale,
        dropout_p=dropout_p,
        mask_mod=mask_mod,
        score_mod=score_mod,
    )


def _linear_weights(
    q,
    k,
    v,
    mask=None,
    bias=None,
    *,
    causal=False,
    scale=None,
    mask_mod=None,
    score_mod=None,
    feature_map=elu_feature_map,
    chunk_size=None,
):
    return linear_attention_quadratic(
        q,
        k,
        v,
        mask,
        bias,
        causal=causal,
        scale=scale,
        mask_mod=mask_mod,
        score_mod=score_mod,
        feature_map=feature_map,
    )


ATTENTION_KERNELS: dict[str, AttentionKernel] = {
    "full": AttentionKernel(
        sdpa_attention,
        _dense_weights,
        exact=True,
        score_mods=True,
        mask_mods=True,
        query_masks=True,
        dropout=True,
        grouped_kv=True,
        memory="O(T²) or fused",
        summary="dense softmax attention (SDPA)",
    ),
    "linear": AttentionKernel(
        linear_attention,
        _linear_weights,
        exact=False,
        score_mods=False,
        mask_mods=False,
        query_masks=False,
        sizes=("chunk_size",),
        memory="O(T·D²/C + T·C)",
        summary="elu+1 feature map, prefix sums",
    ),
    "local": AttentionKernel(
        local_attention,
        _local_weights,
        exact=False,
        score_mods=True,
        mask_mods=True,
        query_masks=False,
        sizes=("window", "chunk_size"),
        required=("window",),
        memory="O(T·w)",
        summary="sliding window (+ global tokens), mods per band",
    ),
    "topk": AttentionKernel(
        topk_attention,
        topk_attention,
        exact=False,
        score_mods=True,
        mask_mods=True,
        query_masks=True,
        sizes=("top_k",),
        required=("top_k",),
        memory="O(T²)",
        summary="each query keeps its top_k scores",
    ),
    "blockwise": AttentionKernel(
        blockwise_attention,
        _dense_weights,
        exact=True,
        score_mods=True,
        mask_mods=True,
        query_masks=True,
        sizes=("block_size", "query_block_size"),
        memory="O(T·block)",
        summary="online softmax over tiles (flash), mods per tile",
    ),
    "flex": AttentionKernel(
        flex_attention,
        _dense_weights,
        exact=True,
        score_mods=True,
        mask_mods=True,
        query_masks=True,
        devices=("cuda",),
        memory="O(T·block)",
        summary="PyTorch FlexAttention (CUDA only)",
    ),
}


def check_kernel_params(kernel: str, params: dict | None) -> dict:
    """Check a kernel name and its settings before any tensor exists; return
    the settings as a dict.

    The name must be in :data:`ATTENTION_KERNELS`, every required setting must
    be given, each setting must be a keyword of that kernel, and the kernel's
    integer sizes must be positive.
    """
    if kernel not in ATTENTION_KERNELS:
        raise ValueError(
            f"unknown attention kernel {kernel!r}; choose one of {sorted(ATTENTION_KERNELS)}"
        )
    params = dict(params or {})
    spec = ATTENTION_KERNELS[kernel]
    missing = [n for n in spec.required if n not in params]
    if missing:
        example = ", ".join(f"{n!r}: 64" for n in missing)
        raise ValueError(
            f"attention kernel {kernel!r} needs {missing}; pass e.g. {{{example}}}"
        )
    unknown = sorted(set(params) - set(spec.settings()))
    if unknown:
        raise ValueError(
            f"attention kernel {kernel!r} takes no setting {unknown}; it takes {spec.settings() or 'none'}"
        )
    for name in spec.sizes:
        value = params.get(name)
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value <= 0
        ):
            raise ValueError(
                f"{name} of attention kernel {kernel!r} must be a positive integer, got {value!r}"
            )
    return params


def kernel_weights(
    kernel: str,
    q,
    k,
    v,
    mask=None,
    bias=None,
    *,
    causal=False,
    scale=None,
    **params,
):
    """``(out, weights (..., Tq, Tk))`` of a kernel, written the O(T²) way so
    the weights exist.

    For plots and attention entropy: the weights the kernel effectively uses —
    dense attention under the band for "local", linear attention's normalised
    φ(q)·φ(k) for "linear", the kept scores for "topk", dense attention for
    the exact kernels. The outputs equal the kernel's own to float tolerance
    (tests check it).
    """
    return ATTENTION_KERNELS[kernel].weights(
        q, k, v, mask=mask, bias=bias, causal=causal, scale=scale, **params
    )


__all__ = [
    "ATTENTION_KERNELS",
    "AttentionKernel",
    "blockwise_attention",
    "check_kernel_params",
    "elu_feature_map",
    "flex_attention",
    "kernel_weights",
    "linear_attention",
    "linear_attention_quadratic",
    "local_attention",
    "sdpa_attention",
    "topk_attention",
]
