"""What the three architectures share: a stack of blocks and the model base
class.

:class:`Stack` is the body of every model: embedding-level positions on the
token embeddings, the blocks of :mod:`annotated.models.blocks` (each built
with the config's attention kernel, and with the positional encoding when it
acts inside attention, wrapped with the logit scale of
:mod:`annotated.attention.scaled_scores` when the config sets one), and a
final norm for pre-LN (every norm a LayerNorm or an RMSNorm, as
``ModelConfig.norm_type`` says).
:class:`AnnotatedModel` holds what :mod:`annotated.models.transformer`'s GPT,
BERT and T5 have in common: the token embedding, the output head, GPT-2's
initialisation (with ``zero_init_residual``, the blocks' residual output
projections at zero), and ``save`` / ``load_weights`` (the file format is
:mod:`annotated.models.checkpoints`).

Legend: B batch, T time, C d_model, V vocab.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from annotated.attention.scaled_scores import scaled_encoding
from annotated.core.fields import check_token_ids
from annotated.models.blocks import (
    DecoderBlock,
    EncoderBlock,
    TransformerBlock,
)
from annotated.models.checkpoints import (
    describe_differences,
    load_state,
    read_checkpoint,
    write_checkpoint,
)
from annotated.models.config import ModelConfig
from annotated.models.norms import make_norm
from annotated.positional import make_positional


class Stack(nn.Module):
    """Token embedding (shared, passed in) + embedding-level positions +
    blocks + final norm (pre-LN only)."""

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
        acts_in_attention = self.positional.where in ("qk", "score")
        block = DecoderBlock if causal else EncoderBlock
        extra = {"cross_attention": cross_attention} if causal else {}
        norm = {"eps": c.norm_eps, "bias": c.norm_bias}
        # BERT normalises the summed embeddings (Devlin et al. 2019)
        self.embedding_norm = (
            make_norm(c.norm_type, c.d_model, **norm)
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
                # the stack's encoding, or one that scales the logits too
                positional=scaled_encoding(
                    self.positional if acts_in_attention else None,
                    c.n_heads,
                    causal=causal,
                    logit_scale=c.logit_scale,
                    length_scale=c.length_scale,
                    length_train=c.length_scale_train,
                    length_slope=c.length_scale_slope,
                ),
                kernel=c.attention,
                kernel_params=c.attention_params,
                norm_eps=c.norm_eps,
                norm_type=c.norm_type,
                norm_bias=c.norm_bias,
                qk_norm=c.qk_norm,
                **extra,
            )
            for _ in range(c.n_layers)
        )
        self.final_norm = (
            make_norm(c.norm_type, c.d_model, **norm)
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
                f"need one KVCache per layer ({len(self.blocks)}), got "
                f"{len(caches)}"
            )
        offset = 0 if caches is None else caches[0].seq_len
        # continuing a cached sequence: the new tokens sit after the cache
        if positions is None and offset:
            # (T,)
            positions = torch.arange(
                offset, offset + x.shape[1], device=x.device
            )
        # identity unless the encoding acts on embeddings
        x = self.positional(x, positions)
        x = self.drop(
            x if self.embedding_norm is None else self.embedding_norm(x)
        )
        self_w, cross_w = [], []
        for i, block in enumerate(self.blocks):
            x, sw, cw = block(
                x,
                memory,
                mask=mask,
                memory_mask=memory_mask,
                need_weights=need_weights,
                positions=positions,
                cache=None if caches is None else caches[i],
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
                "token_types given, but this model has no token-type "
                "embedding; set n_token_types"
            )
        if self.type_emb is not None:
            # (B, T)
            types = (
                torch.zeros_like(idx) if token_types is None else token_types
            )
            check_token_ids(types, self.config.n_token_types, "token_types")
            if types.shape != idx.shape:
                raise ValueError(
                    f"token_types must have the ids' shape "
                    f"{tuple(idx.shape)}, got {tuple(types.shape)}"
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
        norms start at gain 1 (and shift 0). With ``zero_init_residual`` the
        layers that write into the residual stream
        (:meth:`~annotated.models.blocks.TransformerBlock.residual_outputs`)
        start at zero, so every block starts as the identity (as
        modded-nanogpt does; Goyal et al. 2017 zero a ResNet block's last
        BatchNorm gain for the same reason)."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
        if self.config.zero_init_residual:
            for block in self.modules():
                if isinstance(block, TransformerBlock):
                    for layer in block.residual_outputs():
                        nn.init.zeros_(layer.weight)
        if self.config.tie_weights:
            # logits = h Eᵀ: one matrix reads and writes tokens
            self.lm_head.weight = self.tok_emb.weight

    def save(self, path) -> None:
        """Write ``{"format", "format_version", "config", "state_dict",
        "sha256"}`` atomically (temp file + rename; see
        :func:`~annotated.models.checkpoints.write_checkpoint`)."""
        write_checkpoint(path, self.config, self.state_dict())

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
