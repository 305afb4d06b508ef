"""The feed-forward sub-layer: a plain two-layer network, or a gated one.

Every block mixes channels, position by position, in a feed-forward network
(FFN). Vaswani et al. (2017, §3.3) use two linear layers with a
non-linearity between them (:class:`FeedForward`); most models since 2022
use a *gated* FFN instead (:class:`GatedFeedForward`; Shazeer 2020, "GLU
Variants Improve Transformer"), where one projection, passed through the
non-linearity, scales another element by element.

``ModelConfig.activation`` picks one of both kinds: a name in
:data:`ACTIVATIONS` builds a :class:`FeedForward`, a name in
:data:`GATED_ACTIVATIONS` a :class:`GatedFeedForward` (the blocks of
:mod:`annotated.models.blocks` choose). A gated FFN has three matrices where
the plain one has two, so its default hidden size is 8/3 · C instead of 4 · C:
both then hold about 8 C² weights (:func:`default_d_ff`).

Legend: B batch, T time, C d_model, F d_ff (the hidden size).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torch.nn as nn

from annotated.core.fields import check_choice


class ReLUSquared(nn.Module):
    """``relu(x)²`` (So et al. 2021, "Primer"): ReLU, squared."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x).square()


# a plain FFN's non-linearity: GELU exact (BERT), its tanh approximation
# (GPT-2's "gelu_new"; Hendrycks & Gimpel 2016, §2), ReLU (the original, T5),
# ReLU² (Primer)
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "gelu": nn.GELU,
    "gelu_tanh": partial(nn.GELU, approximate="tanh"),
    "relu": nn.ReLU,
    "relu2": ReLUSquared,
}
# a gated FFN's gate: SiLU = Swish₁ makes SwiGLU (Shazeer 2020; LLaMA)
GATED_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"swiglu": nn.SiLU}
# every name ModelConfig.activation takes
ACTIVATION_NAMES = (*ACTIVATIONS, *GATED_ACTIVATIONS)


def default_d_ff(d_model: int, activation: str = "gelu") -> int:
    """The hidden size when none is given: ``4 · d_model`` (Vaswani et al.
    2017), or for a gated FFN ``8/3 · d_model`` rounded to the nearest whole
    number, so that its three matrices hold as many weights as the plain
    FFN's two (3 · C · 8C/3 = 2 · C · 4C; LLaMA's choice, Touvron et al.
    2023, §2.2). ``d_model=128``: 512, or 341 for ``"swiglu"``."""
    if activation in GATED_ACTIVATIONS:
        return round(8 * d_model / 3)
    return 4 * d_model


def _check_sizes(d_model: int, d_ff: int) -> None:
    if d_model <= 0 or d_ff <= 0:
        raise ValueError(
            f"d_model and d_ff must be positive, got {d_model} and {d_ff}"
        )


class FeedForward(nn.Module):
    """Position-wise feed-forward network (Vaswani et al. 2017, §3.3):

        FFN(x) = W₂ · act(W₁ x + b₁) + b₂,     W₁: C → F,  W₂: F → C

    applied to every position separately (the only place a block mixes
    channels without mixing positions). ``act`` is GELU (Hendrycks & Gimpel
    2016; BERT), its tanh approximation
    ``0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`` ("gelu_tanh", which GPT-2
    uses; it differs from exact GELU by up to ~5e-4), ReLU (the original and
    T5) or ReLU² ("relu2", Primer). Dropout acts on the hidden layer; the
    residual sub-layer adds its own. Gated variants are
    :class:`GatedFeedForward`.
    """

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        activation: str = "gelu",
        dropout: float = 0.0,
        *,
        bias: bool = True,
    ):
        super().__init__()
        check_choice("activation", activation, ACTIVATIONS)
        _check_sizes(d_model, d_ff)
        self.up = nn.Linear(d_model, d_ff, bias=bias)  # W₁
        self.act = ACTIVATIONS[activation]()
        self.drop = nn.Dropout(dropout)
        self.down = nn.Linear(d_ff, d_model, bias=bias)  # W₂

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, T, C) -> (B, T, F) -> (B, T, C)
        return self.down(self.drop(self.act(self.up(x))))


class GatedFeedForward(nn.Module):
    """A gated feed-forward network (Shazeer 2020, "GLU Variants Improve
    Transformer", §2), SwiGLU with ``activation="swiglu"``:

        FFN(x) = W₂ · (SiLU(W₁ x) ⊙ W₃ x),   W₁, W₃: C → F,  W₂: F → C

    with ``SiLU(z) = z · σ(z)`` and ⊙ the element-wise product: the gate
    ``SiLU(W₁ x)`` decides, per hidden unit, how much of ``W₃ x`` passes.
    Three matrices instead of two: at the same parameter count the hidden
    size is 8/3 · C (:func:`default_d_ff`). ``bias`` adds a bias to each
    (LLaMA and most gated models have none). Dropout acts on the gated
    hidden layer.
    """

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        activation: str = "swiglu",
        dropout: float = 0.0,
        *,
        bias: bool = True,
    ):
        super().__init__()
        check_choice("gated activation", activation, GATED_ACTIVATIONS)
        _check_sizes(d_model, d_ff)
        self.gate = nn.Linear(d_model, d_ff, bias=bias)  # W₁
        self.up = nn.Linear(d_model, d_ff, bias=bias)  # W₃
        self.act = GATED_ACTIVATIONS[activation]()
        self.drop = nn.Dropout(dropout)
        self.down = nn.Linear(d_ff, d_model, bias=bias)  # W₂

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, T, C) -> two (B, T, F), gated -> (B, T, C)
        hidden = self.act(self.gate(x)) * self.up(x)
        return self.down(self.drop(hidden))
