"""The rules an attention layer keeps, written once: :func:`check_attention`.

A :class:`~annotated.attention.multihead.MultiHeadAttention` checks itself
with it when it is built, and a
:class:`~annotated.models.config.ModelConfig` checks its fields with it
before anything is built, so both refuse the same layer with the same
sentence.
"""

from __future__ import annotations

from annotated.kernels import ATTENTION_KERNELS, check_kernel_params
from annotated.positional import POSITIONAL_ENCODINGS, PositionalEncoding
from annotated.positional.base import NoPositionalEncoding

__all__ = ["check_attention"]


def check_attention(
    d_model: int,
    n_heads: int,
    n_kv_heads: int | None = None,
    *,
    positional: PositionalEncoding | type = NoPositionalEncoding,
    kernel: str = "full",
    kernel_params: dict | None = None,
    dropout: float = 0.0,
    scales_scores: bool = False,
) -> dict:
    """Refuse an attention layer that cannot work, with a sentence that says
    what to change; return the kernel's settings as a dict.

    The heads divide ``d_model`` and the k/v heads divide the heads. The
    encoding takes the head dim (it declares ``even_head_dim``) and, if built
    by hand, was built for these sizes. The kernel can apply the encoding's
    ``score_mod`` and the dropout (its entry declares ``score_mods`` and
    ``dropout``), and multiply whole scores when the layer scales its logits
    (``scales_scores``, or an encoding that declares it:
    :mod:`annotated.attention.scaled_scores`). ``positional``: an encoding
    class (a config) or module.
    """
    cls = positional if isinstance(positional, type) else type(positional)
    if not issubclass(cls, PositionalEncoding):
        raise ValueError(
            f"positional must be a PositionalEncoding module or None, got "
            f"{cls.__name__}; build one with "
            "annotated.positional.make_positional(name, ...)"
        )
    n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
    if d_model % n_heads:
        raise ValueError(
            f"d_model={d_model} must be divisible by n_heads={n_heads} (each "
            "head gets d_model // n_heads dims); change d_model or n_heads"
        )
    if n_heads % n_kv_heads:
        raise ValueError(
            f"n_heads={n_heads} must be divisible by n_kv_heads={n_kv_heads} "
            "(each k/v head serves a whole group of query heads); pick "
            "n_kv_heads among the divisors of n_heads, or None"
        )
    head_dim = d_model // n_heads
    cls.check_head_dim(head_dim)
    for name, value in (("n_heads", n_heads), ("head_dim", head_dim)):
        if getattr(positional, name) not in (None, value):
            raise ValueError(
                f"positional encoding built for {name}="
                f"{getattr(positional, name)}, attention has {value}"
            )
    settings = check_kernel_params(kernel, kernel_params)
    spec = ATTENTION_KERNELS[kernel]
    takes = [n for n, k in ATTENTION_KERNELS.items() if k.score_mods]
    if (scales_scores or cls.scales_scores) and not spec.score_mods:
        raise ValueError(
            f"kernel {kernel!r} cannot scale the attention logits "
            "(logit_scale, length_scale): it has no softmax over q·k scores "
            "to sharpen; set logit_scale=1.0 and length_scale=None, or use "
            f"one of the kernels that form the scores: {takes}"
        )
    if cls.where == "score" and not spec.score_mods:
        name = next(
            (n for n, c in POSITIONAL_ENCODINGS.items() if c is cls),
            cls.__name__,
        )
        raise ValueError(
            f"kernel {kernel!r} cannot apply the score_mod of positional="
            f"{name!r} (it never forms the q·k scores); use positional="
            "'rope' or an embedding-level encoding, or one of the kernels "
            f"that take score mods: {takes}"
        )
    if dropout > 0 and not spec.dropout:
        raise ValueError(
            f"kernel {kernel!r} has no attention dropout, but dropout="
            f"{dropout}; set dropout=0.0 or use the 'full' kernel"
        )
    return settings
