"""`attend` against PyTorch's scaled_dot_product_attention and basic properties."""

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import qkv

from annotated.attention.attend import (
    attend,
    attention_entropy,
    masked_softmax,
)
from annotated.attention.masks import causal_mask, padding_mask

TOL = {
    torch.float32: dict(atol=1e-5, rtol=1e-5),
    torch.float64: dict(atol=1e-12, rtol=1e-12),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("use_mask", [False, True])
@pytest.mark.parametrize("use_bias", [False, True])
def test_attend_equals_sdpa(dtype, use_mask, use_bias):
    q, k, v = qkv(t_q=5, t_k=7, d_v=4, dtype=dtype)
    g = torch.Generator().manual_seed(1)
    mask = torch.rand(2, 1, 5, 7, generator=g) > 0.3 if use_mask else None
    if mask is not None:
        mask[..., 0] = (
            True  # keep every row non-empty: SDPA and attend then agree bit-for-bit in meaning
        )
    bias = (
        torch.randn(3, 5, 7, generator=g, dtype=dtype) if use_bias else None
    )
    out, weights = attend(q, k, v, mask=mask, bias=bias)
    # SDPA takes one attn_mask: a bool mask, or a float mask added to the scores.
    sdpa_mask = mask
    if bias is not None:
        sdpa_mask = (
            bias if mask is None else bias.masked_fill(~mask, float("-inf"))
        )
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=sdpa_mask)
    torch.testing.assert_close(out, ref, **TOL[dtype])
    assert weights.shape == (2, 3, 5, 7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_attend_causal_equals_sdpa_is_causal(dtype):
    q, k, v = qkv(t_q=6, t_k=6, d_v=4, dtype=dtype)
    out, _ = attend(q, k, v, causal=True)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(out, ref, **TOL[dtype])


def test_custom_scale_equals_sdpa_scale():
    q, k, v = qkv(t_q=5, t_k=7, d_v=4, dtype=torch.float64)
    out, _ = attend(q, k, v, scale=0.3)
    torch.testing.assert_close(
        out, F.scaled_dot_product_attention(q, k, v, scale=0.3)
    )


def test_rows_sum_to_one_and_masked_keys_get_zero_weight():
    q, k, v = qkv(t_q=5, t_k=7, d_v=4, dtype=torch.float64)
    mask = padding_mask([3, 7], 7)  # (B, 1, 1, Tk)
    _, w = attend(q, k, v, mask=mask)
    torch.testing.assert_close(
        w.sum(-1), torch.ones(2, 3, 5, dtype=torch.float64)
    )
    assert (w[0, :, :, 3:] == 0).all()


def test_hand_checked_example():
    # Two keys; the query matches the first: scores (2, 0)/√2 → weights softmax(√2, 0).
    q = torch.tensor([[1.0, 1.0]])
    k = torch.tensor([[1.0, 1.0], [1.0, -1.0]])
    v = torch.tensor([[10.0], [20.0]])
    out, w = attend(q, k, v)
    p = math.exp(math.sqrt(2)) / (math.exp(math.sqrt(2)) + 1)
    torch.testing.assert_close(w, torch.tensor([[p, 1 - p]]))
    torch.testing.assert_close(out, torch.tensor([[10 * p + 20 * (1 - p)]]))


def test_fully_masked_row_is_zero_and_nan_free():
    q, k, v = qkv(t_q=5, t_k=7, d_v=4, dtype=torch.float32)
    mask = torch.ones(5, 7, dtype=torch.bool)
    mask[2] = False  # query 2 may look at nothing
    out, w = attend(q, k, v, mask=mask)
    assert not torch.isnan(out).any() and not torch.isnan(w).any()
    assert (w[..., 2, :] == 0).all() and (out[..., 2, :] == 0).all()
    torch.testing.assert_close(
        out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    )
    # Gradients stay finite too.
    q.requires_grad_(True)
    attend(q, k, v, mask=mask)[0].sum().backward()
    assert torch.isfinite(q.grad).all()


def test_minus_inf_bias_everywhere_behaves_like_a_full_mask():
    q, k, v = qkv(t_q=5, t_k=7, d_v=4, dtype=torch.float32)
    bias = torch.zeros(5, 7)
    bias[1] = float("-inf")
    out, w = attend(q, k, v, bias=bias)
    assert (w[..., 1, :] == 0).all() and not torch.isnan(out).any()


@pytest.mark.parametrize("which", ["key", "value"])
def test_causal_future_keys_and_values_never_change_earlier_outputs(which):
    q, k, v = qkv(t_q=6, t_k=6, d_v=4, dtype=torch.float64)
    out, _ = attend(q, k, v, mask=causal_mask(6))
    for t in range(6):
        k2, v2 = k.clone(), v.clone()
        target = k2 if which == "key" else v2
        target[..., t, :] += 100.0
        out2, _ = attend(q, k2, v2, mask=causal_mask(6))
        torch.testing.assert_close(
            out2[..., :t, :], out[..., :t, :], atol=0, rtol=0
        )
        assert not torch.allclose(out2[..., t:, :], out[..., t:, :])


def test_causal_flag_with_longer_keys_aligns_queries_to_the_end():
    q, k, v = qkv(t_q=2, t_k=5, d_v=4, dtype=torch.float64)
    out, w = attend(q, k, v, causal=True)
    assert (
        (w[..., 0, 4] == 0).all()
        and (w[..., 0, 3] > 0).all()
        and (w[..., 1, :] > 0).all()
    )


def test_entropy_of_uniform_and_one_hot_rows():
    w = torch.tensor([[0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(
        attention_entropy(w), torch.tensor([math.log(4), 0.0])
    )


@pytest.mark.parametrize(
    "shapes, match",
    [
        (
            ((2, 5, 8), (2, 7, 6), (2, 7, 4)),
            r"q \(2, 5, 8\) vs k \(2, 7, 6\)",
        ),
        (
            ((2, 5, 8), (2, 7, 8), (2, 6, 4)),
            r"k \(2, 7, 8\) vs v \(2, 6, 4\)",
        ),
        (
            ((3, 5, 8), (2, 7, 8), (2, 7, 4)),
            r"q \(3, 5, 8\) vs k \(2, 7, 8\)",
        ),
        (((8,), (7, 8), (7, 4)), r"at least 2 dims"),
    ],
)
def test_mismatched_shapes_raise_value_error_naming_them(shapes, match):
    q, k, v = (torch.randn(*s) for s in shapes)
    with pytest.raises(ValueError, match=match):
        attend(q, k, v)


def test_wrong_mask_shape_or_dtype_raises():
    q, k, v = qkv(t_q=5, t_k=7, d_v=4, dtype=torch.float32)
    with pytest.raises(
        ValueError,
        match=r"mask of shape \(5, 6\) does not broadcast .*\(2, 3, 5, 7\)",
    ):
        attend(q, k, v, mask=torch.ones(5, 6, dtype=torch.bool))
    with pytest.raises(
        ValueError, match="mask must be a boolean tensor.*torch.float32"
    ):
        attend(q, k, v, mask=torch.ones(5, 7))
    with pytest.raises(
        ValueError, match=r"bias of shape \(4, 5, 7\) does not broadcast"
    ):
        attend(q, k, v, bias=torch.zeros(4, 5, 7))
    with pytest.raises(
        ValueError, match="bias must be a floating-point tensor"
    ):
        attend(q, k, v, bias=torch.zeros(5, 7, dtype=torch.long))


def test_masked_softmax_hides_keys_and_zeroes_empty_rows():
    """A hidden key (by keep or by a -inf score) gets weight 0; a row with nothing left gets zeros, not NaN."""
    inf = float("-inf")
    scores = torch.tensor([[1.0, 2.0], [0.0, inf], [inf, inf], [3.0, 4.0]])
    keep = torch.tensor(
        [[True, False], [True, True], [True, True], [False, False]]
    )
    weights = masked_softmax(scores, keep)
    expected = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    assert torch.equal(weights, expected)
    torch.testing.assert_close(
        masked_softmax(scores[:1]), torch.softmax(scores[:1], dim=-1)
    )


def test_key_padding_mask_cannot_be_misread_when_batch_equals_length():
    """At B == T a (B, Tk) padding mask passed as ``mask`` is a (Tq, Tk) mask, as documented;
    passed as ``key_padding_mask`` it pads keys: the (B, 1, 1, Tk) reading, whatever B is."""
    q, k, v = qkv(b=8, h=2, t_q=8, dtype=torch.float32)
    keep = padding_mask(range(1, 9), 8)[:, 0, 0]  # (B, Tk) = (8, 8)
    out, w = attend(q, k, v, key_padding_mask=keep)
    ref, w_ref = attend(q, k, v, mask=keep[:, None, None, :])
    torch.testing.assert_close(out, ref)
    assert torch.equal(w, w_ref)
    assert float(w.masked_select(~keep[:, None, None, :]).abs().sum()) == 0.0
    as_query_mask, _ = attend(q, k, v, mask=keep)  # read as (Tq, Tk)
    assert (as_query_mask - out).abs().max() > 0.1
    both, _ = attend(q, k, v, causal=True, key_padding_mask=keep)
    ref, _ = attend(q, k, v, mask=keep[:, None, None, :] & causal_mask(8))
    torch.testing.assert_close(both, ref)


def test_a_padding_mask_passed_as_mask_is_refused_naming_key_padding_mask():
    q, k, v = qkv(b=6, h=2, t_q=8, dtype=torch.float32)
    keep = torch.ones(6, 8, dtype=torch.bool)  # (B, Tk), B != T
    with pytest.raises(
        ValueError,
        match=r"mask of shape \(6, 8\) does not broadcast .*a 2-D mask is "
        r"\(Tq, Tk\): pass a \(B, Tk\) padding mask as key_padding_mask=",
    ):
        attend(q, k, v, mask=keep)
    for bad in (keep[:, :7], keep[:5], keep.float(), keep[:, None, :]):
        with pytest.raises(
            ValueError,
            match=r"key_padding_mask must be a boolean \(B, Tk\) = \(6, 8\)",
        ):
            attend(q, k, v, key_padding_mask=bad)
    with pytest.raises(ValueError, match="key_padding_mask must be"):
        # q, k, v without a batch dim: there is no B to pad
        attend(q[0, 0], k[0, 0], v[0, 0], key_padding_mask=keep[0])
