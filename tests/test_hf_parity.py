"""GPT-2 and BERT expressed exactly: Hugging Face models with random weights (built from configs,
nothing downloaded) copied by :func:`annotated.models.hf.from_hf` compute the same logits, hidden states
and greedy tokens; the config fields that make this possible (activation, norm_eps,
embedding_norm, n_token_types) leave every default model as it was."""

import sys

import pytest
import torch
import torch.nn as nn
from conftest import random_ids, tiny_model

from annotated.models.blocks import FeedForward
from annotated.models.config import ModelConfig
from annotated.models.generate import generate

pytestmark = pytest.mark.usefixtures("one_thread")

V, T = 97, 20
TOL = 1e-5  # float32 logits


@pytest.fixture(scope="module")
def transformers():
    module = pytest.importorskip("transformers")
    module.logging.set_verbosity_error()
    return module


def gpt2(transformers, seed=0, **config):
    """A small GPT2LMHeadModel with random weights; initializer_range 0.1 puts the GELU inputs where
    its tanh approximation differs from the exact one (at 0.02 they sit near 0, where both agree)."""
    torch.manual_seed(seed)
    settings = dict(
        vocab_size=V,
        n_positions=64,
        n_embd=64,
        n_layer=2,
        n_head=4,
        initializer_range=0.1,
    )
    settings |= (
        dict(bos_token_id=0, eos_token_id=None, pad_token_id=0) | config
    )
    return transformers.GPT2LMHeadModel(
        transformers.GPT2Config(**settings)
    ).eval()


def bert(transformers, seed=0, **config):
    torch.manual_seed(seed)
    settings = dict(
        vocab_size=V,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
    )
    settings |= (
        dict(max_position_embeddings=64, initializer_range=0.1) | config
    )
    return transformers.BertModel(transformers.BertConfig(**settings)).eval()


def max_diff(a, b) -> float:
    return (a - b).abs().max().item()


# --- GPT-2 -------------------------------------------------------------------------------------


@torch.no_grad()
def test_gpt2_logits_match_and_need_the_tanh_gelu(transformers):
    from annotated.models.hf import from_hf

    hf, ids = gpt2(transformers), random_ids(3, T, high=V)
    ours = from_hf(hf)
    c = ours.config
    assert (c.arch, c.positional, c.norm, c.activation, c.norm_eps, c.tie_weights) == (
        "decoder", "learned", "pre", "gelu_tanh", 1e-5, True,
    )  # fmt: skip
    reference = hf(ids).logits
    assert max_diff(ours(ids).logits, reference) <= TOL
    # the library's default activation (exact GELU) cannot express GPT-2: the difference is ~6e-4
    assert (
        max_diff(from_hf(hf, activation="gelu")(ids).logits, reference) > 1e-4
    )


@torch.no_grad()
def test_gpt2_float64_agrees_to_rounding(transformers):
    from annotated.models.hf import from_hf

    hf, ids = gpt2(transformers).double(), random_ids(2, T, high=V)
    ours = from_hf(hf)
    assert next(ours.parameters()).dtype == torch.float64
    assert max_diff(ours(ids).logits, hf(ids).logits) <= 1e-12


@torch.no_grad()
def test_gpt2_greedy_generation_matches_token_for_token(transformers):
    from annotated.models.hf import from_hf

    hf, prompt = gpt2(transformers, seed=1), random_ids(3, 5, high=V, seed=1)
    expected = hf.generate(prompt, max_new_tokens=30, do_sample=False)
    got = generate(from_hf(hf), prompt, 30, greedy=True)  # with the KV cache
    assert got.shape == (3, 35)
    assert torch.equal(got, expected)


@torch.no_grad()
def test_gpt2_untied_head_and_relu(transformers):
    from annotated.models.hf import from_hf

    hf, ids = (
        gpt2(
            transformers,
            tie_word_embeddings=False,
            activation_function="relu",
            n_inner=96,
        ),
        random_ids(2, T, high=V),
    )
    ours = from_hf(hf)
    assert (
        ours.config.tie_weights,
        ours.config.activation,
        ours.config.d_ff,
    ) == (False, "relu", 96)
    assert ours.lm_head.weight.data_ptr() != ours.tok_emb.weight.data_ptr()
    assert max_diff(ours(ids).logits, hf(ids).logits) <= TOL


@torch.no_grad()
def test_gpt2_model_without_head_reads_out_through_the_token_embedding(
    transformers,
):
    from annotated.models.hf import from_hf

    hf, ids = (
        gpt2(transformers).transformer,
        random_ids(2, T, high=V),
    )  # a GPT2Model
    assert isinstance(hf, transformers.GPT2Model)
    reference = hf(ids).last_hidden_state @ hf.wte.weight.T  # (B, T, V)
    assert max_diff(from_hf(hf)(ids).logits, reference) <= TOL


def test_converted_model_shares_no_storage_and_keeps_the_callers_rng(
    transformers,
):
    from annotated.models.hf import from_hf

    hf = gpt2(transformers)
    state = torch.random.get_rng_state()
    ours = from_hf(hf)
    assert torch.equal(torch.random.get_rng_state(), state)
    with torch.no_grad():
        ours.tok_emb.weight.zero_()
    assert hf.transformer.wte.weight.abs().sum() > 0


# --- BERT --------------------------------------------------------------------------------------


@pytest.mark.parametrize("hidden_act", ["gelu", "gelu_new", "relu"])
@torch.no_grad()
def test_bert_last_hidden_state_matches(transformers, hidden_act):
    from annotated.models.hf import from_hf

    hf, ids = (
        bert(transformers, hidden_act=hidden_act),
        random_ids(3, T, high=V),
    )
    token_types = random_ids(3, T, high=2, seed=1)
    attention_mask = torch.ones(3, T, dtype=torch.long)
    attention_mask[1, 14:] = 0  # a padded sequence
    ours = from_hf(hf)
    c = ours.config
    assert (
        c.arch,
        c.norm,
        c.norm_eps,
        c.embedding_norm,
        c.n_token_types,
    ) == ("encoder", "post", 1e-12, True, 2)
    reference = hf(
        ids, attention_mask=attention_mask, token_type_ids=token_types
    ).last_hidden_state
    hidden = ours.encode(
        ids, padding_mask=attention_mask.bool(), token_types=token_types
    )[0]
    assert max_diff(hidden, reference) <= TOL
    # without token types BERT reads every token as type 0
    assert max_diff(ours.encode(ids)[0], hf(ids).last_hidden_state) <= TOL


@torch.no_grad()
def test_bert_is_far_off_with_the_default_fields(transformers):
    from annotated.models.hf import from_hf

    hf, ids = bert(transformers), random_ids(2, T, high=V)
    before = from_hf(
        hf, norm_eps=1e-5, embedding_norm=False, n_token_types=0
    )  # what the library had
    assert max_diff(before.encode(ids)[0], hf(ids).last_hidden_state) > 0.1


# --- what the converters refuse ----------------------------------------------------------------


def test_from_hf_refuses_other_models_and_inexact_configs(transformers):
    from annotated.models.hf import from_hf

    with pytest.raises(
        ValueError,
        match="GPT2LMHeadModel, GPT2Model and BertModel, got Linear",
    ):
        from_hf(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="'silu' has no exact counterpart"):
        from_hf(gpt2(transformers, activation_function="silu"))
    with pytest.raises(
        ValueError, match="scale_attn_by_inverse_layer_idx=False"
    ):
        from_hf(gpt2(transformers, scale_attn_by_inverse_layer_idx=True))
    with pytest.raises(ValueError, match="no Hugging Face weights"):
        from_hf(gpt2(transformers), n_token_types=2)


def test_missing_transformers_says_what_to_install(monkeypatch):
    from annotated.models.hf import from_hf

    monkeypatch.setitem(
        sys.modules, "transformers", None
    )  # import transformers now fails
    with pytest.raises(ImportError, match="pip install transformers"):
        from_hf(nn.Linear(2, 2))


# --- the config fields themselves (no transformers needed) -------------------------------------


def test_default_fields_add_nothing():
    model = tiny_model(vocab_size=11, arch="encoder")
    names = set(model.state_dict())
    assert not any("type_emb" in n or "embedding_norm" in n for n in names)
    assert all(
        m.eps == 1e-5 for m in model.modules() if isinstance(m, nn.LayerNorm)
    )


def test_norm_eps_reaches_every_layernorm_and_fields_round_trip():
    config = ModelConfig(
        vocab_size=11,
        d_model=32,
        norm_eps=1e-12,
        embedding_norm=True,
        n_token_types=3,
    )
    assert ModelConfig.from_dict(config.to_dict()) == config
    for arch in ("decoder", "encoder", "encoder-decoder"):
        model = tiny_model(
            vocab_size=11,
            arch=arch,
            norm_eps=1e-12,
            embedding_norm=True,
            n_token_types=3,
        )
        norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
        assert norms and all(m.eps == 1e-12 for m in norms)
        assert model.type_emb.weight.shape == (3, 32)


def test_gelu_tanh_is_the_tanh_formula():
    ff = FeedForward(4, 8, "gelu_tanh")
    x = torch.linspace(-4, 4, 101, dtype=torch.float64)
    formula = (
        0.5
        * x
        * (1 + torch.tanh((2 / torch.pi) ** 0.5 * (x + 0.044715 * x**3)))
    )
    torch.testing.assert_close(ff.act(x), formula, rtol=0, atol=1e-15)


def test_token_types_are_added_and_checked():
    model = tiny_model(vocab_size=11, arch="encoder", n_token_types=2).eval()
    ids = random_ids(2, 6, high=11)
    types = torch.ones_like(ids)
    with torch.no_grad():
        expected = model.tok_emb(ids) + model.type_emb.weight[1]
        torch.testing.assert_close(model.embed(ids, types), expected)
        torch.testing.assert_close(
            model.embed(ids), model.tok_emb(ids) + model.type_emb.weight[0]
        )
    with pytest.raises(ValueError, match="token_types holds ids outside"):
        model(ids, token_types=types * 2)
    with pytest.raises(ValueError, match="set n_token_types"):
        tiny_model(vocab_size=11, arch="encoder")(ids, token_types=types)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("norm_eps", 0.0),
        ("norm_eps", "1e-5"),
        ("embedding_norm", "yes"),
        ("n_token_types", -1),
        ("activation", "swish"),
    ],
)
def test_bad_fidelity_fields_are_refused_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        ModelConfig(vocab_size=11, **{field: value})
