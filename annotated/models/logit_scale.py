"""Change how a trained model scales its attention logits, without
retraining.

:func:`set_logit_scale` sets the fixed inverse temperature c of
:mod:`annotated.attention.scaled_scores` on a built or loaded model, and
:func:`set_length_scale` one of its fixed length rules ("log_ratio",
"log_ratio_beyond", "log_beyond"); both act on every self-attention layer
in place and record the change in ``model.config``, so a checkpoint saved
afterwards rebuilds the same model. SSMax's ``s_h`` is trained, so it is
neither added nor removed here. At ``logit_scale=1.0`` with no length rule
a layer gets its encoding back, and the model computes exactly what it
computed as built.
"""

from __future__ import annotations

import dataclasses

import torch.nn as nn

from annotated.attention.scaled_scores import scaled_encoding
from annotated.models.blocks import TransformerBlock
from annotated.models.config import ModelConfig


def set_logit_scale(model: nn.Module, logit_scale: float) -> nn.Module:
    """Multiply every self-attention logit of ``model`` by
    ``logit_scale`` (on top of any length rule it has), in place; returns
    ``model``. ``set_logit_scale(model, 1.0)`` undoes it."""
    config = dataclasses.replace(model.config, logit_scale=logit_scale)
    return _rescale(model, config)


def set_length_scale(
    model: nn.Module,
    length_scale: str | None,
    length_train: int | None = None,
    length_slope: float = 0.1,
) -> nn.Module:
    """Give every self-attention layer of ``model`` the fixed length rule
    ``length_scale`` with ``n_train = length_train`` (None: the model's
    ``max_len``) and slope β = ``length_slope`` ("log_beyond"), or no rule;
    in place, returns ``model``."""
    if "ssmax" in (length_scale, model.config.length_scale):
        raise ValueError(
            "ssmax learns s_h per head while training, so it cannot be added "
            "to or removed from a trained model; build the model with "
            "length_scale='ssmax', or use 'log_ratio', 'log_ratio_beyond' "
            "or 'log_beyond'"
        )
    config = dataclasses.replace(
        model.config,
        length_scale=length_scale,
        length_scale_train=length_train,
        length_scale_slope=length_slope,
    )
    return _rescale(model, config)


def _rescale(model: nn.Module, config: ModelConfig) -> nn.Module:
    """Give each self-attention layer the encoding ``config`` builds; a
    layer with SSMax keeps its trained ``s_h`` and takes the new c."""
    for block in model.modules():
        if not isinstance(block, TransformerBlock):
            continue
        attention = block.self_attn.sublayer
        encoding = attention.positional
        if encoding.scales_scores and encoding.length_scale == "ssmax":
            encoding.logit_scale = float(config.logit_scale)
            continue
        attention.positional = scaled_encoding(
            encoding.encoding if encoding.scales_scores else encoding,
            attention.n_heads,
            causal=block.causal,
            logit_scale=config.logit_scale,
            length_scale=config.length_scale,
            length_train=config.length_scale_train,
            length_slope=config.length_scale_slope,
        )
    model.config = config
    return model
