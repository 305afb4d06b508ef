"""GPT-2 and BERT from Hugging Face, copied weight for weight into the
library's models.

:func:`from_hf` takes a ``transformers`` model and returns the library's model
that computes the same function: a ``GPT2LMHeadModel`` (or ``GPT2Model``;
Radford et al. 2019) becomes a
:class:`~annotated.models.transformer.DecoderOnly`, a ``BertModel`` (Devlin et
al. 2019) an :class:`~annotated.models.transformer.EncoderOnly`. The configs
map field by field:

==================  ==========================  ===========================
library field       GPT-2                       BERT
==================  ==========================  ===========================
``positional``      "learned" (``wpe``,         "learned"
                    ``n_positions``)            (``max_position_embeddings``)
``norm``            "pre" (``ln_1``, ``ln_2``,  "post" (LayerNorm after each
                    ``ln_f``)                   residual sum)
``activation``      "gelu_tanh" (HF's           "gelu" (exact)
                    ``gelu_new``)
``norm_eps``        ``layer_norm_epsilon``      ``layer_norm_eps`` (1e-12)
                    (1e-5)
``embedding_norm``  False                       True
                                                (``embeddings.LayerNorm``)
``n_token_types``   0                           ``type_vocab_size`` (2)
``tie_weights``     whether ``lm_head`` is      True (BertModel has no LM
                    ``wte``                     head)
``dropout``         ``resid_pdrop``             ``hidden_dropout_prob``
==================  ==========================  ===========================

GPT-2 keeps q, k and v in one ``Conv1D`` (``y = x W + b`` with ``W`` of shape
(C, 3C)): its transpose is split into the three ``nn.Linear`` projections. The
tests build small random-weight models from configs (nothing is downloaded)
and find float32 logits within 1e-5 and greedy GPT-2 generation equal token
for token. Left out: BERT's pooler (``tanh`` of a dense layer on the first
token) and its masked-LM head (a dense + GELU + LayerNorm transform before the
tied decoder), since the library's encoder heads are simpler; dropout
probabilities other than the residual one (the library has one ``dropout``).
``transformers`` is imported only when a converter runs
(``pip install transformers``; it is in the dev extra).

Legend: C d_model, V vocab.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn

from annotated.models.config import ModelConfig
from annotated.models.stack import AnnotatedModel
from annotated.models.transformer import build_model

# Hugging Face's activation names → the library's (same function only)
HF_ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "relu": "relu",
}


def _transformers():
    try:
        import transformers
    except ImportError as error:
        raise ImportError(
            "converting a Hugging Face model needs the `transformers` "
            "package: pip install transformers (or install this project's "
            "dev extra: pip install -e '.[dev]')"
        ) from error
    return transformers


def _activation(name: str) -> str:
    if name not in HF_ACTIVATIONS:
        raise ValueError(
            f"the Hugging Face activation {name!r} has no exact counterpart "
            f"here; supported: {sorted(HF_ACTIVATIONS)}"
        )
    return HF_ACTIVATIONS[name]


def gpt2_config(hf_config) -> ModelConfig:
    """The :class:`~annotated.models.config.ModelConfig` of a
    ``transformers.GPT2Config`` (refuses what the library cannot express)."""
    c = hf_config
    if (
        not c.scale_attn_weights
        or c.scale_attn_by_inverse_layer_idx
        or c.add_cross_attention
    ):
        raise ValueError(
            "this GPT-2 config cannot be expressed exactly: the library "
            "scales scores by 1/√D and has no cross-attention in a "
            "decoder-only model; use scale_attn_weights=True, "
            "scale_attn_by_inverse_layer_idx=False and "
            "add_cross_attention=False"
        )
    return ModelConfig(
        arch="decoder",
        vocab_size=c.vocab_size,
        d_model=c.n_embd,
        n_layers=c.n_layer,
        n_heads=c.n_head,
        d_ff=c.n_inner,
        max_len=c.n_positions,
        dropout=c.resid_pdrop,
        positional="learned",
        norm="pre",
        activation=_activation(c.activation_function),
        norm_eps=c.layer_norm_epsilon,
        tie_weights=getattr(c, "tie_word_embeddings", True),
    )


def bert_config(hf_config) -> ModelConfig:
    """The :class:`~annotated.models.config.ModelConfig` of a
    ``transformers.BertConfig`` (refuses what the library cannot express)."""
    c = hf_config
    if (
        getattr(c, "position_embedding_type", None) not in (None, "absolute")
        or c.is_decoder
        or c.add_cross_attention
    ):
        raise ValueError(
            "this BERT config cannot be expressed exactly: the library's "
            "encoder has absolute learned positions and bidirectional "
            "self-attention only; use position_embedding_type='absolute', "
            "is_decoder=False and add_cross_attention=False"
        )
    return ModelConfig(
        arch="encoder",
        vocab_size=c.vocab_size,
        d_model=c.hidden_size,
        n_layers=c.num_hidden_layers,
        n_heads=c.num_attention_heads,
        d_ff=c.intermediate_size,
        max_len=c.max_position_embeddings,
        dropout=c.hidden_dropout_prob,
        positional="learned",
        norm="post",
        activation=_activation(c.hidden_act),
        norm_eps=c.layer_norm_eps,
        embedding_norm=True,
        n_token_types=c.type_vocab_size,
    )


def _weight(layer: nn.Module) -> torch.Tensor:
    """An ``nn.Linear``'s (out, in) weight; GPT-2's ``Conv1D`` stores (in,
    out), so it is transposed."""
    return layer.weight if isinstance(layer, nn.Linear) else layer.weight.t()


def _copy(state: dict, prefix: str, layer: nn.Module) -> None:
    """Put ``layer``'s weight (as an ``nn.Linear``'s, for a projection) and
    bias under ``prefix``."""
    state[prefix + "weight"] = _weight(layer)
    if layer.bias is not None:
        state[prefix + "bias"] = layer.bias


def gpt2_state(model) -> dict[str, torch.Tensor]:
    """The weights of a ``GPT2LMHeadModel`` / ``GPT2Model`` under the
    library's :class:`~annotated.models.transformer.DecoderOnly` names."""
    # GPT2LMHeadModel wraps a GPT2Model
    t = getattr(model, "transformer", model)
    state: dict[str, torch.Tensor] = {
        "tok_emb.weight": t.wte.weight,
        "decoder.positional.table.weight": t.wpe.weight,
    }
    for i, block in enumerate(t.h):
        p = f"decoder.blocks.{i}."
        c = block.attn.embed_dim
        # (3C, C), (3C,): q, k, v stacked
        qkv, qkv_bias = _weight(block.attn.c_attn), block.attn.c_attn.bias
        for j, name in enumerate(("q_proj", "k_proj", "v_proj")):
            rows = slice(j * c, (j + 1) * c)  # (3C, C) -> (C, C)
            state[f"{p}self_attn.sublayer.{name}.weight"] = qkv[rows]
            state[f"{p}self_attn.sublayer.{name}.bias"] = qkv_bias[rows]
        _copy(state, p + "self_attn.sublayer.out_proj.", block.attn.c_proj)
        _copy(state, p + "self_attn.norm.", block.ln_1)
        _copy(state, p + "ff.sublayer.up.", block.mlp.c_fc)
        _copy(state, p + "ff.sublayer.down.", block.mlp.c_proj)
        _copy(state, p + "ff.norm.", block.ln_2)
    _copy(state, "decoder.final_norm.", t.ln_f)
    head = getattr(model, "lm_head", None)
    # GPT2Model: the tied head
    state["lm_head.weight"] = t.wte.weight if head is None else head.weight
    return state


def bert_state(model) -> dict[str, torch.Tensor]:
    """The weights of a ``BertModel`` under the library's
    :class:`~annotated.models.transformer.EncoderOnly` names (the pooler is
    left out)."""
    e = model.embeddings
    state: dict[str, torch.Tensor] = {
        "tok_emb.weight": e.word_embeddings.weight,
        # tied: BertModel has no head of its own
        "lm_head.weight": e.word_embeddings.weight,
        "type_emb.weight": e.token_type_embeddings.weight,
        "encoder.positional.table.weight": e.position_embeddings.weight,
    }
    _copy(state, "encoder.embedding_norm.", e.LayerNorm)
    for i, layer in enumerate(model.encoder.layer):
        p, attention = f"encoder.blocks.{i}.", layer.attention
        _copy(state, p + "self_attn.sublayer.q_proj.", attention.self.query)
        _copy(state, p + "self_attn.sublayer.k_proj.", attention.self.key)
        _copy(state, p + "self_attn.sublayer.v_proj.", attention.self.value)
        _copy(
            state, p + "self_attn.sublayer.out_proj.", attention.output.dense
        )
        _copy(state, p + "self_attn.norm.", attention.output.LayerNorm)
        _copy(state, p + "ff.sublayer.up.", layer.intermediate.dense)
        _copy(state, p + "ff.sublayer.down.", layer.output.dense)
        _copy(state, p + "ff.norm.", layer.output.LayerNorm)
    return state


def from_hf(model, **overrides) -> AnnotatedModel:
    """The library's model computing what the Hugging Face ``model`` computes,
    in eval mode.

    ``GPT2LMHeadModel`` / ``GPT2Model`` →
    :class:`~annotated.models.transformer.DecoderOnly` (logits equal HF's;
    for ``GPT2Model`` the head is the tied token embedding). ``BertModel`` →
    :class:`~annotated.models.transformer.EncoderOnly`, whose
    ``encode(idx, padding_mask=attention_mask.bool(),
    token_types=token_type_ids)[0]`` is HF's ``last_hidden_state``. The
    weights are copied (the two models share no storage) in the dtype of
    ``model``.

    ``overrides`` change config fields after the conversion, to see what a
    field is worth — e.g. ``from_hf(gpt2, activation="gelu")`` or
    ``from_hf(bert, norm_eps=1e-5, embedding_norm=False, n_token_types=0)``;
    weights the changed model has no place for are then left out.
    """
    transformers = _transformers()
    if isinstance(
        model, transformers.GPT2LMHeadModel | transformers.GPT2Model
    ):
        config, state = gpt2_config(model.config), gpt2_state(model)
        if isinstance(model, transformers.GPT2LMHeadModel):
            tied = (
                model.lm_head.weight.data_ptr()
                == model.transformer.wte.weight.data_ptr()
            )
            config = dataclasses.replace(config, tie_weights=tied)
    elif isinstance(model, transformers.BertModel):
        config, state = bert_config(model.config), bert_state(model)
    else:
        raise ValueError(
            "from_hf converts transformers' GPT2LMHeadModel, GPT2Model and "
            f"BertModel, got {type(model).__name__}; for a model that wraps "
            "one (e.g. BertForMaskedLM) pass the inner model (model.bert)"
        )
    config = dataclasses.replace(config, **overrides)
    # building initialises weights; leave the caller's RNG as it was
    with torch.random.fork_rng(devices=[]):
        ours = build_model(config).to(next(model.parameters()).dtype)
    expected = ours.state_dict()
    missing = sorted(set(expected) - set(state))
    if missing:
        raise ValueError(
            f"no Hugging Face weights for {missing}; the overrides "
            f"{overrides} add modules GPT-2/BERT lack"
        )
    extra = sorted(set(state) - set(expected))
    if extra and not overrides:
        raise ValueError(
            f"weights {extra} have no place in the library's model"
        )
    ours.load_state_dict(
        {k: state[k].detach().clone() for k in expected}, strict=True
    )
    return ours.eval()
