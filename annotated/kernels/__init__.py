"""Attention kernels: one call shape, many ways to compute it.

Dense attention (:func:`~annotated.attention.attend.attend`) builds the whole
``Tq × Tk`` score matrix, so its time and memory grow as O(T²). Each kernel
here dodges that wall in a different way, and each keeps ``attend``'s call
shape and hooks, with its own settings keyword-only::

    kernel(q, k, v, mask=None, bias=None, *, key_padding_mask=None,
           causal=False, scale=None, mask_mod=None, score_mod=None,
           **settings) -> (out, weights | None)

Each starts with ``attend``'s own first step,
:func:`~annotated.attention.attend.prepare_attention` (the checks, the
default scale, the key padding folded into the mask, causality as one more
``mask_mod``); top-k and local attention
end with its :func:`~annotated.attention.attend.masked_softmax`.

============= ===================================== ============= ==========
name          kernel and idea                       exact?        memory
============= ===================================== ============= ==========
``full``      :func:`sdpa_attention`: PyTorch's     yes           O(T²) on
              fused SDPA, mods materialised once                  CPU
``linear``    :func:`linear_attention`: softmax →   no (another   O(T)
              feature map, reorder the products     model)
``local``     :func:`local_attention`: only a band  under its     O(T·w)
              of width ``window``                   window
``topk``      :func:`topk_attention`: each query    no (k = Tk    O(T²)
              keeps its ``top_k`` scores            is exact)
``blockwise`` :func:`blockwise_attention`: online   yes           O(T·block)
              softmax over tiles, mods per tile
``flex``      :func:`flex_attention`: PyTorch's     yes           O(T·block)
              FlexAttention (CUDA), mods compiled
============= ===================================== ============= ==========

:data:`~annotated.kernels.registry.ATTENTION_KERNELS` lists them; each
:class:`~annotated.kernels.registry.AttentionKernel` carries what it can
honour as fields, so a config can refuse a combination without knowing
kernel names.
"""

from annotated.kernels.blockwise import blockwise_attention
from annotated.kernels.flex import flex_attention
from annotated.kernels.linear import (
    elu_feature_map,
    linear_attention,
    linear_attention_quadratic,
)
from annotated.kernels.local import (
    local_attention,
    local_attention_quadratic,
    local_window,
)
from annotated.kernels.registry import (
    ATTENTION_KERNELS,
    AttentionKernel,
    check_kernel_params,
    kernel_weights,
)
from annotated.kernels.sdpa import sdpa_attention
from annotated.kernels.topk import topk_attention

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
    "local_attention_quadratic",
    "local_window",
    "sdpa_attention",
    "topk_attention",
]
