"""Scaled attention logits (annotated.attention.scaled_scores): each rule against its formula written
out here, n per query, SSMax's learned s_h, every kernel against the reference, KV-cache decoding,
config / CLI / YAML, errors, and set_logit_scale on the stored addition model."""

import dataclasses
import math

import pytest
import torch
import yaml
from conftest import qkv, seeded, tiny_model

from annotated.attention.attend import attend
from annotated.attention.multihead import MultiHeadAttention
from annotated.attention.scaled_scores import ScaledScores
from annotated.core.fields import ConfigError
from annotated.kernels import ATTENTION_KERNELS
from annotated.kernels.flex import flex_available
from annotated.lab.cli import build_parser, experiment_from_args, main
from annotated.models.config import ModelConfig
from annotated.models.generate import generate
from annotated.models.logit_scale import set_length_scale, set_logit_scale
from annotated.models.transformer import build_model, load_model
from annotated.positional import CoupledRelativeBias
from annotated.tasks import get_task
from annotated.training.config import TrainConfig
from annotated.training.optim import make_optimizer

pytestmark = pytest.mark.usefixtures("one_thread")
F64 = dict(rtol=1e-10, atol=1e-10)
ATOL = dict(atol=1e-5, rtol=1e-4)
STORED = "annotated/data/addition_coupled.pt"
H, T, N_TRAIN = 3, 11, 4
# (logit_scale c, length_scale): a fixed temperature, each length rule, and both at once
RULES = [(1.3, None), (1.0, "ssmax"), (1.0, "log_ratio"), (1.0, "log_ratio_beyond"), (0.8, "ssmax"),
         (1.0, "log_beyond"), (1.2, "log_beyond")]  # fmt: skip
SLOPE = 0.3  # β of log_beyond in these tests
IDS = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5])  # coupled-style ids: n must not read them


def encoding(c, rule, causal, seed=0):
    """A coupled bias with random entries, wrapped with scale c and rule; s_h random too."""
    g = seeded(seed)
    inner = CoupledRelativeBias(H, max_distance=2).double()
    scaled = ScaledScores(inner, H, causal=causal, logit_scale=c, length_scale=rule,
                          length_train=N_TRAIN, length_slope=SLOPE).double()  # fmt: skip
    with torch.no_grad():
        for p in scaled.parameters():
            p.copy_(torch.rand(p.shape, generator=g, dtype=p.dtype) * 0.1 + 0.05)
    return scaled


def hand_factor(scaled, n):
    """f(h, n) written out: (H, Tq, 1) from the number of keys n (Tq, 1) each query sees."""
    c, rule, log_n = scaled.logit_scale, scaled.length_scale, torch.log(n.double())
    if rule is None:
        return torch.full((H, *n.shape), c, dtype=torch.float64)
    if rule == "ssmax":
        return c * scaled.ssmax_scale.detach()[:, None, None] * log_n
    if rule == "log_beyond":  # 1 + β · max(0, log n − log n_train)
        return c * (1 + SLOPE * (log_n - math.log(N_TRAIN)).clamp_min(0)).expand(H, *n.shape)
    ratio = (log_n / math.log(N_TRAIN)).expand(H, *n.shape)
    return c * (ratio.clamp_min(1.0) if rule == "log_ratio_beyond" else ratio)


def hand_attention(q, k, v, scaled, n, keep):
    """softmax(f · (q·k/√D + b[clip(p_i − p_j, −R, R), h])) v, masked where ``keep`` is False."""
    table, r = scaled.encoding.table.detach(), scaled.encoding.max_distance
    row = (IDS[-q.shape[-2] :, None] - IDS[None, : k.shape[-2]]).clamp(-r, r) + r
    bias = table[row].permute(2, 0, 1)  # (H, Tq, Tk)
    logits = hand_factor(scaled, n) * (q @ k.mT / math.sqrt(q.shape[-1]) + bias)
    weights = torch.softmax(logits.masked_fill(~keep, -math.inf), dim=-1)
    return weights @ v, weights


@pytest.mark.parametrize("c,rule", RULES)
@pytest.mark.parametrize("causal", [True, False])
def test_each_rule_equals_its_formula(c, rule, causal):
    """n = q_idx + 1 causally, Tk otherwise; the factor multiplies q·k/√D and the coupled bias."""
    q, k, v = qkv(h=H, t_q=T)
    scaled = encoding(c, rule, causal)
    i = torch.arange(T)
    n = (i + 1)[:, None] if causal else torch.full((T, 1), T)
    keep = i[None, :] <= i[:, None] if causal else torch.ones(T, T, dtype=torch.bool)
    out, w = attend(q, k, v, causal=causal, score_mod=scaled.score_mod(IDS, IDS))
    ref_out, ref_w = hand_attention(q, k, v, scaled, n, keep)
    torch.testing.assert_close(w, ref_w, **F64)
    torch.testing.assert_close(out, ref_out, **F64)
    assert not torch.allclose(w, hand_attention(q, k, v, encoding(1.0, None, causal), n, keep)[1])


def test_n_under_padding_and_with_a_cache():
    """n counts key slots: Tk for every query of a non-causal layer, padded keys included; q_idx + 1
    in a causal one, whatever the padding; a cached query (Tq < Tk) gets the n of its full row."""
    q, k, v = qkv(h=H, t_q=T)
    lengths = torch.tensor([T, 6])
    pad = torch.arange(T)[None, :] < lengths[:, None]  # (B, Tk): right padding
    for causal in (False, True):
        scaled = encoding(1.0, "log_ratio", causal)
        i = torch.arange(T)
        n = (i + 1)[:, None] if causal else torch.full((T, 1), T)
        keep = pad[:, None, None, :] & ((i[None, :] <= i[:, None]) | (not causal))
        out, w = attend(q, k, v, causal=causal, key_padding_mask=pad,
                        score_mod=scaled.score_mod(IDS, IDS))  # fmt: skip
        ref_out, ref_w = hand_attention(q, k, v, scaled, n, keep)
        torch.testing.assert_close(w, ref_w, **F64)
        torch.testing.assert_close(out[0], ref_out[0], **F64)
        torch.testing.assert_close(out[1, :, :6], ref_out[1, :, :6], **F64)
    scaled = encoding(1.0, "ssmax", True)
    whole, _ = attend(q, k, v, causal=True, score_mod=scaled.score_mod(IDS, IDS))
    last, _ = attend(q[..., -3:, :], k, v, causal=True, score_mod=scaled.score_mod(IDS[-3:], IDS))
    torch.testing.assert_close(last, whole[..., -3:, :], **F64)


def kernel_cases():
    settings = {"local": {"window": 4, "chunk_size": 3}, "topk": {"top_k": 5},
                "blockwise": {"block_size": 4, "query_block_size": 3}}  # fmt: skip
    for name, spec in ATTENTION_KERNELS.items():
        if spec.score_mods:
            marks = [] if "cpu" in spec.devices else [pytest.mark.skipif(
                not flex_available("cuda"), reason="needs CUDA and FlexAttention")]  # fmt: skip
            yield pytest.param(name, settings.get(name, {}), marks=marks, id=name)


@pytest.mark.parametrize("name,settings", list(kernel_cases()))
@pytest.mark.parametrize("c,rule", RULES)
@pytest.mark.parametrize("causal", [True, False])
def test_every_kernel_equals_the_reference_values_and_gradients(name, settings, c, rule, causal):
    """Each kernel against its O(T²) reference (attend for the exact ones), with the factor on and
    a bias tensor beside the encoding's: outputs and gradients of q, k, v, the bias table and s_h."""
    spec, device = ATTENTION_KERNELS[name], "cpu" if "cpu" in ATTENTION_KERNELS[name].devices else "cuda"
    runs = {}
    for path in ("fast", "reference"):
        q, k, v = (x.to(device).requires_grad_() for x in qkv(h=H, t_q=T, d=8, d_v=8))
        scaled = encoding(c, rule, causal).to(device)
        mod = scaled.score_mod(IDS.to(device), IDS.to(device))
        fn = spec.fn if path == "fast" else spec.weights
        bias = torch.randn(T, T, generator=seeded(9), dtype=q.dtype).to(device)  # scaled too
        out, _ = fn(q, k, v, bias=bias, causal=causal, score_mod=mod, **settings)
        leaves = [q, k, v, scaled.encoding.theta, *([scaled.ssmax_scale] if rule == "ssmax" else [])]
        weight = torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype, device=device)
        runs[path] = out, torch.autograd.grad((out * weight).sum(), leaves)
    (out, grads), (ref, ref_grads) = runs["fast"], runs["reference"]
    tol = F64 if device == "cpu" else ATOL
    torch.testing.assert_close(out, ref, **tol)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, **tol)
    if rule == "ssmax":  # s_h learns, through every kernel
        assert grads[-1].shape == (H,) and grads[-1].abs().min() > 0


def test_linear_attention_refuses_a_logit_scale():
    with pytest.raises(ValueError, match="kernel 'linear' cannot scale the attention logits"):
        ModelConfig(vocab_size=8, attention="linear", length_scale="ssmax")
    with pytest.raises(ValueError, match="kernel 'linear' cannot scale the attention logits"):
        MultiHeadAttention(12, 3, kernel="linear", positional=encoding(1.3, None, True).float())
    model = tiny_model(vocab_size=8, attention="linear")
    with pytest.raises(ValueError, match="cannot scale"):
        set_logit_scale(model, 1.3)
    assert model.config.logit_scale == 1.0


@pytest.mark.parametrize("bad,match", [
    ({"logit_scale": 0.0}, "logit_scale must be a positive"),
    ({"logit_scale": -1.3}, "logit_scale must be a positive"),
    ({"logit_scale": math.nan}, "logit_scale must be a positive"),
    ({"logit_scale": math.inf}, "logit_scale must be a positive"),
    ({"length_scale": "ssmx"}, "unknown length_scale 'ssmx'; choose one of"),
    ({"length_scale": "ssmax", "length_scale_train": 1}, "length_scale_train must be"),
    ({"length_scale": "log_beyond", "length_scale_slope": -0.1}, "length_scale_slope must be"),
])  # fmt: skip
def test_bad_values_are_refused_with_a_sentence(bad, match):
    with pytest.raises(ValueError, match=match):
        ModelConfig(vocab_size=8, **bad)
    with pytest.raises(ConfigError):
        ModelConfig(vocab_size=8, logit_scale="1.3")
    with pytest.raises(ValueError, match="n_train"):
        ScaledScores(CoupledRelativeBias(2), 2, length_scale="log_ratio")
    model = tiny_model(vocab_size=8)
    with pytest.raises(ValueError, match="logit_scale must be a positive"):
        set_logit_scale(model, 0)
    with pytest.raises(ValueError, match="ssmax learns s_h"):
        set_length_scale(model, "ssmax")


def test_ssmax_is_a_learned_parameter_per_head_and_layer():
    model = tiny_model(vocab_size=8, length_scale="ssmax", length_scale_train=16)
    named = {n: p for n, p in model.named_parameters() if n.endswith("ssmax_scale")}
    assert len(named) == model.config.n_layers
    for p in named.values():  # s_h · log n_train = 1 at the start
        torch.testing.assert_close(p.detach() * math.log(16), torch.ones(model.config.n_heads))
    optimizer = make_optimizer(model, TrainConfig(weight_decay=0.1))
    assert all(any(p is q for q in optimizer.param_groups[1]["params"]) for p in named.values())
    x = torch.randint(0, 8, (2, 12), generator=seeded(1))
    model(x).logits.pow(2).mean().backward()
    assert all(p.grad is not None and p.grad.abs().min() > 0 for p in named.values())


MODELS = {"rope": {}, "coupled": {"positional": "coupled_bias"},
          "alibi_blockwise": {"positional": "alibi", "attention": "blockwise",
                              "attention_params": {"block_size": 5}},
          "t5_local": {"positional": "t5", "attention": "local", "attention_params": {"window": 6}}}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(MODELS))
@pytest.mark.parametrize("c,rule", [(1.3, None), (1.2, "ssmax"), (1.0, "log_ratio_beyond")])
def test_kv_cache_decoding_equals_the_full_forward(kind, c, rule):
    """A token decoded with the cache at position t gets the n of the full forward."""
    model = tiny_model(vocab_size=8, logit_scale=c, length_scale=rule, length_scale_train=5,
                       **MODELS[kind]).eval()  # fmt: skip
    with torch.no_grad():
        for p in model.parameters():  # s_h away from its start
            if p.dim() == 1 and p.shape[0] == model.config.n_heads:
                p.add_(torch.rand(p.shape, generator=seeded(2)) * 0.3)
        x = torch.randint(0, 8, (2, 14), generator=seeded(3))
        whole = model(x).logits
        caches = model.new_caches()
        steps = [model(x[:, :5], caches=caches).logits]
        steps += [model(x[:, t : t + 1], caches=caches).logits for t in range(5, 14)]
    torch.testing.assert_close(torch.cat(steps, 1), whole, **ATOL)
    prompt = x[:, :3]
    cached = generate(model, prompt, 9, greedy=True)
    assert torch.equal(cached, generate(model, prompt, 9, greedy=True, use_cache=False))


@pytest.mark.parametrize("kernel", ["blockwise", "local", "topk"])
def test_models_with_each_kernel_equal_the_dense_model(kernel):
    settings = {"blockwise": {"block_size": 4}, "local": {"window": 12}, "topk": {"top_k": 12}}
    fields = dict(vocab_size=8, positional="alibi", length_scale="ssmax", logit_scale=1.2)
    dense = tiny_model(**fields).eval()
    other = tiny_model(**fields, attention=kernel, attention_params=settings[kernel]).eval()
    other.load_state_dict(dense.state_dict())
    x = torch.randint(0, 8, (2, 12), generator=seeded(4))
    with torch.no_grad():
        torch.testing.assert_close(other(x).logits, dense(x).logits, **ATOL)


def test_config_yaml_cli_and_checkpoint_round_trip(tmp_path):
    config = ModelConfig(vocab_size=8, logit_scale=1.3, length_scale="ssmax", length_scale_train=40)
    assert ModelConfig.from_dict(yaml.safe_load(yaml.safe_dump(config.to_dict()))) == config
    assert ModelConfig(vocab_size=8, length_scale="log_ratio").length_scale_train == 256  # max_len
    argv = ["train", "--logit-scale", "1.3", "--length-scale", "ssmax", "--length-scale-train", "40"]
    model = experiment_from_args(build_parser().parse_args(argv)).model
    assert model == {"logit_scale": 1.3, "length_scale": "ssmax", "length_scale_train": 40}
    none = experiment_from_args(build_parser().parse_args(["train", "--length-scale", "none"]))
    assert none.model == {"length_scale": None}
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--length-scale", "ssmx", "--out", str(tmp_path / "x")])
    assert exit_.value.code == 2 and not (tmp_path / "x").exists()
    trained = tiny_model(vocab_size=8, length_scale="ssmax", logit_scale=1.3)
    with torch.no_grad():
        trained.decoder.blocks[0].self_attn.sublayer.positional.ssmax_scale.mul_(2.0)
    trained.save(tmp_path / "m.pt")
    x = torch.randint(0, 8, (2, 9), generator=seeded(5))
    with torch.no_grad():
        assert torch.equal(load_model(tmp_path / "m.pt")(x).logits, trained.eval()(x).logits)


def test_set_logit_scale_on_the_stored_addition_model():
    """×1.3 changes its logits; back at 1.0 they are the stored model's, bit for bit."""
    task = get_task("addition_coupled")
    batch = task.sample(8, 30, seeded(0), split="val")
    model, fresh = load_model(STORED), load_model(STORED)
    with torch.no_grad():
        before = fresh(batch.inputs, positions=batch.positions).logits
        scaled = set_logit_scale(model, 1.3)(batch.inputs, positions=batch.positions).logits
        assert model.config.logit_scale == 1.3 and not torch.allclose(scaled, before)
        assert not model.config.diff(dataclasses.replace(fresh.config, logit_scale=1.3))
        beyond = set_length_scale(model, "log_ratio_beyond", 40)
        assert not torch.allclose(beyond(batch.inputs, positions=batch.positions).logits, scaled)
        set_length_scale(set_logit_scale(model, 1.0), None)
        after = model(batch.inputs, positions=batch.positions).logits
    assert torch.equal(after, before)
    assert list(model.state_dict()) == list(fresh.state_dict())


def test_defaults_build_the_model_as_before():
    model = tiny_model(vocab_size=8, positional="alibi")
    assert not any(isinstance(m, ScaledScores) for m in model.modules())
    assert not any("ssmax" in n or ".encoding." in n for n in model.state_dict())


def test_log_beyond_is_the_plain_model_up_to_n_train_keys():
    """Trained with log_beyond = trained without: on sequences of at most n_train tokens the
    factor is exactly 1, so the logits and a training step's gradients are the plain model's, bit
    for bit; one token more and the last query's logits change."""
    plain = tiny_model(vocab_size=8, positional="alibi")
    rule = dataclasses.replace(plain.config, length_scale="log_beyond", length_scale_train=9)
    ruled = build_model(rule)
    ruled.load_state_dict(plain.state_dict())
    x = torch.randint(0, 8, (2, 10), generator=seeded(3))
    for model in (plain, ruled):
        model.zero_grad()
        model(x[:, :9]).logits.square().mean().backward()
    for a, b in zip(plain.parameters(), ruled.parameters(), strict=True):
        assert torch.equal(a.grad, b.grad)
    with torch.no_grad():
        assert torch.equal(plain(x).logits[:, :9], ruled(x).logits[:, :9])
        assert not torch.allclose(plain(x).logits[:, 9], ruled(x).logits[:, 9])
