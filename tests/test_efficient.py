"""Efficient attention kernels against dense attention, SDPA and hand-written references."""

import inspect

import pytest
import torch
import torch.nn.functional as F
from conftest import qkv
from hypothesis import given, settings
from hypothesis import strategies as st

from annotated.attention.attend import attend
from annotated.attention.masks import (
    global_token_mask,
    padding_mask,
    sliding_window_mask,
)
from annotated.kernels import (
    ATTENTION_KERNELS,
    AttentionKernel,
    blockwise_attention,
    elu_feature_map,
    linear_attention,
    linear_attention_quadratic,
    local_attention,
    topk_attention,
)

F64 = dict(rtol=1e-10, atol=1e-10)


def grads(out, *inputs, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.autograd.grad(
        out, inputs, torch.randn(out.shape, generator=g, dtype=out.dtype)
    )


# ----------------------------------------------------------------------------- block-wise


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(
    "t_q,t_k,block",
    [(37, 37, 8), (64, 64, 16), (5, 5, 64), (7, 29, 4), (29, 7, 4)],
)
def test_blockwise_equals_dense_values_and_gradients(causal, t_q, t_k, block):
    q, k, v = qkv(t_q=t_q, t_k=t_k, grad=True)
    ref, _ = attend(q, k, v, causal=causal)
    out, weights = blockwise_attention(
        q, k, v, causal=causal, block_size=block, query_block_size=block + 3
    )
    assert weights is None
    torch.testing.assert_close(out, ref, **F64)
    for g_out, g_ref in zip(
        grads(out, q, k, v), grads(ref, q, k, v), strict=True
    ):
        torch.testing.assert_close(g_out, g_ref, **F64)


def test_blockwise_matches_pytorch_sdpa_float32():
    q, k, v = qkv(b=2, h=4, t_q=100, d=16, dtype=torch.float32, grad=True)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    out, _ = blockwise_attention(q, k, v, causal=True, block_size=32)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    for g_out, g_ref in zip(
        grads(out, q, k, v), grads(ref, q, k, v), strict=True
    ):
        torch.testing.assert_close(g_out, g_ref, rtol=1e-4, atol=1e-5)


def test_blockwise_mask_bias_and_fully_masked_rows():
    b, h, t = 2, 3, 23
    q, k, v = qkv(b=b, h=h, t_q=t, grad=True)
    g = torch.Generator().manual_seed(3)
    mask = (
        torch.rand(b, 1, t, t, generator=g) < 0.6
    )  # (B, 1, T, T), broadcast over heads
    mask[0, 0, 4] = False  # a query with no visible key
    mask[1, 0, :, 0] = True
    bias = torch.randn(
        1, h, t, t, generator=g, dtype=torch.float64
    ).requires_grad_(True)  # learned (T5-like)
    ref, _ = attend(q, k, v, mask=mask, bias=bias)
    out, _ = blockwise_attention(q, k, v, mask=mask, bias=bias, block_size=5)
    torch.testing.assert_close(out, ref, **F64)
    assert torch.equal(out[0, :, 4], torch.zeros_like(out[0, :, 4]))
    got, want = grads(out, q, k, v, bias), grads(ref, q, k, v, bias)
    for g_out, g_ref in zip(got, want, strict=True):
        assert torch.isfinite(g_out).all()
        torch.testing.assert_close(g_out, g_ref, **F64)


def test_blockwise_bias_broadcast_along_queries():
    """A bias of shape (Tk,) (per-key, broadcast everywhere) gets the gradient summed correctly."""
    q, k, v = qkv(t_q=11, grad=True)
    bias = torch.linspace(-1, 1, 11, dtype=torch.float64).requires_grad_(True)
    ref, _ = attend(q, k, v, bias=bias, causal=True)
    out, _ = blockwise_attention(
        q, k, v, bias=bias, causal=True, block_size=4
    )
    torch.testing.assert_close(out, ref, **F64)
    torch.testing.assert_close(
        grads(out, bias)[0], grads(ref, bias)[0], **F64
    )


# ----------------------------------------------------------------------------- local


@settings(max_examples=25, deadline=None)
@given(
    t=st.integers(1, 40),
    window=st.integers(1, 45),
    chunk=st.one_of(st.none(), st.integers(1, 17)),
    causal=st.booleans(),
    n_global=st.integers(0, 3),
)
def test_local_equals_dense_with_sliding_window_mask(
    t, window, chunk, causal, n_global
):
    q, k, v = qkv(b=1, h=2, t_q=t, d=4, seed=t)
    mask = sliding_window_mask(t, window, causal=causal)
    positions = None
    if n_global:
        positions = torch.randperm(
            t, generator=torch.Generator().manual_seed(window)
        )[:n_global].tolist()
        mask = mask | global_token_mask(t, positions)
    ref, _ = attend(q, k, v, mask=mask, causal=causal)
    out, weights = local_attention(
        q,
        k,
        v,
        window=window,
        causal=causal,
        global_positions=positions,
        chunk_size=chunk,
    )
    assert weights is None
    torch.testing.assert_close(out, ref, **F64)


def test_local_gradients_padding_mask_and_kv_cache_shape():
    q, k, v = qkv(t_q=30, grad=True)
    pad = padding_mask([30, 21], 30)  # (B, 1, 1, T)
    mask = sliding_window_mask(30, 6) & pad
    ref, _ = attend(q, k, v, mask=mask)
    out, _ = local_attention(
        q, k, v, pad, window=6, causal=True, global_positions=[0, 3]
    )
    ref, _ = attend(
        q,
        k,
        v,
        mask=(sliding_window_mask(30, 6) | global_token_mask(30, [0, 3]))
        & pad,
        causal=True,
    )
    torch.testing.assert_close(out, ref, **F64)
    for g_out, g_ref in zip(
        grads(out, q, k, v), grads(ref, q, k, v), strict=True
    ):
        torch.testing.assert_close(g_out, g_ref, **F64)
    # new queries appended to a cache: queries are the last 5 of 30 positions
    q_new = q[:, :, -5:].detach()
    ref, _ = attend(q_new, k, v, mask=sliding_window_mask(5, 6, 30))
    out, _ = local_attention(q_new, k, v, window=6, causal=True)
    torch.testing.assert_close(out, ref, **F64)


# ----------------------------------------------------------------------------- top-k


@pytest.mark.parametrize("causal", [False, True])
def test_topk_with_k_equal_length_is_dense(causal):
    q, k, v = qkv(t_q=17, grad=True)
    bias = torch.randn(
        17,
        17,
        generator=torch.Generator().manual_seed(2),
        dtype=torch.float64,
    )
    ref, ref_w = attend(q, k, v, bias=bias, causal=causal)
    for top_k in (17, 100):
        out, w = topk_attention(
            q, k, v, bias=bias, causal=causal, top_k=top_k
        )
        torch.testing.assert_close(out, ref, **F64)
        torch.testing.assert_close(w, ref_w, **F64)


def test_topk_keeps_exactly_the_largest_scores():
    q, k, v = qkv(t_q=20)
    _, dense = attend(q, k, v, causal=True)
    out, w = topk_attention(q, k, v, causal=True, top_k=3)
    visible = torch.arange(1, 21).clamp(
        max=3
    )  # query i sees i + 1 keys, keeps min(i + 1, 3)
    assert torch.equal((w > 0).sum(-1), visible.expand(2, 3, 20))
    torch.testing.assert_close(
        w.sum(-1), torch.ones(2, 3, 20, dtype=torch.float64)
    )
    largest = torch.zeros_like(dense, dtype=torch.bool).scatter(
        -1, dense.topk(3, -1).indices, True
    )
    assert torch.equal(
        (w > 0)[..., 2:, :], largest[..., 2:, :]
    )  # rows that see >= 3 keys keep the 3 best
    out1, _ = topk_attention(
        q, k, v, top_k=1
    )  # k = 1: each query copies the value of its best key
    best = (q @ k.transpose(-2, -1)).argmax(-1)  # (B, H, T)
    torch.testing.assert_close(
        out1,
        torch.gather(v, 2, best[..., None].expand(-1, -1, -1, v.shape[-1])),
    )


# ----------------------------------------------------------------------------- linear


def linear_attention_rnn(q, k, v):
    """Independent reference: the causal recurrence S_i = S_{i-1} + φ(k_i) v_iᵀ, one step at a time."""
    phi_q, phi_k = elu_feature_map(q), elu_feature_map(k)
    s = torch.zeros(*q.shape[:-2], q.shape[-1], v.shape[-1], dtype=q.dtype)
    z = torch.zeros(*q.shape[:-2], q.shape[-1], dtype=q.dtype)
    outs = []
    for i in range(q.shape[-2]):
        s = s + phi_k[..., i, :, None] * v[..., i, None, :]
        z = z + phi_k[..., i, :]
        outs.append(
            (phi_q[..., i, None, :] @ s)[..., 0, :]
            / (phi_q[..., i, :] * z).sum(-1, keepdim=True)
        )
    return torch.stack(outs, dim=-2)


@pytest.mark.parametrize("chunk", [1, 4, 7, 64])
@pytest.mark.parametrize("causal", [False, True])
def test_linear_equals_quadratic_form(chunk, causal):
    q, k, v = qkv(t_q=23, grad=True)
    ref, w = linear_attention_quadratic(q, k, v, causal=causal)
    out, none = linear_attention(q, k, v, causal=causal, chunk_size=chunk)
    assert none is None
    torch.testing.assert_close(out, ref, **F64)
    torch.testing.assert_close(
        w.sum(-1), torch.ones(2, 3, 23, dtype=torch.float64)
    )
    for g_out, g_ref in zip(
        grads(out, q, k, v), grads(ref, q, k, v), strict=True
    ):
        torch.testing.assert_close(g_out, g_ref, **F64)
    if causal:
        torch.testing.assert_close(out, linear_attention_rnn(q, k, v), **F64)


def test_linear_causality_padding_and_kv_cache_shape():
    q, k, v = qkv(t_q=19)
    out, _ = linear_attention(q, k, v, causal=True, chunk_size=5)
    k2, v2 = k.clone(), v.clone()
    k2[..., 12:, :] += 3.0
    v2[..., 12:, :] -= (
        2.0  # change the future: outputs before 12 must not move
    )
    out2, _ = linear_attention(q, k2, v2, causal=True, chunk_size=5)
    torch.testing.assert_close(out[..., :12, :], out2[..., :12, :], **F64)
    assert not torch.allclose(out[..., 12:, :], out2[..., 12:, :])
    pad = padding_mask(
        [19, 11], 19
    )  # padded keys drop out: sequence 1 equals its truncation
    out, _ = linear_attention(q, k, v, pad)
    short, _ = linear_attention(q[1:], k[1:, :, :11], v[1:, :, :11])
    torch.testing.assert_close(out[1:], short, **F64)
    out, _ = linear_attention(
        q[..., -4:, :], k, v, causal=True, chunk_size=3
    )  # last 4 queries of 19
    full, _ = linear_attention(q, k, v, causal=True)
    torch.testing.assert_close(out, full[..., -4:, :], **F64)
    ref, _ = linear_attention_quadratic(
        q, k[..., :6, :], v[..., :6, :], causal=True
    )  # Tq > Tk: first rows empty
    out, _ = linear_attention(
        q, k[..., :6, :], v[..., :6, :], causal=True, chunk_size=4
    )
    torch.testing.assert_close(out, ref, **F64)
    assert torch.equal(out[..., :13, :], torch.zeros_like(out[..., :13, :]))


# ----------------------------------------------------------------------------- GQA, errors, registry


@pytest.mark.parametrize("name", ["full", "blockwise", "local", "topk"])
def test_grouped_query_attention_by_repeating_kv(name):
    """H = 6 query heads share H_kv = 2 key/value heads; the caller repeats k, v to 6 heads."""
    g = torch.Generator().manual_seed(5)
    q = torch.randn(2, 6, 21, 8, generator=g)
    k, v = (
        torch.randn(2, 2, 21, 8, generator=g),
        torch.randn(2, 2, 21, 8, generator=g),
    )
    params = {"window": 21, "top_k": 21, "block_size": 8}
    kernel = ATTENTION_KERNELS[name]
    out, _ = kernel.fn(
        q,
        k.repeat_interleave(3, dim=1),
        v.repeat_interleave(3, dim=1),
        causal=True,
        **{p: params[p] for p in kernel.required},
        **({"block_size": 8} if name == "blockwise" else {}),
    )
    ref = F.scaled_dot_product_attention(
        q, k, v, is_causal=True, enable_gqa=True
    )
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_linear_grouped_query_attention():
    g = torch.Generator().manual_seed(6)
    q = torch.randn(1, 4, 10, 8, generator=g, dtype=torch.float64)
    k, v = (
        torch.randn(1, 1, 10, 8, generator=g, dtype=torch.float64),
        torch.randn(1, 1, 10, 8, generator=g),
    )
    k4, v4 = (
        k.expand(1, 4, 10, 8),
        v.double().expand(1, 4, 10, 8),
    )  # multi-query: one shared kv head
    out, _ = linear_attention(q, k4, v4, causal=True, chunk_size=3)
    for h in range(4):
        torch.testing.assert_close(
            out[:, h : h + 1],
            linear_attention_rnn(q[:, h : h + 1], k, v.double()),
            **F64,
        )


@pytest.mark.parametrize(
    "call,word",
    [
        (lambda q, k, v: local_attention(q, k, v, window=0), "window"),
        (lambda q, k, v: local_attention(q, k, v, window=-3), "window"),
        (lambda q, k, v: local_attention(q, k, v, window=2.5), "window"),
        (
            lambda q, k, v: local_attention(q, k, v, window=4, chunk_size=0),
            "chunk_size",
        ),
        (lambda q, k, v: topk_attention(q, k, v, top_k=0), "top_k"),
        (
            lambda q, k, v: blockwise_attention(q, k, v, block_size=0),
            "block_size",
        ),
        (
            lambda q, k, v: blockwise_attention(q, k, v, query_block_size=-1),
            "query_block_size",
        ),
        (
            lambda q, k, v: linear_attention(q, k, v, chunk_size=0),
            "chunk_size",
        ),
    ],
)
def test_bad_sizes_raise_clear_errors(call, word):
    q, k, v = qkv(t_q=6)
    with pytest.raises(
        ValueError, match=rf"{word} of \w+ must be a positive integer"
    ):
        call(q, k, v)


def test_kernels_refuse_what_they_cannot_honour():
    q, k, v = qkv(t_q=6)
    bias = torch.zeros(6, 6, dtype=torch.float64)
    arbitrary = sliding_window_mask(6, 2)
    for fn in (linear_attention, linear_attention_quadratic):
        with pytest.raises(ValueError, match="score bias"):
            fn(q, k, v, bias=bias)
        with pytest.raises(ValueError, match="score_mod"):
            fn(q, k, v, score_mod=lambda s, b, h, i, j: s)
        with pytest.raises(ValueError, match="mask_mod"):
            fn(q, k, v, mask_mod=lambda b, h, i, j: i >= j)
    for fn in (
        linear_attention,
        lambda *a, **kw: local_attention(*a, window=2, **kw),
    ):
        with pytest.raises(ValueError, match="key-padding masks"):
            fn(q, k, v, mask=arbitrary)
    with pytest.raises(ValueError, match="global_positions"):
        local_attention(q, k, v, window=2, global_positions=[7])


def test_registry_flags_match_behaviour():
    assert set(ATTENTION_KERNELS) == {
        "full",
        "linear",
        "local",
        "topk",
        "blockwise",
        "flex",
    }
    q, k, v = qkv(t_q=12, d=4)
    g = torch.Generator().manual_seed(7)
    bias = torch.randn(12, 12, generator=g, dtype=torch.float64)
    mask = torch.rand(2, 1, 12, 12, generator=g) < 0.7
    params = {"window": 3, "top_k": 4}
    for name, kernel in ATTENTION_KERNELS.items():
        assert (
            isinstance(kernel, AttentionKernel)
            and kernel.memory
            and kernel.summary
        )
        if "cpu" not in kernel.devices:
            with pytest.raises(ValueError, match="CUDA"):
                kernel.fn(q, k, v, causal=True)
            continue
        kw = {p: params[p] for p in kernel.required}
        out, _ = kernel.fn(
            q, k, v, mask=None, bias=None, causal=True, scale=None, **kw
        )
        assert out.shape == (2, 3, 12, 5)
        ref, _ = attend(q, k, v, mask=mask, bias=bias, causal=True)
        if kernel.score_mods and kernel.query_masks:
            out, _ = kernel.fn(
                q, k, v, mask=mask, bias=bias, causal=True, **kw
            )
            assert (
                torch.allclose(out, ref, rtol=1e-10, atol=1e-10)
                == kernel.exact
            ), name
        if not kernel.score_mods:
            with pytest.raises(ValueError):
                kernel.fn(q, k, v, bias=bias, causal=True, **kw)
        if not kernel.query_masks:
            with pytest.raises(ValueError):
                kernel.fn(q, k, v, mask=mask, causal=True, **kw)
            kernel.fn(
                q, k, v, mask=padding_mask([12, 9], 12), causal=True, **kw
            )  # key padding is fine


def test_kernel_settings_are_keyword_only_and_weights_drop_speed_settings():
    """Every setting follows attend's call shape as a keyword; the O(T²) weights path takes the same call."""
    q, k, v = qkv(t_q=9)
    params = {"window": 3, "top_k": 4, "block_size": 2, "chunk_size": 4}
    for name, kernel in ATTENTION_KERNELS.items():
        signature = inspect.signature(kernel.fn).parameters
        for setting in kernel.settings():
            assert (
                signature[setting].kind is inspect.Parameter.KEYWORD_ONLY
            ), (name, setting)
        if "cpu" not in kernel.devices:
            continue
        kw = {p: params[p] for p in kernel.settings() if p in params}
        out, w = kernel.weights(q, k, v, causal=True, **kw)
        fast, _ = kernel.fn(q, k, v, causal=True, **kw)
        torch.testing.assert_close(out, fast, **F64)
        torch.testing.assert_close(
            w.sum(-1), torch.ones(2, 3, 9, dtype=torch.float64)
        )


@pytest.mark.parametrize(
    "name", [n for n, k in ATTENTION_KERNELS.items() if "cpu" in k.devices]
)
def test_every_kernel_takes_key_padding_mask_even_when_batch_equals_length(
    name,
):
    """``key_padding_mask`` (B, Tk) equals the (B, 1, 1, Tk) mask tensor in every kernel, fast and
    O(T²) path, at B == T where a 2-D ``mask`` would be read as (Tq, Tk)."""
    kernel = ATTENTION_KERNELS[name]
    q, k, v = qkv(b=9, h=2, t_q=9, d=4)
    keep = padding_mask(range(9, 0, -1), 9)[:, 0, 0]  # (B, Tk) = (9, 9)
    params = {"window": 3, "top_k": 9}
    kw = {p: params[p] for p in kernel.settings() if p in params}
    for fn in (kernel.fn, kernel.weights):
        out, w = fn(q, k, v, key_padding_mask=keep, causal=True, **kw)
        ref, w_ref = fn(
            q, k, v, mask=keep[:, None, None, :], causal=True, **kw
        )
        torch.testing.assert_close(out, ref, **F64)
        if w is not None:
            torch.testing.assert_close(w, w_ref, **F64)
            assert (
                float(w.masked_select(~keep[:, None, None, :]).abs().sum())
                == 0.0
            )
