"""mask_mod / score_mod: every mod equals its materialised tensor, and every kernel honours the mods
exactly as the reference does — for every positional encoding, values and gradients."""

import pytest
import torch
import torch.nn.functional as F

from annotated.attention.attend import attend
from annotated.attention.masks import (
    and_masks,
    causal,
    global_tokens,
    materialize_mask,
    materialize_score,
    or_masks,
    padding,
    prefix,
    sliding_window,
)
from annotated.kernels import (
    ATTENTION_KERNELS,
    blockwise_attention,
    local_attention,
    sdpa_attention,
)
from annotated.kernels.flex import flex_available
from annotated.positional import (
    AlibiBias,
    T5RelativeBias,
    alibi_slopes,
    make_positional,
    t5_relative_bucket,
)

F64 = dict(rtol=1e-10, atol=1e-10)


# --- each predicate against a tensor written by hand --------------------------------------------


def test_predicates_equal_hand_written_masks():
    i, j = torch.arange(6)[:, None], torch.arange(6)[None, :]
    assert torch.equal(materialize_mask(causal, 6), j <= i)
    assert torch.equal(
        materialize_mask(sliding_window(3), 6), (j <= i) & (j > i - 3)
    )
    assert torch.equal(
        materialize_mask(sliding_window(2, causal=False), 6),
        (i - j).abs() <= 1,
    )
    assert torch.equal(materialize_mask(prefix(2), 6), (j < 2) | (j <= i))
    g = torch.tensor([0, 4])
    assert torch.equal(
        materialize_mask(global_tokens([4, 0]), 6),
        torch.isin(i, g) | torch.isin(j, g),
    )
    pad = materialize_mask(padding([3, 5]), 1, 6, batch=2)
    assert pad.shape == (2, 1, 1, 6) and pad[:, 0, 0].int().tolist() == [
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 1, 0],
    ]
    both = materialize_mask(
        and_masks(causal, padding([3, 5])), 6, batch=2
    )  # (2, 1, 6, 6)
    assert torch.equal(both, (j <= i) & pad)
    either = materialize_mask(
        or_masks(sliding_window(1), global_tokens([0])), 6
    )
    assert torch.equal(either, (i == j) | (i == 0) | (j == 0))


def test_queries_are_the_last_keys():
    """With a cache (Tq < Tk) query row r sits at position Tk - Tq + r, for every predicate."""
    full = materialize_mask(sliding_window(3), 7)
    assert torch.equal(materialize_mask(sliding_window(3), 2, 7), full[-2:])
    assert torch.equal(
        materialize_mask(causal, 3, 7), materialize_mask(causal, 7)[-3:]
    )


def test_alibi_score_mod_equals_the_formula():
    """score(i, j) += -slope_h (i - j) causally and -slope_h |i - j| bidirectionally, slopes 2^-1 … 2^-8."""
    torch.testing.assert_close(
        alibi_slopes(8), 2.0 ** -torch.arange(1, 9, dtype=torch.float32)
    )
    pos = torch.arange(7)
    distance = (pos[:, None] - pos[None, :]).float()  # i - j
    slopes = alibi_slopes(4)[:, None, None]
    for causal_form, d in ((True, distance), (False, distance.abs())):
        enc = AlibiBias(4, causal=causal_form)
        torch.testing.assert_close(
            materialize_score(enc.score_mod(pos, pos), 7, heads=4)[0],
            -slopes * d,
        )
        s = torch.randn(
            2, 4, 7, 7, generator=torch.Generator().manual_seed(0)
        )
        mod = enc.score_mod(pos, pos)
        grid = (
            torch.arange(2).view(2, 1, 1, 1),
            torch.arange(4).view(1, 4, 1, 1),
            pos[:, None],
            pos[None, :],
        )
        torch.testing.assert_close(mod(s, *grid), s - slopes * d)


def test_t5_score_mod_equals_a_table_lookup():
    enc = T5RelativeBias(
        3, bidirectional=True, num_buckets=8, max_distance=16
    )
    q_pos, k_pos = torch.tensor([10, 11, 12]), torch.arange(15)
    buckets = t5_relative_bucket(
        k_pos[None, :] - q_pos[:, None], True, 8, 16
    )  # (Tq, Tk)
    expected = enc.bucket_bias.weight[buckets].permute(2, 0, 1)  # (H, Tq, Tk)
    torch.testing.assert_close(enc.score_bias(q_pos, k_pos), expected)


def test_score_mods_read_per_sequence_positions():
    pos = torch.stack(
        [torch.arange(5), torch.tensor([0, 3, 4, 9, 20])]
    )  # (B, T)
    enc = AlibiBias(2)
    bias = enc.score_bias(pos, pos)  # (B, H, T, T)
    for b in range(2):
        torch.testing.assert_close(bias[b], enc.score_bias(pos[b], pos[b]))


# --- every kernel equals the reference, with every encoding ---------------------------------------

ENCODINGS = [
    "nope",
    "sinusoidal",
    "learned",
    "rope",
    "alibi",
    "t5",
    "randomized",
]


def _inputs(encoding, t=21, causal_form=True, seed=0):
    """q, k, v (B, H, T, D) after the encoding's q/k rotation, and its score_mod (or None)."""
    g = torch.Generator().manual_seed(seed)
    b, h, d = 2, 4, 8
    enc = make_positional(
        encoding, d_model=h * d, n_heads=h, max_len=t, causal=causal_form
    ).double()
    with torch.no_grad():
        for p in enc.parameters():
            p.copy_(
                torch.randn(p.shape, generator=g, dtype=p.dtype)
            )  # biases large enough to matter
    enc.eval()  # randomized positions: the plain ones, the same in every run
    q, k, v = (
        torch.randn(
            b, h, t, d, generator=g, dtype=torch.float64, requires_grad=True
        )
        for _ in range(3)
    )
    pos = torch.arange(t)

    def embed(
        x,
    ):  # an embedding-level encoding, added to q and k as a model adds it to x
        return (
            enc(x.transpose(1, 2).reshape(b, t, h * d))
            .view(b, t, h, d)
            .transpose(1, 2)
        )

    qr, kr = enc.rotate_qk(embed(q), embed(k), pos, pos)
    return (q, k, v), (qr, kr, v), enc, enc.score_mod(pos, pos)


def _value_and_grads(fn, leaves, inputs, enc):
    out, _ = fn(*inputs)
    grads = torch.autograd.grad((out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum(),
                                [*leaves, *enc.parameters()])  # fmt: skip
    return out.detach(), grads


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("causal_form", [True, False])
def test_reference_sdpa_blockwise_local_agree(encoding, causal_form):
    """attend = SDPA path = block-wise = local (with its window given to the others as a mask_mod)."""
    window = 5
    band = sliding_window(window, causal=causal_form)
    runs = {
        "reference": lambda q, k, v, mod: attend(
            q, k, v, causal=causal_form, mask_mod=band, score_mod=mod
        ),
        "sdpa": lambda q, k, v, mod: sdpa_attention(
            q, k, v, causal=causal_form, mask_mod=band, score_mod=mod
        ),
        "blockwise": lambda q, k, v, mod: blockwise_attention(
            q,
            k,
            v,
            causal=causal_form,
            mask_mod=band,
            score_mod=mod,
            block_size=4,
            query_block_size=3,
        ),
        "local": lambda q, k, v, mod: local_attention(
            q,
            k,
            v,
            window=window,
            causal=causal_form,
            score_mod=mod,
            chunk_size=4,
        ),
    }
    results = {}
    for name, run in runs.items():
        leaves, inputs, enc, mod = _inputs(encoding, causal_form=causal_form)
        results[name] = _value_and_grads(
            lambda *a, run=run, mod=mod: run(*a, mod), leaves, inputs, enc
        )
    ref_out, ref_grads = results.pop("reference")
    for name, (out, grads) in results.items():
        torch.testing.assert_close(out, ref_out, **F64, msg=f"{name} values")
        for g, r in zip(grads, ref_grads, strict=True):
            torch.testing.assert_close(g, r, **F64, msg=f"{name} gradients")


@pytest.mark.parametrize("encoding", ["alibi", "t5"])
def test_blockwise_with_dense_mods_equals_dense_attention(encoding):
    """No window: block-wise attention with a causal score_mod equals attend with the materialised bias."""
    leaves, (q, k, v), enc, mod = _inputs(encoding, t=33)
    bias = enc.score_bias(torch.arange(33), torch.arange(33))
    ref, _ = attend(q, k, v, bias=bias, causal=True)
    out, _ = blockwise_attention(
        q, k, v, causal=True, score_mod=mod, block_size=8
    )
    torch.testing.assert_close(out, ref, **F64)


def test_local_global_tokens_with_a_score_mod():
    leaves, (q, k, v), enc, mod = _inputs("alibi", t=17)
    for causal_form in (True, False):
        band = or_masks(
            sliding_window(3, causal=causal_form), global_tokens([0, 9])
        )
        ref, _ = attend(
            q, k, v, causal=causal_form, mask_mod=band, score_mod=mod
        )
        out, _ = local_attention(
            q,
            k,
            v,
            window=3,
            causal=causal_form,
            score_mod=mod,
            global_positions=[0, 9],
        )
        torch.testing.assert_close(out, ref, **F64)


def test_every_kernel_takes_or_refuses_a_score_mod_as_its_registry_says():
    leaves, (q, k, v), enc, mod = _inputs("alibi", t=12)
    settings = {"window": 12, "top_k": 12}
    ref, _ = attend(q, k, v, causal=True, score_mod=mod)
    for name, kernel in ATTENTION_KERNELS.items():
        if "cpu" not in kernel.devices:
            continue
        kw = {p: settings[p] for p in kernel.required}
        if kernel.score_mods:
            out, _ = kernel.fn(q, k, v, causal=True, score_mod=mod, **kw)
            torch.testing.assert_close(
                out, ref, **F64, msg=name
            )  # window/top_k cover every key
        else:
            with pytest.raises(ValueError, match="never forms"):
                kernel.fn(q, k, v, causal=True, score_mod=mod, **kw)


@pytest.mark.skipif(
    not flex_available("cuda"), reason="flex_attention needs a CUDA GPU"
)
@pytest.mark.parametrize("encoding", ["alibi", "t5", "rope"])
def test_flex_attention_on_cuda_equals_the_reference(encoding):
    leaves, inputs, enc, mod = _inputs(encoding, t=128)
    enc = enc.cuda()
    q, k, v = (x.detach().float().cuda() for x in inputs)
    pos = torch.arange(128, device="cuda")
    mod = enc.float().score_mod(pos, pos)
    band = sliding_window(32)
    ref, _ = attend(q, k, v, causal=True, mask_mod=band, score_mod=mod)
    out, _ = ATTENTION_KERNELS["flex"].fn(
        q, k, v, causal=True, mask_mod=band, score_mod=mod
    )
    torch.testing.assert_close(out, ref, rtol=2e-3, atol=2e-3)


def test_sdpa_path_matches_torch_with_the_materialised_bias():
    leaves, (q, k, v), enc, mod = _inputs("t5", t=9)
    bias = enc.score_bias(torch.arange(9), torch.arange(9))
    out, _ = sdpa_attention(q, k, v, score_mod=mod, causal=True)
    keep = materialize_mask(causal, 9)
    ref = F.scaled_dot_product_attention(
        q, k, v, attn_mask=bias.masked_fill(~keep, float("-inf"))
    )
    torch.testing.assert_close(out, ref, **F64)
