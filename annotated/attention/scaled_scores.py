"""Attention logits multiplied by a factor: a fixed temperature, and a
length-aware softmax.

A softmax over n keys spreads as n grows: with the same logit gaps, the mass
on the one key a head is after falls roughly as 1/n once the other keys
outnumber it. Chiang & Cholak (2022, "Overcoming a theoretical limitation of
self-attention") multiply the logits by log n, so that the gaps grow with
log n as the keys multiply; Nakanishi (2025, "Scalable-Softmax is superior
for attention") learns that factor per head, ``s · log n`` (SSMax). Here the
factor multiplies the *whole* logit, the scaled product and every bias an
encoding adds::

    score(i, j) = c · g(h, n_i) · (q_i · k_j / √D + bias(i, j))

    g(h, n) = 1                                  no length rule
    g(h, n) = s_h · log n                        "ssmax"
    g(h, n) = log n / log n_train                "log_ratio"
    g(h, n) = max(1, log n / log n_train)        "log_ratio_beyond"
    g(h, n) = 1 + β · max(0, log(n / n_train))   "log_beyond"

``c = logit_scale`` is a fixed inverse temperature (1/τ) that can be changed
on a trained model. ``s_h`` is a learned parameter per head, started at
``1 / log n_train`` so that the factor is 1 at ``n_train`` keys;
"log_ratio_beyond" is 1 up to ``n_train`` keys and grows as log n beyond
(the rule of Qwen's LogN-scaling, Bai et al. 2023); "log_beyond" is 1 up
to ``n_train`` too and grows by ``β = length_slope`` per factor e of keys
beyond, the shape of YaRN's scaling (Peng et al. 2024), which multiplies
queries and keys each by 0.1 ln s + 1 for a context s times the trained
one. Both are 1 on every sequence training saw, so a model trained with
them is the model trained without.

``n_i`` is the number of keys query i can see: ``q_idx + 1`` in a causal
layer, ``Tk`` in a non-causal one. Queries are the last Tq keys, so a query
decoded with a KV cache gets the n of the full forward. n counts key slots:
key padding and masks other than causality (a sliding window, top-k) do not
lower it. With right padding a real query's n is exactly its real keys;
left padding, and the padded keys of a non-causal layer, count too.

The factor rides on the encoding's ``score_mod`` (:func:`scale_scores`), so
every kernel that takes score mods applies it, tile by tile; the dense SDPA
path folds it into q. Linear attention has no softmax over scores and
refuses it (:func:`~annotated.attention.rules.check_attention`). Models
scale their self-attention; cross-attention calls no encoding hook and is
left as it is.

Legend: B batch, H heads, Tq/Tk query/key length.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from annotated.attention.masks import ScoreMod
from annotated.positional.base import (
    NoPositionalEncoding,
    PositionalEncoding,
)

# the length-aware rules; None = no length factor
LENGTH_SCALES = ("ssmax", "log_ratio", "log_ratio_beyond", "log_beyond")


def check_logit_scale(
    logit_scale: float = 1.0,
    length_scale: str | None = None,
    length_train: int | None = None,
    length_slope: float = 0.1,
) -> None:
    """Refuse a scale that is not a positive finite number, an unknown
    length rule, a rule without an ``n_train`` ≥ 2, or a negative slope."""
    if (
        isinstance(logit_scale, bool)
        or not isinstance(logit_scale, int | float)
        or not 0 < logit_scale < math.inf
    ):
        raise ValueError(
            "logit_scale must be a positive finite number (a temperature τ "
            f"is logit_scale = 1/τ), got {logit_scale!r}"
        )
    if length_scale is None:
        return
    if length_scale not in LENGTH_SCALES:
        raise ValueError(
            f"unknown length_scale {length_scale!r}; choose one of "
            f"{list(LENGTH_SCALES)}, or None for no length factor"
        )
    if (
        isinstance(length_train, bool)
        or not isinstance(length_train, int)
        or length_train < 2
    ):
        raise ValueError(
            f"length_scale={length_scale!r} needs the number of keys n_train "
            "at which its factor is 1 (log n_train divides), an integer ≥ "
            f"2; got {length_train!r}"
        )
    if not 0 <= length_slope < math.inf:
        raise ValueError(
            "length_slope (β of log_beyond) must be a finite number ≥ 0, "
            f"got {length_slope!r}"
        )


def scale_scores(score_mod: ScoreMod | None, factor) -> ScoreMod:
    """``factor(b, h, q_idx, dtype) · score_mod(score, …)``: every score of
    a query row multiplied by one number, after the encoding's mod.

    The mod carries ``factor`` as ``row_factor``: a kernel that evaluates
    mods on a score of 0 (SDPA) multiplies q by it instead.
    """

    def scaled_scores(score, b, h, q_idx, k_idx):
        if score_mod is not None:
            score = score_mod(score, b, h, q_idx, k_idx)
        return score * factor(b, h, q_idx, score.dtype)

    scaled_scores.row_factor = factor
    return scaled_scores


class ScaledScores(PositionalEncoding):
    """A self-attention layer's positional encoding, with every logit
    multiplied by the factor of the module docstring.

    The encoding's hooks run as before (``rotate_qk``, ``score_mod``); the
    factor is composed after its ``score_mod``. ``causal`` says how n is
    counted (``q_idx + 1`` or ``Tk``). With ``length_scale="ssmax"`` the
    layer learns ``ssmax_scale`` (H,), started at ``1 / log n_train``. A
    factor of 1 everywhere returns the encoding's own mod (or None), so
    ``logit_scale=1.0`` with no length rule changes no number.
    """

    where = "score"
    scales_scores = True

    def __init__(
        self,
        encoding: PositionalEncoding,
        n_heads: int,
        *,
        causal: bool = True,
        logit_scale: float = 1.0,
        length_scale: str | None = None,
        length_train: int | None = None,
        length_slope: float = 0.1,
    ):
        super().__init__()
        check_logit_scale(
            logit_scale, length_scale, length_train, length_slope
        )
        self.encoding, self.n_heads, self.causal = encoding, n_heads, causal
        self.head_dim = encoding.head_dim
        self.learned = encoding.learned or length_scale == "ssmax"
        for flag in ("even_head_dim", "table_limit", "fixed_signal"):
            setattr(self, flag, getattr(encoding, flag))
        self.position_range = encoding.position_range
        self.logit_scale, self.length_scale = float(logit_scale), length_scale
        self.length_train = length_train
        self.length_slope = float(length_slope)
        if length_scale == "ssmax":
            # (H,): s_h · log n_train = 1 at the start
            start = 1.0 / math.log(length_train)
            self.ssmax_scale = nn.Parameter(torch.full((n_heads,), start))

    def extra_repr(self) -> str:
        rule = self.length_scale
        return f"logit_scale={self.logit_scale}" + (
            f", length_scale={rule!r}, length_train={self.length_train}"
            + (f", length_slope={self.length_slope}" * (rule == "log_beyond"))
            if rule
            else ""
        )

    def forward(self, x, positions=None):
        return self.encoding(x, positions)

    def rotate_qk(self, q, k, q_pos, k_pos):
        return self.encoding.rotate_qk(q, k, q_pos, k_pos)

    def score_mod(self, q_pos, k_pos) -> ScoreMod | None:
        mod = self.encoding.score_mod(q_pos, k_pos)
        factor = self.row_factor(k_pos.shape[-1])
        return mod if factor is None else scale_scores(mod, factor)

    def row_factor(self, t_k: int):
        """``factor(b, h, q_idx, dtype)`` for ``t_k`` keys, or None when
        it is 1 everywhere."""
        c, rule, causal = self.logit_scale, self.length_scale, self.causal
        if rule is None:
            return None if c == 1.0 else (lambda b, h, q_idx, dtype: c)
        gain = self.ssmax_scale if rule == "ssmax" else None
        log_train = math.log(self.length_train)

        def factor(b, h, q_idx, dtype):
            # n: the keys query q_idx sees
            n = (q_idx + 1 if causal else q_idx * 0 + t_k).to(dtype)
            if rule == "ssmax":  # s_h · log n
                f = gain[h].to(dtype) * torch.log(n)
            elif rule == "log_beyond":  # 1 + β · max(0, log(n / n_train))
                beyond = (torch.log(n) - log_train).clamp_min(0.0)
                f = 1.0 + self.length_slope * beyond
            else:  # log n / log n_train, at least 1 for "…_beyond"
                f = torch.log(n) / log_train
                f = f.clamp_min(1.0) if rule == "log_ratio_beyond" else f
            return f if c == 1.0 else c * f

        return factor


def scaled_encoding(
    encoding: PositionalEncoding | None,
    n_heads: int,
    *,
    causal: bool,
    logit_scale: float = 1.0,
    length_scale: str | None = None,
    length_train: int | None = None,
    length_slope: float = 0.1,
) -> PositionalEncoding | None:
    """The encoding one self-attention layer gets: ``encoding`` itself when
    the factor is 1 (the default), else a :class:`ScaledScores` around it
    (around NoPE when ``encoding`` is None)."""
    if logit_scale == 1.0 and length_scale is None:
        return encoding
    return ScaledScores(
        NoPositionalEncoding() if encoding is None else encoding,
        n_heads,
        causal=causal,
        logit_scale=logit_scale,
        length_scale=length_scale,
        length_train=length_train,
        length_slope=length_slope,
    )
