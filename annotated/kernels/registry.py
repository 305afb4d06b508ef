"""The registry of attention kernels: each entry says what it can honour.

:data:`ATTENTION_KERNELS` maps a kernel's name (``ModelConfig.attention``) to
an :class:`AttentionKernel`: the function, the same attention written the
O(T²) way so that its weights exist, and the kernel's capabilities as fields,
so a config can refuse a combination without knowing kernel names.
:func:`check_kernel_params` checks a kernel's settings once, before any
tensor exists.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from annotated.attention.attend import attend
from annotated.kernels.blockwise import blockwise_attention
from annotated.kernels.checks import positive_sizes
from annotated.kernels.flex import flex_attention
from annotated.kernels.linear import (
    linear_attention,
    linear_attention_quadratic,
)
from annotated.kernels.local import local_attention, local_attention_quadratic
from annotated.kernels.sdpa import sdpa_attention
from annotated.kernels.topk import topk_attention

# attend's call shape; a kernel's other keywords are its settings
CALL_ARGS = (
    "q",
    "k",
    "v",
    "mask",
    "bias",
    "key_padding_mask",
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

    # fn(q, k, v, mask=None, bias=None, *, key_padding_mask, causal,
    # scale, mask_mod, score_mod, **settings) -> (out, weights or None)
    fn: Callable
    # the same attention written the O(T²) way: (out, weights), for plots
    reference: Callable
    # equals attend() on the same inputs (no window, no top-k, no feature map)
    exact: bool
    score_mods: bool  # takes a bias and a score_mod (ALiBi, T5)
    # takes any mask tensor; otherwise key-padding masks (..., 1, Tk) only
    query_masks: bool
    dropout: bool = False  # applies attention-weight dropout while training
    # reads k/v with fewer heads than q (GQA) without repeating them first
    grouped_kv: bool = False
    sizes: tuple[str, ...] = ()  # settings that are positive integers
    devices: tuple[str, ...] = ("cpu", "cuda")
    memory: str = ""  # forward activation memory in T
    # keeps each layer's (Tq, Tk) weights for the backward pass (training
    # memory grows as T²; annotated.training.memory)
    full_scores: bool = True
    summary: str = ""

    def settings(self) -> list[str]:
        """The keyword settings the kernel takes beyond attend's call
        shape."""
        parameters = inspect.signature(self.fn).parameters
        return [n for n in parameters if n not in CALL_ARGS]

    @property
    def required(self) -> tuple[str, ...]:
        """The settings with no default, e.g. local attention's
        ``window``."""
        parameters = inspect.signature(self.fn).parameters
        return tuple(
            n
            for n in self.settings()
            if parameters[n].default is inspect.Parameter.empty
        )

    def weights(self, q, k, v, mask=None, bias=None, **call):
        """``(out, weights (..., Tq, Tk))`` by the reference form.

        Settings that only change speed or memory (tile and chunk sizes)
        are not the reference's keywords and are left out.
        """
        takes = inspect.signature(self.reference).parameters
        speed_only = set(self.settings()) - set(takes)
        call = {n: x for n, x in call.items() if n not in speed_only}
        return self.reference(q, k, v, mask=mask, bias=bias, **call)


ATTENTION_KERNELS: dict[str, AttentionKernel] = {
    "full": AttentionKernel(
        sdpa_attention,
        attend,
        exact=True,
        score_mods=True,
        query_masks=True,
        dropout=True,
        grouped_kv=True,
        memory="O(T²) or fused",
        summary="dense softmax attention (SDPA)",
    ),
    "linear": AttentionKernel(
        linear_attention,
        linear_attention_quadratic,
        exact=False,
        score_mods=False,
        query_masks=False,
        sizes=("chunk_size",),
        full_scores=False,
        memory="O(T·D²/C + T·C)",
        summary="elu+1 feature map, prefix sums",
    ),
    "local": AttentionKernel(
        local_attention,
        local_attention_quadratic,
        exact=False,
        score_mods=True,
        query_masks=False,
        sizes=("window", "chunk_size"),
        full_scores=False,
        memory="O(T·w)",
        summary="sliding window (+ global tokens), mods per band",
    ),
    "topk": AttentionKernel(
        topk_attention,
        topk_attention,
        exact=False,
        score_mods=True,
        query_masks=True,
        sizes=("top_k",),
        memory="O(T²)",
        summary="each query keeps its top_k scores",
    ),
    "blockwise": AttentionKernel(
        blockwise_attention,
        attend,
        exact=True,
        score_mods=True,
        query_masks=True,
        sizes=("block_size", "query_block_size"),
        full_scores=False,
        memory="O(T·block)",
        summary="online softmax over tiles (flash), mods per tile",
    ),
    "flex": AttentionKernel(
        flex_attention,
        attend,
        exact=True,
        score_mods=True,
        query_masks=True,
        devices=("cuda",),
        full_scores=False,
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
            f"unknown attention kernel {kernel!r}; "
            f"choose one of {sorted(ATTENTION_KERNELS)}"
        )
    params = dict(params or {})
    spec = ATTENTION_KERNELS[kernel]
    missing = [n for n in spec.required if n not in params]
    if missing:
        example = ", ".join(f"{n!r}: 64" for n in missing)
        raise ValueError(
            f"attention kernel {kernel!r} needs {missing}; "
            f"pass e.g. {{{example}}}"
        )
    unknown = sorted(set(params) - set(spec.settings()))
    if unknown:
        raise ValueError(
            f"attention kernel {kernel!r} takes no setting {unknown}; "
            f"it takes {spec.settings() or 'none'}"
        )
    sizes = {n: params.get(n) for n in spec.sizes}
    positive_sizes(f"attention kernel {kernel!r}", **sizes)
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
