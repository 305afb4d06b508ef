# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% tags=["remove-cell"]
# Set-up: makes this notebook run anywhere, Colab included (the book hides
# this cell).
import os

try:
    import annotated  # noqa: F401
except ImportError:
    # not installed here (e.g. Colab): install the library from the repository
    # ANNOTATED_PIP_SPEC, when set, installs another copy instead
    # (scripts/check_download.py tests a local one)
    pip_spec = os.environ.get(
        "ANNOTATED_PIP_SPEC",
        "annotated @ "
        "git+https://github.com/annotated-attention/annotated-attention",
    )
    # %pip install -q "{pip_spec}"
    pass
try:
    from google.colab import output  # type: ignore

    output.enable_custom_widget_manager()  # Colab needs this for ipywidgets
except ImportError:
    pass

# %% [markdown]
# # Week 3 — Positional encodings
#
# **Learning goals.** By the end of this chapter you can
#
# 1. show that self-attention on its own ignores word order (it is
#    *permutation-equivariant*);
# 2. name the three places where an encoding can put order back — the
#    embeddings, the queries and keys, or the scores — and the encodings that
#    act at each;
# 3. write three of them yourself — a sinusoidal table, RoPE and ALiBi — in
#    a few lines of torch each, and read the pictures of sinusoidal,
#    learned, rotary (RoPE), ALiBi and T5 encodings;
# 4. measure how each one copes with sequences longer than those seen in
#    training.
#
# Everything here is in `annotated/positional/` (one file per family); the
# small language models come from `annotated/models/`.

# %%
import math
import textwrap
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from annotated.analysis.expect import (
    expect,
    expect_above,
    expect_below,
    expect_greater,
    expect_seeds_greater,
)
from annotated.analysis.intervals import t_interval
from annotated.attention.attend import attend
from annotated.attention.multihead import MultiHeadAttention
from annotated.figures.palette import encoding_color
from annotated.figures.position_diagrams import positional_diagram
from annotated.figures.showcode import show_source
from annotated.figures.viz import figure_image, signed_heatmap
from annotated.models.config import ModelConfig
from annotated.models.transformer import build_model
from annotated.positional import (
    POSITIONAL_ENCODINGS,
    AlibiBias,
    RotaryEncoding,
    T5RelativeBias,
    alibi_slopes,
    apply_rope,
    make_positional,
    sinusoidal_encoding,
    t5_relative_bucket,
)
from annotated.tasks import get_task

torch.manual_seed(0)
# tiny models: one thread is faster than several, and makes the numbers
# independent of the core count (not of the CPU's vector instructions)
torch.set_num_threads(1)

# %% [markdown]
# ## 1. Attention alone does not know the order
#
# Self-attention compares every token with every other through dot products,
# then averages. Nothing in $\mathrm{softmax}(QK^\top/\sqrt{d})V$ refers to
# *where* a token sits: shuffle the input rows with a permutation $P$ and the
# output rows are shuffled the same way,
#
# $$
# \mathrm{SelfAttn}(PX) = P\,\mathrm{SelfAttn}(X).
# $$
#
# So "dog bites man" and "man bites dog" give the same set of outputs. We
# check it on a random sequence — and then check whether a causal mask, and
# each of the six encodings this chapter trains, breaks the symmetry.

# %%
g = torch.Generator().manual_seed(0)
x = torch.randn(1, 8, 32, generator=g)  # (B, T, C)
perm = torch.randperm(8, generator=g)


def equivariance_gap(attention, add_positions=None, causal=False) -> float:
    """max |f(x[perm]) - f(x)[perm]| for f = (optional embedding encoding) +
    attention."""

    def f(inp):
        inp = add_positions(inp) if add_positions is not None else inp
        return attention(inp, causal=causal)[0]

    return (f(x[:, perm]) - f(x)[:, perm]).abs().max().item()


torch.manual_seed(0)
plain = MultiHeadAttention(32, 4)
cases = {
    "no positions, no mask": (plain, None, False),
    "no positions, causal mask (NoPE decoder)": (plain, None, True),
}
for name in ("sinusoidal", "learned", "randomized", "rope", "alibi", "t5"):
    pe = make_positional(
        name, d_model=32, n_heads=4, max_len=8, causal=False
    ).eval()  # eval: plain 0..T-1
    if pe.where == "embedding":  # added to x before the layer
        cases[f"{name}, where = {pe.where}"] = (plain, pe, False)
    else:  # inside the layer: rotating q and k, or a score_mod
        cases[f"{name}, where = {pe.where}"] = (
            MultiHeadAttention(32, 4, positional=pe),
            None,
            False,
        )
rows = [f"{'positions, where they act':<42} permutation-equivariant?"]
with torch.no_grad():
    for name, (attention, add_positions, causal) in cases.items():
        gap = equivariance_gap(attention, add_positions, causal)
        rows.append(f"{name:<42} {gap < 1e-5}")
print(
    "\n".join(rows)
    + "\n(equivariant: the gap max |f(x[perm]) - f(x)[perm]| is below 1e-5)"
)

# %% [markdown]
# Without positions the gap is zero up to rounding: the layer is blind to
# order. Each of the six encodings breaks the symmetry, whichever place it
# acts at — and so does a causal mask, because "who may see whom" already
# depends on order. That is why a decoder with **no** positional encoding
# (NoPE) can still learn about positions {cite:p}`kazemnejad2023nope`; an
# encoder cannot.
#
# ## 2. Three places to put the order back
#
# Each encoding in the library declares where it acts, and
# `MultiHeadAttention` and the models apply it there — no copied `forward` per
# encoding:

# %%
for name, cls in POSITIONAL_ENCODINGS.items():
    print(f"{name:>11}: where = {cls.where!r:<12} ({cls.__name__})")

# %% [markdown]
# * **embedding** — a vector $p_t$ is added to the token embedding at position
#   $t$: fixed sinusoids {cite:p}`vaswani2017attention`, a learned table
#   (GPT-2), or sinusoids of randomly drawn, sorted positions during training
#   {cite:p}`ruoss2023randomized`.
# * **qk** — RoPE {cite:p}`su2021roformer` rotates each query and key by an
#   angle proportional to its position, so their dot product depends on the
#   *difference* of positions.
# * **score** — a bias $b_h(i - j)$ is added to the attention score of query
#   $i$ and key $j$ in head $h$: a fixed linear penalty in ALiBi
#   {cite:p}`press2022alibi`, a learned scalar per distance bucket in T5
#   {cite:p}`raffel2020t5`, descendants of the relative positions of
#   {cite:t}`shaw2018relative`.
# * **none** — NoPE: only the causal mask.
#
# In one picture, the place where each acts in a layer:

# %% tags=["hide-input"]
figure_image(positional_diagram())

# %% [markdown]
# ## 3. Three encodings, written by hand
#
# One encoding for each place: a table *added* to the embeddings
# (sinusoids), a *rotation* of the queries and keys (RoPE), a *bias* on the
# scores (ALiBi). For each we first write it ourselves — a few lines of
# torch, nothing from the library — check that it gives the library's
# numbers on random inputs, and then draw what it does. T5's learned bias
# closes the section.
#
# ### Add a table: sinusoids
#
# $\mathrm{PE}[t, 2i] = \sin(t/10000^{2i/C})$ and
# $\mathrm{PE}[t, 2i+1] = \cos(t/10000^{2i/C})$: each pair of dimensions is a
# clock turning at its own speed, from one turn every $2\pi$ positions down to
# one every $2\pi \cdot 10000$. First the speeds, one angle per position for
# each pair of dimensions:

# %% tags=["from-scratch"]
C = 8  # model dim, even
freq = 10000 ** (-torch.arange(0, C, 2) / C)  # (C/2,): 1 / 10000^(2i/C)
print("radians per position, pair 0 to 3:", freq.numpy().round(4))

# %% [markdown]
# Then the table: the angle $t \cdot f_i$ of every position and pair, its
# sine in the even dimension and its cosine in the odd one. The encoding is
# this table added to the token embeddings — the same rows for every
# sequence of the batch:


# %% tags=["from-scratch"]
def sinusoids(T: int, C: int) -> torch.Tensor:
    """(T, C): PE[t, 2i] = sin(t f_i), PE[t, 2i+1] = cos(t f_i)."""
    freq = 10000 ** (-torch.arange(0, C, 2) / C)  # (C/2,)
    angle = torch.arange(T)[:, None] * freq  # (T, C/2): t · f_i
    pe = torch.zeros(T, C)
    pe[:, 0::2] = angle.sin()  # even dims: sine
    pe[:, 1::2] = angle.cos()  # odd dims: cosine of the same angle
    return pe


tokens = torch.randn(2, 10, C)  # (B, T, C): token embeddings
with_positions = tokens + sinusoids(10, C)  # (B, T, C)
print("rows 0 to 2 of the table:\n", sinusoids(3, C).numpy().round(3))

# %% [markdown]
# Position 0 is $(0, 1, 0, 1, \dots)$: every clock at its start. The
# library computes the same table, and its `SinusoidalEncoding` adds it to the
# embeddings as we did:

# %%
torch.testing.assert_close(
    sinusoids(64, 32), sinusoidal_encoding(torch.arange(64), 32)
)
library_pe = make_positional("sinusoidal", d_model=C, n_heads=2, max_len=10)
torch.testing.assert_close(with_positions, library_pe(tokens))
print(
    "sinusoids(64, 32) equals sinusoidal_encoding:",
    torch.allclose(
        sinusoids(64, 32), sinusoidal_encoding(torch.arange(64), 32)
    ),
)
print(
    "tokens + sinusoids equals SinusoidalEncoding(tokens):",
    torch.allclose(with_positions, library_pe(tokens)),
)

# %% [markdown]
# Ours uses the library's layout, sine and cosine of each pair side by side
# (interleaved); some code puts all the sines first, which is the same table
# with its columns permuted. The library's version adds positions given as a
# tensor rather than always $0 \dots T-1$ (one row per sequence if need be:
# the randomized positions of §4 use that), an odd $C$, the base as an
# argument, and a module that declares where it acts (`where =
# "embedding"`), so the models add it for us.
#
# The picture: left, the table for 64 positions and $C = 64$; right, the dot
# product between the encodings of two positions, which depends only on how
# far apart they are.

# %%
positions = torch.arange(64)
pe = sinusoidal_encoding(positions, 64)  # (T, C)
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
signed_heatmap(
    pe,
    axes[0],
    title="sinusoidal encoding PE[t, :]",
    xlabel="dimension",
    ylabel="position t",
)
signed_heatmap(
    pe @ pe.T,
    axes[1],
    title="PE[m] · PE[n]",
    xlabel="position n",
    ylabel="position m",
)
fig.tight_layout()
plt.show()
near_diagonals = [
    (pe[k:] * pe[: 64 - k]).sum(-1) for k in (1, 10)
]  # PE[m]·PE[m+k] for every m
for k, values in zip((1, 10), near_diagonals):
    print(
        f"PE[m]·PE[m+{k}] = {values.mean():.3f} for every m (spread < 1e-4: "
        f"{(values.max() - values.min()) < 1e-4})"
    )

# %% [markdown]
# ### Rotate q and k: RoPE
#
# RoPE rotates dimension pair $i$ of a query at position $m$ by the angle
# $m\theta_i$ (and of a key at position $n$ by $n\theta_i$), with
# $\theta_i = 10000^{-2i/D}$. A rotation preserves lengths, and
# $\langle R_{m\theta} q, R_{n\theta} k\rangle =
# \langle q, R_{(n-m)\theta} k\rangle$:
# the score sees only the offset.
#
# In code: take the last dimension in pairs $(a, b) = (x_{2i}, x_{2i+1})$
# and turn each pair at position $m$ by $\varphi = m\theta_i$, into
# $(a\cos\varphi - b\sin\varphi,\; a\sin\varphi + b\cos\varphi)$:


# %% tags=["from-scratch"]
def rope(x: torch.Tensor) -> torch.Tensor:
    """Turn pair (x[2i], x[2i+1]) at position m by m θ_i; x (..., T, D)."""
    T, D = x.shape[-2:]
    theta = 10000 ** (-torch.arange(0, D, 2, dtype=x.dtype) / D)  # (D/2,)
    angle = torch.arange(T, dtype=x.dtype)[:, None] * theta  # (T, D/2)
    a, b = x[..., 0::2], x[..., 1::2]  # (..., T, D/2) each
    cos, sin = angle.cos(), angle.sin()
    turned = torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1)
    return turned.flatten(-2)  # (..., T, D): each pair back in its place


# %% [markdown]
# Now the claim. Place *one* query and *one* key at every position, and
# compare the scores of pairs of positions that are the same distance apart:

# %% tags=["from-scratch"]
gen = torch.Generator().manual_seed(0)
one_q, one_k = torch.randn(2, 8, generator=gen, dtype=torch.float64)
score = rope(one_q.expand(64, 8)) @ rope(one_k.expand(64, 8)).T  # [m, n]
for m_, n_ in ((5, 2), (20, 17), (60, 57), (9, 2)):
    print(f"m = {m_:>2}, n = {n_:>2}, m - n = {m_ - n_}: {score[m_, n_]:.4f}")
diagonals = [score.diagonal(d) for d in range(-63, 64)]  # each: one m - n
print(
    "every score with the same m - n equal:",
    all(torch.allclose(d, d[0].expand_as(d)) for d in diagonals),
)
print(
    "lengths kept:",
    torch.allclose(rope(one_q.expand(64, 8)).norm(dim=-1), one_q.norm()),
)

# %% [markdown]
# The same offset gives the same score wherever the pair sits; another
# offset gives another score. Our `rope` gives the library's `apply_rope`
# numbers, and its `RotaryEncoding` turns queries and keys the same way:

# %%
gen = torch.Generator().manual_seed(2)
q4, k4 = torch.randn(2, 2, 4, 16, 8, generator=gen)  # (B, H, T, D) each
pos16 = torch.arange(16)
torch.testing.assert_close(rope(q4), apply_rope(q4, pos16))
turned_q, turned_k = RotaryEncoding(head_dim=8).rotate_qk(
    q4, k4, pos16, pos16
)
torch.testing.assert_close((rope(q4), rope(k4)), (turned_q, turned_k))
print(
    "rope(x) equals apply_rope(x, positions):",
    torch.allclose(rope(q4), apply_rope(q4, pos16)),
)
print(
    "rope turns q and k as RotaryEncoding.rotate_qk does:",
    torch.allclose(rope(k4), turned_k),
)

# %% [markdown]
# Ours pairs adjacent dimensions $(x_{2i}, x_{2i+1})$, as the library and
# the RoFormer paper do; Hugging Face's Llama pairs dimension $i$ with
# $i + D/2$ instead, the same rotation with the dimensions permuted. The
# library's version adds positions given as a tensor (the queries of a
# key-value cache start after the cached keys; randomized positions differ
# per sequence), the base as an argument, arithmetic in at least float32
# whatever the input, and a clear error for an odd head dimension.
# `RotaryEncoding` wraps it as the `rotate_qk` hook that every attention layer
# calls. The full listing, folded:

# %% tags=["hide-output"]
show_source(apply_rope)

# %% [markdown]
# We take *one* query vector and *one* key vector, place them at every pair of
# positions $m, n \in [0, 64)$, and plot all 4096 scores against $m - n$.

# %%
g = torch.Generator().manual_seed(1)
q = torch.randn(64, generator=g, dtype=torch.float64)  # one head, D = 64
k = torch.randn(64, generator=g, dtype=torch.float64)
m = torch.arange(64)
rq = apply_rope(q.expand(64, 64), m)  # (T, D): q at every position
rk = apply_rope(k.expand(64, 64), m)  # (T, D): k at every position
scores = rq @ rk.T  # (m, n)
offset = (m[:, None] - m[None, :]).flatten()  # m - n
spread = max(
    scores.flatten()[offset == d].max() - scores.flatten()[offset == d].min()
    for d in range(-63, 64)
)
print(
    "largest spread among scores with the same m - n < 1e-10: "
    f"{spread.item() < 1e-10}"
)
print(
    "norms preserved:", torch.allclose(rq.norm(dim=-1), q.norm().expand(64))
)

fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
signed_heatmap(
    scores,
    axes[0],
    title="RoPE score ⟨rope(q, m), rope(k, n)⟩",
    xlabel="key position n",
    ylabel="query position m",
)
axes[1].plot(
    offset, scores.flatten(), ".", ms=3, color=encoding_color("rope")
)
axes[1].set_xlabel("m − n")
axes[1].set_ylabel("score")
axes[1].set_title("all 4096 scores against m − n: one curve")
fig.tight_layout()
plt.show()

# %% [markdown]
# The heatmap is constant along every diagonal, and the 4096 points fall on a
# single curve: the scores with equal $m-n$ agree to within $10^{-10}$
# (float64 rounding). Note what the curve is *not*: it is not monotone in the
# distance. Whether a query prefers near or far keys is up to the learned $q$
# and $k$.
#
# ### Bias the scores: ALiBi
#
# ALiBi adds $-s_h\,(i - j)$ to the score of query $i$ and key $j \le i$: a
# straight line with a fixed slope $s_h$ per head, the geometric sequence
# $2^{-8/H}, 2^{-16/H}, \dots, 2^{-8}$. A steep head penalises distant keys
# strongly, a shallow one hardly at all, so shallow heads can look far. There
# are no parameters. First the slopes and the bias of every head, query and
# key:

# %% tags=["from-scratch"]
H, T = 8, 5
slopes_8 = 2 ** (-8 * torch.arange(1, H + 1) / H)  # (H,): 2^-1 ... 2^-8
i = torch.arange(T)[:, None]  # query positions (T, 1)
j = torch.arange(T)[None, :]  # key positions (1, T)
bias_8 = slopes_8[:, None, None] * (j - i)  # (H, T, T): -s_h (i - j)
print("slopes:", slopes_8.numpy().round(4))
print("head 0, rows = queries, keys j <= i:")
print(bias_8[0].masked_fill(j > i, float("nan")).numpy())

# %% [markdown]
# Then attention with the bias: the scores of chapter 1, plus the bias,
# masked causally. Above the diagonal ($j > i$) the same formula gives a
# positive bias, but the mask hides those keys anyway:


# %% tags=["from-scratch"]
def alibi_attention(q, k, v):
    """Causal attention with ALiBi; q, k, v (B, H, T, D)."""
    H, T, D = q.shape[-3:]
    slopes = 2 ** (-8 * torch.arange(1, H + 1) / H)  # (H,)
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    bias = slopes[:, None, None] * (j - i)  # (H, T, T): -s_h (i - j)
    scores = q @ k.transpose(-2, -1) / math.sqrt(D) + bias  # (B, H, T, T)
    scores = scores.masked_fill(j > i, float("-inf"))  # no future keys
    return scores.softmax(-1) @ v  # (B, H, T, D)


# %% [markdown]
# The library's slopes, its bias and attention with its `score_mod` give the
# same numbers:

# %%
gen = torch.Generator().manual_seed(3)
q8, k8, v8 = torch.randn(3, 2, 8, 12, 16, generator=gen)  # (B, H, T, D)
pos12 = torch.arange(12)
library_alibi = AlibiBias(8)
library_out, _ = attend(
    q8, k8, v8, causal=True, score_mod=library_alibi.score_mod(pos12, pos12)
)
torch.testing.assert_close(slopes_8, alibi_slopes(8))
torch.testing.assert_close(
    bias_8, library_alibi.score_bias(torch.arange(T), torch.arange(T))
)
torch.testing.assert_close(alibi_attention(q8, k8, v8), library_out)
print("slopes equal alibi_slopes(8):", torch.equal(slopes_8, alibi_slopes(8)))
print(
    "alibi_attention equals attention with AlibiBias.score_mod:",
    torch.allclose(alibi_attention(q8, k8, v8), library_out, atol=1e-6),
)

# %% [markdown]
# Ours follows the library's convention: head 0 has the steepest slope
# $2^{-8/H}$, and the bias is $-s_h(i - j)$ with $i$ the query's position
# and $j$ the key's, 0 on the diagonal (the paper's code adds $s_h\,j$
# instead, which differs by $s_h\,i$ in each row: softmax does not see
# that). The library's version adds the paper's rule for a head count that
# is not a power of two (an exercise below), a symmetric form
# $-s_h\,|i - j|$ for encoders, and positions read from tensors. Above all
# it reaches attention as a `score_mod` (chapter 1's hook): a function of
# one score and its indices, so a tiled kernel can evaluate it one tile at
# a time and never builds the $(H, T, T)$ bias (chapter 7). `score_bias`
# evaluates the same function on every (query, key) for the pictures below.
# The listing, folded:

# %% tags=["hide-output"]
show_source(AlibiBias.score_mod)

# %%
slopes = alibi_slopes(8)
print(
    "slopes for 8 heads:",
    ", ".join(f"2^-{-math.log2(s):.0f}" for s in slopes.tolist()),
)
alibi = make_positional("alibi", d_model=64, n_heads=8, max_len=16)
bias = alibi.score_bias(torch.arange(16), torch.arange(16))  # (H, Tq, Tk)
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
for ax, h in zip(axes[:2], (0, 7)):
    signed_heatmap(
        bias[h].masked_fill(
            ~torch.ones(16, 16, dtype=torch.bool).tril(), float("nan")
        ),
        ax,
        title=f"head {h}: slope {slopes[h]:.4f}",
        xlabel="key j",
        ylabel="query i",
        symmetric=False,
        cmap="viridis",
    )
distance = torch.arange(16)
for h in range(8):  # ALiBi's green, darker for steeper heads
    axes[2].plot(
        distance,
        -slopes[h] * distance,
        color=plt.cm.Greens(1 - h / 10),
        label=f"head {h}",
    )
axes[2].set_xlabel("distance i − j")
axes[2].set_ylabel("bias added to the score")
axes[2].set_title("ALiBi bias against distance")
axes[2].legend(fontsize=7, ncol=2)
fig.tight_layout()
plt.show()

# %% [markdown]
# ### T5: learned biases on logarithmic buckets
#
# T5 learns one scalar per (bucket, head). Small distances get a bucket each;
# larger ones share logarithmically wider buckets, and everything beyond
# `max_distance` (128) shares the last one. A bidirectional encoder uses half
# the buckets for keys before the query and half for keys after; a causal
# decoder puts every future key in bucket 0. Like ALiBi, the bias reaches
# attention as a `score_mod`: look up the bucket of the distance, add that
# head's learned scalar.

# %% tags=["hide-output"]
show_source(T5RelativeBias.score_mod)

# %%
rel = torch.arange(-160, 161)
fig, ax = plt.subplots(figsize=(9, 3.4))
ax.step(
    rel,
    t5_relative_bucket(rel, bidirectional=True),
    where="mid",
    color=encoding_color("t5"),
    label="bidirectional (encoder)",
)
ax.step(
    rel,
    t5_relative_bucket(rel, bidirectional=False),
    where="mid",
    color=encoding_color("t5"),
    ls="--",
    label="causal (decoder)",
)
ax.set_xlabel("relative position j − i (key minus query)")
ax.set_ylabel("bucket")
ax.set_title("T5 relative-position buckets (32 buckets, max_distance 128)")
ax.legend()
plt.show()
for d in (-1, -7, -8, -20, -127, -128, -1000):
    print(
        f"j − i = {d:>5}: bucket "
        + format(
            t5_relative_bucket(torch.tensor(d), bidirectional=False).item(),
            ">2",
        )
        + " (causal)"
    )

# %% [markdown]
# Distances 0–15 (causal) each have their own bucket; farther ones share
# buckets that widen with distance (20 lands in bucket 17), and 127, 128 and
# 1000 all fall in the last bucket, 31. The bias
# table is learned; the last picture of this section shows a learned encoding,
# the absolute table of a trained model — so we train some models first.
#
# ## 4. Longer than in training
#
# An encoding that works on the lengths it was trained on may fail on longer
# ones: the model meets positions (or distances) it has never seen. We measure
# this the way {cite:t}`press2022alibi` did, on a language model: seven small
# character-level models of Tiny Shakespeare, identical but for the positional
# encoding (2 layers, width 64, 4 heads), each trained for 200 steps on
# windows of $L = 32$ characters, then evaluated on held-out text at $L$, $2L$
# and $4L$ — three times over, with seeds 0, 1 and 2 (each seed sets the
# initial weights and the training windows).
#
# One detail matters for the two fixed encodings. The library draws token
# embeddings GPT-style with standard deviation 0.02, while a sinusoid has
# entries of size 1: added as they are, the positions would drown the tokens.
# So, like the original transformer {cite:p}`vaswani2017attention`, the models
# multiply token embeddings by $\sqrt{C}$ (8 here) when the encoding adds a
# fixed signal to them — sinusoidal and randomized — and by 1 otherwise (a
# learned table starts at the tokens' own scale; the other encodings add
# nothing to the embeddings). `ModelConfig.embedding_scale` overrides the
# choice. Every model here also keeps a separate output layer
# (`tie_weights=False`).

# %%
task = get_task(
    "tiny_shakespeare"
)  # reads the corpus (downloads it once if there is no local copy)
L = 32
ENCODINGS = [
    "sinusoidal",
    "learned",
    "randomized",
    "rope",
    "alibi",
    "t5",
    "nope",
]


def train_char_model(
    positional: str,
    steps: int = 200,
    seed: int = 0,
    embedding_scale: float | None = None,
):
    torch.manual_seed(seed)  # initial weights
    data = torch.Generator().manual_seed(seed)  # training windows
    config = ModelConfig(
        arch="decoder",
        vocab_size=task.vocab_size,
        d_model=64,
        n_layers=2,
        n_heads=4,
        max_len=L,
        positional=positional,
        tie_weights=False,
        embedding_scale=embedding_scale,
    )
    model = build_model(
        config
    )  # token embeddings × √64 for sinusoidal and randomized, × 1 otherwise
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=5e-3, weight_decay=0.0
    )
    for _ in range(steps):
        batch = task.sample(32, L, data)
        loss = F.cross_entropy(
            model(batch.inputs).logits.flatten(0, 1), batch.targets.flatten()
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), loss.item()


SEEDS = (0, 1, 2)
start = time.perf_counter()
seed_models, seed_final_loss = (
    {},
    {},
)  # (encoding, seed) -> trained model, last training loss
for seed in SEEDS:
    for name in ENCODINGS:
        seed_models[name, seed], seed_final_loss[name, seed] = (
            train_char_model(name, seed=seed)
        )
training_seconds = time.perf_counter() - start
char_models = {
    name: seed_models[name, 0] for name in ENCODINGS
}  # seed 0: the single-model pictures below
final_loss = {name: seed_final_loss[name, 0] for name in ENCODINGS}
scales = {
    name: model.config.effective_embedding_scale
    for name, model in char_models.items()
}
print(
    "token-embedding scale:\n"
    + ", ".join(f"{name} {scale:g}" for name, scale in scales.items())
)

# %% tags=["nbval-ignore-output"]
print(f"trained {len(seed_models)} models in {training_seconds:.0f} s")

# %% [markdown]
# The learned table has $L = 32$ rows. Asked for position 32, the model
# refuses, with an error that says what to do:

# %%
held_out = {
    n: task.sample(128, n, torch.Generator().manual_seed(1), split="val")
    for n in (L, 2 * L, 4 * L)
}
try:
    char_models["learned"](held_out[2 * L].inputs)
except ValueError as error:
    print(textwrap.fill(f"ValueError: {error}", 78))

# %% [markdown]
# So for the measurement we pick the explicit fallback, `overflow="clamp"`:
# every position past the table reuses the last learned vector. Then we
# compute, for every model and length, the mean next-character loss over all
# positions, and over the last $L$ positions only (the ones furthest beyond
# the training length). Each entry is the mean over the three seeds ± the
# half-width of its 95% Student-t interval ($t_{0.975}(2) = 4.30$, so three
# seeds give wide intervals); "train" is the mean last training loss.
#
# The last row is a yardstick with no positions and no attention at all: a
# **bigram table**, counted from the training text, that predicts each
# character from the one before it alone (each count plus one, so that no
# pair has probability 0). A model that has learned nothing beyond which
# character tends to follow which lands on that row.
#
# These are the chapter's first numbers from trained models. Run again on
# another CPU or with another thread count, they change in their later
# digits (small runs amplify rounding), most for the encodings whose seeds
# disagree most; the comparisons drawn below hold regardless.

# %% tags=["nbval-ignore-output"]
for seed in SEEDS:
    seed_models[
        "learned", seed
    ].decoder.positional.overflow = (
        "clamp"  # explicit: positions ≥ 32 reuse row 31
    )
# (encoding, seed) -> [(loss over all positions, over the last L) at L, 2L,
# 4L]
losses = {}
# encoding -> loss at each position of the 4L windows, mean over the batch and
# the seeds
position_loss = {}
with torch.no_grad():
    for (name, seed), model in seed_models.items():
        row = []
        for batch in held_out.values():
            loss = F.cross_entropy(
                model(batch.inputs).logits.transpose(1, 2),
                batch.targets,
                reduction="none",
            )
            row.append((loss.mean().item(), loss[:, -L:].mean().item()))
        losses[name, seed] = row
        position_loss[name] = position_loss.get(name, 0) + loss.mean(0) / len(
            SEEDS
        )  # (4L,): the 4L windows


# the bigram table: log P(next | previous) counted from the training text
train_ids, V = task.splits["train"], task.vocab_size
pair_counts = (
    torch.bincount(train_ids[:-1] * V + train_ids[1:], minlength=V * V)
    .view(V, V)
    .double()
    + 1
)  # (V, V): +1 for every pair
bigram_log_p = (pair_counts / pair_counts.sum(1, keepdim=True)).log()
# length -> the bigram table's loss at every position (B, n)
bigram_loss = {
    n: -bigram_log_p[batch.inputs, batch.targets]
    for n, batch in held_out.items()
}


def mean_pm(values) -> str:
    """'2.309 ± 0.012': the mean over seeds ± the half-width of its 95%
    t-interval."""
    mean, low, high = t_interval(values)
    return f"{mean:.3f} ± {(high - low) / 2:.3f}"


table = [
    f"{'':<11}{'':>7}{'loss, all positions':^45}{'last 32':>15}",
    f"{'encoding':<11}{'train':>7}{'L':>15}{'2L':>15}{'4L':>15}{'4L':>15}",
]
for name in ENCODINGS:
    train_mean = sum(seed_final_loss[name, s] for s in SEEDS) / len(SEEDS)
    cells = [
        mean_pm([losses[name, s][j][0] for s in SEEDS]) for j in range(3)
    ]
    cells.append(mean_pm([losses[name, s][2][1] for s in SEEDS]))
    table.append(
        f"{name:<11}{train_mean:>7.3f}" + "".join(f"{c:>15}" for c in cells)
    )
bigram_cells = [loss.mean() for loss in bigram_loss.values()]
bigram_cells.append(bigram_loss[4 * L][:, -L:].mean())
bigram_row = f"{'bigram':<11}{'':>7}" + "".join(
    f"{value.item():>7.3f}{'':8}" for value in bigram_cells
)
table.append(bigram_row.rstrip())
print("\n".join(table))


# %% tags=["remove-cell"]
# Measured under three CPU float orders (AVX512, AVX2, no vector kernels):
# the sinusoidal and randomized rows did not change at all; the others moved
# by up to 0.03 in their means. Each margin below is at least twice that.
def at(name, j, last=False):
    """Mean over the seeds of the held-out loss at (L, 2L, 4L)[j], over all
    positions or over the last L."""
    return sum(seeds_at(name, j, last)) / len(SEEDS)


def seeds_at(name, j, last=False):
    """The seeds' held-out losses at (L, 2L, 4L)[j]."""
    return [losses[name, s][j][int(last)] for s in SEEDS]


def degradation(name):
    """How much worse at 4L than at L (all positions)."""
    return at(name, 2) - at(name, 0)


within = {name: at(name, 0) for name in ENCODINGS}
expect(  # measured: 2.31 to 2.51
    "within the training length the models land between about 2.3 and 2.5 "
    "nats",
    all(2.25 <= value <= 2.6 for value in within.values()),
    **within,
)
# the bigram table's loss (no seeds, no training) at L, 2L, 4L and on the
# last 32 positions at 4L: 2.501, 2.492, 2.488, 2.495
bigram_at = [loss.mean().item() for loss in bigram_loss.values()]
bigram_last = bigram_loss[4 * L][:, -L:].mean().item()
expect(  # measured: 0.18 below
    "within the training length even the best model is only about 0.2 "
    "nats below the bigram table",
    0.1 <= bigram_at[0] - min(within.values()) <= 0.3,
    bigram=bigram_at[0],
    **within,
)
expect(  # measured: 0.005 above to 0.03 below
    "within the training length NoPE, the learned table and the randomized "
    "positions are within a few hundredths of the bigram table",
    all(
        abs(within[n] - bigram_at[0]) <= 0.08
        for n in ("nope", "learned", "randomized")
    ),
    bigram=bigram_at[0],
    **within,
)
for name in ("sinusoidal", "rope", "learned"):
    expect_greater(  # measured: 0.15 to 0.25 above
        "at 4L the sinusoids, RoPE and the clamped table do worse than the "
        "bigram table",
        at(name, 2),
        bigram_at[2],
        margin=0.05,
    )
expect_greater(  # measured: 0.10 below
    "at 4L ALiBi stays about 0.1 nats below the bigram table",
    bigram_at[2],
    at("alibi", 2),
    margin=0.05,
)
expect(  # measured: randomized 0.002 above, the others more
    "at 4L ALiBi is the only model clearly below the bigram table",
    all(
        at(name, 2) >= bigram_at[2] - 0.04
        for name in ENCODINGS
        if name != "alibi"
    ),
    bigram=bigram_at[2],
)
expect(  # measured: 0.03 below at L, level at 4L
    "the randomized positions stay at about the bigram table's level",
    abs(at("randomized", 0) - bigram_at[0]) <= 0.08
    and abs(at("randomized", 2) - bigram_at[2]) <= 0.08,
    randomized=[at("randomized", j) for j in (0, 2)],
    bigram=bigram_at,
)
expect_below(  # measured: 0.02 to 0.03 lower at 4L, and on the last 32
    "ALiBi's loss at 4L is no higher than within the training length",
    max(at("alibi", 2), at("alibi", 2, last=True)) - at("alibi", 0),
    0.02,
)
expect_greater(  # measured: 0.10 ahead of the next (randomized)
    "ALiBi is the best of the seven at 4L",
    min(at(name, 2) for name in ENCODINGS if name != "alibi"),
    at("alibi", 2),
    margin=0.05,
)
expect_below(  # measured: 0.02
    "the randomized positions stay flat from L to 4L",
    degradation("randomized"),
    0.1,
)
for name in ("sinusoidal", "rope"):
    expect(  # measured: 0.31 to 0.36
        "by 4L the sinusoids and RoPE have lost about a third of a nat",
        0.25 <= degradation(name) <= 0.45,
        degradation=degradation(name),
    )
for name in ("sinusoidal", "rope", "learned"):
    expect_above(  # measured: 0.26 to 0.36
        "the sinusoids, RoPE and the clamped table break down beyond the "
        "training length",
        degradation(name),
        0.15,
    )
    expect_seeds_greater(  # measured: their low ends 0.12 or more above
        "on the last 32 positions at 4L, ALiBi's mean lies below the "
        "interval of each encoding that breaks down",
        seeds_at(name, 2, last=True),
        seeds_at("alibi", 2, last=True),
        margin=0.1,
    )
expect_greater(  # measured: 0.23 against 0.08-0.11
    "the sinusoidal loss climbs right after the training length, RoPE's "
    "more slowly at first",
    at("sinusoidal", 1) - at("sinusoidal", 0),
    at("rope", 1) - at("rope", 0),
    margin=0.05,
)
worst_last = sorted(ENCODINGS, key=lambda n: at(n, 2, last=True))[-3:]
expect(  # measured: the worst; the three worst 0.2 above the 4th
    "on the last 32 positions at 4L, RoPE is among the three worst",
    "rope" in worst_last,
    worst=worst_last,
)
_, low, high = t_interval(seeds_at("rope", 2, last=True))
expect_above(  # measured: 0.37 to 0.44
    "RoPE's interval on the last 32 positions at 4L is wide",
    (high - low) / 2,
    0.2,
)
expect_above(  # measured: 0.08 to 0.13
    "T5 degrades beyond the training length",
    degradation("t5"),
    0.03,
)
expect_greater(  # measured: 0.31-0.35 against 0.08-0.13
    "T5 degrades less than RoPE",
    degradation("rope"),
    degradation("t5"),
    margin=0.1,
)
expect_below(  # measured: 0.26-0.27 against 0.36
    "the clamped table degrades by a similar amount as the sinusoids",
    abs(degradation("learned") - degradation("sinusoidal")),
    0.15,
)
expect_below(  # measured: 0.05
    "NoPE degrades only a little from L to 4L",
    degradation("nope"),
    0.1,
)

# %%
fig, ax = plt.subplots(figsize=(10, 4.2))
block_centres = torch.arange(4, 4 * L, 8)  # blocks of 8 positions
for name, curve in position_loss.items():
    smooth = curve.unfold(0, 8, 8).mean(1)  # mean over blocks of 8 positions
    ax.plot(
        block_centres,
        smooth,
        "o-",
        ms=3,
        color=encoding_color(name),
        label=name + (" (clamped)" if name == "learned" else ""),
    )
ax.plot(
    block_centres,
    bigram_loss[4 * L].mean(0).unfold(0, 8, 8).mean(1),
    "k:",
    lw=2,
    label="bigram table",
)
ax.axvline(L - 0.5, color="grey", ls="--", lw=1)
ax.text(
    L + 1,
    ax.get_ylim()[0],
    " training length",
    color="grey",
    va="bottom",
    fontsize=9,
)
ax.set_xlabel("position in a 128-character window")
ax.set_ylabel("next-character loss (nats)")
ax.set_title(
    "held-out loss by position, mean of 3 seeds: "
    "trained on 32 characters, tested on 128"
)
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
plt.show()

# %% [markdown]
# The dotted line is the bigram table. It knows no positions, so its ups and
# downs come from the text of these windows: some stretches are harder to
# predict than others, for every model.
#
# And what the $\sqrt{C}$ scale buys: the same sinusoidal model once more,
# with `embedding_scale=1.0` — tokens of size 0.02 under sinusoids of size 1
# (seed 0 only, beside the seed-0 model of the table).

# %% tags=["nbval-ignore-output"]
unscaled, unscaled_train_loss = train_char_model(
    "sinusoidal", embedding_scale=1.0
)
runs = {
    "× 8 (default)": (char_models["sinusoidal"], final_loss["sinusoidal"]),
    "× 1": (unscaled, unscaled_train_loss),
}
held_out_at_L = {}  # scale -> held-out loss at L
with torch.no_grad():
    for scale_name, (model, train_loss) in runs.items():
        held_out_at_L[scale_name] = F.cross_entropy(
            model(held_out[L].inputs).logits.transpose(1, 2),
            held_out[L].targets,
        ).item()
        print(
            f"sinusoidal, token embeddings {scale_name:<13}: "
            f"train {train_loss:.3f}, "
            f"held-out at L {held_out_at_L[scale_name]:.3f}"
        )

# %% tags=["remove-cell"]
expect_greater(  # measured: 0.13 apart under three CPU float orders
    "without the √C scale the seed-0 sinusoidal model does clearly worse "
    "at L",
    held_out_at_L["× 1"],
    held_out_at_L["× 8 (default)"],
    margin=0.05,
)
expect_below(  # measured: 0.04 below the table
    "without the scale it is hardly below the bigram table",
    bigram_at[0] - held_out_at_L["× 1"],
    0.08,
)

# %% [markdown]
# **What we saw.** All numbers are means over the three seeds.
#
# *Within the training length* (the $L$ column) the seven models land
# between about 2.3 and 2.5 nats after 200 steps, and the bigram table
# reaches 2.50 on the same windows. The best of them are only about 0.2
# nats below it; NoPE, the learned
# table and the randomized positions are within a few hundredths of it.
# These runs have learned little more than which character tends to follow
# which, and how far a model gets in 200 steps says little about where it
# would end: **their order within the training length is not a finding
# about the encodings**, and a longer run may well order them differently.
# (One thing the runs do show there: the $\sqrt{C}$ scale matters. With token
# embeddings left at size 0.02, the seed-0 sinusoidal model does clearly
# worse at $L$, by about a tenth of a nat — hardly below the bigram
# table.)
#
# *Beyond the training length* the runs can say more, because each model is
# measured against its own loss at $L$, and against the bigram table, which
# knows no positions and so cannot get worse with length. There the picture
# splits:
#
# * **ALiBi** extrapolates: at $4L$, and even on the last 32 positions, its
#   loss stays level with its loss within the training length (at most 0.02
#   nats higher) — the result {cite:t}`press2022alibi` reported. At $4L$ it is
#   the best of the seven and the only one clearly below the bigram table (by
#   about 0.1 nats). Its bias at an unseen distance is the same straight line
#   continued; no learned number is new.
# * **Randomized positions** stay flat as well (their loss moves by less than
#   a tenth of a nat from $L$ to $4L$): during training they saw position
#   values up to $4L$, so nothing at test time is new
#   {cite:p}`ruoss2023randomized`. But they stay flat at about the bigram
#   table's level, so these runs cannot tell how much they use the positions
#   at all.
# * **Sinusoidal** and **RoPE** break down beyond $L$: the sinusoidal loss
#   climbs right after the dashed line, RoPE's more slowly at first (compare
#   their $2L$ columns), and by $4L$ both have lost about a third of a nat —
#   they do worse than the bigram table, which ignores everything but the
#   previous character. On the last 32 positions at $4L$ RoPE is among the
#   three worst; its interval there is wide — the seeds disagree on how badly
#   it breaks. A formula that is defined at every position is not the same
#   as a model that generalises to it; presumably the model never learned
#   what the unseen angles mean.
# * **T5** degrades too, but much less than RoPE: trained on distances up to
#   31 only, it meets longer distances in buckets (up to 31, printed above)
#   that distances below 32 never reach, so their biases never received a
#   gradient.
# * **Learned** cannot go past its table at all (the error above); clamped,
#   it degrades by a similar amount as the sinusoids, to worse than the
#   bigram table — every late position looks like position 31.
# * **NoPE** degrades only a little (under a tenth of a nat from $L$ to
#   $4L$), from
#   a start level with the bigram table; the causal mask gives it some sense
#   of position, which may be what fails to carry over to unseen lengths.
#
# These are tiny models trained for seconds, barely past a bigram table.
# What the three seeds support is what happens beyond the training length:
# the flat curve of ALiBi below the bigram table, and the break of the
# sinusoids, RoPE and the clamped table to worse than it — on the last 32
# positions at $4L$, ALiBi's mean lies below the whole interval of each of
# those three. Models that have learned more than bigrams may behave
# differently; the order within the training length, and in the middle of
# the field, is not settled here.
#
# ### The learned table after training
#
# The last encoding to draw: the table the learned model ended up with, and
# the cosine similarity between its rows.

# %% tags=["nbval-ignore-output"]
table = char_models[
    "learned"
].decoder.positional.table.weight.detach()  # (L, C)
unit = F.normalize(table, dim=-1)
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
signed_heatmap(
    table,
    axes[0],
    title="learned position table (32 × 64) after 200 steps",
    xlabel="dimension",
    ylabel="position",
)
signed_heatmap(
    unit @ unit.T,
    axes[1],
    title="cosine similarity between positions",
    xlabel="position",
    ylabel="position",
)
fig.tight_layout()
plt.show()
near = torch.stack(
    [(unit[i] * unit[i + 1]).sum() for i in range(L - 1)]
).mean()
far = torch.stack(
    [(unit[i] * unit[i + 16]).sum() for i in range(L - 16)]
).mean()
print(
    f"mean cosine similarity: neighbouring positions {near:.2f}, "
    f"positions 16 apart {far:.2f}"
)

# %% tags=["remove-cell"]
similarity = unit @ unit.T  # (L, L)
off_diagonal = ~torch.eye(16, dtype=torch.bool)
early = similarity[:16, :16][off_diagonal].mean().item()
late = similarity[16:, 16:][off_diagonal].mean().item()
across = similarity[:16, 16:].mean().item()
corners = similarity[:4, -4:].mean().item()
# measured under three CPU float orders: near 0.66, far -0.12; the others
# beside each check (all moved by less than 0.01)
expect(
    "neighbouring rows of the table are similar, cosine about 0.66",
    0.58 <= near <= 0.74,
    near=near.item(),
)
expect(
    "rows 16 apart point slightly away from each other, about -0.12",
    -0.2 <= far <= -0.05,
    far=far.item(),
)
expect_greater(  # measured: 0.42 and 0.67 within, -0.12 across
    "the rows before 16 resemble each other, as do the rows from 16 on",
    min(early, late),
    across,
    margin=0.2,
)
expect_below(  # measured: -0.57
    "the earliest and the latest rows point away from each other",
    corners,
    0.0,
)

# %% [markdown]
# Nobody told the table that positions are ordered, yet after 200 steps
# neighbouring rows are similar (mean cosine about 0.66) and rows 16 apart
# point slightly away from each other (about −0.12). The similarity map
# shows this as two blocks rather than an even band: the rows before 16
# resemble each other, and so do the rows from 16 on, more than either
# resembles the other block; the earliest and the latest rows point away
# from each other. The table has learned a coarse sense of early versus
# late — only for the 32 positions it has rows for.

# %% [markdown]
# ## Exercises
#
# ```{exercise}
# :label: ex-03-rope-base
# RoPE's `base` (10000 by default) sets how fast its slowest pair of
# dimensions turns. Show that with `base=100` the score of a fixed $q, k$
# still depends only on $m - n$, and that the rotations still preserve norms.
# ```
#
# ```{solution-start} ex-03-rope-base
# :class: dropdown
# ```

# %%
rq100, rk100 = (
    apply_rope(q.expand(64, 64), m, base=100.0),
    apply_rope(k.expand(64, 64), m, base=100.0),
)
s100 = rq100 @ rk100.T
same_offset = all(
    torch.allclose(s100.diagonal(d), s100.diagonal(d)[:1].expand(64 - abs(d)))
    for d in range(-63, 64)
)
print(
    "depends only on m - n:",
    same_offset,
    "| norms preserved:",
    torch.allclose(rq100.norm(dim=-1), q.norm().expand(64)),
)

# %% [markdown]
# Both hold with `base=100`. The base only sets the angles
# $\theta_i = \text{base}^{-2i/D}$, and
# $\langle R_{m\theta} q, R_{n\theta} k\rangle =
# \langle q, R_{(n-m)\theta} k\rangle$
# holds for any angles, as rotations keep lengths for any angle. A smaller
# base makes the slowest pair turn faster (once every $2\pi \cdot 100$
# positions instead of $2\pi \cdot 10000$): it changes *which* function of
# $m - n$ the score is, not that it is one.
#
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-03-alibi-12
# The ALiBi paper's rule for a head count that is not a power of two: take the
# slopes for the closest smaller power of two, then every other slope of twice
# that many heads. Write the 12 slopes out by hand and compare with
# `alibi_slopes(12)`.
# ```
#
# ```{solution-start} ex-03-alibi-12
# :class: dropdown
# ```

# %%
eight = [2 ** (-8 * (i + 1) / 8) for i in range(8)]  # 2^-1 … 2^-8
sixteen = [2 ** (-8 * (i + 1) / 16) for i in range(16)]  # 2^-0.5 … 2^-8
by_hand = (
    eight + sixteen[0::2][:4]
)  # the 4 missing heads: 2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5
print("the 8 slopes: ", [round(s, 4) for s in by_hand[:8]])
print("the 4 added:  ", [round(s, 4) for s in by_hand[8:]])
print(
    "equal to alibi_slopes(12):",
    torch.allclose(torch.tensor(by_hand), alibi_slopes(12)),
)

# %% [markdown]
# The 8 slopes of the closest power of two, $2^{-1} \dots 2^{-8}$, followed by
# every other slope of the 16-head sequence,
# $2^{-0.5}, 2^{-1.5}, 2^{-2.5}, 2^{-3.5}$ (0.7071, 0.3536, 0.1768, 0.0884):
# the same 12 numbers as `alibi_slopes(12)`.
#
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-03-randomized-eval
# The randomized model was evaluated on the plain positions $0 \dots T-1$. The
# paper's code draws random sorted positions at test time too
# (`sample_in_eval=True`). Evaluate the trained randomized model (seed 0) that
# way at $2L$ and $4L$ and compare with the plain positions.
# ```
#
# ```{solution-start} ex-03-randomized-eval
# :class: dropdown
# ```

# %% tags=["nbval-ignore-output"]
randomized = char_models["randomized"].decoder.positional
randomized.generator = torch.Generator().manual_seed(0)
lines = []
evaluated = {}  # length -> (loss at random sorted positions, at 0..n-1)
with torch.no_grad():
    for n in (2 * L, 4 * L):
        batch = held_out[n]
        randomized.sample_in_eval = True
        drawn = F.cross_entropy(
            char_models["randomized"](batch.inputs).logits.transpose(1, 2),
            batch.targets,
        )
        randomized.sample_in_eval = False
        plain = F.cross_entropy(
            char_models["randomized"](batch.inputs).logits.transpose(1, 2),
            batch.targets,
        )
        evaluated[n] = (drawn.item(), plain.item())
        lines.append(
            f"length {n:>3}: loss {drawn.item():.3f} at random sorted "
            f"positions, {plain.item():.3f} at 0..{n - 1}"
        )
print("\n".join(lines))

# %% tags=["remove-cell"]
expect(
    "at 4L the random sorted positions and the plain ones give the same loss",
    abs(evaluated[4 * L][0] - evaluated[4 * L][1]) < 1e-6,  # same positions
    drawn=evaluated[4 * L][0],
    plain=evaluated[4 * L][1],
)
expect_greater(  # measured: 0.07 apart under three CPU float orders
    "at 2L the random positions give the lower loss",
    evaluated[2 * L][1],
    evaluated[2 * L][0],
    margin=0.03,
)

# %% [markdown]
# Each line sets the two evaluations of the seed-0 model side by side. At
# $4L = 128$ they must agree: the model draws from `range(128)` ($4L$ by
# default), and the only 128 sorted distinct positions there are
# $0 \dots 127$ — the plain ones. At $2L$ they differ, and the random
# positions give the *lower* loss (about 2.37 against 2.44 with plain
# positions):
# in training, 32 positions drawn from 128 lie about 4 apart, and 64 random
# ones out of 128 (about 2 apart) look more like that than the tightly packed
# $0 \dots 63$.

# %% [markdown]
# ```{solution-end}
# ```
#
# ## Summary
#
# * Self-attention is permutation-equivariant; positional information must be
#   added — to the embeddings (sinusoidal, learned, randomized), to the
#   queries and keys (RoPE) or to the scores (ALiBi, T5) — or come from the
#   causal mask alone (NoPE).
# * RoPE and the score biases make attention depend on relative position;
#   RoPE's score is a function of $m - n$ only.
# * A learned table has no rows past its training length: the library raises
#   an error unless you ask for the explicit `overflow="clamp"` fallback.
# * Being defined at every position is not extrapolation: in our measurement
#   (three seeds of tiny models) sinusoids, RoPE and a clamped table degrade
#   beyond the training length to worse than a bigram table, while ALiBi
#   holds up below it and randomized positions stay flat at its level.
# * Caveat: within the training length these 200-step models barely beat a
#   bigram table, so their order there is not a finding about the
#   encodings; only their behaviour beyond the training length is.
