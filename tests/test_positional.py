"""Positional encodings: hand-checked values, mathematical properties, clear errors."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from annotated.positional import (
    POSITIONAL_ENCODINGS,
    AlibiBias,
    LearnedAbsoluteEncoding,
    NoPositionalEncoding,
    RandomizedPositions,
    RotaryEncoding,
    SinusoidalEncoding,
    T5RelativeBias,
    alibi_slopes,
    apply_rope,
    make_positional,
    sinusoidal_encoding,
    t5_relative_bucket,
)

# --- sinusoidal ------------------------------------------------------------------------------


def test_sinusoidal_hand_values():
    # C = 4: frequencies 1 and 1/100 (base^(-2i/C) with i = 0, 1).
    pe = sinusoidal_encoding(torch.tensor([0, 1, 7]), 4)
    p = torch.tensor([0.0, 1.0, 7.0])[:, None]
    expected = torch.cat(
        [p.sin(), p.cos(), (p / 100).sin(), (p / 100).cos()], dim=1
    )
    torch.testing.assert_close(pe, expected)
    assert sinusoidal_encoding(torch.arange(3), 5).shape == (
        3,
        5,
    )  # odd C is trimmed


def test_sinusoidal_module_adds_encoding_and_takes_positions():
    enc = SinusoidalEncoding(8)
    x = torch.randn(2, 5, 8)
    torch.testing.assert_close(
        enc(x), x + sinusoidal_encoding(torch.arange(5), 8)
    )
    pos = torch.tensor([[3, 4, 5, 6, 7], [0, 2, 4, 6, 8]])  # (B, T)
    out = enc(x, pos)
    torch.testing.assert_close(out[1], x[1] + sinusoidal_encoding(pos[1], 8))
    with pytest.raises(ValueError, match="shape"):
        enc(x, torch.arange(4))


# --- learned ---------------------------------------------------------------------------------


def test_learned_adds_table_rows():
    enc = LearnedAbsoluteEncoding(6, 4)
    x = torch.zeros(1, 3, 4)
    torch.testing.assert_close(
        enc(x, torch.tensor([2, 3, 5])), enc.table.weight[[2, 3, 5]][None]
    )


def test_learned_refuses_to_extrapolate_unless_fallback_chosen():
    enc = LearnedAbsoluteEncoding(4, 3)
    with pytest.raises(ValueError, match="cannot extrapolate") as err:
        enc(torch.zeros(1, 5, 3))
    assert "overflow='clamp'" in str(err.value) and "max_len=4" in str(
        err.value
    )
    clamped = LearnedAbsoluteEncoding(4, 3, overflow="clamp")
    clamped.load_state_dict(enc.state_dict())
    out = clamped(torch.zeros(1, 6, 3))
    torch.testing.assert_close(out[0, 4], enc.table.weight[3])
    torch.testing.assert_close(out[0, 5], enc.table.weight[3])
    with pytest.raises(ValueError, match="overflow must be one of"):
        LearnedAbsoluteEncoding(4, 3, overflow="wrap")


# --- randomized ------------------------------------------------------------------------------


def test_randomized_training_positions_are_sorted_distinct_and_in_range():
    enc = RandomizedPositions(8, max_positions=40, seed=0).train()
    pos = enc.sample_positions(16, 10)
    assert pos.shape == (16, 10)
    assert (
        pos[:, 1:] > pos[:, :-1]
    ).all()  # strictly increasing: sorted and distinct
    assert pos.min() >= 0 and pos.max() < 40
    assert not (pos == pos[0]).all()  # each batch element draws its own
    assert (
        pos.max() >= 10
    )  # uses positions beyond the sequence length (P = 1 - C(10,10)/C(40,10)^16 ~ 1)


def test_randomized_is_seeded_and_encodes_with_inner():
    x = torch.randn(3, 6, 8)
    a = RandomizedPositions(8, max_positions=32, seed=1).train()
    b = RandomizedPositions(8, max_positions=32, seed=1).train()
    torch.testing.assert_close(a(x), b(x))
    # The documented draw: a random sorted subset per row, from a generator seeded with 1.
    g = torch.Generator().manual_seed(1)
    pos = (
        torch.rand(3, 32, generator=g).argsort(-1)[:, :6].sort(-1).values
    )  # (B, T)
    c = RandomizedPositions(
        8, max_positions=32, generator=torch.Generator().manual_seed(1)
    ).train()
    torch.testing.assert_close(c(x), x + sinusoidal_encoding(pos, 8))
    assert not torch.allclose(
        a(x), a(x)
    )  # every training step draws new positions


def test_randomized_eval_uses_standard_positions_unless_asked():
    x = torch.randn(2, 5, 8)
    enc = RandomizedPositions(8, max_positions=20, seed=0).eval()
    torch.testing.assert_close(enc(x), SinusoidalEncoding(8)(x))
    paper = RandomizedPositions(
        8, max_positions=20, seed=0, sample_in_eval=True
    ).eval()
    assert not torch.allclose(paper(x), SinusoidalEncoding(8)(x))
    with pytest.raises(ValueError, match="max_positions"):
        RandomizedPositions(8, max_positions=4).sample_positions(1, 5)


def test_randomized_factory_default_range_is_four_times_training_length():
    enc = make_positional("randomized", d_model=8, n_heads=2, max_len=10)
    assert enc.max_positions == 40 and enc.where == "embedding"


# --- RoPE ------------------------------------------------------------------------------------


def test_rope_hand_values_two_dims():
    # D = 2: one pair, θ_0 = 1, so position m rotates (1, 0) to (cos m, sin m).
    x = torch.tensor([[1.0, 0.0]]).expand(3, 2)
    out = apply_rope(x, torch.tensor([0, 1, 2]))
    torch.testing.assert_close(
        out,
        torch.tensor(
            [
                [1.0, 0.0],
                [math.cos(1), math.sin(1)],
                [math.cos(2), math.sin(2)],
            ]
        ),
    )


def test_rope_base_is_configurable():
    x = torch.randn(4, 8)
    pos = torch.arange(4)
    assert not torch.allclose(
        apply_rope(x, pos, base=10000.0), apply_rope(x, pos, base=100.0)
    )
    # pair i = 1 of D = 4 rotates by m * base^(-1/2)
    y = apply_rope(
        torch.tensor([[0.0, 0.0, 1.0, 0.0]]), torch.tensor([3]), base=100.0
    )
    torch.testing.assert_close(
        y, torch.tensor([[0.0, 0.0, math.cos(0.3), math.sin(0.3)]])
    )


@settings(max_examples=60, deadline=None)
@given(
    m=st.integers(0, 2000),
    n=st.integers(0, 2000),
    shift=st.integers(-500, 500),
    seed=st.integers(0, 2**16),
)
def test_rope_score_depends_only_on_offset(m, n, shift, seed):
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, 16, generator=g, dtype=torch.float64).unbind(0)
    m2, n2 = m + shift, n + shift
    if min(m2, n2) < 0:
        m2, n2 = (
            m - shift,
            n - shift,
        )  # keep positions valid; the offset m - n is unchanged
    score = (
        apply_rope(q[None], torch.tensor([m]))
        @ apply_rope(k[None], torch.tensor([n])).T
    )
    shifted = (
        apply_rope(q[None], torch.tensor([m2]))
        @ apply_rope(k[None], torch.tensor([n2])).T
    )
    torch.testing.assert_close(score, shifted, atol=1e-9, rtol=1e-9)


def test_rope_score_changes_with_offset():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 1, 16, generator=g).unbind(0)
    s0 = apply_rope(q, torch.tensor([5])) @ apply_rope(k, torch.tensor([5])).T
    s3 = apply_rope(q, torch.tensor([8])) @ apply_rope(k, torch.tensor([5])).T
    assert not torch.allclose(s0, s3)


def test_rope_preserves_norms_and_handles_batched_positions():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 2, 3, 5, 8, generator=g).unbind(0)  # (B, H, T, D)
    pos = torch.tensor([[0, 1, 2, 3, 4], [10, 11, 12, 13, 14]])  # (B, T)
    rq, rk = RotaryEncoding(8).rotate_qk(q, k, pos, pos)
    torch.testing.assert_close(rq.norm(dim=-1), q.norm(dim=-1))
    torch.testing.assert_close(rk[1], apply_rope(k[1], pos[1]))


def test_rope_rejects_odd_head_dim():
    with pytest.raises(ValueError, match="even"):
        apply_rope(torch.randn(2, 3, 5), torch.arange(3))
    with pytest.raises(ValueError, match="d_model // n_heads is even"):
        make_positional("rope", d_model=12, n_heads=4, max_len=8)


# --- ALiBi -----------------------------------------------------------------------------------


def test_alibi_slopes_power_of_two():
    torch.testing.assert_close(
        alibi_slopes(8), torch.tensor([2.0**-i for i in range(1, 9)])
    )


def test_alibi_slopes_twelve_heads_follow_papers_rule():
    # 8 heads: 2^-1..2^-8; then every other slope of 16 heads (2^-0.5, 2^-1.5, ...), 4 of them.
    expected = [
        2**-1,
        2**-2,
        2**-3,
        2**-4,
        2**-5,
        2**-6,
        2**-7,
        2**-8,
        2**-0.5,
        2**-1.5,
        2**-2.5,
        2**-3.5,
    ]
    torch.testing.assert_close(alibi_slopes(12), torch.tensor(expected))
    with pytest.raises(ValueError, match="positive"):
        alibi_slopes(0)


def test_alibi_bias_causal_values():
    bias = AlibiBias(2, causal=True).score_bias(
        torch.arange(4), torch.arange(4)
    )  # slopes 1/16, 1/256
    assert bias.shape == (2, 4, 4)
    assert bias[0, 3, 1].item() == pytest.approx(-2 / 16)
    assert torch.all(bias.diagonal(dim1=-2, dim2=-1) == 0)
    lower = bias[
        :, 3, :4
    ]  # query 3 looking back at keys 0..3: rises towards the diagonal
    assert torch.all(lower[:, 1:] > lower[:, :-1])


def test_alibi_bias_bidirectional_is_symmetric_and_falls_with_distance():
    bias = AlibiBias(4, causal=False).score_bias(
        torch.arange(5), torch.arange(5)
    )
    torch.testing.assert_close(bias, bias.transpose(-1, -2))
    assert torch.all(bias.diagonal(dim1=-2, dim2=-1) == 0)
    row = bias[:, 2]  # query 2: keys 0..4
    assert (
        torch.all(row[:, 0] < row[:, 1])
        and torch.all(row[:, 4] < row[:, 3])
        and torch.all(row[:, 1] < 0)
    )


def test_alibi_bias_with_cached_offset():
    # One new query at position 5 against keys 0..5: bias -slope * (5 - j).
    bias = AlibiBias(8).score_bias(torch.tensor([5]), torch.arange(6))
    assert bias.shape == (8, 1, 6)
    torch.testing.assert_close(
        bias[0, 0], -0.5 * torch.tensor([5.0, 4, 3, 2, 1, 0])
    )


# --- T5 --------------------------------------------------------------------------------------


def test_t5_buckets_bidirectional_hand_checked():
    # 32 buckets -> 16 per direction; distances 0..7 exact, then log-spaced up to 128.
    rel = torch.tensor(
        [0, -1, -7, 1, 7, -8, -20, -50, -100, -128, -1000, 20, 1000]
    )
    # -20: 8 + floor(log(20/8) / log(128/8) * 8) = 8 + floor(2.64) = 10; -50: 8 + floor(5.29) = 13;
    # -100: 8 + floor(7.29) = 15; keys after the query get +16.
    expected = [0, 1, 7, 17, 23, 8, 10, 13, 15, 15, 15, 26, 31]
    assert t5_relative_bucket(rel, bidirectional=True).tolist() == expected


def test_t5_buckets_causal_hand_checked():
    # 32 buckets all for the past; distances 0..15 exact; future keys -> 0.
    rel = torch.tensor([3, 1, 0, -1, -15, -16, -20, -100, -128, -1000])
    # -20: 16 + floor(log(20/16) / log(128/16) * 16) = 16 + floor(1.72) = 17; -100: 16 + floor(14.1) = 30.
    expected = [0, 0, 0, 1, 15, 16, 17, 30, 31, 31]
    assert t5_relative_bucket(rel, bidirectional=False).tolist() == expected


def _t5_bucket_scalar(
    rel: int,
    bidirectional: bool,
    num_buckets: int = 32,
    max_distance: int = 128,
) -> int:
    """Scalar transcription of Mesh TensorFlow's _relative_position_bucket, in float64."""
    ret, n = 0, -rel  # mesh-tf uses n = query - key
    if bidirectional:
        num_buckets //= 2
        ret += num_buckets if n < 0 else 0
        n = abs(n)
    else:
        n = max(n, 0)
    max_exact = num_buckets // 2
    if n < max_exact:
        return ret + n
    val = max_exact + int(
        math.log(n / max_exact)
        / math.log(max_distance / max_exact)
        * (num_buckets - max_exact)
    )
    return ret + min(val, num_buckets - 1)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_t5_buckets_match_scalar_reference(bidirectional):
    # Exact log boundaries (e.g. distance 16 or 32) can round differently in float32 vs float64; skip them.
    rel = [r for r in range(-300, 301) if abs(r) not in (16, 32, 64, 128)]
    got = t5_relative_bucket(
        torch.tensor(rel), bidirectional=bidirectional
    ).tolist()
    assert got == [_t5_bucket_scalar(r, bidirectional) for r in rel]


def test_t5_bias_looks_up_learned_table_per_head():
    enc = T5RelativeBias(3, bidirectional=False)
    bias = enc.score_bias(torch.arange(4), torch.arange(4))
    assert bias.shape == (3, 4, 4)
    buckets = t5_relative_bucket(
        torch.arange(4)[None, :] - torch.arange(4)[:, None],
        bidirectional=False,
    )
    torch.testing.assert_close(bias[2], enc.bucket_bias.weight[buckets, 2])
    assert make_positional(
        "t5", d_model=8, n_heads=2, max_len=8, causal=False
    ).bidirectional


# --- registry --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, where",
    [
        ("nope", "none"),
        ("sinusoidal", "embedding"),
        ("learned", "embedding"),
        ("randomized", "embedding"),
        ("rope", "qk"),
        ("alibi", "score"),
        ("t5", "score"),
        ("abacus", "embedding"),
        ("coupled_bias", "score"),
        ("fire", "score"),
    ],
)
def test_registry_builds_each_encoding(name, where):
    assert name in POSITIONAL_ENCODINGS
    enc = make_positional(name, d_model=16, n_heads=4, max_len=8)
    assert enc.where == where
    x = torch.randn(2, 5, 16)
    q = torch.randn(2, 4, 5, 4)
    pos = torch.arange(5)
    # Hooks that an encoding does not act at are identities.
    if where != "embedding":
        assert enc(x) is x
    if where != "qk":
        assert enc.rotate_qk(q, q, pos, pos)[0] is q
    if where != "score":
        assert enc.score_bias(pos, pos) is None
    else:
        assert enc.score_bias(pos, pos).shape == (4, 5, 5)


def test_unknown_encoding_name_lists_valid_names():
    with pytest.raises(
        ValueError, match="unknown positional encoding 'xpos'.*alibi.*rope"
    ):
        make_positional("xpos", d_model=8, n_heads=2, max_len=8)


def test_randomized_table_must_hold_every_drawn_position():
    with pytest.raises(ValueError, match="set max_len ≥ 64"):
        RandomizedPositions(8, 64, inner=LearnedAbsoluteEncoding(32, 8))
    assert RandomizedPositions(8, 64).position_range == 64
    assert LearnedAbsoluteEncoding(32, 8).position_range == 0


def test_nope_is_identity():
    x = torch.randn(1, 3, 4)
    assert NoPositionalEncoding()(x) is x
