"""The normalisation a block uses: LayerNorm or RMSNorm, by name.

LayerNorm (Ba et al. 2016) centres each position's C features, scales them
to unit variance, and applies a learned gain g and shift b::

    LayerNorm(x) = (x − mean(x)) / √(var(x) + ε) · g + b

RMSNorm (Zhang & Sennrich 2019, "Root Mean Square Layer Normalization")
drops the centring and the shift and divides by the root mean square alone::

    RMSNorm(x) = x / √(mean(x²) + ε) · g

It is cheaper, and Zhang & Sennrich find re-scaling, not re-centring, is
what helps; T5, LLaMA and most models since use it. Here RMSNorm is
PyTorch's ``torch.nn.RMSNorm``, with ``ε`` passed explicitly (PyTorch's own
default is the float type's machine epsilon). :func:`make_norm` builds one
of either kind, as ``ModelConfig.norm_type`` names it; every norm of a model
is built there (the blocks', the final one, the embedding norm).

Legend: C d_model.
"""

from __future__ import annotations

import torch.nn as nn

from annotated.core.fields import check_choice

__all__ = ["NORM_TYPES", "make_norm"]

# every name ModelConfig.norm_type takes
NORM_TYPES = ("layernorm", "rmsnorm")


def make_norm(
    norm_type: str, d_model: int, *, eps: float = 1e-5, bias: bool = True
) -> nn.LayerNorm | nn.RMSNorm:
    """A norm over the last ``d_model`` features: ``nn.LayerNorm`` (with its
    shift b when ``bias``) or ``nn.RMSNorm`` (which has none), gains at 1."""
    check_choice("norm_type", norm_type, NORM_TYPES)
    if norm_type == "rmsnorm":
        return nn.RMSNorm(d_model, eps=eps)
    return nn.LayerNorm(d_model, eps=eps, bias=bias)
