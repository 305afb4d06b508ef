"""Efficient attention kernels wired into MultiHeadAttention and the models: exact kernels give
the dense model's numbers, every kind trains, impossible configs are refused with a clear error."""

import pytest
import torch

from annotated.attention.masks import padding_mask
from annotated.attention.multihead import KVCache, MultiHeadAttention
from annotated.kernels import (
    ATTENTION_KERNELS,
    check_kernel_params,
    kernel_weights,
)
from annotated.models.config import ModelConfig
from annotated.models.generate import generate
from annotated.models.transformer import build_model
from annotated.positional import make_positional
from annotated.training.config import TrainConfig
from annotated.training.loop import train

C, H, T, V = 16, 4, 10, 12
ATOL = dict(atol=1e-5, rtol=1e-4)
# Settings that make each kernel compute dense attention on sequences of length ≤ T.
EXACT_AT_T = {
    "blockwise": {"block_size": 3},
    "local": {"window": T},
    "topk": {"top_k": T},
}
# Settings that make each kernel approximate (or, for blockwise, still exact).
SMALL = {
    "linear": {},
    "local": {"window": 3},
    "topk": {"top_k": 2},
    "blockwise": {"block_size": 4},
}


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def attention_pair(
    kernel, params, *, n_kv_heads=None, positional="rope", causal=True
):
    """A dense and a kernel attention with the same (seeded) weights, in eval mode."""
    torch.manual_seed(0)
    pe = make_positional(
        positional, d_model=C, n_heads=H, max_len=64, causal=causal
    )
    dense = MultiHeadAttention(C, H, n_kv_heads, positional=pe).eval()
    other = MultiHeadAttention(
        C, H, n_kv_heads, positional=pe, kernel=kernel, kernel_params=params
    ).eval()
    other.load_state_dict(dense.state_dict())
    return dense, other


# --- MultiHeadAttention -----------------------------------------------------------------------


@pytest.mark.parametrize("kernel", sorted(EXACT_AT_T))
@pytest.mark.parametrize("n_kv_heads", [None, 2, 1])
@pytest.mark.parametrize("causal", [True, False])
def test_exact_kernels_equal_dense_multihead_attention(
    kernel, n_kv_heads, causal
):
    positional = "alibi" if ATTENTION_KERNELS[kernel].score_mods else "rope"
    dense, other = attention_pair(
        kernel,
        EXACT_AT_T[kernel],
        n_kv_heads=n_kv_heads,
        positional=positional,
    )
    x = torch.randn(2, T, C, generator=seeded(1))
    keep = padding_mask(
        [T, 6], T
    )  # (B, 1, 1, T): key padding, which every kernel honours
    for mask in (None, keep):
        ref, _ = dense(x, mask=mask, causal=causal)
        out, w = other(x, mask=mask, causal=causal)
        assert w is None
        torch.testing.assert_close(out, ref, **ATOL)


@pytest.mark.parametrize("kernel", sorted(SMALL))
def test_need_weights_gives_the_kernels_own_weights(kernel):
    """The weights path computes the same outputs as the kernel, and its weights are a distribution."""
    _, mha = attention_pair(kernel, SMALL[kernel], n_kv_heads=2)
    x = torch.randn(2, T, C, generator=seeded(2))
    fast, none = mha(x, causal=True)
    slow, w = mha(x, causal=True, need_weights=True)
    assert none is None and w.shape == (2, H, T, T)
    torch.testing.assert_close(slow, fast, **ATOL)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, H, T), **ATOL)
    assert (w.triu(1) == 0).all()  # causal
    if kernel == "local":  # nothing outside the window of 3
        assert (w.tril(-3) == 0).all()
    if kernel == "topk":  # at most top_k keys per query
        assert ((w > 0).sum(-1) <= 2).all()


def test_local_weights_include_global_tokens():
    q, k, v = (torch.randn(1, 2, 8, 4, generator=seeded(s)) for s in range(3))
    params = {"window": 2, "global_positions": [0]}
    out, w = kernel_weights("local", q, k, v, causal=True, **params)
    fast, _ = ATTENTION_KERNELS["local"].fn(q, k, v, causal=True, **params)
    torch.testing.assert_close(out, fast, **ATOL)
    assert (
        w[..., 5:, 0] > 0
    ).all()  # every later query still reads the global token 0


@pytest.mark.parametrize("kernel", sorted(SMALL))
def test_kv_cache_decoding_equals_whole_sequence(kernel):
    """Queries after a cache (Tq < Tk) are aligned to the last keys in every kernel."""
    _, mha = attention_pair(kernel, SMALL[kernel], n_kv_heads=2)
    x = torch.randn(2, T, C, generator=seeded(3))
    whole, _ = mha(x, causal=True)
    cache = KVCache()
    pieces = [mha(x[:, :4], causal=True, cache=cache)[0]] + [
        mha(x[:, i : i + 1], causal=True, cache=cache)[0] for i in range(4, T)
    ]
    torch.testing.assert_close(torch.cat(pieces, dim=1), whole, **ATOL)


def test_kernel_settings_are_checked_early():
    assert check_kernel_params("local", {"window": 4}) == {"window": 4}
    with pytest.raises(ValueError, match="unknown attention kernel 'flash'"):
        check_kernel_params("flash", None)
    with pytest.raises(ValueError, match="needs \\['window'\\]"):
        MultiHeadAttention(C, H, kernel="local")
    with pytest.raises(ValueError, match="takes no setting \\['window'\\]"):
        MultiHeadAttention(
            C, H, kernel="topk", kernel_params={"top_k": 2, "window": 3}
        )
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="positive integer"):
            MultiHeadAttention(
                C, H, kernel="blockwise", kernel_params={"block_size": bad}
            )
    with pytest.raises(ValueError, match="no attention dropout"):
        MultiHeadAttention(C, H, dropout=0.1, kernel="linear")
    _, mha = attention_pair("linear", {})
    with pytest.raises(
        ValueError, match="score bias"
    ):  # ALiBi-style bias into linear attention
        mha(
            torch.randn(1, T, C), bias=torch.zeros(H, T, T), need_weights=True
        )
    with pytest.raises(ValueError, match="score bias"):
        mha(torch.randn(1, T, C), bias=torch.zeros(H, T, T))


# --- models -------------------------------------------------------------------------------------


def config(arch="decoder", attention="full", params=None, **kw):
    base = dict(
        arch=arch, vocab_size=V, d_model=C, n_heads=H, n_layers=2, max_len=32
    )
    return ModelConfig(
        **(
            base
            | {"attention": attention, "attention_params": params or {}}
            | kw
        )
    )


def pair(arch, attention, params, **kw):
    torch.manual_seed(0)
    dense = build_model(config(arch, **kw)).eval()
    other = build_model(config(arch, attention, params, **kw)).eval()
    other.load_state_dict(dense.state_dict())
    return dense, other


@pytest.mark.parametrize("positional", ["rope", "alibi", "t5", "learned"])
def test_blockwise_model_equals_full_model(positional):
    dense, other = pair(
        "decoder",
        "blockwise",
        {"block_size": 4},
        positional=positional,
        n_kv_heads=2,
    )
    idx = torch.randint(0, V, (2, T), generator=seeded(4))
    torch.testing.assert_close(other(idx).logits, dense(idx).logits, **ATOL)


@pytest.mark.parametrize("arch", ["decoder", "encoder", "encoder-decoder"])
def test_local_with_window_at_least_t_equals_full_model(arch):
    dense, other = pair(
        arch,
        "local",
        {"window": T},
        pad_id=V - 1 if arch != "decoder" else None,
    )
    idx = torch.randint(0, V - 1, (2, T), generator=seeded(5))
    idx[1, 7:] = (
        V - 1
    )  # padding in the second sequence (encoders hide it through pad_id)
    args = (idx, idx[:, :6]) if arch == "encoder-decoder" else (idx,)
    torch.testing.assert_close(
        other(*args).logits, dense(*args).logits, **ATOL
    )


def test_topk_with_k_at_least_t_equals_full_model():
    dense, other = pair("decoder", "topk", {"top_k": T}, positional="alibi")
    idx = torch.randint(0, V, (2, T), generator=seeded(6))
    torch.testing.assert_close(other(idx).logits, dense(idx).logits, **ATOL)


def test_approximate_kernels_change_the_model():
    """A sanity check that the kernel is really used: a small window gives other logits."""
    dense, other = pair("decoder", "local", {"window": 2})
    idx = torch.randint(0, V, (2, T), generator=seeded(7))
    assert not torch.allclose(
        other(idx).logits[:, 2:], dense(idx).logits[:, 2:], atol=1e-4
    )
    torch.testing.assert_close(
        other(idx).logits[:, :2], dense(idx).logits[:, :2], **ATOL
    )  # window covers them


@pytest.mark.parametrize("attention", sorted(SMALL))
def test_every_kind_trains_a_step(attention):
    torch.manual_seed(0)
    model = build_model(
        config("decoder", attention, SMALL[attention], n_kv_heads=2)
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    idx = torch.randint(0, V, (4, T), generator=seeded(8))
    losses = []
    for _ in range(3):
        logits = model(idx[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, V), idx[:, 1:].reshape(-1)
        )
        optimizer.zero_grad()
        loss.backward()
        attn = model.decoder.blocks[0].self_attn.sublayer
        assert attn.kernel == attention
        assert (
            attn.q_proj.weight.grad.abs().sum() > 0
            and attn.k_proj.weight.grad.abs().sum() > 0
        )
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]


def test_training_loop_runs_with_a_kernel_that_returns_no_weights():
    """train() evaluates with need_weights=True (attention entropy): the kernel's weights path serves it."""
    torch.manual_seed(0)
    model = build_model(
        ModelConfig(
            vocab_size=8, d_model=C, n_heads=H, n_layers=1, attention="linear"
        )
    )
    history = train(
        model,
        "long_range_match",
        train_length=6,
        config=TrainConfig(steps=2, batch_size=4, warmup_steps=1),
    )
    assert any(key.startswith("entropy/") for key in history.evals[-1])


def test_generate_with_a_local_kernel_and_cache_equals_recomputation():
    torch.manual_seed(0)
    model = build_model(config("decoder", "local", {"window": 3}))
    prompt = torch.randint(0, V, (2, 3), generator=seeded(9))
    cached = generate(model, prompt, 6, greedy=True, use_cache=True)
    recomputed = generate(model, prompt, 6, greedy=True, use_cache=False)
    assert torch.equal(cached, recomputed)


def test_cross_attention_stays_dense():
    torch.manual_seed(0)
    model = build_model(config("encoder-decoder", "linear"))
    block = model.decoder.blocks[0]
    assert (
        block.self_attn.sublayer.kernel == "linear"
        and block.cross_attn.sublayer.kernel == "full"
    )


def test_impossible_combinations_are_refused():
    for positional in ("alibi", "t5"):
        with pytest.raises(
            ValueError,
            match=f"cannot apply the score_mod of positional='{positional}'",
        ):
            config(attention="linear", positional=positional)
    config(
        attention="blockwise", positional="alibi"
    )  # kernels that take score mods accept them
    config(attention="topk", params={"top_k": 4}, positional="t5")
    config(attention="local", params={"window": 4}, positional="t5")
    with pytest.raises(ValueError, match="set dropout=0.0"):
        config(attention="blockwise", dropout=0.1)
    with pytest.raises(ValueError, match="needs \\['top_k'\\]"):
        config(attention="topk")
    with pytest.raises(
        ValueError,
        match="window of attention kernel 'local' must be a positive integer",
    ):
        config(attention="local", params={"window": 0})
    with pytest.raises(ValueError, match="takes no setting"):
        config(attention="full", params={"window": 4})
    with pytest.raises(ValueError, match="unknown attention kernel"):
        config(attention="sparse")


def test_config_with_kernel_settings_round_trips():
    c = config(attention="local", params={"window": 5})
    assert ModelConfig.from_dict(c.to_dict()) == c
    assert c.diff(config(attention="local", params={"window": 6})) == {
        "attention_params": ({"window": 5}, {"window": 6})
    }
