"""Blocks: the feed-forward network and the residual sub-layers equal their formulas; encoder
blocks see both directions, decoder blocks only the past; cross-attention reads the memory."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from annotated.attention.cache import KVCache
from annotated.models.blocks import (
    DecoderBlock,
    EncoderBlock,
    FeedForward,
    Residual,
    TransformerBlock,
)
from annotated.positional import make_positional

C, H, T, S = 16, 4, 7, 5
ATOL = dict(atol=1e-5, rtol=1e-5)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread; two threads spin against each other on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    "activation, fn", [("gelu", F.gelu), ("relu", F.relu)]
)
def test_feed_forward_is_w2_act_w1(activation, fn):
    torch.manual_seed(0)
    ff = FeedForward(C, 3 * C, activation)
    x = randn(2, T, C)
    expected = (
        fn(x @ ff.up.weight.T + ff.up.bias) @ ff.down.weight.T + ff.down.bias
    )
    torch.testing.assert_close(ff(x), expected, **ATOL)
    # position-wise: each position's output depends on that position only
    x2 = x.clone()
    x2[:, 3] += 1.0
    changed = (ff(x2) - ff(x)).abs().sum(-1) > 0  # (B, T)
    assert changed[:, 3].all() and not changed[:, [0, 1, 2, 4, 5, 6]].any()


def test_feed_forward_rejects_unknown_activation():
    with pytest.raises(ValueError, match="activation.*gelu.*relu"):
        FeedForward(C, 4 * C, "swish")


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_residual_formula(norm):
    torch.manual_seed(0)
    f = nn.Linear(C, C)
    res = Residual(f, C, norm=norm)
    nn.init.normal_(
        res.norm.weight
    )  # make the LayerNorm's affine part non-trivial
    nn.init.normal_(res.norm.bias)
    x = randn(3, T, C)
    ln = lambda t: F.layer_norm(t, (C,), res.norm.weight, res.norm.bias)  # noqa: E731
    expected = x + f(ln(x)) if norm == "pre" else ln(x + f(x))
    out, extra = res(x)
    assert extra is None
    torch.testing.assert_close(out, expected, **ATOL)


def test_residual_passes_extra_outputs_and_arguments():
    class Scaled(nn.Module):
        def forward(self, h, factor, *, tag):
            return h * factor, tag

    res = Residual(Scaled(), C, norm="pre")
    x = randn(2, T, C)
    out, tag = res(x, 2.0, tag="weights")
    assert tag == "weights"
    torch.testing.assert_close(out, x + 2.0 * res.norm(x))


def test_post_ln_output_is_normalised_and_pre_ln_keeps_the_identity_path():
    torch.manual_seed(0)
    x = 5.0 + 3.0 * randn(2, T, C)
    post = EncoderBlock(C, H, norm="post")
    y = post(x)[0]
    torch.testing.assert_close(
        y.mean(-1), torch.zeros(2, T), atol=1e-5, rtol=0
    )  # LN with gain 1, bias 0
    pre = EncoderBlock(C, H, norm="pre")
    for module in pre.modules():  # zero every sub-layer's output projection: the block becomes x + 0 + 0
        if isinstance(module, nn.Linear) and module.out_features == C:
            nn.init.zeros_(module.weight)
            nn.init.zeros_(module.bias)
    torch.testing.assert_close(pre(x)[0], x)


def test_unknown_norm_placement():
    with pytest.raises(ValueError, match="norm placement.*post.*pre"):
        EncoderBlock(C, H, norm="sandwich")


def _changed_positions(block, x, j, **kw):
    x2 = x.clone()
    x2[:, j] += randn(x.shape[0], C, seed=9)
    return (
        (block(x2, **kw)[0] - block(x, **kw)[0]).abs().amax(dim=(0, 2)) > 1e-6
    ).tolist()  # per position


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_decoder_block_is_causal_encoder_block_is_not(norm):
    torch.manual_seed(0)
    x, j = randn(2, T, C), 3
    dec = DecoderBlock(C, H, norm=norm).eval()
    assert _changed_positions(dec, x, j) == [False] * j + [True] * (T - j)
    enc = EncoderBlock(C, H, norm=norm).eval()
    assert _changed_positions(enc, x, j) == [True] * T


def test_cross_attention_reads_every_memory_position_and_respects_its_mask():
    torch.manual_seed(0)
    block = DecoderBlock(C, H, cross_attention=True).eval()
    x, memory = randn(2, T, C), randn(2, S, C, seed=1)
    out, self_w, cross_w = block(x, memory, need_weights=True)
    assert self_w.shape == (2, H, T, T) and cross_w.shape == (2, H, T, S)
    assert torch.equal(
        self_w.triu(1), torch.zeros_like(self_w)
    )  # causal self-attention
    assert (
        cross_w > 0
    ).all()  # every query (the first included) reads every encoder position
    for s in range(S):
        m2 = memory.clone()
        m2[:, s] += 1.0
        assert (
            (block(x, m2)[0] - out).abs().amax(-1) > 1e-6
        ).all()  # every target position changes
    keep = torch.tensor([[True] * S, [True, True, True, False, False]])[
        :, None, None, :
    ]  # (B, 1, 1, S)
    out_masked = block(x, memory, memory_mask=keep)[0]
    m2 = memory.clone()
    m2[1, 3:] += 1.0  # hidden encoder positions
    torch.testing.assert_close(block(x, m2, memory_mask=keep)[0], out_masked)


def test_block_memory_argument_must_match_its_kind():
    x, memory = randn(1, T, C), randn(1, S, C)
    with pytest.raises(ValueError, match="pass the encoder output as memory"):
        DecoderBlock(C, H, cross_attention=True)(x)
    with pytest.raises(ValueError, match="cross_attention=True"):
        EncoderBlock(C, H)(x, memory)


@pytest.mark.parametrize("name", ["rope", "alibi", "t5"])
def test_decoder_block_with_cache_equals_full_pass(name):
    torch.manual_seed(0)
    pe = make_positional(name, d_model=C, n_heads=H, max_len=32, causal=True)
    block = DecoderBlock(
        C, H, n_kv_heads=2, positional=pe, cross_attention=True
    ).eval()
    x, memory = randn(2, T, C), randn(2, S, C, seed=1)
    full = block(x, memory)[0]
    cache = KVCache()
    pieces = [block(x[:, :4], memory, cache=cache)[0]] + [
        block(x[:, t : t + 1], memory, cache=cache)[0] for t in range(4, T)
    ]
    torch.testing.assert_close(torch.cat(pieces, 1), full, **ATOL)


def test_generic_block_flags():
    block = TransformerBlock(
        C, H, causal=True, cross_attention=False, activation="relu", d_ff=8
    )
    assert (
        block.causal
        and block.cross_attn is None
        and block.ff.sublayer.up.out_features == 8
    )
