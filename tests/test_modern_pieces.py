"""The pieces of a modern transformer, each against a reference written here: RMSNorm, SwiGLU and
ReLU², QK-norm, bias-free layers, zero-initialised residual projections, a tied or untied head, and
Muon beside AdamW (groups, learning rates, a step that learns, resume)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import randn, random_ids, tiny_experiment, tiny_model

from annotated.attention.multihead import MultiHeadAttention
from annotated.attention.qk_norm import HeadNormLinear
from annotated.lab import resume, run
from annotated.lab.cli import build_parser, experiment_from_args
from annotated.models.blocks import TransformerBlock
from annotated.models.config import ModelConfig
from annotated.models.feedforward import (
    FeedForward,
    GatedFeedForward,
    default_d_ff,
)
from annotated.models.norms import make_norm
from annotated.models.transformer import load_model
from annotated.positional import make_positional
from annotated.positional.rope import apply_rope
from annotated.tasks import get_task
from annotated.training.config import TrainConfig
from annotated.training.divergence import advice_text, divergence_advice
from annotated.training.loop import train
from annotated.training.optim import (
    Optimizers,
    decay_groups,
    learning_rate,
    make_optimizer,
    muon_groups,
    set_learning_rates,
)

SORT = get_task("sort")
MODERN = {"norm_type": "rmsnorm", "activation": "swiglu", "bias": False, "norm_bias": False, "qk_norm": True,
          "zero_init_residual": True, "tie_weights": False}  # fmt: skip
EXACT = {"rtol": 1e-5, "atol": 1e-6}
pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def rms_norm(x, gain, eps):
    """RMSNorm (Zhang & Sennrich 2019) written out: x / √(mean(x²) + ε) · g."""
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * gain


def norms_of(model):
    return [
        m for m in model.modules() if isinstance(m, nn.LayerNorm | nn.RMSNorm)
    ]


# --- norms -------------------------------------------------------------------------------------


@pytest.mark.parametrize("eps", [1e-5, 1e-12])
def test_rmsnorm_equals_torch_and_the_formula(eps):
    norm = make_norm("rmsnorm", 16, eps=eps)
    with torch.no_grad():
        norm.weight.copy_(randn(16, seed=1))
    x = randn(3, 5, 16, seed=2) * 7 + 1
    reference = nn.RMSNorm(16, eps=eps)
    reference.load_state_dict(norm.state_dict())
    torch.testing.assert_close(norm(x), reference(x), rtol=0, atol=0)
    torch.testing.assert_close(
        norm(x), rms_norm(x, norm.weight, eps), **EXACT
    )
    # no centring: a shift of x is not removed, unlike LayerNorm's
    assert not torch.allclose(norm(x + 3), norm(x), atol=1e-3)
    layer = make_norm("layernorm", 16, eps=eps)
    torch.testing.assert_close(layer(x + 3), layer(x), rtol=1e-4, atol=1e-4)


def test_norm_type_and_norm_bias_reach_every_norm_of_every_architecture():
    for arch in ("decoder", "encoder", "encoder-decoder"):
        rms = tiny_model(
            vocab_size=11, arch=arch, norm_type="rmsnorm", embedding_norm=True
        )
        assert norms_of(rms) and all(
            type(m) is nn.RMSNorm for m in norms_of(rms)
        )
        # 2 per block (3 with cross-attention), the final norm and the embedding norm, per stack
        per_stack = {
            "decoder": [2 * 2 + 2],
            "encoder": [2 * 2 + 2],
            "encoder-decoder": [2 * 2 + 2, 2 * 3 + 2],
        }
        assert len(norms_of(rms)) == sum(per_stack[arch])
        assert all(m.eps == 1e-5 for m in norms_of(rms))
        shiftless = tiny_model(vocab_size=11, arch=arch, norm_bias=False)
        assert all(
            type(m) is nn.LayerNorm and m.bias is None
            for m in norms_of(shiftless)
        )
    post = tiny_model(vocab_size=11, norm="post", norm_type="rmsnorm")
    assert all(type(m) is nn.RMSNorm for m in norms_of(post))


def test_bias_false_and_norm_bias_false_leave_no_bias_anywhere():
    names = [n for n, _ in tiny_model(vocab_size=11, arch="encoder-decoder", bias=False, norm_bias=False,
                                      qk_norm=True, activation="swiglu").named_parameters()]  # fmt: skip
    assert names and not [n for n in names if "bias" in n]
    # bias=False alone keeps the LayerNorms' shifts (nanoGPT's bias=False drops both)
    kept = [
        n
        for n, _ in tiny_model(vocab_size=11, bias=False).named_parameters()
        if "bias" in n
    ]
    assert kept and all(".norm." in n or "final_norm" in n for n in kept)
    for module in tiny_model(vocab_size=11, bias=False).modules():
        if isinstance(module, nn.Linear):
            assert module.bias is None


# --- feed-forward ------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_swiglu_equals_its_formula(bias):
    torch.manual_seed(0)
    ffn = GatedFeedForward(8, 20, "swiglu", bias=bias)
    for layer in (
        ffn.gate,
        ffn.up,
        ffn.down,
    ):  # random biases, so a wrong one shows
        if bias:
            nn.init.normal_(layer.bias)
    x = randn(2, 5, 8, seed=3)

    def linear(layer, h):
        return h @ layer.weight.T + (layer.bias if bias else 0)

    w1, w3 = linear(ffn.gate, x), linear(ffn.up, x)
    expected = linear(
        ffn.down, (w1 * torch.sigmoid(w1)) * w3
    )  # W₂(SiLU(W₁x) ⊙ W₃x)
    torch.testing.assert_close(ffn(x), expected, **EXACT)


def test_relu_squared_equals_its_formula():
    torch.manual_seed(0)
    ffn = FeedForward(8, 16, "relu2")
    x = randn(2, 5, 8, seed=4)
    hidden = (x @ ffn.up.weight.T + ffn.up.bias).clamp_min(0) ** 2
    torch.testing.assert_close(
        ffn(x), hidden @ ffn.down.weight.T + ffn.down.bias, **EXACT
    )


def test_swiglu_hidden_size_matches_the_parameters_of_the_gelu_network():
    assert (
        default_d_ff(128, "swiglu") == 341
        and default_d_ff(128, "gelu") == 512
    )
    assert default_d_ff(96, "swiglu") == 256  # 8 · 96 / 3 exactly
    for c in (32, 64, 100, 128, 256):
        gated = sum(
            p.numel()
            for p in GatedFeedForward(
                c, default_d_ff(c, "swiglu"), bias=False
            ).parameters()
        )
        plain = sum(
            p.numel()
            for p in FeedForward(c, default_d_ff(c), bias=False).parameters()
        )
        assert (
            abs(gated - plain) <= 3 * c / 2
        )  # rounding 8C/3 moves F by at most ½
    config = ModelConfig(vocab_size=11, d_model=128, activation="swiglu")
    assert config.d_ff == 341
    assert (
        ModelConfig(
            vocab_size=11, d_model=128, activation="swiglu", d_ff=300
        ).d_ff
        == 300
    )
    block = tiny_model(vocab_size=11, activation="swiglu").decoder.blocks[0]
    assert isinstance(block.ff.sublayer, GatedFeedForward)
    assert block.ff.sublayer.gate.out_features == round(8 * 32 / 3)
    assert isinstance(
        TransformerBlock(12, 2, activation="swiglu").ff.sublayer,
        GatedFeedForward,
    )
    assert (
        TransformerBlock(
            12, 2, activation="swiglu"
        ).ff.sublayer.up.out_features
        == 32
    )


def test_unknown_names_are_refused_with_the_valid_ones():
    with pytest.raises(
        ValueError,
        match=r"unknown norm_type 'batchnorm'.*'layernorm', 'rmsnorm'",
    ):
        ModelConfig(vocab_size=11, norm_type="batchnorm")
    with pytest.raises(
        ValueError, match=r"unknown activation 'geglu'.*'relu2'.*'swiglu'"
    ):
        ModelConfig(vocab_size=11, activation="geglu")
    with pytest.raises(
        ValueError, match=r"unknown optimizer 'sgd'.*'adamw', 'muon'"
    ):
        TrainConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="gated activation 'gelu'"):
        GatedFeedForward(8, 16, "gelu")
    with pytest.raises(ValueError, match="TrainConfig.muon_momentum"):
        TrainConfig(optimizer="muon", muon_momentum=1.0)


# --- QK-norm -----------------------------------------------------------------------------------


@pytest.mark.parametrize("n_kv_heads", [4, 2])
def test_qk_norm_equals_a_hand_computation(n_kv_heads):
    c, h, t, eps = 16, 4, 6, 1e-5
    d = c // h
    torch.manual_seed(0)
    rope = make_positional("rope", d_model=c, n_heads=h, max_len=t)
    mha = MultiHeadAttention(
        c, h, n_kv_heads, positional=rope, qk_norm=True, norm_eps=eps
    )
    with torch.no_grad():  # gains other than 1, so a missing gain shows
        mha.q_proj.norm.weight.copy_(randn(d, seed=5))
        mha.k_proj.norm.weight.copy_(randn(d, seed=6))
    x = randn(2, t, c, seed=7)
    positions = torch.arange(t)

    def heads(
        layer, n
    ):  # project, split into heads, normalise each head, (B, n, T, D)
        y = (x @ layer.weight.T + layer.bias).view(2, t, n, d)
        return rms_norm(y, layer.norm.weight, eps).transpose(1, 2)

    # normalised first, then rotated (RoPE keeps the norm, so the order shows in the scores)
    q = apply_rope(heads(mha.q_proj, h), positions)
    k = apply_rope(
        heads(mha.k_proj, n_kv_heads), positions
    ).repeat_interleave(h // n_kv_heads, 1)
    v = (
        (x @ mha.v_proj.weight.T + mha.v_proj.bias)
        .view(2, t, n_kv_heads, d)
        .transpose(1, 2)
    )
    v = v.repeat_interleave(h // n_kv_heads, 1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)
    scores = scores.masked_fill(
        ~torch.ones(t, t, dtype=torch.bool).tril(), float("-inf")
    )
    weights = scores.softmax(-1)
    joined = (weights @ v).transpose(1, 2).reshape(2, t, c)
    expected = joined @ mha.out_proj.weight.T + mha.out_proj.bias
    for need_weights in (False, True):
        out, w = mha(x, causal=True, need_weights=need_weights)
        torch.testing.assert_close(out, expected, **EXACT)
    torch.testing.assert_close(w, weights, **EXACT)


def test_qk_norm_makes_scores_blind_to_the_scale_of_q_and_k():
    torch.manual_seed(0)
    mha = MultiHeadAttention(
        16, 4, bias=False, qk_norm=True, norm_eps=1e-12
    )  # ε out of the way
    assert (
        isinstance(mha.q_proj, HeadNormLinear)
        and type(mha.v_proj) is nn.Linear
    )
    x = randn(2, 5, 16, seed=8)
    before, _ = mha(x, causal=True)
    with torch.no_grad():
        mha.q_proj.weight.mul_(10)
        mha.k_proj.weight.mul_(0.1)
    after, _ = mha(x, causal=True)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)
    torch.manual_seed(0)
    plain = MultiHeadAttention(16, 4, bias=False)
    with torch.no_grad():
        plain.q_proj.weight.mul_(10)
    assert not torch.allclose(plain(x, causal=True)[0], before, atol=1e-3)


def test_a_model_with_qk_norm_decodes_with_a_cache_as_it_runs_whole():
    model = tiny_model(vocab_size=11, qk_norm=True, n_kv_heads=2).eval()
    idx = random_ids(2, 9, high=11, seed=9)
    with torch.no_grad():
        whole = model(idx).logits
        caches = model.new_caches()
        parts = [
            model(idx[:, :4], caches=caches).logits,
            model(idx[:, 4:], caches=caches).logits,
        ]
    torch.testing.assert_close(
        torch.cat(parts, 1), whole, rtol=1e-5, atol=1e-5
    )
    names = [n for n, _ in model.named_parameters()]
    assert "decoder.blocks.0.self_attn.sublayer.k_proj.norm.weight" in names
    assert (
        sum(".norm.weight" in n and "_proj" in n for n in names) == 2 * 2
    )  # q and k, per layer


# --- initialisation and the head ---------------------------------------------------------------


def test_zero_init_residual_zeroes_only_the_residual_outputs_and_starts_every_block_as_identity():
    for arch in ("decoder", "encoder-decoder"):
        plain = tiny_model(vocab_size=11, arch=arch)
        zeroed = tiny_model(vocab_size=11, arch=arch, zero_init_residual=True)
        residual = {n for n, _ in zeroed.named_parameters()
                    if n.endswith(("out_proj.weight", "ff.sublayer.down.weight"))}  # fmt: skip
        n_sublayers = {"decoder": 2 * 2, "encoder-decoder": 2 * 2 + 2 * 3}[
            arch
        ]
        assert len(residual) == n_sublayers
        a, b = plain.state_dict(), zeroed.state_dict()
        for (
            name
        ) in a:  # the same random draws: only the residual outputs differ
            if name in residual:
                assert not b[name].any() and a[name].any()
            else:
                torch.testing.assert_close(b[name], a[name], rtol=0, atol=0)
    model = tiny_model(
        vocab_size=11,
        zero_init_residual=True,
        tie_weights=False,
        norm_type="rmsnorm",
    ).eval()
    idx = random_ids(2, 7, high=11, seed=10)
    with torch.no_grad():
        expected = model.lm_head(model.decoder.final_norm(model.embed(idx)))
        torch.testing.assert_close(
            model(idx).logits, expected, rtol=0, atol=0
        )


def test_tied_and_untied_heads():
    tied = tiny_model(vocab_size=11)
    untied = tiny_model(vocab_size=11, tie_weights=False)
    assert tied.lm_head.weight is tied.tok_emb.weight
    assert untied.lm_head.weight is not untied.tok_emb.weight
    assert (
        sum(p.numel() for p in untied.parameters())
        - sum(p.numel() for p in tied.parameters())
        == 11 * 32
    )


# --- Muon beside AdamW -------------------------------------------------------------------------


def hidden_matrices(model) -> set[str]:
    """The reference rule, written from the model's names: the weights of the attention and
    feed-forward projections inside the blocks."""
    kinds = ("q_proj", "k_proj", "v_proj", "out_proj", "gate", "up", "down")
    return {n for n, p in model.named_parameters()
            if ".blocks." in n and n.endswith(".weight") and n.split(".")[-2] in kinds}  # fmt: skip


@pytest.mark.parametrize(
    "config",
    [{}, MODERN, {"arch": "encoder", "n_classes": 3, "positional": "learned"},
     {"arch": "encoder-decoder", "positional": "t5", "qk_norm": True}, {"tie_weights": False, "n_kv_heads": 2}],
    ids=["gpt", "modern", "bert", "t5", "untied"],
)  # fmt: skip
def test_every_parameter_lands_in_exactly_one_group(config):
    model = tiny_model(vocab_size=11, **config)
    muon, rest = muon_groups(model)
    assert set(muon) == hidden_matrices(model)
    assert not set(muon) & set(rest)
    assert set(muon) | set(rest) == {n for n, _ in model.named_parameters()}
    assert all(p.dim() == 2 for p in muon.values())
    assert "tok_emb.weight" in rest and not any(
        "norm" in n or "bias" in n for n in muon
    )
    optimizer = make_optimizer(
        model, TrainConfig(optimizer="muon", weight_decay=0.1, warmup_steps=0)
    )
    assert isinstance(optimizer, Optimizers)
    groups = [[id(p) for p in g["params"]] for g in optimizer.param_groups]
    every = [i for g in groups for i in g]
    assert len(every) == len(set(every)) == len(list(model.parameters()))
    assert (
        set(groups[-1]) == {id(p) for p in muon.values()}
        and optimizer.param_groups[-1]["muon"]
    )
    decay, _ = decay_groups(model)
    assert set(groups[0]) == {
        id(p) for n, p in decay.items() if n not in muon
    }
    assert [g["weight_decay"] for g in optimizer.param_groups] == [
        0.1,
        0.0,
        0.0,
    ]
    if not model.config.tie_weights:
        assert (
            id(model.lm_head.weight) in groups[0]
        )  # the untied head: AdamW, decayed


def test_both_learning_rates_follow_the_schedule():
    config = TrainConfig(
        optimizer="muon", lr=3e-3, muon_lr=0.05, steps=20, warmup_steps=5
    )
    model = tiny_model(vocab_size=SORT.vocab_size, **MODERN)
    history = train(model, SORT, train_length=4, config=config)
    # the loop set the last step's rates: each group's own peak on one schedule
    optimizer = make_optimizer(model, config)
    for step in (0, 4, 12, 19):
        lr = set_learning_rates(optimizer, step, config)
        assert lr == learning_rate(step, config)
        adamw, _, muon = (g["lr"] for g in optimizer.param_groups)
        assert adamw == lr and muon == pytest.approx(
            lr * 0.05 / 3e-3, rel=1e-12
        )
    assert [r["lr"] for r in history.steps] == [
        learning_rate(s, config) for s in range(20)
    ]


def test_a_muon_step_lowers_the_loss_and_moves_only_through_muon_and_adamw():
    model = tiny_model(vocab_size=SORT.vocab_size, **MODERN)
    before = copy.deepcopy(model.state_dict())
    config = TrainConfig(
        optimizer="muon",
        lr=3e-3,
        steps=40,
        warmup_steps=4,
        batch_size=16,
        device="cpu",
    )
    history = train(model, SORT, train_length=4, config=config)
    losses = [r["loss"] for r in history.steps]
    assert all(math.isfinite(x) for x in losses)
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5
    moved = {
        n
        for n, p in model.state_dict().items()
        if not torch.equal(p, before[n])
    }
    assert moved == {
        n for n, _ in model.named_parameters()
    }  # the zeroed projections too


def test_one_muon_step_is_torchs_muon_on_the_matrices_and_adamw_on_the_rest():
    model = tiny_model(vocab_size=11, **MODERN)
    twin = copy.deepcopy(model)
    config = TrainConfig(
        optimizer="muon", lr=3e-3, muon_lr=0.02, warmup_steps=0
    )
    optimizer = make_optimizer(model, config)
    muon, rest = muon_groups(twin)
    reference = [torch.optim.Muon(list(muon.values()), lr=0.02, weight_decay=0.0, adjust_lr_fn="original"),
                 torch.optim.AdamW(list(rest.values()), lr=3e-3, betas=config.betas, weight_decay=0.0)]  # fmt: skip
    idx = random_ids(4, 8, high=11, seed=11)
    for m, step in (
        (model, optimizer.step),
        (twin, lambda: [o.step() for o in reference]),
    ):
        logits = m(idx[:, :-1]).logits
        F.cross_entropy(logits.flatten(0, 1), idx[:, 1:].flatten()).backward()
        step()
    a, b = model.state_dict(), twin.state_dict()
    for name in a:  # the untied head decays in the library's AdamW: left out of this comparison
        if name != "lm_head.weight":
            torch.testing.assert_close(a[name], b[name], rtol=1e-6, atol=1e-7)


def test_optimizers_state_round_trips_and_a_mismatch_is_refused():
    model = tiny_model(vocab_size=11, **MODERN)
    optimizer = make_optimizer(model, TrainConfig(optimizer="muon"))
    state = optimizer.state_dict()
    assert len(state["optimizers"]) == 2
    optimizer.load_state_dict(copy.deepcopy(state))
    adamw_state = make_optimizer(model, TrainConfig()).state_dict()
    with pytest.raises(
        ValueError, match="saved with another TrainConfig.optimizer"
    ):
        optimizer.load_state_dict(adamw_state)
    with pytest.raises(
        ValueError, match="no nn.Linear inside a TransformerBlock"
    ):
        make_optimizer(
            nn.Sequential(nn.Embedding(4, 4)), TrainConfig(optimizer="muon")
        )


def test_resume_with_muon_ends_like_an_uninterrupted_run():
    config = TrainConfig(
        optimizer="muon",
        steps=12,
        warmup_steps=3,
        batch_size=8,
        checkpoint_every=4,
        eval_batches=1,
    )
    whole = tiny_model(vocab_size=SORT.vocab_size, n_heads=2, **MODERN)
    full = train(whole, SORT, train_length=[2, 5], config=config)
    saved = []

    def interrupt(kind, row):
        if row["step"] == 10:
            raise KeyboardInterrupt

    broken = tiny_model(vocab_size=SORT.vocab_size, n_heads=2, **MODERN)
    with pytest.raises(KeyboardInterrupt):
        train(broken, SORT, train_length=[2, 5], config=config, callback=interrupt,
              checkpoint=lambda state: saved.append(copy.deepcopy(state)))  # fmt: skip
    assert [s["step"] for s in saved] == [4, 8, 8]
    fresh = tiny_model(123, vocab_size=SORT.vocab_size, n_heads=2, **MODERN)
    resumed = train(
        fresh,
        SORT,
        train_length=[2, 5],
        config=config,
        resume_state=saved[-1],
    )
    for name, value in whole.state_dict().items():
        torch.testing.assert_close(
            fresh.state_dict()[name], value, rtol=1e-6, atol=1e-7
        )
    assert [r["loss"] for r in resumed.steps] == pytest.approx(
        [r["loss"] for r in full.steps], rel=1e-6
    )


# --- configs, YAML and the command line --------------------------------------------------------


def test_the_modern_fields_travel_through_the_command_line_and_the_lab(
    tmp_path,
):
    args = build_parser().parse_args(
        ["train", "--norm-type", "rmsnorm", "--activation", "swiglu", "--no-bias", "--no-norm-bias",
         "--qk-norm", "--zero-init-residual", "--no-tie-weights", "--optimizer", "muon", "--muon-lr", "0.01",
         "--muon-momentum", "0.9", "--muon-weight-decay", "0.01"]
    )  # fmt: skip
    config = experiment_from_args(args)
    assert config.model == {**MODERN}
    assert config.train == {
        "optimizer": "muon",
        "muon_lr": 0.01,
        "muon_momentum": 0.9,
        "muon_weight_decay": 0.01,
    }
    assert ModelConfig.from_dict(
        ModelConfig(vocab_size=11, **MODERN).to_dict()
    ) == ModelConfig(vocab_size=11, **MODERN)
    experiment = tiny_experiment(
        model=MODERN,
        train={"optimizer": "muon", "checkpoint_every": 4, "steps": 12},
    )

    def interrupt(kind, row):
        if kind == "step" and row["step"] == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(experiment, tmp_path / "broken", callback=interrupt)
    (folder,) = (tmp_path / "broken").iterdir()
    assert resume(folder) == folder
    model = load_model(folder / "model.pt")
    assert model.config.qk_norm and model.config.activation == "swiglu"
    whole = run(experiment, tmp_path / "whole")
    for name, value in load_model(whole / "model.pt").state_dict().items():
        torch.testing.assert_close(
            model.state_dict()[name], value, rtol=1e-6, atol=1e-7
        )


def test_the_defaults_build_gpt2s_pieces():
    model = tiny_model(vocab_size=11)
    assert all(
        type(m) is nn.LayerNorm and m.bias is not None
        for m in norms_of(model)
    )
    assert type(model.decoder.blocks[0].ff.sublayer) is FeedForward
    assert (
        type(model.decoder.blocks[0].self_attn.sublayer.q_proj) is nn.Linear
    )
    assert type(make_optimizer(model, TrainConfig())) is torch.optim.AdamW


def test_a_diverged_muon_run_is_advised_to_lower_both_rates():
    config = TrainConfig(
        optimizer="muon", lr=0.1, muon_lr=0.05, warmup_steps=0
    )
    advice = divergence_advice(config, 19)
    assert advice == {"lr": 0.01, "muon_lr": 0.005, "warmup_steps": 100}
    assert "lower muon_lr (0.05; try 0.005)" in advice_text(config, advice)
    assert "muon_lr" not in divergence_advice(TrainConfig(lr=0.1), 19)
