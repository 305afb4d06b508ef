"""MultiHeadAttention: equals PyTorch's modules, fast path equals reference path, causal,
incremental decoding equals recomputation, clear errors."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from annotated.attention.attend import attend
from annotated.attention.cache import KVCache
from annotated.attention.masks import causal_mask, padding_mask
from annotated.attention.multihead import MultiHeadAttention, repeat_kv
from annotated.positional import (
    AlibiBias,
    RotaryEncoding,
    apply_rope,
    make_positional,
)

C, H, T = 16, 4, 8
ENCODINGS = [
    "nope",
    "sinusoidal",
    "learned",
    "randomized",
    "rope",
    "alibi",
    "t5",
]
ATOL = dict(atol=1e-5, rtol=1e-5)


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def build(name="nope", n_kv_heads=None, causal=True, seed=0):
    """An encoding + attention pair in eval mode, with non-trivial (seeded) parameters."""
    torch.manual_seed(seed)
    pe = make_positional(
        name, d_model=C, n_heads=H, max_len=32, causal=causal
    )
    if name == "t5":
        nn.init.normal_(
            pe.bucket_bias.weight, std=1.0
        )  # make the bias matter
    mha = MultiHeadAttention(C, H, n_kv_heads, positional=pe)
    return pe.eval(), mha.eval()


def run(pe, mha, x, positions=None, **kw):
    """What a model does: embedding-level encodings on the input, the rest inside attention."""
    if positions is None:
        offset = kw["cache"].seq_len if kw.get("cache") is not None else 0
        positions = torch.arange(offset, offset + x.shape[1])
    return mha(pe(x, positions), positions=positions, **kw)


def to_torch_mha(mha: MultiHeadAttention) -> nn.MultiheadAttention:
    ref = nn.MultiheadAttention(mha.d_model, mha.n_heads, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(
            torch.cat(
                [mha.q_proj.weight, mha.k_proj.weight, mha.v_proj.weight]
            )
        )
        ref.in_proj_bias.copy_(
            torch.cat([mha.q_proj.bias, mha.k_proj.bias, mha.v_proj.bias])
        )
        ref.out_proj.weight.copy_(mha.out_proj.weight)
        ref.out_proj.bias.copy_(mha.out_proj.bias)
    return ref.eval()


# --- against torch.nn.MultiheadAttention ------------------------------------------------------


@pytest.mark.parametrize(
    "kind", ["none", "causal", "padding", "causal+padding"]
)
@pytest.mark.parametrize("need_weights", [True, False])
def test_self_attention_equals_torch_multihead_attention(kind, need_weights):
    _, mha = build()
    ref = to_torch_mha(mha)
    x = torch.randn(3, T, C, generator=seeded(1))
    lengths = [T, 5, 2]
    keep = padding_mask(lengths, T)  # (B, 1, 1, Tk), True = real token
    causal = "causal" in kind
    mask = keep if "padding" in kind else None
    # torch's boolean masks mean the opposite: True = NOT allowed.
    ref_out, ref_w = ref(
        x,
        x,
        x,
        attn_mask=~causal_mask(T) if causal else None,
        key_padding_mask=~keep[:, 0, 0] if mask is not None else None,
        average_attn_weights=False,
    )
    out, w = mha(x, mask=mask, causal=causal, need_weights=need_weights)
    torch.testing.assert_close(out, ref_out, **ATOL)
    if need_weights:
        assert w.shape == (3, H, T, T)
        torch.testing.assert_close(w, ref_w, **ATOL)
    else:
        assert w is None


def test_cross_attention_equals_torch_multihead_attention():
    _, mha = build()
    ref = to_torch_mha(mha)
    x = torch.randn(2, 5, C, generator=seeded(2))
    context = torch.randn(2, 7, C, generator=seeded(3))
    keep = padding_mask([7, 4], 7)  # (B, 1, 1, Tk)
    allowed = torch.rand(5, 7, generator=seeded(4)) > 0.3
    allowed[:, 0] = True  # every query keeps at least one key
    ref_out, ref_w = ref(
        x,
        context,
        context,
        attn_mask=~allowed,
        key_padding_mask=~keep[:, 0, 0],
        average_attn_weights=False,
    )
    for need_weights in (True, False):
        out, w = mha(
            x, context, mask=keep & allowed, need_weights=need_weights
        )
        torch.testing.assert_close(out, ref_out, **ATOL)
    torch.testing.assert_close(
        mha(x, context, mask=keep & allowed, need_weights=True)[1],
        ref_w,
        **ATOL,
    )


def test_cross_attention_ignores_positional_encoding():
    _, plain = build("nope")
    for name in ("rope", "alibi", "t5"):
        _, mha = build(name)
        mha.load_state_dict(plain.state_dict(), strict=False)
        x, context = (
            torch.randn(2, 4, C, generator=seeded(5)),
            torch.randn(2, 6, C, generator=seeded(6)),
        )
        torch.testing.assert_close(
            mha(x, context)[0], plain(x, context)[0], **ATOL
        )


# --- fast path == reference path -------------------------------------------------------------


def mask_cases():
    keep = padding_mask([T, 6, 3], T)
    return {
        "none": (None, False),
        "causal": (None, True),
        "padding": (keep, False),
        "causal+padding": (keep, True),
    }


@pytest.mark.parametrize("n_kv_heads", [None, 2, 1])
@pytest.mark.parametrize("name", ENCODINGS)
def test_fast_path_equals_reference_path(name, n_kv_heads):
    pe, mha = build(name, n_kv_heads, causal=True)
    x = torch.randn(3, T, C, generator=seeded(7))
    extra_bias = torch.randn(1, H, T, T, generator=seeded(8))
    for case, (mask, causal) in mask_cases().items():
        for bias in (None, extra_bias):
            ref, w = run(
                pe,
                mha,
                x,
                mask=mask,
                bias=bias,
                causal=causal,
                need_weights=True,
            )
            fast, none = run(
                pe,
                mha,
                x,
                mask=mask,
                bias=bias,
                causal=causal,
                need_weights=False,
            )
            assert none is None
            torch.testing.assert_close(
                fast, ref, **ATOL, msg=lambda m, c=case: f"{name} {c}: {m}"
            )
            torch.testing.assert_close(w.sum(-1), torch.ones(3, H, T), **ATOL)


def test_fully_masked_rows_give_zeros_on_both_paths():
    _, mha = build("alibi")
    x = torch.randn(2, T, C, generator=seeded(9))
    keep = padding_mask(
        [T, 0], T
    )  # the second sequence has no visible key at all
    for need_weights in (True, False):
        mha.out_proj.bias.data.zero_()
        out, _ = mha(x, mask=keep, need_weights=need_weights)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out[1], torch.zeros(T, C))


# --- grouped-query and multi-query attention -------------------------------------------------


def test_gqa_with_as_many_kv_heads_as_heads_is_mha():
    _, mha = build()
    gqa = MultiHeadAttention(C, H, n_kv_heads=H)
    gqa.load_state_dict(mha.state_dict())
    x = torch.randn(2, T, C, generator=seeded(10))
    torch.testing.assert_close(gqa(x, causal=True)[0], mha(x, causal=True)[0])


@pytest.mark.parametrize("n_kv_heads", [2, 1])
def test_gqa_equals_mha_with_shared_kv_weights(n_kv_heads):
    """GQA = MHA whose query heads in one group have identical k/v projections."""
    _, gqa = build(n_kv_heads=n_kv_heads)
    mha = MultiHeadAttention(C, H)
    groups, d = H // n_kv_heads, C // H
    state = gqa.state_dict()
    for proj in ("k_proj", "v_proj"):
        w = (
            state[f"{proj}.weight"]
            .view(n_kv_heads, d, C)
            .repeat_interleave(groups, 0)
            .reshape(C, C)
        )
        state[f"{proj}.weight"] = w
        state[f"{proj}.bias"] = (
            state[f"{proj}.bias"]
            .view(n_kv_heads, d)
            .repeat_interleave(groups, 0)
            .reshape(C)
        )
    mha.load_state_dict(state)
    x = torch.randn(2, T, C, generator=seeded(11))
    for need_weights in (True, False):
        torch.testing.assert_close(
            gqa(x, causal=True, need_weights=need_weights)[0],
            mha(x, causal=True)[0],
            **ATOL,
        )
    assert gqa.k_proj.weight.shape == (n_kv_heads * d, C)  # the saving


@pytest.mark.parametrize("n_kv_heads", [2, 1])
def test_gqa_equals_sdpa_grouped_query_mode(n_kv_heads):
    _, mha = build(n_kv_heads=n_kv_heads)
    x = torch.randn(2, T, C, generator=seeded(12))
    d = C // H
    q = mha.q_proj(x).view(2, T, H, d).transpose(1, 2)
    k = mha.k_proj(x).view(2, T, n_kv_heads, d).transpose(1, 2)
    v = mha.v_proj(x).view(2, T, n_kv_heads, d).transpose(1, 2)
    try:
        ref = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, enable_gqa=True
        )
    except TypeError:
        pytest.skip(
            "this torch has no enable_gqa in scaled_dot_product_attention"
        )
    ref = mha.out_proj(ref.transpose(1, 2).reshape(2, T, C))
    out, _ = mha(
        x, causal=True, need_weights=True
    )  # our reference path repeats k/v heads
    torch.testing.assert_close(out, ref, **ATOL)


def test_repeat_kv_groups_consecutive_heads():
    kv = torch.arange(2.0).view(1, 2, 1, 1)  # heads 0, 1
    assert repeat_kv(kv, 3).flatten().tolist() == [0, 0, 0, 1, 1, 1]


# --- the encodings act where they declare ----------------------------------------------------


def test_rope_rotates_q_and_k_inside_attention():
    _, mha = build("rope")
    x = torch.randn(2, T, C, generator=seeded(13))
    pos = torch.arange(T)
    split = lambda t: t.view(2, T, H, C // H).transpose(1, 2)  # noqa: E731
    q, k, v = split(mha.q_proj(x)), split(mha.k_proj(x)), split(mha.v_proj(x))
    out, w = attend(apply_rope(q, pos), apply_rope(k, pos), v, causal=True)
    expected = mha.out_proj(out.transpose(1, 2).reshape(2, T, C))
    got, got_w = mha(x, causal=True, need_weights=True)
    torch.testing.assert_close(got, expected, **ATOL)
    torch.testing.assert_close(got_w, w, **ATOL)


def test_score_encoding_is_added_to_the_scores():
    pe, mha = build("alibi")
    _, plain = build("nope")
    plain.load_state_dict(mha.state_dict(), strict=False)
    x = torch.randn(2, T, C, generator=seeded(14))
    bias = pe.score_bias(torch.arange(T), torch.arange(T))  # (H, T, T)
    extra = torch.randn(
        2, 1, T, T, generator=seeded(18)
    )  # a caller's own bias adds on top
    for need_weights in (True, False):
        got, _ = mha(x, causal=True, need_weights=need_weights)
        torch.testing.assert_close(got, plain(x, bias=bias, causal=True)[0])
        got, _ = mha(x, bias=extra, causal=True, need_weights=need_weights)
        torch.testing.assert_close(
            got, plain(x, bias=bias + extra, causal=True)[0]
        )


def test_per_sequence_positions_with_rope():
    _, mha = build("rope")
    x = torch.randn(2, T, C, generator=seeded(15))
    pos = torch.stack([torch.arange(T), torch.arange(T) + 5])  # (B, T)
    out, _ = mha(x, positions=pos, causal=True)
    second, _ = mha(x[1:], positions=pos[1], causal=True)
    torch.testing.assert_close(out[1:], second, **ATOL)


# --- causality and incremental decoding, for every encoding ----------------------------------


@pytest.mark.parametrize("name", ENCODINGS)
def test_perturbing_a_token_never_changes_earlier_outputs(name):
    pe, mha = build(name, n_kv_heads=2)
    x = torch.randn(2, T, C, generator=seeded(16))
    for t in (0, 3, T - 1):
        y = x.clone()
        y[:, t] += torch.randn(2, C, generator=seeded(t))
        for need_weights in (True, False):
            a, _ = run(pe, mha, x, causal=True, need_weights=need_weights)
            b, _ = run(pe, mha, y, causal=True, need_weights=need_weights)
            torch.testing.assert_close(a[:, :t], b[:, :t], atol=0, rtol=0)
            assert not torch.allclose(a[:, t], b[:, t])


@pytest.mark.parametrize("n_kv_heads", [None, 1])
@pytest.mark.parametrize("name", ENCODINGS)
def test_incremental_decoding_with_cache_equals_full_recomputation(
    name, n_kv_heads
):
    pe, mha = build(name, n_kv_heads)
    x = torch.randn(2, T, C, generator=seeded(17))
    for need_weights in (True, False):
        full, full_w = run(pe, mha, x, causal=True, need_weights=True)
        cache, outs, start = KVCache(), [], 0
        for piece in (
            3,
            1,
            1,
            2,
            1,
        ):  # a prompt, then token by token, then a chunk
            out, w = run(
                pe,
                mha,
                x[:, start : start + piece],
                causal=True,
                need_weights=need_weights,
                cache=cache,
            )
            outs.append(out)
            start += piece
            assert cache.seq_len == start
            if need_weights:
                torch.testing.assert_close(
                    w, full_w[:, :, start - piece : start, :start], **ATOL
                )
        torch.testing.assert_close(torch.cat(outs, dim=1), full, **ATOL)
    assert cache.k.shape == (
        2,
        n_kv_heads or H,
        T,
        C // H,
    )  # the cache holds only the k/v heads


# --- bad input -------------------------------------------------------------------------------


def test_bad_configurations_say_what_to_change():
    with pytest.raises(
        ValueError, match="d_model=10 must be divisible by n_heads=4"
    ):
        MultiHeadAttention(10, 4)
    with pytest.raises(
        ValueError, match="n_heads=4 must be divisible by n_kv_heads=3"
    ):
        MultiHeadAttention(16, 4, n_kv_heads=3)
    with pytest.raises(
        ValueError, match="head dim d_model // n_heads = 3 is odd"
    ):
        MultiHeadAttention(12, 4, positional=RotaryEncoding())
    with pytest.raises(ValueError, match="d_model // n_heads is even"):
        make_positional("rope", d_model=12, n_heads=4, max_len=8)
    with pytest.raises(
        ValueError, match="unknown positional encoding 'sinusoid'.*sinusoidal"
    ):
        make_positional("sinusoid", d_model=16, n_heads=4, max_len=8)
    with pytest.raises(ValueError, match="n_heads=8, attention has 4"):
        MultiHeadAttention(16, 4, positional=AlibiBias(8))
    with pytest.raises(ValueError, match="PositionalEncoding"):
        MultiHeadAttention(16, 4, positional="rope")


def test_bad_call_arguments_raise_value_errors():
    _, mha = build()
    x = torch.randn(2, T, C)
    with pytest.raises(ValueError, match="x must have shape"):
        mha(torch.randn(2, T, C + 1))
    with pytest.raises(ValueError, match="does not broadcast"):
        mha(
            x, mask=torch.ones(T + 1, T, dtype=torch.bool)
        )  # fast path checks shapes too
    with pytest.raises(ValueError, match="boolean"):
        mha(x, mask=torch.ones(T, T))
    with pytest.raises(ValueError, match="cross-attention"):
        mha(x, torch.randn(2, 3, C), cache=KVCache())
    with pytest.raises(ValueError, match="positions"):
        mha(x, positions=torch.arange(T - 1))
    cache = KVCache()
    mha(x, cache=cache)
    with pytest.raises(ValueError, match="fresh KVCache"):
        mha(torch.randn(3, 1, C), cache=cache)


def test_learned_encoding_past_its_table_errors_in_a_decoding_loop():
    pe = make_positional("learned", d_model=C, n_heads=H, max_len=4)
    mha = MultiHeadAttention(C, H, positional=pe).eval()
    x = torch.randn(1, 6, C)
    with pytest.raises(
        ValueError, match="cannot extrapolate.*overflow='clamp'"
    ):
        run(pe, mha, x, causal=True)
    clamp = make_positional(
        "learned", d_model=C, n_heads=H, max_len=4, overflow="clamp"
    )
    assert run(clamp, mha, x, causal=True)[0].shape == (1, 6, C)


def test_key_padding_mask_pads_keys_when_batch_equals_length():
    """The issue's case: x (8, 8, 32) and a (B, T) = (8, 8) padding mask. ``key_padding_mask`` gives
    torch's padding reading on both paths; the same tensor as ``mask`` is a (T, Tk) mask."""
    torch.manual_seed(0)
    mha = MultiHeadAttention(32, 4).eval()
    ref = to_torch_mha(mha)
    x = torch.randn(8, 8, 32, generator=seeded(5))
    pm = padding_mask(range(1, 9), 8)[:, 0, 0]  # (B, T), True = real token
    ref_out, ref_w = ref(
        x, x, x, key_padding_mask=~pm, average_attn_weights=False
    )
    for need_weights in (False, True):
        out, w = mha(x, key_padding_mask=pm, need_weights=need_weights)
        torch.testing.assert_close(out, ref_out, **ATOL)
        if need_weights:
            torch.testing.assert_close(w, ref_w, **ATOL)
    as_mask, _ = mha(x, mask=pm)  # documented: a 2-D mask is (T, Tk)
    assert (as_mask - ref_out).abs().max() > 0.1
    with pytest.raises(ValueError, match="key_padding_mask="):
        mha(x[:6], mask=pm[:6])  # B != T: refused, naming the argument
