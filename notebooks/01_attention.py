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
# # Week 1 — Scaled dot-product attention
#
# **Learning goals.** By the end of this chapter you can
#
# 1. read attention as a *soft* dictionary lookup and compute it by hand;
# 2. build causal self-attention yourself, in a few lines of `torch`: from
#    averaging the past with a lower-triangular matrix, through queries,
#    keys and values computed by learned $W_q, W_k, W_v$, to
#    $\mathrm{softmax}(QK^\top/\sqrt{d_k})\,V$ — and check it against the
#    library's `attend` and PyTorch's own kernel;
# 3. explain, with measurements, why the scores are divided by $\sqrt{d_k}$;
# 4. build causal and padding masks and say what each one hides.
#
# You write attention first, with `torch` alone. Then we read the library's
# version, which the rest of the book builds on: two files of its
# `annotated/attention/` folder, `attend.py` (the primitive) and `masks.py`
# (masks as small functions).

# %%
import math
import textwrap

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

from annotated.attention.attend import (
    attend,
    attention_entropy,
    masked_softmax,
)
from annotated.attention.masks import (
    and_masks,
    causal,
    causal_mask,
    combine_masks,
    materialize_mask,
    padding,
    padding_mask,
)
from annotated.figures.attention_diagrams import qkv_diagram
from annotated.figures.showcode import show_source
from annotated.figures.viz import (
    attention_heatmap,
    figure_image,
    mask_heatmap,
)
from annotated.figures.widgets import InteractiveFigure

torch.manual_seed(0)
torch.set_printoptions(precision=3, sci_mode=False)

# %% [markdown]
# ## 1. Attention is a soft dictionary lookup
#
# A Python dictionary maps a key to a value: `d["dog"]` finds the one key
# equal to the query and returns its value. Attention does the same with
# vectors, but *softly*: it compares the query with **every** key, turns the
# similarities into weights that sum to one, and returns the weighted average
# of the values.
#
# Here is a hand-made dictionary. Each key describes an object by two features
# — *is it an animal?* and *does it have wheels?* — and each value stores two
# facts about it: its number of legs and its number of wheels.

# %%
names = ["cat", "dog", "bike", "car"]
keys = torch.tensor(
    [
        [1.0, 0.0],  # cat: animal, no wheels
        [1.0, 0.0],  # dog: animal, no wheels
        [0.0, 1.0],  # bike: not an animal, wheels
        [0.0, 1.0],  # car: not an animal, wheels
    ]
)
values = torch.tensor(
    [
        [4.0, 0.0],  # cat: 4 legs, 0 wheels
        [4.0, 0.0],  # dog
        [0.0, 2.0],  # bike: 0 legs, 2 wheels
        [0.0, 4.0],  # car: 0 legs, 4 wheels
    ]
)
query = torch.tensor([[3.0, 0.0]])  # "something that is an animal"

scores = query @ keys.T  # similarity of the query to every key
weights = torch.softmax(
    scores, dim=-1
)  # turn similarities into a distribution
answer = weights @ values  # weighted average of the values
for name, s, w in zip(names, scores[0], weights[0]):
    print(f"{name:>5}: score {s:4.1f} → weight {w:.3f}")
print("answer (legs, wheels):", [round(x, 2) for x in answer[0].tolist()])

# %% [markdown]
# The query matches *cat* and *dog* equally, so they share almost all the
# weight and the answer is close to their common value, 4 legs and no wheels.
# The two vehicles still get a little weight, which is why the answer is not
# exactly (4, 0): a soft lookup never ignores a key completely. A query
# halfway between the two kinds mixes the two groups:

# %%
for q in ([0.0, 3.0], [1.5, 1.5], [10.0, 0.0]):
    w = torch.softmax(torch.tensor([q]) @ keys.T, dim=-1)
    a = w @ values
    print(
        f"query {q}: weights {[round(x, 3) for x in w[0].tolist()]} → answer "
        f"{[round(x, 2) for x in a[0].tolist()]}"
    )

# %% [markdown]
# The last line shows the other half of the story: scaling the query up (10
# instead of 3) sharpens the weights towards a hard lookup. How large the
# scores are matters — that is what the $\sqrt{d_k}$ below is about.
#
# ## 2. Write attention yourself
#
# In §1 we wrote the keys, the values and the query by hand. In a
# transformer they come from the tokens themselves: every token of a
# sequence is a query, a key and a value at once, and attention lets each
# token gather what it needs from the others — *self*-attention. We build it
# in five small steps with nothing but `torch`, along the path of Karpathy's
# "Let's build GPT" {cite:p}`karpathy2022nanogpt`: a plain average of the
# past, then a weighted one, then weights computed from the tokens.
#
# ### Step 1: average the past with a matrix
#
# Take a sequence of $T=4$ tokens, each a vector of $C=2$ numbers: the rows
# of $x$. A language model predicts each next token from the ones before it,
# so token $t$ may use tokens $0, \dots, t$ and never a later one. The
# simplest thing it can do with them is to average them,
# $\bar x_t = \frac{1}{t+1} \sum_{s \le t} x_s$:

# %% tags=["from-scratch"]
x = torch.tensor(
    [[1.0, 0.0], [3.0, 2.0], [2.0, 4.0], [6.0, 2.0]]
)  # (T, C): 4 tokens of 2 numbers each
T = x.shape[0]
running_mean = torch.stack([x[: t + 1].mean(dim=0) for t in range(T)])
print(running_mean)

# %% [markdown]
# A loop over the tokens is slow. The same averages are one matrix product:
# put a 1 wherever token $t$ may see token $s$ ($s \le t$) — a
# lower-triangular matrix, `torch.tril` — and divide each row by its sum.

# %% tags=["from-scratch"]
ones = torch.tril(torch.ones(T, T))  # 1 where key s <= query t
avg = ones / ones.sum(dim=1, keepdim=True)  # each row sums to 1
print(avg)
print("avg @ x is the running mean:", torch.allclose(avg @ x, running_mean))

# %% [markdown]
# Row $t$ of `avg` holds the weight token $t$ gives to every token:
# $1/(t+1)$ on itself and each earlier token, 0 on the future. Multiplying
# by $x$ takes all $T$ weighted averages at once.
#
# ### Step 2: weights from scores, through a softmax
#
# An average gives every visible token the same weight; attention lets the
# weights differ. They must stay non-negative, sum to one in each row and
# stay zero on the future. A softmax over each row does all three, once the
# scores of the future are set to $-\infty$ (since $e^{-\infty} = 0$). When
# every score is 0 — no token more relevant than another — it gives back
# exactly the averaging matrix:

# %% tags=["from-scratch"]
future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
scores = torch.zeros(T, T)  # every token as relevant as any other
scores = scores.masked_fill(future, float("-inf"))  # hide the future
weights = torch.softmax(scores, dim=-1)  # e^-inf = 0; rows sum to 1
print(weights)
print("same as avg:", torch.allclose(weights, avg))

# %% [markdown]
# Other scores give other weights, still zero on the future and still
# summing to one. Here every query prefers the later tokens: key $s$ scores
# $s$.

# %% tags=["from-scratch"]
scores = torch.arange(T).float().expand(T, T)  # key s scores s
weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
print(weights)
print(weights @ x)  # the weighted averages

# %% [markdown]
# Row 1 now puts 0.731 on token 1 and 0.269 on token 0, and the averages
# lean towards the recent tokens. That is the whole mechanism: scores, a
# mask, a softmax, a weighted average. What is left is where the scores come
# from.
#
# ### Step 3: queries, keys and values from the tokens
#
# Self-attention computes the query, the key and the value of each token
# from the token itself, with three learned linear maps: token $t$ emits a
# **query** $q_t = x_t W_q$ (what it looks for), a **key**
# $k_t = x_t W_k$ (what it can be found by) and a **value**
# $v_t = x_t W_v$ (what it hands over when found). The score of query $t$
# for key $s$ is the dot product $q_t \cdot k_s$, and all of them at once
# are $QK^\top$. Below, $T=5$ random tokens of width $C=8$, with queries,
# keys and values of size $d_k=4$; an `nn.Linear` without bias is just a
# learned matrix (here, as at the start of training, a random one).

# %% tags=["from-scratch"]
torch.manual_seed(0)
T, C, d_k = 5, 8, 4
x = torch.randn(T, C)  # (T, C): 5 tokens of width 8
W_q = nn.Linear(C, d_k, bias=False)  # learned during training
W_k = nn.Linear(C, d_k, bias=False)
W_v = nn.Linear(C, d_k, bias=False)
with torch.no_grad():  # no training in this chapter: no gradients needed
    q, k, v = W_q(x), W_k(x), W_v(x)  # (T, d_k) each
scores = q @ k.T  # (T, T): query t against key s
print("q, k, v:", tuple(q.shape), "| scores:", tuple(scores.shape))

# %% tags=["from-scratch"]
future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
out = weights @ v  # (T, d_k): each token's weighted average of values
print(weights)
print("out:", tuple(out.shape))

# %% [markdown]
# Every row now has weights of its own, computed from the tokens, and
# training adjusts $W_q$, $W_k$ and $W_v$ until the weights pick what is
# useful for the task.
#
# ### Step 4: $\mathrm{softmax}(QK^\top/\sqrt{d_k})\,V$ as a function
#
# One change before we package it: divide the scores by $\sqrt{d_k}$. Dot
# products of $d_k$ numbers grow with $d_k$, and large scores make the
# softmax nearly one-hot; §3 measures why that hurts. With queries
# $Q \in \mathbb{R}^{T_q\times d_k}$, keys $K \in \mathbb{R}^{T_k\times d_k}$
# and values $V \in \mathbb{R}^{T_k\times d_v}$, this is eq. 1 of
# {cite:t}`vaswani2017attention`:
#
# $$
# \mathrm{Attention}(Q, K, V) =
# \underbrace{\mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}}
# \right)}_{\text{weights } A \,\in\, \mathbb{R}^{T_q\times T_k}} V ,
# $$
#
# where the softmax runs over the keys (each row of $A$ sums to one) and
# hidden entries get a score of $-\infty$, hence a weight of exactly zero.
# In code, five lines; the mask is boolean, `True` where a query may look:


# %% tags=["from-scratch"]
def attention(q, k, v, mask=None):
    """softmax(q kᵀ / √d_k) v, and the weights; mask: True = may look."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)  # each row sums to 1
    return weights @ v, weights


# %% [markdown]
# `k.transpose(-2, -1)` rather than `k.T` lets the same lines run on a
# batch $(B, T, d_k)$, or on many heads $(B, H, T, d_k)$ at once (next
# week). The function returns the weights as well as the output, because we
# want to look at them. The picture, with the shape of every operand (the
# $B$ in its title is an additive bias that the library's version accepts,
# below):

# %% tags=["hide-input"]
figure_image(qkv_diagram())

# %% [markdown]
# ### Step 5: the causal mask
#
# As a "may look" matrix, the mask of steps 2 and 3 is the lower triangle:
# `torch.tril` again, now of booleans. With it, the function is causal
# self-attention, the layer at the heart of every GPT:


# %% tags=["from-scratch"]
def causal_self_attention(x, W_q, W_k, W_v):
    """Each token of x (..., T, C) reads itself and the tokens before."""
    T = x.shape[-2]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))  # key <= query
    return attention(W_q(x), W_k(x), W_v(x), mask)


out, weights = causal_self_attention(x, W_q, W_k, W_v)
print("weights on the future are 0:", bool((weights[future] == 0).all()))
print("rows sum to 1:", torch.allclose(weights.sum(-1), torch.ones(T)))

# %% [markdown]
# Those twelve lines are all of attention. The library's version,
# `annotated.attention.attend.attend`, and PyTorch's fused kernel
# `F.scaled_dot_product_attention` (SDPA), which returns the output but
# never the weights, should compute the same thing. We check it on random
# queries, keys and values of shape (B, H, T, D) — two sequences, four
# heads — with no mask, with the causal mask and with a random boolean
# mask, in float32 and float64:

# %%
g = torch.Generator().manual_seed(0)
lower = torch.tril(torch.ones(6, 6, dtype=torch.bool))  # causal, T = 6
for dtype in (torch.float32, torch.float64):
    # (B, H, T, D): 2 sequences, 4 heads, 6 tokens, head size 16
    q, k, v = torch.randn(3, 2, 4, 6, 16, generator=g, dtype=dtype)
    mask = torch.rand(6, 6, generator=g) > 0.3
    mask[:, 0] = True  # every query may see at least one key
    cases = {  # case: (yours, the library's, SDPA's output)
        "no mask": (attention(q, k, v), attend(q, k, v), {}),
        "causal": (
            attention(q, k, v, lower),
            attend(q, k, v, causal=True),
            {"is_causal": True},
        ),
        "random mask": (
            attention(q, k, v, mask),
            attend(q, k, v, mask=mask),
            {"attn_mask": mask},
        ),
    }
    for case, ((out, w), (lib_out, lib_w), sdpa_kw) in cases.items():
        sdpa_out = F.scaled_dot_product_attention(q, k, v, **sdpa_kw)
        torch.testing.assert_close(out, lib_out)  # raises if they differ
        torch.testing.assert_close(w, lib_w)
        torch.testing.assert_close(out, sdpa_out)
        print(f"{str(dtype):<13}  {case:<11}  yours = attend = SDPA: True")

# %% [markdown]
# ### The library's version adds …
#
# `attend` computes the same softmax and the same weighted average. It adds
# what the rest of the book needs from one shared primitive:
#
# * a keyword-only `scale` (default $1/\sqrt{D}$): a temperature $\tau$ is
#   `scale = 1/(τ√D)`, as in §5;
# * masks three ways: a boolean `mask` as in yours, a `key_padding_mask`
#   of shape (B, Tk) for padded batches, and masks written as *functions*,
#   `mask_mod=` or simply `causal=True` (§4);
# * two hooks that change the scores: an additive `bias` — the $B$ of the
#   picture — and a `score_mod` function, where chapter 3's ALiBi and T5
#   put their position information;
# * dropout on the weights while training (`dropout_p`);
# * a query whose keys are all hidden gets zero weights and a zero output,
#   not NaN (`masked_softmax`; §4 shows what your function does there);
# * checks that refuse a wrong call with a sentence naming the shapes, run
#   first by `prepare_attention`.
#
# It reads as the equation: check the call and resolve its defaults,
# compute the scores, find the keys each query may see, take the softmax
# over those, and average the values. Unfold the listing to read it.

# %% tags=["hide-output"]
show_source(attend)

# %% [markdown]
# The softmax over the visible keys, which gives a query that may see no
# key at all zeros rather than $0/0$:

# %% tags=["hide-output"]
show_source(masked_softmax)

# %% [markdown]
# And one of the checks at work. A padding mask holds one row per sequence,
# (B, Tk); passed as `mask`, where a (Tq, Tk) matrix belongs, it is refused
# with a sentence that says what to do instead:

# %%
real_keys = torch.ones(2, 6, dtype=torch.bool)  # (B, Tk): no padding here
try:
    attend(q, k, v, mask=real_keys)
except ValueError as error:
    print(textwrap.fill(str(error), 72))  # the message, wrapped to the page

# %% [markdown]
# ## 3. Why divide by $\sqrt{d_k}$?
#
# If the entries of $q$ and $k$ are independent with mean 0 and variance 1,
# the dot product $q\cdot k = \sum_{i=1}^{d_k} q_i k_i$ has variance $d_k$.
# Without scaling, the scores grow like $\sqrt{d_k}$, the softmax becomes
# nearly one-hot, and its gradient — the Jacobian
# $\partial A/\partial S = \mathrm{diag}(a) - aa^\top$ — goes to zero: the
# model stops learning *which* keys to look at. Dividing by $\sqrt{d_k}$ keeps
# the score variance at 1 whatever the head size.
#
# We measure this directly: for head sizes $d_k$ from 4 to 1024 we draw 256
# random queries against 64 random keys and record, for each query, the
# largest attention weight, the entropy of its weights (maximum
# $\ln 64 \approx 4.16$ for a uniform row), and the size of the gradient that
# flows back through the softmax to the scores,
# $\lVert\partial L/\partial S\rVert$ for a loss $L$ that depends on every
# weight.


# %%
def saturation_stats(
    d_k: int,
    scaled: bool,
    n_queries: int = 256,
    n_keys: int = 64,
    seed: int = 0,
) -> dict:
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n_queries, d_k, generator=g)
    k = torch.randn(n_keys, d_k, generator=g)
    v = torch.randn(n_keys, 1, generator=g)
    scores = (q @ k.T) / (math.sqrt(d_k) if scaled else 1.0)
    scores.requires_grad_(True)
    w = torch.softmax(scores, dim=-1)
    (w @ v).sum().backward()  # a loss that depends on every weight
    return {
        "max weight": w.max(-1).values.mean().item(),
        "entropy": attention_entropy(w).mean().item(),
        # ∂L/∂S = (diag(a) − aaᵀ) v: what the softmax lets through to the
        # scores.
        "grad norm": scores.grad.norm(dim=-1).mean().item(),
    }


d_ks = [4, 16, 64, 256, 1024]
stats = {
    scaled: [saturation_stats(d, scaled) for d in d_ks]
    for scaled in (True, False)
}
print(
    f"{'d_k':>5} | {'max weight':>21} | {'entropy (nats)':>21} | "
    f"{'grad norm':>21}"
)
print(
    f"{'':>5} | {'scaled':>10} {'unscaled':>10} | {'scaled':>10} "
    f"{'unscaled':>10} | {'scaled':>10} {'unscaled':>10}"
)
for i, d in enumerate(d_ks):
    s, u = stats[True][i], stats[False][i]
    print(
        f"{d:>5} | {s['max weight']:>10.3f} {u['max weight']:>10.3f} | "
        f"{s['entropy']:>10.3f} {u['entropy']:>10.3f}"
        f" | {s['grad norm']:>10.4f} {u['grad norm']:>10.4f}"
    )

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
for ax, key in zip(
    axes, ["max weight", "entropy", "grad norm"]
):  # one panel per measurement
    for scaled, style in ((True, "o-"), (False, "s--")):
        ax.plot(
            d_ks,
            [s[key] for s in stats[scaled]],
            style,
            label="÷ √d_k" if scaled else "no scaling",
        )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("head size $d_k$")
    ax.set_title(key)
axes[1].axhline(math.log(64), color="grey", lw=0.8, ls=":")
axes[1].text(
    4, math.log(64) - 0.35, "uniform (ln 64)", color="grey", fontsize=8
)
axes[2].set_yscale("log")
axes[0].legend()
fig.suptitle(
    "Softmax saturation with and without the 1/√d_k scaling (256 "
    "queries × 64 keys)"
)
fig.tight_layout()
plt.show()

# %% [markdown]
# **What we saw.** With the scaling, all three measurements stay flat as the
# head grows from 4 to 1024 dimensions: the largest weight stays near 0.1, the
# entropy near 3.7 nats (close to the uniform 4.16), and the gradient at the
# scores between 0.16 and 0.20. Without it, the softmax saturates: the largest
# weight climbs from 0.27 to 0.94, the entropy falls from 2.76 to 0.15 nats
# (nearly one-hot rows), and the gradient that reaches the scores falls from
# 0.30 at $d_k=16$ to 0.078 at $d_k=1024$, less than half the scaled value and
# still falling. One surprise: at small $d_k$ the *unscaled* gradient is the
# larger one — moderately larger scores make a less uniform, more responsive
# softmax — so the harm of not scaling only appears once the scores are large
# enough to saturate.
#
# ## 4. Masks: what a query may not see
#
# A mask is a boolean matrix broadcastable to the scores (B, H, Tq, Tk); in
# this library `True` means *may attend*, as in PyTorch's SDPA. Hidden entries
# get a score of $-\infty$, so their weight is exactly 0.
#
# * A **causal** mask lets position $i$ see only positions $\le i$: a language
#   model that predicts the next token must not peek at it.
# * A **padding** mask hides the filler tokens that make sequences of
#   different lengths fit in one batch.

# %%
tokens = [
    ["the", "cat", "sat", "on", "the", "mat"],
    ["a", "dog", "ran", "<pad>", "<pad>", "<pad>"],
]
lengths = [6, 3]
T = 6
causal_t = causal_mask(T)  # (T, T)
padding_t = padding_mask(lengths, T)  # (B, 1, 1, T)
both = combine_masks(causal_t, padding_t)  # (B, 1, T, T)

fig, axes = plt.subplots(1, 3, figsize=(13, 4))
mask_heatmap(
    causal_t, axes[0], title="causal (any sequence)", labels=range(T)
)
mask_heatmap(
    padding_t[1, 0].expand(T, T),
    axes[1],
    title="padding (sequence 2)",
    labels=tokens[1],
)
mask_heatmap(
    both[1, 0],
    axes[2],
    title="causal AND padding (sequence 2)",
    labels=tokens[1],
)
fig.suptitle("Masks: dark = may attend, light = hidden")
fig.tight_layout()
plt.show()

# %% [markdown]
# Applied to random queries and keys, the masks put exact zeros where they
# hide keys, and every row still sums to one:

# %%
g = torch.Generator().manual_seed(1)
q = torch.randn(2, 1, T, 8, generator=g)  # (B, H=1, T, D)
k = torch.randn(2, 1, T, 8, generator=g)
v = torch.randn(2, 1, T, 8, generator=g)
_, w = attend(q, k, v, mask=both)

fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
for b in range(2):
    attention_heatmap(
        w[b, 0],
        axes[b],
        query_labels=tokens[b],
        key_labels=tokens[b],
        annotate=True,
        title=f"sequence {b + 1}: causal + padding",
        colorbar=b == 1,
    )
fig.tight_layout()
plt.show()
print(
    "row sums, sequence 2:", [round(x, 3) for x in w[1, 0].sum(-1).tolist()]
)
print(
    "weight on padding keys, sequence 2:",
    round(w[1, 0, :, 3:].sum().item(), 6),
)

# %% [markdown]
# The first query row of each sequence has only itself to look at, so its
# weight is 1. The padding queries of sequence 2 (rows 4–6) still produce an
# output — they attend to the real tokens — and a model simply ignores those
# positions in its loss.
#
# ### Masks as functions
#
# A mask tensor has Tq × Tk entries, which is exactly what long-context
# kernels cannot afford (chapter 7). So the library writes each mask as a
# *predicate* over one entry — PyTorch FlexAttention's
# `mask_mod(b, h, q_idx, k_idx)` — and builds a tensor only where a tensor is
# the lesson. The causal mask is one line, `return q_idx >= k_idx`: the
# `torch.tril` of step 5, written as a rule about positions. The padding
# mask is built from the sequence lengths and returns a predicate that is
# one line as well: key `k_idx` of sequence `b` is visible when it lies
# before that sequence's length (unfold the listings to read them whole):

# %% tags=["hide-output"]
show_source(causal)

# %% tags=["hide-output"]
show_source(padding)

# %% [markdown]
# A predicate is called with index tensors that broadcast, so the same line
# answers for one entry, one tile or the whole grid. `materialize_mask`
# evaluates it on every (query, key); `and_masks` combines predicates as `&`
# combines tensors. Passed to `attend` as `mask_mod=`, the predicates give the
# very weights the tensors gave:

# %%
mods = and_masks(causal, padding(lengths))
print(
    "materialize_mask(causal, 6) equals causal_mask(6):",
    torch.equal(materialize_mask(causal, T), causal_t),
)
print(
    "same (B, 1, T, T) mask as the tensors:",
    torch.equal(materialize_mask(mods, T, batch=2), both),
)
_, w_mod = attend(q, k, v, mask_mod=mods)
print("attend(mask_mod=…) equals attend(mask=…):", torch.equal(w_mod, w))

# %% [markdown]
# What if *every* key of a row is hidden? Then the softmax computes
# $e^{-\infty} / \sum e^{-\infty} = 0/0$. Your `attention` of §2 returns
# NaN for that row, and a NaN spreads to everything computed from it.
# `attend` documents its choice: such a row gets all-zero weights and a zero
# output, never NaN — the same result PyTorch's SDPA gives.

# %%
empty = torch.ones(T, T, dtype=torch.bool)
empty[2] = False  # query 2 may see nothing
yours, _ = attention(q, k, v, empty)
out, w = attend(q, k, v, mask=empty)
sdpa = F.scaled_dot_product_attention(q, k, v, attn_mask=empty)
print("yours,  output of row 2:", yours[0, 0, 2, :4].tolist(), "…")
print("attend, output of row 2:", out[0, 0, 2, :4].tolist(), "…")
print("attend, weights of row 2:", w[0, 0, 2].tolist())
print(
    "attend: any NaN:",
    bool(out.isnan().any()),
    "| equals SDPA:",
    torch.allclose(out, sdpa, atol=1e-6),
)

# %% [markdown]
# ## 5. Try it: a temperature slider
#
# A temperature $\tau$ divides the scores before the softmax:
# $\mathrm{softmax}(S/\tau)$. Small $\tau$ sharpens the weights towards a hard
# lookup, large $\tau$ flattens them towards a plain average — the same effect
# as the $\sqrt{d_k}$ scaling, made visible. Move the slider (in JupyterLab or
# Colab); the book shows the figure at $\tau = 1$.

# %%
sentence = ["the", "cat", "sat", "on", "the", "mat"]
g = torch.Generator().manual_seed(3)
x = torch.randn(len(sentence), 16, generator=g)  # one 16-d vector per token
x[4] = x[0]  # the two "the" tokens share a vector


def draw_temperature(fig, temperature):
    _, w = attend(
        x, x, x, scale=1 / (temperature * math.sqrt(x.shape[-1])), causal=True
    )
    ax = fig.subplots()
    attention_heatmap(
        w,
        ax,
        query_labels=sentence,
        key_labels=sentence,
        annotate=True,
        title=f"causal self-attention, temperature τ = {temperature:.2f}",
    )


explorer = InteractiveFigure(
    draw_temperature,
    {
        "temperature": widgets.FloatLogSlider(
            value=1.0, base=10, min=-1, max=1, step=0.05, description="τ"
        )
    },
    figsize=(5.5, 4.5),
    description="attention heatmap with a temperature slider",
)
explorer

# %% [markdown]
# How much the temperature changes the picture, in numbers — the mean entropy
# of the rows (excluding the first, which has a single key) at three settings:

# %%
for temperature in (0.1, 1.0, 10.0):
    _, w = attend(
        x, x, x, scale=1 / (temperature * math.sqrt(16)), causal=True
    )
    print(
        f"τ = {temperature:>4}: "
        f"mean row entropy {attention_entropy(w[1:]).mean():.3f} nats, "
        f"mean largest weight {w[1:].max(-1).values.mean():.3f}"
    )
    print(
        "          row 5 (the second 'the'):",
        [round(x, 2) for x in w[4].tolist()],
    )

# %% [markdown]
# **What we saw.** At $\tau=0.1$ the rows are nearly one-hot (mean largest
# weight 0.90), and the second "the" splits its weight exactly in half between
# the two identical "the" vectors (0.5 and 0.5). Already in the figure at
# $\tau=1$ every query puts its largest weight on its own token (the second
# "the" ties with the first, 0.34 and 0.34). That is a property of these
# vectors, not of dot products: $q\cdot k = |q|$ times the length of $k$'s
# projection on $q$, and here no other vector projects onto a token's vector
# further than that vector's own length; a longer vector pointing roughly the
# same way would outscore the token itself (the printout shows only row 5 at
# the other settings). At $\tau=10$
# the second "the" is close to uniform over the five keys it may see
# (0.18–0.21), and the mean entropy has grown from 0.15 to 1.30 nats. The mask
# is untouched by temperature: the upper triangle stays exactly zero.
#
# ## Exercises
#
# ```{exercise}
# :label: ex-01-variance
# Check numerically that the dot product of two random vectors with
# independent standard normal entries has variance $d_k$, and that dividing by
# $\sqrt{d_k}$ brings it back to 1.
# ```
#
# ```{solution-start} ex-01-variance
# :class: dropdown
# ```

# %%
g = torch.Generator().manual_seed(0)
lines = []
for d in (4, 64, 1024):
    a, b = (
        torch.randn(20000, d, generator=g),
        torch.randn(20000, d, generator=g),
    )
    dots = (a * b).sum(-1)
    lines.append(
        f"d_k = {d:>4}: var(q·k) = {dots.var():8.1f},  var(q·k/√d_k) = "
        f"{(dots / math.sqrt(d)).var():.3f}"
    )
print("\n".join(lines))

# %% [markdown]
# The variance of $q\cdot k$ is close to $d_k$ (4.0, 63.7 and 1035.2 for
# $d_k$ = 4, 64 and 1024, from 20,000 pairs each), and after the division by
# $\sqrt{d_k}$ close to 1 (0.994, 0.995, 1.011): each product $q_i k_i$ has
# mean 0 and variance 1, and the variances of $d_k$ independent terms add up.
#
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-01-prefix
# Build a *prefix-LM* mask by hand for $T=5$ with a prefix of 2 tokens: the
# prefix sees itself fully, the rest attends causally. Compare with
# `annotated.attention.masks.prefix_mask`.
# ```
#
# ```{solution-start} ex-01-prefix
# :class: dropdown
# ```

# %%
from annotated.attention.masks import prefix_mask

mine = causal_mask(5).clone()
mine[:2, :2] = True  # the two prefix tokens see each other
print(
    f"{mine.int()}\nsame as prefix_mask(5, 2): "
    f"{torch.equal(mine, prefix_mask(5, 2))}"
)

# %% [markdown]
# Start from the causal mask and open the top-left 2 × 2 block: rows 0 and 1
# (the prefix) see both prefix tokens, rows 2–4 attend causally. The result
# equals `prefix_mask(5, 2)`.
#
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-01-bias
# Show that an additive bias of $-\infty$ on some keys is the same as a
# boolean mask that hides them, and that a bias of $+\ln 2$ on one key doubles
# its unnormalised weight.
# ```
#
# ```{solution-start} ex-01-bias
# :class: dropdown
# ```

# %%
g = torch.Generator().manual_seed(0)
q, k, v = (
    torch.randn(1, 4, 8, generator=g),
    torch.randn(1, 6, 8, generator=g),
    torch.randn(1, 6, 3, generator=g),
)
hide = torch.tensor([True, True, False, True, False, True])
out_mask, w_mask = attend(q, k, v, mask=hide)
out_bias, w_bias = attend(
    q, k, v, bias=torch.zeros(6).masked_fill(~hide, float("-inf"))
)
print("−∞ bias equals the mask:", torch.allclose(out_mask, out_bias))

plus = torch.zeros(6)
plus[0] = math.log(2)
_, w0 = attend(q, k, v)
_, w1 = attend(q, k, v, bias=plus)
ratio = (w1[..., 0] / w1[..., 1]) / (w0[..., 0] / w0[..., 1])
print(
    "weight ratio key0/key1 grows by:",
    [round(r, 3) for r in ratio[0].tolist()],
)

# %% [markdown]
# A bias of $-\infty$ makes $e^{s - \infty} = 0$, exactly the weight a mask
# gives, so the two outputs agree. A bias of $+\ln 2$ multiplies key 0's
# $e^{s}$ by $e^{\ln 2} = 2$; the softmax then divides every key by the same
# new sum, so key 0's weight *relative to any other key* doubles — the ratio
# 2.0 for all four queries — while its absolute weight grows by less.
#
# ```{solution-end}
# ```
#
# ## Summary
#
# * Attention is a weighted average of values, with weights from a softmax
#   over query–key similarities: a differentiable dictionary lookup.
# * Averaging the past is a matrix product with a row-normalised
#   lower-triangular matrix. A softmax over scores, with the future set to
#   $-\infty$, turns that average into a weighted one; with all scores equal
#   it is the plain average again.
# * Self-attention computes the scores from the tokens: learned $W_q$, $W_k$,
#   $W_v$ give each token a query, a key and a value, and
#   $\mathrm{softmax}(QK^\top/\sqrt{d_k})\,V$ is five lines of code;
#   `torch.tril` makes it causal.
# * Your function equals the library's `attend` and PyTorch's SDPA on random
#   inputs. `attend` adds a `scale`, padding masks and masks as functions,
#   `bias` and `score_mod` hooks, dropout, zeros instead of NaN for a query
#   with nothing to see, and checks with readable errors; like yours, it
#   returns the weights so that we can plot them.
# * The $1/\sqrt{d_k}$ factor keeps the scores' variance at 1, so the softmax
#   neither saturates nor starves the gradient as heads grow.
# * Masks set scores to $-\infty$: causal masks hide the future, padding masks
#   hide filler; a row with nothing to see gives zeros, not NaN.
#
# Next week: many attention heads at once, each with its own projections.
