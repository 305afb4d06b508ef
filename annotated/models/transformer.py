"""Three transformer architectures from one block: GPT, BERT and T5.

* **Decoder-only** (GPT; Radford et al. 2018): causal self-attention blocks,
  next-token logits.
* **Encoder-only** (BERT; Devlin et al. 2019): bidirectional blocks, a
  masked-LM head and a sequence-classification head.
* **Encoder-decoder** (T5; Raffel et al. 2020, after Vaswani et al. 2017): an
  encoder over the source, a causal decoder that also cross-attends to the
  encoder output.

All three are built from :mod:`annotated.models.blocks` and configured by one
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
matrix. Measured on sort (length 8, d_model 64, 250 steps): a sinusoidal GPT's
loss falls to 0.014 with the scale and 0.336 without (RoPE 0.021); T2T's
unit-variance tokens (std C^-1/2, times √C) learn no faster (0.030) and start
with a higher loss, so the init stays at 0.02. Left out: GPT-2's 1/√(2N)
residual init, T5's RMSNorm and bias-free layers.

Legend: B batch, T time (target / decoder), S source (encoder) length, C
d_model, V vocab, H heads, L layers, K classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn

from annotated.attention.masks import key_padding_mask as _key_mask
from annotated.attention.multihead import KVCache
from annotated.core.fields import check_token_ids as _check_ids
from annotated.models.blocks import DecoderBlock, EncoderBlock
from annotated.models.checkpoints import (
    describe_differences,
    load_state,
    read_checkpoint,
    write_checkpoint,
)
from annotated.models.config import ModelConfig
from annotated.positional import make_positional
from annotated.positional.randomized import sample_sorted_positions


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


# --- the pieces every model shares ------------------------------------------


class Stack(nn.Module):
    """Token embedding (shared, passed in) + embedding-level positions +
    blocks + final LN (pre-LN only)."""

    def __init__(
        self,
        config: ModelConfig,
        *,
        causal: bool,
        cross_attention: bool = False,
    ):
        super().__init__()
        c = config
        # One encoding instance per stack, shared by its layers (T5 shares its
        # bias table across layers).
        self.positional = make_positional(
            c.positional,
            d_model=c.d_model,
            n_heads=c.n_heads,
            max_len=c.max_len,
            causal=causal,
        )
        in_attention = (
            self.positional
            if self.positional.where in ("qk", "score")
            else None
        )
        block = DecoderBlock if causal else EncoderBlock
        extra = {"cross_attention": cross_attention} if causal else {}
        # BERT normalises the summed embeddings before the first block (Devlin
        # et al. 2019).
        self.embedding_norm = (
            nn.LayerNorm(c.d_model, eps=c.norm_eps)
            if c.embedding_norm
            else None
        )
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(
            block(
                c.d_model,
                c.n_heads,
                c.d_ff,
                n_kv_heads=c.n_kv_heads,
                norm=c.norm,
                activation=c.activation,
                dropout=c.dropout,
                bias=c.bias,
                positional=in_attention,
                norm_eps=c.norm_eps,
                **extra,
            )
            for _ in range(c.n_layers)
        )
        # the chosen kernel runs the self-attention; cross-attention stays
        # dense
        for block in self.blocks:
            block.self_attn.sublayer.use_kernel(
                c.attention, c.attention_params
            )
        self.final_norm = (
            nn.LayerNorm(c.d_model, eps=c.norm_eps)
            if c.norm == "pre"
            else nn.Identity()
        )

    def forward(
        self,
        x,
        memory=None,
        *,
        mask=None,
        memory_mask=None,
        need_weights=False,
        positions=None,
        caches=None,
    ):
        """``x`` token embeddings (B, T, C) → (hidden (B, T, C), self weights
        per layer, cross weights per layer)."""
        if caches is not None and len(caches) != len(self.blocks):
            raise ValueError(
                f"need one KVCache per layer ({len(self.blocks)}), got {len(caches)}"
            )
        offset = 0 if caches is None else caches[0].seq_len
        pe_positions = positions
        # continuing a cached sequence: the new tokens sit after the cache
        if positions is None and offset:
            # (T,)
            pe_positions = torch.arange(
                offset, offset + x.shape[1], device=x.device
            )
        # identity unless the encoding acts on embeddings
        x = self.positional(x, pe_positions)
        x = self.drop(
            x if self.embedding_norm is None else self.embedding_norm(x)
        )
        self_w, cross_w = [], []
        for i, block in enumerate(self.blocks):
            cache = None if caches is None else caches[i]
            x, sw, cw = block(
                x,
                memory,
                mask=mask,
                memory_mask=memory_mask,
                need_weights=need_weights,
                positions=positions,
                cache=cache,
            )
            self_w.append(sw)
            cross_w.append(cw)
        if not need_weights:
            return self.final_norm(x), None, None
        return (
            self.final_norm(x),
            self_w,
            (cross_w if memory is not None else None),
        )


class AnnotatedModel(nn.Module):
    """Shared by the three models: token embedding, tied or separate output
    head, init, save/load."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        # (V, C)
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        # BERT's segment embedding (Devlin et al. 2019, §3.2): one learned
        # vector per token type.
        self.type_emb = (
            nn.Embedding(config.n_token_types, config.d_model)
            if config.n_token_types
            else None
        )

    def embed(
        self, idx: torch.Tensor, token_types: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Token ids ``(B, T)`` → token embeddings ``(B, T, C)`` times the
        config's ``effective_embedding_scale`` (Vaswani et al. 2017, §3.4);
        every model reads its tokens here. With ``n_token_types`` the type
        embedding of ``token_types (B, T)`` (all type 0 when None) is
        added."""
        scale = self.config.effective_embedding_scale
        x = self.tok_emb(idx)  # (B, T, C)
        x = x if scale == 1.0 else x * scale
        if self.type_emb is None and token_types is not None:
            raise ValueError(
                "token_types given, but this model has no token-type embedding; set n_token_types"
            )
        if self.type_emb is not None:
            # (B, T)
            types = (
                torch.zeros_like(idx) if token_types is None else token_types
            )
            _check_ids(types, self.config.n_token_types, "token_types")
            if types.shape != idx.shape:
                raise ValueError(
                    f"token_types must have the ids' shape {tuple(idx.shape)}, got {tuple(types.shape)}"
                )
            x = x + self.type_emb(types)  # (B, T, C)
        return x

    def _make_lm_head(self) -> nn.Linear:
        # C -> V
        return nn.Linear(
            self.config.d_model, self.config.vocab_size, bias=False
        )

    def _init_weights(self) -> None:
        """GPT-2 initialisation: normal(0, 0.02) weights, zero biases;
        LayerNorms start at (1, 0)."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
        if self.config.tie_weights:
            # logits = h Eᵀ: one matrix reads and writes tokens
            self.lm_head.weight = self.tok_emb.weight

    def save(self, path) -> None:
        """Write ``{"format", "format_version", "config", "state_dict"}``
        atomically (temp file + rename)."""
        save_model(self, path)

    def load_weights(self, path) -> AnnotatedModel:
        """Load a checkpoint into this model in place; its config must equal
        ``self.config``."""
        checkpoint = read_checkpoint(path)
        differ = ModelConfig.from_dict(checkpoint["config"]).diff(self.config)
        if differ:
            raise ValueError(
                f"{path}: checkpoint config does not match this model's: "
                + describe_differences(differ)
            )
        load_state(self, checkpoint["state_dict"], path)
        return self


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
        # Ruoss et al.: train and test alike
        if (
            positions is None
            and caches is None
            and self.config.random_positions
        ):
            positions = sample_sorted_positions(
                idx.shape[0], idx.shape[1], self.config.random_positions
            ).to(idx.device)
        h, attn, _ = self.decoder(
            self.embed(idx),
            need_weights=need_weights,
            positions=positions,
            caches=caches,
        )
        return ModelOutput(self.lm_head(h), attn)

    @property
    def position_range(self) -> int:
        """How many positions randomized training draws from (0 = none):
        ``config.random_positions``, or the randomized encoding's own
        ``max_positions``. :func:`annotated.training.loop.train` and
        :func:`annotated.training.evaluation.evaluate` pass positions drawn
        from seeded generators."""
        return self.config.random_positions or getattr(
            self.decoder.positional, "max_positions", 0
        )


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
        """``idx (B, T)`` [, BERT's ``token_types (B, T)``] → (states (B, T,
        C), weights, key mask (B, 1, 1, T))."""
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
        """Class logits ``(B, K)`` from the mean final state over the real
        tokens."""
        if self.classifier is None:
            raise ValueError(
                "this model has no classification head; set n_classes in its ModelConfig"
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
    """The model class for ``config.arch``, freshly initialised (seed with
    ``torch.manual_seed`` first)."""
    config = (
        ModelConfig.from_dict(config) if isinstance(config, dict) else config
    )
    return MODEL_CLASSES[config.arch](config)


# --- save / load ------------------------------------------------------------


def save_model(model: AnnotatedModel, path) -> None:
    """Write the model with its config to ``path`` atomically (see
    :func:`write_checkpoint`)."""
    write_checkpoint(path, model.config, model.state_dict())


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


load = load_model
