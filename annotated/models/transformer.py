"""Three transformer architectures from one block: GPT, BERT and T5.

* **Decoder-only** (GPT; Radford et al. 2018): causal self-attention blocks,
  next-token logits.
* **Encoder-only** (BERT; Devlin et al. 2019): bidirectional blocks, a
  masked-LM head and a sequence-classification head.
* **Encoder-decoder** (T5; Raffel et al. 2020, after Vaswani et al. 2017): an
  encoder over the source, a causal decoder that also cross-attends to the
  encoder output.

All three are a :class:`~annotated.models.stack.Stack` of the blocks of
:mod:`annotated.models.blocks` (or two stacks) under an
:class:`~annotated.models.stack.AnnotatedModel`, configured by one
:class:`~annotated.models.config.ModelConfig` (which also says which attention
kernel every block's self-attention runs; cross-attention always runs dense).
``save`` / :func:`load_model` keep the config with the weights (the file
format is :mod:`annotated.models.checkpoints`);
:func:`annotated.models.generate.generate` decodes from a GPT or a T5 with a
key-value cache; :mod:`annotated.models.summary` counts and tabulates
parameters.

Token embeddings start GPT-2 style, N(0, 0.02), and are multiplied by
``ModelConfig.embedding_scale`` before the positions are added, as the
original transformer multiplies them by √C (Vaswani et al. 2017, §3.4). Left
at None the scale is chosen from the positional encoding: √C when it adds a
*fixed* signal to the embeddings (sinusoidal, randomized), whose entries of
amplitude 1 would otherwise drown tokens of size 0.02; 1 for every other
encoding (a learned table starts at the tokens' 0.02 scale; RoPE, ALiBi, T5
and NoPE add nothing to the embeddings). A tied output head reads the unscaled
matrix. Left out: GPT-2's 1/√(2N) residual init, T5's RMSNorm and bias-free
layers.

Legend: B batch, T time (target / decoder), S source (encoder) length, C
d_model, V vocab, H heads, L layers, K classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn

from annotated.attention.cache import KVCache
from annotated.attention.masks import key_padding_mask as _key_mask
from annotated.core.fields import check_token_ids as _check_ids
from annotated.models.checkpoints import (
    describe_differences,
    load_state,
    read_checkpoint,
)
from annotated.models.config import ModelConfig
from annotated.models.stack import AnnotatedModel, Stack


@dataclass
class ModelOutput:
    """What every model returns. Attention lists hold one ``(B, H, Tq, Tk)``
    tensor per layer when ``need_weights=True`` (else None). For an
    encoder-decoder, ``attentions`` are the decoder's self-attentions and
    ``encoder_attentions`` the encoder's."""

    logits: torch.Tensor
    attentions: list[torch.Tensor] | None = None
    cross_attentions: list[torch.Tensor] | None = None
    encoder_attentions: list[torch.Tensor] | None = field(default=None)


class DecoderOnly(AnnotatedModel):
    """GPT: causal blocks, next-token logits ``(B, T, V)``."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.decoder = Stack(config, causal=True)
        self.lm_head = self._make_lm_head()
        self._init_weights()

    def new_caches(self) -> list[KVCache]:
        return [KVCache() for _ in self.decoder.blocks]

    def forward(
        self, idx, *, need_weights=False, positions=None, caches=None
    ) -> ModelOutput:
        """``idx (B, T)`` → logits ``(B, T, V)``; with ``caches`` (from
        :meth:`new_caches`) the tokens continue the cached ones (their
        positions start at the cache length)."""
        _check_ids(idx, self.config.vocab_size)
        h, attn, _ = self.decoder(
            self.embed(idx),
            need_weights=need_weights,
            positions=positions,
            caches=caches,
        )
        return ModelOutput(self.lm_head(h), attn)

    @property
    def position_range(self) -> int:
        """How many positions randomized training draws from (0 = none), as
        the positional encoding declares it.
        :func:`annotated.training.loop.train` and
        :func:`annotated.training.evaluation.evaluate` pass positions drawn
        from seeded generators."""
        return self.decoder.positional.position_range


class EncoderOnly(AnnotatedModel):
    """BERT: bidirectional blocks, a masked-LM head ``(B, T, V)`` and, with
    ``n_classes``, a classification head on the **mean of the real (unpadded)
    tokens'** final states."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.encoder = Stack(config, causal=False)
        self.lm_head = self._make_lm_head()
        # C -> K
        self.classifier = (
            nn.Linear(config.d_model, config.n_classes)
            if config.n_classes
            else None
        )
        self._init_weights()

    def encode(
        self, idx, *, padding_mask=None, need_weights=False, token_types=None
    ):
        """``idx (B, T)`` [, BERT's ``token_types (B, T)``] →
        (states (B, T, C), weights, key mask (B, 1, 1, T))."""
        _check_ids(idx, self.config.vocab_size)
        mask = _key_mask(padding_mask, idx, self.config.pad_id)
        h, attn, _ = self.encoder(
            self.embed(idx, token_types), mask=mask, need_weights=need_weights
        )
        return h, attn, mask

    def forward(
        self, idx, *, padding_mask=None, need_weights=False, token_types=None
    ) -> ModelOutput:
        """``idx (B, T)``, ``padding_mask (B, T)`` bool (True = real token) →
        MLM logits ``(B, T, V)``."""
        h, attn, _ = self.encode(
            idx,
            padding_mask=padding_mask,
            need_weights=need_weights,
            token_types=token_types,
        )
        return ModelOutput(self.lm_head(h), attn)

    def classify(
        self, idx, *, padding_mask=None, token_types=None
    ) -> torch.Tensor:
        """Class logits ``(B, K)`` from the real tokens' mean final state."""
        if self.classifier is None:
            raise ValueError(
                "this model has no classification head; set n_classes in "
                "its ModelConfig"
            )
        h, _, mask = self.encode(
            idx, padding_mask=padding_mask, token_types=token_types
        )
        # (B, T)
        weight = (
            torch.ones_like(idx, dtype=h.dtype)
            if mask is None
            else mask[:, 0, 0].to(h.dtype)
        )
        # (B, C)
        pooled = (h * weight[..., None]).sum(1) / weight.sum(
            1, keepdim=True
        ).clamp_min(1)
        return self.classifier(pooled)  # (B, K)


class EncoderDecoder(AnnotatedModel):
    """T5: an encoder over the source and a causal decoder with
    cross-attention; one token embedding shared by both stacks and the output
    head."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.encoder = Stack(config, causal=False)
        self.decoder = Stack(config, causal=True, cross_attention=True)
        self.lm_head = self._make_lm_head()
        self._init_weights()

    def new_caches(self) -> list[KVCache]:
        return [KVCache() for _ in self.decoder.blocks]

    def encode(self, src, *, src_padding_mask=None, need_weights=False):
        """``src (B, S)`` → (memory (B, S, C), encoder weights or None, memory
        mask (B, 1, 1, S) or None)."""
        _check_ids(src, self.config.vocab_size, "src")
        mask = _key_mask(src_padding_mask, src, self.config.pad_id)
        memory, attn, _ = self.encoder(
            self.embed(src), mask=mask, need_weights=need_weights
        )
        return memory, attn, mask

    def decode(
        self,
        tgt_in,
        memory,
        *,
        memory_mask=None,
        need_weights=False,
        positions=None,
        caches=None,
    ):
        """``tgt_in (B, T)`` reading ``memory (B, S, C)`` → (logits (B, T, V),
        self weights, cross weights)."""
        _check_ids(tgt_in, self.config.vocab_size, "tgt_in")
        h, attn, cross = self.decoder(
            self.embed(tgt_in),
            memory,
            memory_mask=memory_mask,
            need_weights=need_weights,
            positions=positions,
            caches=caches,
        )
        return self.lm_head(h), attn, cross

    def forward(
        self, src, tgt_in, *, src_padding_mask=None, need_weights=False
    ) -> ModelOutput:
        memory, enc_attn, mask = self.encode(
            src, src_padding_mask=src_padding_mask, need_weights=need_weights
        )
        logits, attn, cross = self.decode(
            tgt_in, memory, memory_mask=mask, need_weights=need_weights
        )
        return ModelOutput(logits, attn, cross, enc_attn)


MODEL_CLASSES = {
    "decoder": DecoderOnly,
    "encoder": EncoderOnly,
    "encoder-decoder": EncoderDecoder,
}


def build_model(config: ModelConfig | dict) -> AnnotatedModel:
    """The model class for ``config.arch``, freshly initialised.

    Seed with ``torch.manual_seed`` first.
    """
    config = (
        ModelConfig.from_dict(config) if isinstance(config, dict) else config
    )
    return MODEL_CLASSES[config.arch](config)


def load_model(path, config: ModelConfig | None = None) -> AnnotatedModel:
    """Rebuild the model saved at ``path`` (in eval mode). With ``config``,
    first check that the checkpoint's config equals it and name every field
    that differs."""
    checkpoint = read_checkpoint(path)
    saved = ModelConfig.from_dict(checkpoint["config"])
    if config is not None and (differ := saved.diff(config)):
        raise ValueError(
            f"{path}: checkpoint config does not match the given config: "
            + describe_differences(differ)
        )
    model = build_model(saved)
    load_state(model, checkpoint["state_dict"], path)
    return model.eval()
