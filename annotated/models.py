"""Three transformer architectures from one block: GPT, BERT and T5.

* **Decoder-only** (GPT; Radford et al. 2018): causal self-attention blocks, next-token logits.
* **Encoder-only** (BERT; Devlin et al. 2019): bidirectional blocks, a masked-LM head and a
  sequence-classification head.
* **Encoder-decoder** (T5; Raffel et al. 2020, after Vaswani et al. 2017): an encoder over
  the source, a causal decoder that also cross-attends to the encoder output.

All three are built from :mod:`annotated.blocks` and configured by one :class:`ModelConfig`.
:func:`generate` decodes greedily or by sampling (temperature, top-k) with a key-value
cache that gives exactly the tokens recomputation gives; ``save`` / :func:`load_model` keep
the config with the weights. ``ModelConfig.attention`` picks the self-attention kernel of
:mod:`annotated.kernels` in every block (settings in ``attention_params``); cross-attention
always runs dense, since a source of another length has no window or causal order to
exploit. Combinations a kernel cannot honour (a score bias with linear or local attention,
attention dropout with any kernel but "full") are refused when the config is made.

Token embeddings start GPT-2 style, N(0, 0.02), and are multiplied by
``ModelConfig.embedding_scale`` before the positions are added, as the original
transformer multiplies them by √C (Vaswani et al. 2017, §3.4). Left at None the scale is
chosen from the positional encoding: √C when it adds a *fixed* signal to the embeddings
(sinusoidal, randomized), whose entries of amplitude 1 would otherwise drown tokens of
size 0.02; 1 for every other encoding (a learned table starts at the tokens' 0.02 scale;
RoPE, ALiBi, T5 and NoPE add nothing to the embeddings). A tied output head reads the
unscaled matrix. Measured on sort (length 8, d_model 64, 250 steps): a sinusoidal GPT's
loss falls to 0.014 with the scale and 0.336 without (RoPE 0.021); T2T's unit-variance
tokens (std C^-1/2, times √C) learn no faster (0.030) and start with a higher loss, so
the init stays at 0.02. Left out: GPT-2's 1/√(2N) residual init, T5's RMSNorm and
bias-free layers, a cache for the cross-attention keys.

Legend: B batch, T time (target / decoder), S source (encoder) length, C d_model, V vocab,
H heads, L layers, K classes.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from annotated.blocks import ACTIVATIONS, NORM_PLACEMENTS, DecoderBlock, EncoderBlock, check_choice
from annotated.files import atomic_path
from annotated.kernels import ATTENTION_KERNELS, check_kernel_params
from annotated.multihead import KVCache
from annotated.positional import POSITIONAL_ENCODINGS, make_positional

ARCHITECTURES = ("decoder", "encoder", "encoder-decoder")
FORMAT_VERSION = 1
CHECKPOINT_KIND = "annotated-model"


@dataclass(kw_only=True)
class ModelConfig:
    """Everything needed to rebuild a model; ``to_dict`` / ``from_dict`` for JSON and YAML."""

    arch: str = "decoder"  # "decoder" (GPT), "encoder" (BERT) or "encoder-decoder" (T5)
    vocab_size: int
    d_model: int = 128
    n_layers: int = 2  # per stack: an encoder-decoder has n_layers encoder and n_layers decoder blocks
    n_heads: int = 4
    n_kv_heads: int | None = None  # < n_heads: grouped-query attention (1 = multi-query); None = n_heads
    d_ff: int | None = None  # feed-forward hidden size; None → 4 * d_model
    max_len: int = 256  # longest sequence the learned positional table holds (the training length)
    dropout: float = 0.0
    positional: str = "rope"  # a name in annotated.positional.POSITIONAL_ENCODINGS
    attention: str = "full"  # self-attention kernel in annotated.kernels.ATTENTION_KERNELS (cross-attention: "full")
    attention_params: dict = field(default_factory=dict)  # e.g. {"window": 64}, {"top_k": 8}, {"block_size": 64}
    norm: str = "pre"  # LayerNorm placement: "pre" (GPT-2) or "post" (original transformer)
    activation: str = "gelu"  # feed-forward non-linearity: "gelu" or "relu"
    tie_weights: bool = True  # output projection shares the token-embedding matrix (Press & Wolf 2017)
    bias: bool = True  # biases in the attention and feed-forward linear layers
    n_classes: int | None = None  # encoder only: size of the sequence-classification head (None = no head)
    pad_id: int | None = None  # token id of padding: encoders hide these keys when no padding mask is given
    embedding_scale: float | None = None  # token embeddings × this; None → √d_model for sinusoidal/randomized, else 1

    def __post_init__(self):
        check_choice("arch", self.arch, ARCHITECTURES)
        check_choice("positional encoding", self.positional, POSITIONAL_ENCODINGS)
        check_choice("attention kernel", self.attention, ATTENTION_KERNELS)
        self.attention_params = check_kernel_params(self.attention, self.attention_params)
        self._check_attention_kernel()
        check_choice("norm placement", self.norm, NORM_PLACEMENTS)
        check_choice("activation", self.activation, ACTIVATIONS)
        for name in ("vocab_size", "d_model", "n_layers", "n_heads", "max_len"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model={self.d_model} must be divisible by n_heads={self.n_heads} (each head gets "
                "d_model // n_heads dims); change d_model or n_heads"
            )
        if self.n_kv_heads is not None and (self.n_kv_heads <= 0 or self.n_heads % self.n_kv_heads):
            raise ValueError(
                f"n_kv_heads={self.n_kv_heads} must be a positive divisor of n_heads={self.n_heads}; "
                "use None for ordinary multi-head attention"
            )
        self.positional_encoding.check_head_dim(self.d_model // self.n_heads)
        self.d_ff = 4 * self.d_model if self.d_ff is None else self.d_ff
        if self.d_ff <= 0:
            raise ValueError(f"d_ff must be positive (or None for 4 * d_model), got {self.d_ff}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        if self.n_classes is not None:
            if self.arch != "encoder":
                raise ValueError(
                    "n_classes is for the encoder's classification head; set arch='encoder' or n_classes=None"
                )
            if self.n_classes < 2:
                raise ValueError(f"n_classes must be at least 2, got {self.n_classes}")
        if self.pad_id is not None and not 0 <= self.pad_id < self.vocab_size:
            raise ValueError(f"pad_id={self.pad_id} must be a token id in [0, vocab_size={self.vocab_size})")
        if self.embedding_scale is not None:
            scale = self.embedding_scale
            if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0 < scale < math.inf:
                raise ValueError(
                    f"embedding_scale must be a positive finite number (or None for automatic), got {scale!r}"
                )
            self.embedding_scale = float(scale)

    @property
    def effective_embedding_scale(self) -> float:
        """The factor token embeddings are multiplied by: ``embedding_scale``, or when None √d_model
        for an encoding that adds a fixed signal to the embeddings (``fixed_signal``) and 1.0 for every other one."""
        if self.embedding_scale is not None:
            return self.embedding_scale
        return math.sqrt(self.d_model) if self.positional_encoding.fixed_signal else 1.0

    @property
    def positional_encoding(self) -> type:
        """The class of the positional encoding (what it needs and has: ``where``, ``even_head_dim``, …)."""
        return POSITIONAL_ENCODINGS[self.positional]

    def _check_attention_kernel(self) -> None:
        """Refuse what a kernel cannot honour (the kernel applies to self-attention only)."""
        kernel = ATTENTION_KERNELS[self.attention]
        if self.positional_encoding.where == "score" and not kernel.score_mods:
            raise ValueError(
                f"attention={self.attention!r} cannot apply the score_mod of positional={self.positional!r} "
                "(it never forms the q·k scores); use positional='rope' or an embedding-level encoding, or one of "
                f"the kernels that take score mods: {[n for n, k in ATTENTION_KERNELS.items() if k.score_mods]}"
            )
        if not kernel.dropout and self.dropout > 0:
            raise ValueError(
                f"attention={self.attention!r} has no attention-weight dropout; set dropout=0.0 or attention='full'"
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig field(s) {unknown}; valid fields: {sorted(known)}")
        return cls(**values)

    def diff(self, other: ModelConfig) -> dict[str, tuple]:
        """The fields whose values differ: ``{name: (self's value, other's value)}``."""
        a, b = self.to_dict(), other.to_dict()
        return {k: (a[k], b[k]) for k in a if a[k] != b[k]}


@dataclass
class ModelOutput:
    """What every model returns. Attention lists hold one ``(B, H, Tq, Tk)`` tensor per layer
    when ``need_weights=True`` (else None). For an encoder-decoder, ``attentions`` are the
    decoder's self-attentions and ``encoder_attentions`` the encoder's."""

    logits: torch.Tensor
    attentions: list[torch.Tensor] | None = None
    cross_attentions: list[torch.Tensor] | None = None
    encoder_attentions: list[torch.Tensor] | None = field(default=None)


# --- the pieces every model shares ----------------------------------------------------------


def _check_ids(idx: torch.Tensor, vocab_size: int, name: str = "idx") -> None:
    if idx.dim() != 2 or idx.dtype != torch.long:
        raise ValueError(
            f"{name} must be a (B, T) tensor of token ids (torch.long), got {idx.dtype} {tuple(idx.shape)}"
        )
    if idx.numel() and (idx.min() < 0 or idx.max() >= vocab_size):
        raise ValueError(
            f"{name} holds ids outside [0, vocab_size={vocab_size}): min {int(idx.min())}, max {int(idx.max())}"
        )


def _key_mask(padding_mask: torch.Tensor | None, idx: torch.Tensor, pad_id: int | None) -> torch.Tensor | None:
    """A (B, T) padding mask (True = real token) → attention mask (B, 1, 1, T); from ``pad_id`` if not given."""
    if padding_mask is None:
        if pad_id is None:
            return None
        padding_mask = idx != pad_id
    if padding_mask.dtype != torch.bool or padding_mask.shape != idx.shape:
        raise ValueError(
            f"padding_mask must be boolean of shape {tuple(idx.shape)} (True = real token), "
            f"got {padding_mask.dtype} {tuple(padding_mask.shape)}"
        )
    return padding_mask[:, None, None, :]  # (B, 1, 1, T): broadcast over heads and queries


class Stack(nn.Module):
    """Token embedding (shared, passed in) + embedding-level positions + blocks + final LN (pre-LN only)."""

    def __init__(self, config: ModelConfig, *, causal: bool, cross_attention: bool = False):
        super().__init__()
        c = config
        # One encoding instance per stack, shared by its layers (T5 shares its bias table across layers).
        self.positional = make_positional(
            c.positional, d_model=c.d_model, n_heads=c.n_heads, max_len=c.max_len, causal=causal
        )
        in_attention = self.positional if self.positional.where in ("qk", "score") else None
        block = DecoderBlock if causal else EncoderBlock
        extra = {"cross_attention": cross_attention} if causal else {}
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(
            block(c.d_model, c.n_heads, c.d_ff, n_kv_heads=c.n_kv_heads, norm=c.norm, activation=c.activation,
                  dropout=c.dropout, bias=c.bias, positional=in_attention, **extra)
            for _ in range(c.n_layers)
        )  # fmt: skip
        for block in self.blocks:  # the chosen kernel runs the self-attention; cross-attention stays dense
            block.self_attn.sublayer.use_kernel(c.attention, c.attention_params)
        self.final_norm = nn.LayerNorm(c.d_model) if c.norm == "pre" else nn.Identity()

    def forward(self, x, memory=None, *, mask=None, memory_mask=None, need_weights=False, positions=None, caches=None):
        """``x`` token embeddings (B, T, C) → (hidden (B, T, C), self weights per layer, cross weights per layer)."""
        if caches is not None and len(caches) != len(self.blocks):
            raise ValueError(f"need one KVCache per layer ({len(self.blocks)}), got {len(caches)}")
        offset = 0 if caches is None else caches[0].seq_len
        pe_positions = positions
        if positions is None and offset:  # continuing a cached sequence: the new tokens sit after the cache
            pe_positions = torch.arange(offset, offset + x.shape[1], device=x.device)  # (T,)
        x = self.drop(self.positional(x, pe_positions))  # identity unless the encoding acts on embeddings
        self_w, cross_w = [], []
        for i, block in enumerate(self.blocks):
            cache = None if caches is None else caches[i]
            x, sw, cw = block(x, memory, mask=mask, memory_mask=memory_mask, need_weights=need_weights,
                              positions=positions, cache=cache)  # fmt: skip
            self_w.append(sw)
            cross_w.append(cw)
        if not need_weights:
            return self.final_norm(x), None, None
        return self.final_norm(x), self_w, (cross_w if memory is not None else None)


class AnnotatedModel(nn.Module):
    """Shared by the three models: token embedding, tied or separate output head, init, save/load."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)  # (V, C)

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        """Token ids ``(B, T)`` → token embeddings ``(B, T, C)`` times the config's
        ``effective_embedding_scale`` (Vaswani et al. 2017, §3.4); every model reads its tokens here."""
        scale = self.config.effective_embedding_scale
        x = self.tok_emb(idx)  # (B, T, C)
        return x if scale == 1.0 else x * scale

    def _make_lm_head(self) -> nn.Linear:
        return nn.Linear(self.config.d_model, self.config.vocab_size, bias=False)  # C -> V

    def _init_weights(self) -> None:
        """GPT-2 initialisation: normal(0, 0.02) weights, zero biases; LayerNorms start at (1, 0)."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
        if self.config.tie_weights:
            self.lm_head.weight = self.tok_emb.weight  # logits = h Eᵀ: one matrix reads and writes tokens

    def save(self, path) -> None:
        """Write ``{"format", "format_version", "config", "state_dict"}`` atomically (temp file + rename)."""
        save_model(self, path)

    def load_weights(self, path) -> AnnotatedModel:
        """Load a checkpoint into this model in place; its config must equal ``self.config``."""
        checkpoint = read_checkpoint(path)
        differ = ModelConfig.from_dict(checkpoint["config"]).diff(self.config)
        if differ:
            raise ValueError(f"{path}: checkpoint config does not match this model's: " + _describe(differ))
        _load_state(self, checkpoint["state_dict"], path)
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

    def forward(self, idx, *, need_weights=False, positions=None, caches=None) -> ModelOutput:
        """``idx (B, T)`` → logits ``(B, T, V)``; with ``caches`` (from :meth:`new_caches`) the
        tokens continue the cached ones (their positions start at the cache length)."""
        _check_ids(idx, self.config.vocab_size)
        h, attn, _ = self.decoder(self.embed(idx), need_weights=need_weights, positions=positions, caches=caches)
        return ModelOutput(self.lm_head(h), attn)


class EncoderOnly(AnnotatedModel):
    """BERT: bidirectional blocks, a masked-LM head ``(B, T, V)`` and, with ``n_classes``, a
    classification head on the **mean of the real (unpadded) tokens'** final states."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.encoder = Stack(config, causal=False)
        self.lm_head = self._make_lm_head()
        self.classifier = nn.Linear(config.d_model, config.n_classes) if config.n_classes else None  # C -> K
        self._init_weights()

    def encode(self, idx, *, padding_mask=None, need_weights=False):
        _check_ids(idx, self.config.vocab_size)
        mask = _key_mask(padding_mask, idx, self.config.pad_id)
        h, attn, _ = self.encoder(self.embed(idx), mask=mask, need_weights=need_weights)
        return h, attn, mask

    def forward(self, idx, *, padding_mask=None, need_weights=False) -> ModelOutput:
        """``idx (B, T)``, ``padding_mask (B, T)`` bool (True = real token) → MLM logits ``(B, T, V)``."""
        h, attn, _ = self.encode(idx, padding_mask=padding_mask, need_weights=need_weights)
        return ModelOutput(self.lm_head(h), attn)

    def classify(self, idx, *, padding_mask=None) -> torch.Tensor:
        """Class logits ``(B, K)`` from the mean final state over the real tokens."""
        if self.classifier is None:
            raise ValueError("this model has no classification head; set n_classes in its ModelConfig")
        h, _, mask = self.encode(idx, padding_mask=padding_mask)
        weight = torch.ones_like(idx, dtype=h.dtype) if mask is None else mask[:, 0, 0].to(h.dtype)  # (B, T)
        pooled = (h * weight[..., None]).sum(1) / weight.sum(1, keepdim=True).clamp_min(1)  # (B, C)
        return self.classifier(pooled)  # (B, K)


class EncoderDecoder(AnnotatedModel):
    """T5: an encoder over the source and a causal decoder with cross-attention; one token
    embedding shared by both stacks and the output head."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.encoder = Stack(config, causal=False)
        self.decoder = Stack(config, causal=True, cross_attention=True)
        self.lm_head = self._make_lm_head()
        self._init_weights()

    def new_caches(self) -> list[KVCache]:
        return [KVCache() for _ in self.decoder.blocks]

    def encode(self, src, *, src_padding_mask=None, need_weights=False):
        """``src (B, S)`` → (memory (B, S, C), encoder weights or None, memory mask (B, 1, 1, S) or None)."""
        _check_ids(src, self.config.vocab_size, "src")
        mask = _key_mask(src_padding_mask, src, self.config.pad_id)
        memory, attn, _ = self.encoder(self.embed(src), mask=mask, need_weights=need_weights)
        return memory, attn, mask

    def decode(self, tgt_in, memory, *, memory_mask=None, need_weights=False, positions=None, caches=None):
        """``tgt_in (B, T)`` reading ``memory (B, S, C)`` → (logits (B, T, V), self weights, cross weights)."""
        _check_ids(tgt_in, self.config.vocab_size, "tgt_in")
        h, attn, cross = self.decoder(self.embed(tgt_in), memory, memory_mask=memory_mask,
                                      need_weights=need_weights, positions=positions, caches=caches)  # fmt: skip
        return self.lm_head(h), attn, cross

    def forward(self, src, tgt_in, *, src_padding_mask=None, need_weights=False) -> ModelOutput:
        memory, enc_attn, mask = self.encode(src, src_padding_mask=src_padding_mask, need_weights=need_weights)
        logits, attn, cross = self.decode(tgt_in, memory, memory_mask=mask, need_weights=need_weights)
        return ModelOutput(logits, attn, cross, enc_attn)


MODEL_CLASSES = {"decoder": DecoderOnly, "encoder": EncoderOnly, "encoder-decoder": EncoderDecoder}


def build_model(config: ModelConfig | dict) -> AnnotatedModel:
    """The model class for ``config.arch``, freshly initialised (seed with ``torch.manual_seed`` first)."""
    config = ModelConfig.from_dict(config) if isinstance(config, dict) else config
    return MODEL_CLASSES[config.arch](config)


# --- generation -----------------------------------------------------------------------------


def sample_next(logits, *, temperature=1.0, top_k=None, greedy=False, generator=None) -> torch.Tensor:
    """Pick one token per row from ``logits (B, V)`` → ``(B, 1)``.

    Greedy: the argmax. Otherwise sample from ``softmax(logits / temperature)`` restricted to
    the ``top_k`` largest logits (Fan et al. 2018) when ``top_k`` is given.
    """
    if greedy:
        return logits.argmax(-1, keepdim=True)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 (use greedy=True for argmax decoding), got {temperature}")
    logits = logits / temperature
    if top_k is not None:
        if not 1 <= top_k <= logits.shape[-1]:
            raise ValueError(f"top_k must lie in [1, vocab_size={logits.shape[-1]}], got {top_k}")
        kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (B, 1): the k-th largest logit
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits.float(), dim=-1)  # (B, V)
    return torch.multinomial(probs, 1, generator=generator)  # (B, 1)


@torch.no_grad()
def generate(model, prompt, max_new_tokens, *, src=None, src_padding_mask=None, temperature=1.0, top_k=None,
             greedy=False, use_cache=True, generator=None) -> torch.Tensor:  # fmt: skip
    """Extend ``prompt (B, T0)`` by ``max_new_tokens`` tokens → ``(B, T0 + max_new_tokens)``.

    For an :class:`EncoderDecoder` pass the source ``src (B, S)``; ``prompt`` is then the
    decoder's start (e.g. a column of SEP tokens). With ``use_cache`` the prompt is read
    once and every later step feeds only the newest token, the earlier keys and values
    coming from one :class:`~annotated.attention.KVCache` per layer; without it every step
    recomputes the whole prefix. Both give the same tokens (tested). The model runs in
    eval mode (dropout off) and is put back in its previous mode afterwards.
    """
    if not isinstance(model, DecoderOnly | EncoderDecoder):
        raise ValueError(f"generate needs a DecoderOnly or EncoderDecoder model, got {type(model).__name__}")
    is_seq2seq = isinstance(model, EncoderDecoder)
    if is_seq2seq and src is None:
        raise ValueError("an encoder-decoder model generates from a source: pass src=(B, S) token ids")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    was_training = model.training
    model.eval()
    try:
        if is_seq2seq:
            memory, _, memory_mask = model.encode(src, src_padding_mask=src_padding_mask)

            def step(ids, caches):
                return model.decode(ids, memory, memory_mask=memory_mask, caches=caches)[0]
        else:

            def step(ids, caches):
                return model(ids, caches=caches).logits

        out, caches, fresh = prompt, (model.new_caches() if use_cache else None), prompt
        for _ in range(max_new_tokens):
            logits = step(fresh if use_cache else out, caches)[:, -1]  # (B, V): the last position's logits
            token = sample_next(logits, temperature=temperature, top_k=top_k, greedy=greedy, generator=generator)
            out = torch.cat([out, token], dim=1)  # (B, T + 1)
            fresh = token
        return out
    finally:
        model.train(was_training)


# --- save / load ----------------------------------------------------------------------------


def write_checkpoint(path, config: ModelConfig, state_dict: dict, **extra) -> None:
    """Write a checkpoint (config + weights + any ``extra`` entries) to ``path`` atomically:
    a temporary file beside it is moved into place, so a crash leaves the old file intact."""
    path = Path(path)
    payload = {
        "format": CHECKPOINT_KIND,
        "format_version": FORMAT_VERSION,
        "config": config.to_dict(),
        "state_dict": state_dict,
        **extra,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def save_model(model: AnnotatedModel, path) -> None:
    """Write the model with its config to ``path`` atomically (see :func:`write_checkpoint`)."""
    write_checkpoint(path, model.config, model.state_dict())


def read_checkpoint(path) -> dict:
    """Load and check a checkpoint dict, with an error that says what is wrong with the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    with open(path, "rb") as f:
        magic = f.read(4)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, … depending on the damage
        if magic == b"PK\x03\x04":  # a torch.save zip archive that no longer reads: cut short or damaged
            raise ValueError(
                f"{path} is truncated or corrupt (a torch.save archive that cannot be read: {err})"
            ) from err
        raise ValueError(f"{path} is not an annotated checkpoint (not a file written by torch.save)") from err
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_KIND:
        raise ValueError(
            f"{path} is not an annotated checkpoint (a torch file holding a {type(checkpoint).__name__}, "
            "not one written by model.save / save_model)"
        )
    version = checkpoint.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"{path} has checkpoint format_version {version!r}; this library reads {FORMAT_VERSION}")
    if not isinstance(checkpoint.get("config"), dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise ValueError(f"{path} is damaged: its 'config' or 'state_dict' entry is missing")
    config = checkpoint["config"]
    if "embedding_scale" not in config and POSITIONAL_ENCODINGS[config.get("positional", "rope")].fixed_signal:
        config["embedding_scale"] = 1.0  # saved before the field existed: these weights were trained unscaled
    return checkpoint


def _describe(differ: dict) -> str:
    return "; ".join(f"{k}: checkpoint {a!r} vs expected {b!r}" for k, (a, b) in differ.items())


def _load_state(model: nn.Module, state_dict: dict, path) -> None:
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as err:
        raise ValueError(f"{path}: the weights do not fit the model its config describes: {err}") from err


def load_model(path, config: ModelConfig | None = None) -> AnnotatedModel:
    """Rebuild the model saved at ``path`` (in eval mode). With ``config``, first check that
    the checkpoint's config equals it and name every field that differs."""
    checkpoint = read_checkpoint(path)
    saved = ModelConfig.from_dict(checkpoint["config"])
    if config is not None and (differ := saved.diff(config)):
        raise ValueError(f"{path}: checkpoint config does not match the given config: " + _describe(differ))
    model = build_model(saved)
    _load_state(model, checkpoint["state_dict"], path)
    return model.eval()


load = load_model


# --- size -----------------------------------------------------------------------------------


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters, tied (shared) tensors counted once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def summary(model: nn.Module, *, depth: int | None = None) -> str:
    """A table of the modules that own parameters: name, type, parameter shapes, count.

    A tensor shared with an earlier module (tied output head, one positional table used by
    every layer) is listed as ``shared`` and not counted again. ``depth=3`` merges every
    module into its ancestor three names deep (``decoder.blocks.0``), one row per block.
    """
    named = dict(model.named_modules())
    rows, seen = {}, {}
    for name, module in named.items():
        own = list(module.named_parameters(recurse=False))
        if not own:
            continue
        key = name if depth is None else ".".join(name.split(".")[:depth])
        kind, shapes, count = rows.get(key, (type(named[key]).__name__, [], 0))
        for pname, p in own:
            full = f"{name}.{pname}"
            if id(p) in seen:
                shapes.append(f"{full[len(key) + 1 :] if depth else pname} shared with {seen[id(p)]}")
                continue
            seen[id(p)] = full
            shapes.append(f"{full[len(key) + 1 :] if depth else pname} {tuple(p.shape)}")
            count += p.numel()
        rows[key] = (kind, shapes, count)
    table = [("module", "type", "parameters", "count")]
    for key, (kind, shapes, count) in rows.items():
        described = ", ".join(shapes) if len(shapes) <= 2 else f"{len(shapes)} tensors"
        table.append((key, kind, described, f"{count:,}"))
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    lines = ["  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in table]
    lines.insert(1, "-" * len(lines[0]))
    lines.append(f"total: {count_parameters(model):,} parameters")
    return "\n".join(lines)
