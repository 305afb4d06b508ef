"""One small dataclass describes every model: :class:`ModelConfig`, checked
when it is made.

The same config builds a decoder-only GPT (Radford et al. 2018), an
encoder-only BERT (Devlin et al. 2019) or an encoder-decoder T5 (Raffel et al.
2020), named by ``arch``, one of :data:`ARCHITECTURES`.
``ModelConfig.attention`` picks the self-attention kernel of
:mod:`annotated.kernels` in every block (settings in ``attention_params``);
cross-attention always runs dense, since a source of another length has no
window or causal order to exploit. Combinations a kernel cannot honour (a
score bias with linear or local attention, attention dropout with any kernel
but "full") are refused when the config is made, with a sentence that says
what to change (the rules an attention layer keeps are written once, in
:func:`annotated.attention.rules.check_attention`). The names a field may
take live beside what they build (:data:`ARCHITECTURES` and
:data:`NORM_PLACEMENTS` here, the activations in
:mod:`annotated.models.feedforward`, the norms in
:mod:`annotated.models.norms`), checked by
:func:`~annotated.core.fields.check_choice`. ``embedding_scale``
left at None is chosen from the positional encoding (see
:mod:`annotated.models.transformer`). ``to_dict`` / ``from_dict`` turn a
config into JSON- and YAML-ready values and back; ``diff`` names the fields
two configs disagree on.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from annotated.attention.rules import check_attention
from annotated.attention.scaled_scores import (
    LENGTH_SCALES,
    check_logit_scale,
)
from annotated.core.fields import check_choice, check_fields
from annotated.models.feedforward import ACTIVATION_NAMES, default_d_ff
from annotated.models.norms import NORM_TYPES
from annotated.positional import encoding_class

ARCHITECTURES = ("decoder", "encoder", "encoder-decoder")
NORM_PLACEMENTS = ("pre", "post")
# ModelConfig's numbers, checked with every field's type first
# (annotated.core.fields.check_fields)
RANGES = {
    "vocab_size": "positive",
    "d_model": "positive",
    "n_layers": "positive",
    "n_heads": "positive",
    "n_kv_heads": "positive",
    "d_ff": "positive",
    "max_len": "positive",
    "dropout": "[0, 1)",
    "pad_id": "non-negative",
    "embedding_scale": "positive",
    "norm_eps": "(0, 1)",
    "n_token_types": "non-negative",
    "logit_scale": "positive",
    "length_scale_train": "[2, inf)",
    "length_scale_slope": "non-negative",
}


@dataclass(kw_only=True)
class ModelConfig:
    """Everything needed to rebuild a model; ``to_dict`` / ``from_dict`` for
    JSON and YAML.

    Four fields exist so that published models can be expressed exactly (the
    converters in :mod:`annotated.models.hf` set them); their defaults leave
    every model as it was. ``activation="gelu_tanh"`` is GPT-2's
    tanh-approximate GELU (Radford et al. 2019; exact GELU differs by up to
    ~5e-4 per unit). ``norm_eps`` is every norm's ε (Ba et al. 2016):
    1e-5 in PyTorch and GPT-2, 1e-12 in BERT (Devlin et al. 2019).
    ``embedding_norm`` puts a norm on token + position (+ token-type)
    embeddings before the first block, and ``n_token_types`` adds BERT's
    learned segment embedding (sentence A or B; type 0 when none is given).

    Five fields hold the pieces most models since GPT-2 changed; their
    defaults leave a model as GPT-2 had it: ``norm_type="rmsnorm"``
    (:mod:`annotated.models.norms`), a gated feed-forward network with
    ``activation="swiglu"`` (:mod:`annotated.models.feedforward`),
    ``norm_bias=False`` (with ``bias=False``: no bias anywhere), ``qk_norm``
    (:mod:`annotated.attention.qk_norm`) and ``zero_init_residual``.

    ``logit_scale`` and ``length_scale`` multiply every self-attention logit
    by a fixed inverse temperature and by a factor that grows with the
    number of keys (:mod:`annotated.attention.scaled_scores`); left at their
    defaults they change no number.
    """

    # "decoder" (GPT), "encoder" (BERT) or "encoder-decoder" (T5)
    arch: str = "decoder"
    vocab_size: int
    d_model: int = 128
    # blocks per stack (an encoder-decoder has two stacks)
    n_layers: int = 2
    n_heads: int = 4
    # < n_heads: grouped-query attention (1 = multi-query); None = n_heads
    n_kv_heads: int | None = None
    # feed-forward hidden size; None → 4 · d_model (8/3 · d_model gated)
    d_ff: int | None = None
    # the training length: rows of a learned positional table
    max_len: int = 256
    dropout: float = 0.0
    # a name in annotated.positional.POSITIONAL_ENCODINGS
    positional: str = "rope"
    # self-attention kernel in annotated.kernels.ATTENTION_KERNELS
    attention: str = "full"
    # e.g. {"window": 64}, {"top_k": 8}, {"block_size": 64}
    attention_params: dict = field(default_factory=dict)
    # norm placement: "pre" (GPT-2) or "post" (original transformer)
    norm: str = "pre"
    # which norm: "layernorm" (GPT-2, BERT) or "rmsnorm" (T5, LLaMA)
    norm_type: str = field(
        default="layernorm", metadata={"choices": NORM_TYPES}
    )
    # feed-forward non-linearity: "gelu" (BERT), "gelu_tanh" (GPT-2),
    # "relu", "relu2" (Primer), or gated "swiglu" (LLaMA)
    activation: str = field(
        default="gelu", metadata={"choices": ACTIVATION_NAMES}
    )
    # ε of every LayerNorm / RMSNorm: 1e-5 (GPT-2, PyTorch), 1e-12 (BERT)
    norm_eps: float = 1e-5
    # a norm on the summed embeddings before the first block (BERT)
    embedding_norm: bool = False
    # > 0: a learned token-type (segment A/B) embedding (BERT: 2)
    n_token_types: int = 0
    # output projection shares the token-embedding matrix (Press & Wolf 2017)
    tie_weights: bool = True
    # biases in the attention and feed-forward linear layers
    bias: bool = True
    # the LayerNorms' shift β (RMSNorm has none); nanoGPT drops it too
    norm_bias: bool = True
    # RMS-normalise every head's queries and keys (attention.qk_norm)
    qk_norm: bool = False
    # start each block's residual output projections (attention's out_proj,
    # the feed-forward's last layer) at zero: every block begins as identity
    zero_init_residual: bool = False
    # encoder only: size of the sequence-classification head (None = no head)
    n_classes: int | None = None
    # padding's token id: encoders hide these keys when given no mask
    pad_id: int | None = None
    # token embeddings × this; None: √d_model for sinusoidal/randomized, or 1
    embedding_scale: float | None = None
    # every self-attention logit (q·k/√D + bias) × this, an inverse
    # temperature; change it on a trained model with set_logit_scale
    logit_scale: float = 1.0
    # a length-aware softmax: logits × s_h·log n ("ssmax", s_h learned),
    # × log n / log n_train ("log_ratio"), or × max(1, that) ("…_beyond");
    # or 1 + β·max(0, log(n / n_train)) ("log_beyond");
    # n = the keys a query sees
    length_scale: str | None = field(
        default=None, metadata={"choices": LENGTH_SCALES}
    )
    # n_train: the n at which the length factor is 1; None: max_len
    length_scale_train: int | None = None
    # β of "log_beyond": 1 + β·log(n / n_train) beyond n_train keys
    length_scale_slope: float = 0.1

    def __post_init__(self):
        # every field's type and range first: nothing below meets a wrong type
        check_fields(self, RANGES)
        check_choice("arch", self.arch, ARCHITECTURES)
        check_choice("norm placement", self.norm, NORM_PLACEMENTS)
        check_choice("norm_type", self.norm_type, NORM_TYPES)
        check_choice("activation", self.activation, ACTIVATION_NAMES)
        if self.length_scale is not None and self.length_scale_train is None:
            self.length_scale_train = self.max_len
        check_logit_scale(
            self.logit_scale,
            self.length_scale,
            self.length_scale_train,
            self.length_scale_slope,
        )
        # heads, head dim and kernel: the rules every attention layer keeps
        # (the kernel runs the self-attention; cross-attention stays dense)
        self.attention_params = check_attention(
            self.d_model,
            self.n_heads,
            self.n_kv_heads,
            positional=self.positional_encoding,
            kernel=self.attention,
            kernel_params=self.attention_params,
            dropout=self.dropout,
            scales_scores=self.scales_scores,
        )
        if self.d_ff is None:
            self.d_ff = default_d_ff(self.d_model, self.activation)
        if self.n_classes is not None:
            if self.arch != "encoder":
                raise ValueError(
                    "n_classes is for the encoder's classification head; "
                    "set arch='encoder' or n_classes=None"
                )
            if self.n_classes < 2:
                raise ValueError(
                    f"n_classes must be at least 2, got {self.n_classes}"
                )
        if self.pad_id is not None and not 0 <= self.pad_id < self.vocab_size:
            raise ValueError(
                f"pad_id={self.pad_id} must be a token id in [0, "
                f"vocab_size={self.vocab_size})"
            )
        if self.embedding_scale is not None:
            self.embedding_scale = float(self.embedding_scale)

    @property
    def effective_embedding_scale(self) -> float:
        """The factor token embeddings are multiplied by: ``embedding_scale``,
        or when None √d_model for an encoding that adds a fixed signal to the
        embeddings (``fixed_signal``) and 1.0 for every other one."""
        if self.embedding_scale is not None:
            return self.embedding_scale
        return (
            math.sqrt(self.d_model)
            if self.positional_encoding.fixed_signal
            else 1.0
        )

    @property
    def scales_scores(self) -> bool:
        """Whether self-attention multiplies its logits
        (:mod:`annotated.attention.scaled_scores`)."""
        return self.logit_scale != 1.0 or self.length_scale is not None

    @property
    def positional_encoding(self) -> type:
        """The class of the positional encoding (what it needs and has:
        ``where``, ``even_head_dim``, …); an unknown name raises."""
        return encoding_class(self.positional)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown ModelConfig field(s) {unknown}; valid fields: "
                f"{sorted(known)}"
            )
        return cls(**values)

    def diff(self, other: ModelConfig) -> dict[str, tuple]:
        """The fields that differ: ``{name: (self's value, other's)}``."""
        a, b = self.to_dict(), other.to_dict()
        return {k: (a[k], b[k]) for k in a if a[k] != b[k]}
