"""Positional encodings: how a permutation-equivariant attention layer learns
about order.

Each encoding acts at one place — added to the embeddings
(:mod:`~annotated.positional.absolute`,
:mod:`~annotated.positional.randomized`), rotating q and k
(:mod:`~annotated.positional.rope`), or as a ``score_mod`` on the scores
(:mod:`~annotated.positional.bias`, :mod:`~annotated.positional.fire`); NoPE
does nothing. Two read ids the task gives with the batch: Abacus
(:mod:`~annotated.positional.abacus`, digit places) and the coupled relative
bias (:mod:`~annotated.positional.coupled`, position coupling).
:mod:`~annotated.positional.base` holds the interface and the properties each
encoding declares. This module is the registry.
"""

from __future__ import annotations

from annotated.positional.abacus import AbacusEncoding
from annotated.positional.absolute import (
    LearnedAbsoluteEncoding,
    SinusoidalEncoding,
    sinusoidal_encoding,
)
from annotated.positional.base import NoPositionalEncoding, PositionalEncoding
from annotated.positional.bias import (
    AlibiBias,
    T5RelativeBias,
    alibi_slopes,
    t5_relative_bucket,
)
from annotated.positional.coupled import CoupledRelativeBias
from annotated.positional.fire import FireBias
from annotated.positional.randomized import RandomizedPositions
from annotated.positional.rope import RotaryEncoding, apply_rope

POSITIONAL_ENCODINGS: dict[str, type[PositionalEncoding]] = {
    "nope": NoPositionalEncoding,
    "sinusoidal": SinusoidalEncoding,
    "learned": LearnedAbsoluteEncoding,
    "rope": RotaryEncoding,
    "alibi": AlibiBias,
    "t5": T5RelativeBias,
    "randomized": RandomizedPositions,
    # reads digit places from the batch (McLeish et al. 2024)
    "abacus": AbacusEncoding,
    # reads coupled ids from the batch (Cho et al. 2024)
    "coupled_bias": CoupledRelativeBias,
    "fire": FireBias,  # an MLP of the normalised distance (Li et al. 2024)
}


def encoding_class(name: str) -> type[PositionalEncoding]:
    """The encoding class registered as ``name`` (else a ValueError)."""
    if name not in POSITIONAL_ENCODINGS:
        raise ValueError(
            f"unknown positional encoding {name!r}; choose one of "
            f"{sorted(POSITIONAL_ENCODINGS)}"
        )
    return POSITIONAL_ENCODINGS[name]


def make_positional(
    name: str,
    *,
    d_model: int,
    n_heads: int,
    max_len: int,
    causal: bool = True,
    **kwargs,
):
    """Build the encoding called ``name`` from model-level sizes.

    ``max_len`` is the training length (the learned table size; randomized
    draws from ``4 * max_len`` positions unless ``max_positions`` is given).
    ``causal`` picks the causal or bidirectional form of ALiBi and T5. Extra
    ``kwargs`` go to the encoding's constructor.
    """
    return encoding_class(name).build(
        d_model=d_model,
        n_heads=n_heads,
        max_len=max_len,
        causal=causal,
        **kwargs,
    )


__all__ = [
    "POSITIONAL_ENCODINGS",
    "AbacusEncoding",
    "AlibiBias",
    "CoupledRelativeBias",
    "FireBias",
    "LearnedAbsoluteEncoding",
    "NoPositionalEncoding",
    "PositionalEncoding",
    "RandomizedPositions",
    "RotaryEncoding",
    "SinusoidalEncoding",
    "T5RelativeBias",
    "alibi_slopes",
    "apply_rope",
    "encoding_class",
    "make_positional",
    "sinusoidal_encoding",
    "t5_relative_bucket",
]
