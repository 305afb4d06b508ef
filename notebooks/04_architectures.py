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
# # Week 4 — The transformer block and its three architectures
#
# **Learning goals.** By the end of this chapter you can
#
# 1. assemble a transformer block from attention, a feed-forward network,
#    residual connections and LayerNorm, and say what each piece is for;
# 2. explain, with measurements, why *where* the LayerNorm sits (post-LN or
#    pre-LN) decides whether a deep stack needs a learning-rate warm-up
#    {cite:p}`xiong2020layernorm`;
# 3. build the three architectures from the same block — a decoder-only GPT,
#    an encoder-only BERT and an encoder-decoder T5 {cite:p}`raffel2020t5` —
#    train each on a small task and read their attention maps;
# 4. decode greedily, with a temperature and with top-k, and measure what a
#    key-value cache saves.
#
# The code lives in `annotated/models/`: `blocks.py` (the block),
# `transformer.py` (the models), `config.py` (their one config),
# `checkpoints.py` (save/load) and `generate.py` (decoding).

# %%
import textwrap
import time

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

from annotated.analysis.expect import (
    expect,
    expect_above,
    expect_below,
    expect_between,
    expect_greater,
    expect_seeds_greater,
)
from annotated.analysis.intervals import format_interval, t_interval
from annotated.figures.pattern_diagrams import architecture_masks_diagram
from annotated.figures.showcode import show_source
from annotated.figures.viz import attention_heatmap, figure_image
from annotated.models.blocks import (
    DecoderBlock,
    EncoderBlock,
    FeedForward,
    Residual,
)
from annotated.models.config import ModelConfig
from annotated.models.generate import generate
from annotated.models.summary import count_parameters, summary
from annotated.models.transformer import build_model
from annotated.tasks import get_task

torch.manual_seed(0)
# Tiny models train faster on one thread than on several (no synchronisation
# between threads), and one thread makes the numbers independent of the core
# count (the CPU's vector instructions still move their later digits).
torch.set_num_threads(1)

# %% [markdown]
# ## 1. The block, piece by piece
#
# A transformer block {cite:p}`vaswani2017attention` alternates two kinds of
# sub-layer:
#
# * **attention** mixes information *across positions* (chapters 1–3);
# * a **position-wise feed-forward network** (FFN) transforms each position on
#   its own:
#
# $$
# \mathrm{FFN}(x) = W_2\,\mathrm{GELU}(W_1 x + b_1) + b_2, \qquad
# W_1 \in \mathbb{R}^{4C\times C},\; W_2 \in \mathbb{R}^{C \times 4C}.
# $$
#
# Its two matrices hold $8C^2$ weights, twice the $4C^2$ of attention's four
# $C\times C$ projections: about two thirds of a block's parameters. Because
# it acts on each position separately, changing one position's input changes
# only that position's output:

# %%
ff = FeedForward(d_model=8, d_ff=32, activation="gelu")
x = torch.randn(1, 5, 8)  # (B, T, C)
x_changed = x.clone()
x_changed[0, 2] += 1.0  # change position 2 only
moved = (ff(x_changed) - ff(x)).abs().amax(-1)[0]  # (T,)
print(
    "FFN output changed at positions:", [t for t in range(5) if moved[t] > 0]
)
print("FFN parameters:", count_parameters(ff), "= 8*32 + 32 + 32*8 + 8")

# %% [markdown]
# Each sub-layer $f$ sits inside a **residual connection** with a
# **LayerNorm** (which rescales each position's vector to mean 0 and variance
# 1, then applies a learned gain and bias). There are two ways to arrange
# them:
#
# $$
# \text{post-LN (original):}\quad
# x \leftarrow \mathrm{LN}\big(x + f(x)\big) \qquad\qquad
# \text{pre-LN (GPT-2 and most models since):}\quad
# x \leftarrow x + f\big(\mathrm{LN}(x)\big)
# $$
#
# In pre-LN the path from the input to the output is a plain sum,
# $x_L = x_0 + \sum_l f_l(\cdot)$, and one last LayerNorm follows the stack.
# In post-LN every block ends with a LayerNorm, so the signal (and the
# gradient) passes through $L$ normalisations on its way.
#
# ### Write a block, then a GPT
#
# Before reading the library's block, write a pre-LN one (GPT-2's
# arrangement) yourself. Attention first: chapter 2's multi-head attention
# with one fused projection for $W_q, W_k, W_v$, made causal, with PyTorch's
# `scaled_dot_product_attention` computing
# $\mathrm{softmax}(QK^\top/\sqrt{D})V$ for every head at once:


# %% tags=["from-scratch"]
class CausalSelfAttention(nn.Module):
    """Chapter 2's multi-head attention, causal: x (B, T, C) -> (B, T, C)."""

    def __init__(self, C: int, H: int):
        super().__init__()
        self.H = H
        self.qkv = nn.Linear(C, 3 * C)  # W_q, W_k, W_v side by side
        self.out = nn.Linear(C, C)  # W_o: joins the heads

    def forward(self, x):
        B, T, C = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.H, C // self.H)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, H, T, D)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(y.transpose(1, 2).reshape(B, T, C))


# %% [markdown]
# The block is the two pre-LN sub-layers of the formula above:
# $x \leftarrow x + \mathrm{attn}(\mathrm{LN}_1(x))$, then
# $x \leftarrow x + \mathrm{MLP}(\mathrm{LN}_2(x))$, with the $4\times$ GELU
# feed-forward network of the start of this section:


# %% tags=["from-scratch"]
class Block(nn.Module):
    """Pre-LN: x + attn(LN1(x)), then x + MLP(LN2(x)); (B, T, C)."""

    def __init__(self, C: int, H: int):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(C), CausalSelfAttention(C, H)
        self.ln2 = nn.LayerNorm(C)
        self.mlp = nn.Sequential(
            nn.Linear(C, 4 * C), nn.GELU(), nn.Linear(4 * C, C)
        )

    def forward(self, x):
        x = x + self.attn(self.ln1(x))  # positions exchange information
        return x + self.mlp(self.ln2(x))  # each position on its own


block = Block(32, 4)
n_params = sum(p.numel() for p in block.parameters())
print("output shape:", tuple(block(torch.randn(2, 10, 32)).shape))
expected = 12 * 32**2 + 13 * 32  # attn 4C²+4C, MLP 8C²+5C, 2 LNs 4C
print("parameters:", n_params, "= 12·32² + 13·32:", n_params == expected)

# %% [markdown]
# A GPT is a stack of these blocks between an input and an output: a
# learned vector for each token plus a learned vector for each position
# (attention alone does not know the order, chapter 3), $N$ blocks, one last
# LayerNorm (pre-LN leaves the residual sum unnormalised until here), and a
# linear layer from $C$ to a score for every token of the vocabulary:


# %% tags=["from-scratch"]
class GPT(nn.Module):
    """Token + position embeddings -> N blocks -> LayerNorm -> logits."""

    def __init__(self, V: int, C: int, H: int, N: int, max_len: int):
        super().__init__()
        self.tok = nn.Embedding(V, C)  # a vector per token
        self.pos = nn.Embedding(max_len, C)  # a vector per position
        self.blocks = nn.Sequential(*[Block(C, H) for _ in range(N)])
        self.ln_f = nn.LayerNorm(C)  # pre-LN: one last LayerNorm
        self.head = nn.Linear(C, V, bias=False)  # C -> V scores

    def forward(self, idx):  # (B, T) token ids -> (B, T, V) logits
        positions = torch.arange(idx.shape[1], device=idx.device)  # (T,)
        x = self.tok(idx) + self.pos(positions)  # (B, T, C)
        return self.head(self.ln_f(self.blocks(x)))


tiny_gpt = GPT(V=11, C=32, H=4, N=2, max_len=16)
print("logits:", tuple(tiny_gpt(torch.randint(0, 11, (2, 16))).shape))

# %% [markdown]
# Is this the library's block? Give the library's `DecoderBlock` random
# weights (LayerNorms and biases included), copy them into ours — its
# `q_proj`, `k_proj`, `v_proj` stacked into our fused `qkv` — and compare on
# a random input. Then the same for a whole GPT: the library's decoder-only
# model with learned positions and a separate output layer (ours does not
# share the token embedding with it), dropout 0:


# %%
def block_weights(library_block):
    """Our Block's state dict, read from a library DecoderBlock."""
    attn, ff = library_block.self_attn, library_block.ff
    mha, mlp = attn.sublayer, ff.sublayer
    qkv = (mha.q_proj, mha.k_proj, mha.v_proj)
    return {
        "ln1.weight": attn.norm.weight,
        "ln1.bias": attn.norm.bias,
        "attn.qkv.weight": torch.cat([proj.weight for proj in qkv]),
        "attn.qkv.bias": torch.cat([proj.bias for proj in qkv]),
        "attn.out.weight": mha.out_proj.weight,
        "attn.out.bias": mha.out_proj.bias,
        "ln2.weight": ff.norm.weight,
        "ln2.bias": ff.norm.bias,
        "mlp.0.weight": mlp.up.weight,
        "mlp.0.bias": mlp.up.bias,
        "mlp.2.weight": mlp.down.weight,
        "mlp.2.bias": mlp.down.bias,
    }


def randomize(module):
    """Every weight, bias and LayerNorm gain of `module` drawn at random."""
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.normal_(0.0, 0.3)
    return module.eval()


torch.manual_seed(0)
library_block = randomize(DecoderBlock(d_model=32, n_heads=4))
block.load_state_dict(block_weights(library_block))  # strict: every weight
x = torch.randn(2, 10, 32)  # (B, T, C)
torch.testing.assert_close(block(x), library_block(x)[0])

check_config = ModelConfig(
    arch="decoder",
    vocab_size=11,
    d_model=32,
    n_heads=4,
    n_layers=2,
    max_len=16,
    positional="learned",
    tie_weights=False,
    dropout=0.0,
)
library_gpt = randomize(build_model(check_config))
stack = library_gpt.decoder
weights = {
    "tok.weight": library_gpt.tok_emb.weight,
    "pos.weight": stack.positional.table.weight,
    "ln_f.weight": stack.final_norm.weight,
    "ln_f.bias": stack.final_norm.bias,
    "head.weight": library_gpt.lm_head.weight,
}
for n, library_block_n in enumerate(stack.blocks):
    for name, value in block_weights(library_block_n).items():
        weights[f"blocks.{n}.{name}"] = value
tiny_gpt.load_state_dict(weights)  # strict: every weight has its twin
idx = torch.randint(0, 11, (2, 16))
torch.testing.assert_close(tiny_gpt(idx), library_gpt(idx).logits)
print(
    "our Block equals the library's DecoderBlock:",
    torch.allclose(block(x), library_block(x)[0], atol=1e-5),
)
print(
    "our GPT equals the library's GPT:",
    torch.allclose(tiny_gpt(idx), library_gpt(idx).logits, atol=1e-5),
)
print(
    "same number of parameters:",
    count_parameters(tiny_gpt) == count_parameters(library_gpt),
    f"({count_parameters(tiny_gpt)})",
)

# %% [markdown]
# The library's block adds what the rest of the book needs: the post-LN
# arrangement behind one flag (§2 and §3 measure both), dropout after each
# sub-layer, a choice of activation, an optional cross-attention sub-layer
# that reads an encoder (T5, §4.3), a positional encoding that acts inside
# attention (RoPE, ALiBi or T5's bias, chapter 3), padding masks, a
# key-value cache for generation (§6), the attention weights on request,
# and a choice of attention kernel (chapter 7). Its GPT adds any of chapter
# 3's encodings in place of our learned positions (RoPE by default), an
# output layer that shares the token embedding (`tie_weights=True`),
# GPT-2's initialisation, and saving and loading (§7). Each of its
# sub-layers is a `Residual`, whose `forward` holds both arrangements,
# switched by one flag (folded):

# %% tags=["hide-output"]
show_source(Residual.forward)

# %% [markdown]
# An encoder block is self-attention + FFN; a decoder block makes its
# self-attention causal and, in an encoder-decoder model, adds a
# **cross-attention** sub-layer whose queries come from the decoder and whose
# keys and values come from the encoder output. They are the same class with
# two flags:

# %%
print(EncoderBlock(d_model=32, n_heads=4))
decoder_block = DecoderBlock(d_model=32, n_heads=4, cross_attention=True)
print(
    "decoder block sub-layers:",
    [name for name, _ in decoder_block.named_children()],
)

# %% [markdown]
# ## 2. Pre-LN vs post-LN: gradients at initialisation
#
# {cite:t}`xiong2020layernorm` analyse both arrangements at initialisation
# (Xavier-initialised weights, inputs of unit variance) and find that in
# post-LN the gradients of the last layers are large, while in pre-LN they
# shrink like $1/\sqrt{L}$ and stay comparable across layers. Large early
# updates near the output are what a learning-rate **warm-up** tames. We
# measure the gradient norm of each block's FFN output matrix $W_2$ in a
# 12-layer GPT on one batch of the `sort` task, with the initialisation of the
# paper:

# %%
sort_task = get_task("sort")  # prompt "3 0 3 9 1 SEP" → answer "0 1 3 3 9"
N_SORT = 6  # numbers to sort


def xavier_init(model):
    """The initialisation Xiong et al. analyse: Xavier weights, unit-variance
    token embeddings."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=1.0)
    return model


def task_loss(model, batch):
    """Cross-entropy at the scored (answer) positions of a decoder-only
    batch."""
    logits = model(batch.inputs).logits  # (B, T, V)
    return F.cross_entropy(
        logits[batch.target_mask], batch.targets[batch.target_mask]
    )


def stack_config(n_layers, norm):
    return ModelConfig(
        vocab_size=sort_task.vocab_size,
        d_model=32,
        n_heads=4,
        n_layers=n_layers,
        norm=norm,
        max_len=16,
    )


grad_norms = {}
for norm in ("post", "pre"):
    torch.manual_seed(0)
    model = xavier_init(build_model(stack_config(12, norm)))
    task_loss(model, sort_task.sample(64, N_SORT, 0)).backward()
    grad_norms[norm] = [
        block.ff.sublayer.down.weight.grad.norm().item()
        for block in model.decoder.blocks
    ]
print("‖∂loss/∂W2‖ by layer, 1 … 12:")
print(
    "\n".join(
        f"{norm:>4}-LN " + " ".join(f"{g:.2f}" for g in grad_norms[norm])
        for norm in grad_norms
    )
)

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(6, 3))
for norm, marker in (("post", "o"), ("pre", "s")):
    ax.plot(range(1, 13), grad_norms[norm], marker=marker, label=f"{norm}-LN")
ax.set_xlabel("layer")
ax.set_ylabel("gradient norm of $W_2$")
ax.set_title("Gradients at initialisation, 12-layer GPT")
ax.legend()
plt.show()

# %% [markdown]
# The paper's theorem is about the *last* layer as the stack gets deeper: for
# post-LN its gradient does not depend on the depth $L$, for pre-LN it scales
# like $1/\sqrt{L}$. If that holds, the last column below stays roughly
# constant:

# %%
table = ["layers   post-LN   pre-LN   pre-LN × √L"]
for depth in (1, 2, 4, 8, 16):
    last = {}
    for norm in ("post", "pre"):
        torch.manual_seed(0)
        model = xavier_init(build_model(stack_config(depth, norm)))
        task_loss(model, sort_task.sample(64, N_SORT, 0)).backward()
        last[norm] = (
            model.decoder.blocks[-1]
            .ff.sublayer.down.weight.grad.norm()
            .item()
        )
    table.append(
        f"{depth:>6}   {last['post']:7.2f}   {last['pre']:6.2f}   "
        f"{last['pre'] * depth**0.5:11.2f}"
    )
print("\n".join(table))

# %% [markdown]
# ## 3. Pre-LN vs post-LN: training with and without warm-up
#
# Now we train. The loop is short enough to write here: AdamW, and an optional
# **linear warm-up** that raises the learning rate from almost 0 to its peak
# over the first steps. (The library's `annotated.training.loop` has the full
# version with cosine decay and clipping.)


# %%
def fit(model, loss_of_step, steps, *, lr=3e-3, warmup=0):
    """Train with AdamW; the learning rate ramps up linearly over `warmup`
    steps. Returns the losses."""
    opt = torch.optim.AdamW(
        model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.0
    )
    ramp = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: min(1.0, (step + 1) / warmup) if warmup else 1.0
    )
    model.train()
    losses = []
    for step in range(steps):
        loss = loss_of_step(model, step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        ramp.step()
        losses.append(loss.item())
    model.eval()
    return losses


def sort_steps(seed):
    """A fresh batch of 32 sorting problems per step, from a seeded
    generator."""
    gen = torch.Generator().manual_seed(seed)
    return lambda model, step: task_loss(
        model, sort_task.sample(32, N_SORT, gen)
    )


STEPS, WARMUP, SEEDS = 80, 30, (0, 1, 2)
curves = {}  # (depth, norm, warm-up) -> the training losses of each seed
for depth in (2, 12):
    for norm in ("post", "pre"):
        for warmup in (0, WARMUP):
            curves[depth, norm, warmup] = []
            for seed in SEEDS:  # the initial weights and the batches
                torch.manual_seed(seed)
                model = xavier_init(build_model(stack_config(depth, norm)))
                curves[depth, norm, warmup].append(
                    fit(model, sort_steps(seed), STEPS, warmup=warmup)
                )


def smooth(values, k=10):
    return [
        sum(values[max(0, i - k + 1) : i + 1])
        / len(values[max(0, i - k + 1) : i + 1])
        for i in range(len(values))
    ]


# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
for ax, depth in zip(axes, (2, 12)):
    for norm, color in (("post", "tab:red"), ("pre", "tab:blue")):
        for warmup, style in ((0, "-"), (WARMUP, "--")):
            label = f"{norm}-LN, " + (
                f"{WARMUP}-step warm-up" if warmup else "no warm-up"
            )
            for seed, curve in zip(SEEDS, curves[depth, norm, warmup]):
                ax.plot(
                    smooth(curve),
                    style,
                    color=color,
                    alpha=1.0 if seed == 0 else 0.35,
                    label=label if seed == 0 else None,
                )
    ax.set_title(f"{depth} layers")
    ax.set_xlabel("step")
axes[0].set_ylabel("training loss (smoothed)")
axes[1].legend()
fig.suptitle("seed 0 dark, seeds 1 and 2 light")
plt.show()


# %% tags=["nbval-ignore-output"]
def final_losses(setting):
    """The mean loss of the last 10 steps, one per seed."""
    return [sum(curve[-10:]) / 10 for curve in curves[setting]]


table = [
    "final loss (mean of the last 10 steps), "
    f"seeds {', '.join(map(str, SEEDS))}, and the mean [95% CI]:"
]
for depth in (2, 12):
    for norm in ("post", "pre"):
        for warmup in (0, WARMUP):
            finals = final_losses((depth, norm, warmup))
            table.append(
                f"  {depth:>2} layers, {norm:>4}-LN, warm-up {warmup:>2}: "
                + " ".join(f"{f:.2f}" for f in finals)
                + f"   mean {format_interval(*t_interval(finals))}"
            )
print("\n".join(table))


# %% tags=["remove-cell"]
# The conclusions drawn below, each read from `curves`. Re-runs on other
# CPUs move the stalled deep post-LN runs (no warm-up) by up to about 0.15
# and leave the others nearly unchanged; every margin leaves room for that.
def mean(values):
    return sum(values) / len(values)


final = {setting: final_losses(setting) for setting in curves}
shallow = [loss for s in curves if s[0] == 2 for loss in final[s]]
expect(
    "with 2 layers all four settings learn: every run ends between about "
    "0.3 and 0.55, far below the 2.3 of guessing",
    0.2 <= min(shallow) and max(shallow) <= 0.7,  # 0.31 to 0.53 seen
    lowest=min(shallow),
    highest=max(shallow),
)
expect_seeds_greater(
    "with 2 layers post-LN with warm-up is clearly behind without it",
    final[2, "post", WARMUP],
    final[2, "post", 0],
    margin=0.08,  # half the gap of about 0.16; the seeds lie within 0.02
)
pre_low, pre_high = t_interval(final[2, "pre", 0])[1:]
expect(
    "with 2 layers pre-LN with warm-up is behind too, but within the "
    "interval of the runs without it",
    mean(final[2, "pre", 0]) < mean(final[2, "pre", WARMUP]) <= pre_high,
    with_warmup=mean(final[2, "pre", WARMUP]),
    without=mean(final[2, "pre", 0]),
    interval_high=pre_high,
)
expect_below(
    "with 12 layers every pre-LN run ends about as low as the shallow ones",
    max(final[12, "pre", 0] + final[12, "pre", WARMUP]),
    0.7,  # they end near 0.35 to 0.5, as the 2-layer runs do
)
expect_above(
    "with 12 layers every post-LN run without warm-up stays within a few "
    "tenths of the plateau at ln 10 = 2.3",
    min(min(smooth(curve)) for curve in curves[12, "post", 0]),
    1.7,  # its smoothed losses never went below 1.85 on any CPU we tried
)
expect_seeds_greater(
    "with 12 layers and no warm-up post-LN ends far above pre-LN",
    final[12, "post", 0],
    final[12, "pre", 0],
    margin=1.0,  # the gap is about 1.6
)
left_plateau = [
    next(step for step, v in enumerate(smooth(curve)) if v < 2.0)
    for curve in curves[12, "post", WARMUP]
]
expect(
    "with warm-up every 12-layer post-LN run leaves the plateau after "
    "roughly 40 to 60 steps",
    35 <= min(left_plateau) and max(left_plateau) <= 65,  # 45 to 58 seen
    steps=left_plateau,
)
expect_seeds_greater(
    "with 12 layers post-LN ends far lower with warm-up than without",
    final[12, "post", 0],
    final[12, "post", WARMUP],
    margin=0.4,  # the gap is about 0.8
)
expect_seeds_greater(
    "with 12 layers post-LN with warm-up is still far behind pre-LN",
    final[12, "post", WARMUP],
    final[12, "pre", 0],
    margin=0.4,  # the gap is about 0.8
)
expect_below(
    "with 12 layers pre-LN does not need the warm-up",
    abs(mean(final[12, "pre", WARMUP]) - mean(final[12, "pre", 0])),
    0.15,  # about 0.03 apart, each seed within 0.1 of the mean
)

# %% [markdown]
# **What we saw.** The gradient measurements agree with the paper only in
# part. Post-LN gradients are about the same in every layer (between 0.68 and
# 0.90 at 12 layers) — the rise towards the output in the paper's figure does
# not show up in this small model. Nor are the pre-LN gradients "comparable
# across layers", as the paper finds: they fall from 1.12 in the first layer
# to 0.30 in the last, by almost a factor of four. The depth table matches the
# theorem up to 8 layers: the last pre-LN layer's gradient times $\sqrt{L}$
# stays close to 1 (0.96 to 1.13), but drops to 0.72 at 16; the post-LN one
# stays between 0.71 and 1.11 with no $1/\sqrt{L}$ trend. At 12 layers the
# last post-LN layer gets a gradient almost three times the pre-LN one (0.86
# against 0.30).
#
# The loss curves, three seeds per setting (final losses as the mean of the
# last 10 steps, then the mean over seeds with its 95% interval), are the
# first numbers in this chapter that come from training. Re-run them on
# another CPU or with another number of threads and they change in their later
# digits (the vector instructions and the order of the sums differ); the
# stalled runs below change most. What we conclude from them holds regardless.
# With 2 layers all four settings learn: every run ends between about 0.3 and
# 0.55, far below the 2.3 of guessing. The runs with warm-up start slower (the
# learning rate is small at first) and are still behind after 80 steps —
# clearly for post-LN, within the interval of the runs without warm-up for
# pre-LN. With 12 layers the pre-LN runs, with or without warm-up, end about
# as low as the shallow ones, but post-LN without warm-up stalls on a plateau
# near 2.3 — about $\ln 10$, the loss of guessing among the ten digits — in
# all three seeds, and after 80 steps it is still only a few tenths below it.
# The same post-LN stack *with* warm-up leaves the plateau after roughly 40 to
# 60 steps and ends well below the runs without warm-up, but still far behind
# the pre-LN runs. That is the paper's point in miniature: the deep post-LN
# stack does much worse without the warm-up, the pre-LN stack does not need it
# (80 steps only: the size of the gaps would change with the learning rate and
# the depth).
#
# ## 4. Three architectures from one block
#
# `ModelConfig` describes a model; `build_model` picks the class from `arch`:
#
# * `arch="decoder"`: GPT {cite:p}`radford2018gpt`; attention: causal;
#   trained to predict the next token.
# * `arch="encoder"`: BERT {cite:p}`devlin2019bert`; attention:
#   bidirectional; trained to recover masked tokens (and classify).
# * `arch="encoder-decoder"`: T5 {cite:p}`raffel2020t5`; attention: encoder
#   bidirectional, decoder causal + cross-attention; trained to write an
#   output sequence for an input sequence.
#
# What each may see, as the masks of their attention layers (the T5 panels are
# one model):

# %% tags=["hide-input"]
figure_image(architecture_masks_diagram())

# %% [markdown]
# All three share the token embedding with their output layer
# (`tie_weights=True`). The `summary` table lists what owns parameters; here
# the 2-layer GPT we train next:

# %%
gpt_config = ModelConfig(
    arch="decoder",
    vocab_size=sort_task.vocab_size,
    d_model=64,
    n_heads=4,
    n_layers=2,
    max_len=16,
)
torch.manual_seed(0)
gpt = build_model(gpt_config)
print(summary(gpt, depth=3))

# %% [markdown]
# ### 4.1 GPT sorts numbers
#
# The `sort` task lays out `prompt SEP answer` as one sequence and scores the
# answer positions only; because the model is causal, predicting position
# $t+1$ from positions $\le t$ is exactly what it will have to do when it
# generates.


# %% tags=["nbval-ignore-output"]
def sequence_accuracy(model, batch):
    """Token accuracy at the scored positions, and the share of sequences with
    every scored token right."""
    with torch.no_grad():
        pred = model(batch.inputs).logits.argmax(-1)  # (B, T)
    right = (pred == batch.targets) | ~batch.target_mask
    return (pred == batch.targets)[
        batch.target_mask
    ].float().mean().item(), right.all(1).float().mean().item()


start = time.perf_counter()
gpt_gen = torch.Generator().manual_seed(1)
gpt_losses = fit(
    gpt,
    lambda model, step: task_loss(
        model, sort_task.sample(64, N_SORT, gpt_gen)
    ),
    300,
    warmup=30,
)
gpt_seconds = time.perf_counter() - start
test_sort = sort_task.sample(
    1000, N_SORT, 1234
)  # held-out problems (another seed)
token_acc, seq_acc = sequence_accuracy(gpt, test_sort)
greedy_answers = generate(
    gpt, test_sort.inputs[:, : N_SORT + 1], N_SORT, greedy=True
)[:, N_SORT + 1 :]
greedy_right = (
    (greedy_answers == test_sort.targets[:, N_SORT:])
    .all(1)
    .float()
    .mean()
    .item()
)
print(
    "GPT on sort, 1000 held-out problems: "
    f"final training loss {sum(gpt_losses[-10:]) / 10:.3f}"
)
print(
    f"  teacher-forced: token accuracy {token_acc:.3f}, "
    f"whole answers right {seq_acc:.3f}"
)
print(f"  greedy decoding: whole answers right {greedy_right:.3f}")

# %% tags=["remove-cell"]
expect_above(
    "the GPT gets well over nine in ten answer tokens right",
    token_acc,
    0.93,  # 0.96 to 0.99 under every CPU capability we tried
)
expect_below(
    "fewer whole answers than tokens are right",
    seq_acc,
    token_acc - 0.05,  # 0.07 to 0.19 fewer; all six tokens must be right
)
expect(
    "greedy decoding gets the same share of whole answers as teacher forcing",
    abs(greedy_right - seq_acc) <= 0.002,  # equal in exact arithmetic
    greedy=greedy_right,
    teacher_forced=seq_acc,
)

# %% tags=["nbval-ignore-output"]
print(f"trained in {gpt_seconds:.1f} s")

# %% [markdown]
# What does it look at? Here is the attention of both layers for one test
# problem, averaged over the heads, for the query positions that predict the
# answer:

# %% tags=["nbval-ignore-output"]
example = sort_task.batch_from(torch.tensor([[7, 2, 9, 2, 5, 0]]))
with torch.no_grad():
    out = gpt(example.inputs, need_weights=True)
labels = sort_task.decode(example.inputs[0]).split()
answer_rows = slice(
    N_SORT, 2 * N_SORT
)  # the queries from SEP on, which predict the answer tokens
print(
    "prompt:",
    sort_task.decode(example.inputs[0, :N_SORT]),
    "→ model writes:",
    sort_task.decode(out.logits[0, answer_rows].argmax(-1)),
)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
for layer, ax in enumerate(axes):
    weights = out.attentions[layer][0].mean(0)[
        answer_rows
    ]  # (answer queries, keys), mean over heads
    attention_heatmap(
        weights,
        ax,
        query_labels=labels[answer_rows],
        key_labels=labels,
        title=f"GPT layer {layer + 1} (mean over heads)",
        colorbar=layer == 1,
    )
plt.show()

# %% tags=["remove-cell"]
tokens = example.inputs[0]
expect(
    "the GPT sorts the example correctly",
    torch.equal(
        out.logits[0, answer_rows].argmax(-1), tokens[:N_SORT].sort().values
    ),
)
strongest = [out.attentions[layer][0].mean(0).argmax(-1) for layer in (0, 1)]
reads_its_number = [
    q
    for q in range(N_SORT, 2 * N_SORT)
    if strongest[0][q] < N_SORT
    and tokens[strongest[0][q]] == example.targets[0, q]
]
expect(
    "in layer 1 most answer queries look hardest at a prompt number equal to "
    "the one they write",
    len(reads_its_number) >= 4  # 5 of the 6 under every capability tried
    and N_SORT in reads_its_number,  # the SEP query, which writes 0
    queries=reads_its_number,
)
reads_previous = [
    q for q in range(N_SORT, 2 * N_SORT) if strongest[1][q] == q - 1
]
expect(
    "in layer 2 several answer queries look hardest at the answer token "
    "just before them",
    len(reads_previous) >= 2,  # 3 of the 6 under every capability tried
    queries=reads_previous,
)

# %% [markdown]
# **What we saw.** After 300 steps (the time printed above varies with the
# machine and its load) the GPT gets well over nine in ten of the answer
# tokens right on held-out problems, but a clearly smaller share of whole
# answers, which need all six tokens right — teacher-forced: each answer
# token is predicted from the true tokens before it. (The share of whole
# answers is the number that moves most when the chapter is re-run on
# another CPU.) Greedy decoding, which feeds the model its own tokens, gets
# the same share of whole answers on the same problems, as it must: a greedy
# answer is entirely right exactly when every teacher-forced prediction for
# it is. The model sorts the example correctly. In layer 1 most answer
# queries put their largest weight on a prompt number equal to the one they
# are about to write (the `SEP` query, which writes 0, on the 0, and so on).
# In layer 2 several answer queries put their largest weight on the answer
# token just before them. Attention maps like these hint at a mechanism;
# they do not prove one.
#
# ### 4.2 BERT recovers masked tokens
#
# An encoder sees the whole sequence at once, so it cannot be trained to
# predict the next token (it would simply read it). BERT's objective is
# **masked language modelling**: replace some tokens by a `[MASK]` token and
# predict the originals. We use the `copy` task's sequences `x SEP x`, hide
# one symbol in each, and add one token to the vocabulary for `[MASK]`. A
# masked symbol can be recovered only from its twin in the *other* half —
# which lies before it or after it, so the model must look both ways.

# %%
copy_task = get_task("copy")
MASK = copy_task.vocab_size  # an extra token id for [MASK]
N_COPY = 6
bert_config = ModelConfig(
    arch="encoder",
    vocab_size=copy_task.vocab_size + 1,
    d_model=64,
    n_heads=4,
    n_layers=2,
    max_len=16,
)


def masked_copy_batch(batch_size, gen):
    """(masked input, original sequence, masked position) for sequences
    `x SEP x`."""
    b = copy_task.sample(batch_size, N_COPY, gen)
    full = torch.cat(
        [b.inputs, b.targets[:, -1:]], dim=1
    )  # (B, 2n + 1): prompt SEP copy
    pos = torch.randint(0, 2 * N_COPY, (batch_size,), generator=gen)
    pos = pos + (pos >= N_COPY).long()  # a symbol position, never SEP
    masked = full.clone()
    masked[torch.arange(batch_size), pos] = MASK
    return masked, full, pos


def mlm_loss(model, masked, full, pos):
    rows = torch.arange(len(pos))
    logits = model(masked).logits[rows, pos]  # (B, V) at the masked positions
    return F.cross_entropy(logits, full[rows, pos])


# %% tags=["nbval-ignore-output"]
torch.manual_seed(0)
bert = build_model(bert_config)
bert_gen = torch.Generator().manual_seed(2)
start = time.perf_counter()
bert_losses = fit(
    bert,
    lambda model, step: mlm_loss(model, *masked_copy_batch(64, bert_gen)),
    200,
    warmup=30,
)
bert_seconds = time.perf_counter() - start
masked, full, pos = masked_copy_batch(
    1000, torch.Generator().manual_seed(1234)
)
with torch.no_grad():
    guess = bert(masked).logits[torch.arange(1000), pos].argmax(-1)
bert_recovered = (guess == full[torch.arange(1000), pos]).float().mean()
print(
    f"BERT: final loss {sum(bert_losses[-10:]) / 10:.3f}, masked tokens "
    f"recovered {bert_recovered:.3f}"
)

# %% tags=["remove-cell"]
expect_above(
    "the BERT recovers almost all masked tokens (about 0.97)",
    bert_recovered,
    0.94,  # 0.974 under every CPU capability we tried
)

# %% tags=["nbval-ignore-output"]
print(f"trained in {bert_seconds:.1f} s")

# %% [markdown]
# Two examples, one masked in the first half and one in the second half. For
# the `[MASK]` query only, each row below is one head of one layer (L1 H2 =
# layer 1, head 2) and shows where that head looks; a key labelled `5@4` is
# the token 5 at position 4:

# %%
x = torch.tensor([3, 1, 4, 1, 5, 9])
sep = copy_task.sep_id
examples = torch.stack(
    [torch.cat([x, torch.tensor([sep]), x])] * 2
)  # (2, 13)
mask_at = [1, 11]  # hide the "1" at position 1, then the "5" at position 11
for row, p in enumerate(mask_at):
    examples[row, p] = MASK
with torch.no_grad():
    out = bert(examples, need_weights=True)
names = list(copy_task.token_names) + ["MASK"]
head_names = [
    f"L{layer + 1} H{h + 1}" for layer in range(2) for h in range(4)
]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
for row, (ax, p) in enumerate(zip(axes, mask_at)):
    labels = [f"{names[i]}@{t}" for t, i in enumerate(examples[row])]
    guess = names[out.logits[row, p].argmax()]
    mask_rows = torch.cat(
        [w[row, :, p] for w in out.attentions]
    )  # (layers * heads, keys): the [MASK] query
    attention_heatmap(
        mask_rows,
        ax,
        query_labels=head_names,
        key_labels=labels,
        title=f"[MASK] at {p} → predicted {guess}",
        colorbar=row == 1,
    )
    ax.set_ylabel("head (the query is [MASK])")
plt.show()

# %% tags=["remove-cell"]
for row, p in enumerate(mask_at):
    twin = p + N_COPY + 1 if p < N_COPY else p - N_COPY - 1
    on_twin = out.attentions[0][row, :, p, twin]  # (heads,) in layer 1
    expect(
        "in both examples most layer-1 heads put most of their weight on "
        "the masked token's twin",
        (on_twin > 0.5).sum() >= 3,  # 3 of 4, 0.7 or more, on every CPU
        mask_at=p,
        weights=on_twin.tolist(),
    )
layer2 = [out.attentions[1][row, :, p] for row, p in enumerate(mask_at)]
expect_below(
    "layer 2's heads spread their weight in the first example",
    layer2[0].max(),
    0.4,  # none above 0.25 on any CPU we tried
)
expect(
    "in the second example some layer-2 heads look mostly at the [MASK] "
    "position itself",
    (layer2[1][:, mask_at[1]] > 0.5).sum() >= 1,  # two heads, 0.6 and 0.99
    weights=layer2[1][:, mask_at[1]].tolist(),
)

# %% [markdown]
# **What we saw.** The BERT recovers almost all masked tokens (about 0.97)
# after 200 steps. In both examples most of the layer-1 heads put most of
# their weight on the masked token's twin: the `1@8` for the mask at
# position 1, which lies *after* it, and the `5@4` for the mask at position
# 11, which lies *before* it. A bidirectional encoder reads in both
# directions with the same weights; {ref}`ex-04-bert-one-way` shows what a
# causal model does instead. Layer 2's heads spread their weight in the first
# example; in the second, some of them look mostly at the `[MASK]` position
# itself.
#
# ### 4.3 T5 sorts too, with cross-attention
#
# The encoder-decoder reads the prompt with its encoder and writes the answer
# with its decoder, which starts from `SEP` and is trained with **teacher
# forcing**: its input is the answer shifted right by one. We use T5's own
# positional encoding, a learned bias per relative-distance bucket, shared by
# all layers of a stack.

# %% tags=["nbval-ignore-output"]
t5_config = ModelConfig(
    arch="encoder-decoder",
    vocab_size=sort_task.vocab_size,
    d_model=64,
    n_heads=4,
    n_layers=2,
    max_len=16,
    positional="t5",
)
SEP = sort_task.sep_id


def seq2seq_batch(batch_size, gen):
    src, answer = sort_task.seq2seq(batch_size, N_SORT, gen)  # (B, n), (B, n)
    tgt_in = torch.cat(
        [torch.full((batch_size, 1), SEP), answer[:, :-1]], dim=1
    )  # shifted right, starts with SEP
    return src, tgt_in, answer


def seq2seq_loss(model, src, tgt_in, answer):
    return F.cross_entropy(
        model(src, tgt_in).logits.flatten(0, 1), answer.flatten()
    )


torch.manual_seed(0)
t5 = build_model(t5_config)
t5_gen = torch.Generator().manual_seed(3)
start = time.perf_counter()
t5_losses = fit(
    t5,
    lambda model, step: seq2seq_loss(model, *seq2seq_batch(64, t5_gen)),
    300,
    warmup=30,
)
t5_seconds = time.perf_counter() - start
src, _, answer = seq2seq_batch(1000, torch.Generator().manual_seed(1234))
written = generate(
    t5, torch.full((1000, 1), SEP), N_SORT, src=src, greedy=True
)[:, 1:]  # drop the start token
print(
    "T5 on sort, 1000 held-out problems: "
    f"final training loss {sum(t5_losses[-10:]) / 10:.3f}"
)
t5_token_acc = (written == answer).float().mean().item()
t5_whole_right = (written == answer).all(1).float().mean().item()
print(
    "  greedy decoding: "
    f"token accuracy {t5_token_acc:.3f}, "
    f"whole answers right {t5_whole_right:.3f}"
)

# %% tags=["remove-cell"]
expect_above(
    "the T5 writes nearly all answer tokens right",
    t5_token_acc,
    0.95,  # 0.98 to 1.00 under every CPU capability we tried
)
expect_above(
    "the T5 writes most whole answers right",
    t5_whole_right,
    0.8,  # 0.94 to 0.99 under every CPU capability we tried
)

# %% tags=["nbval-ignore-output"]
print(f"trained in {t5_seconds:.1f} s")

# %% [markdown]
# The accuracy above comes from *generating* the answers token by token, so
# its share of whole answers compares fairly with the GPT's greedy one (for
# the GPT greedy and teacher-forced agree, §4.1); the token accuracies do
# not, since the GPT's were teacher-forced. Does the T5 sort better than the
# GPT? One seed of each cannot say: seeds of the same model differ a lot on
# this task. We train both nine times more, with seeds 1 to 9 (seed $s$:
# initial weights `manual_seed(s)`, batches from generators seeded $1 + s$
# for the GPT and $3 + s$ for the T5, as above for $s = 0$), and score all
# twenty on the same 1000 held-out problems by greedy decoding:

# %% tags=["nbval-ignore-output"]
ARCH_SEEDS = range(10)
whole_right = {"GPT": [greedy_right], "T5": [t5_whole_right]}  # seed 0
for seed in ARCH_SEEDS[1:]:
    torch.manual_seed(seed)
    gpt_s = build_model(gpt_config)
    gen_s = torch.Generator().manual_seed(1 + seed)
    fit(
        gpt_s,
        lambda model, step, gen=gen_s: task_loss(
            model, sort_task.sample(64, N_SORT, gen)
        ),
        300,
        warmup=30,
    )
    out_s = generate(
        gpt_s, test_sort.inputs[:, : N_SORT + 1], N_SORT, greedy=True
    )[:, N_SORT + 1 :]
    whole_right["GPT"].append(
        (out_s == test_sort.targets[:, N_SORT:]).all(1).float().mean().item()
    )
    torch.manual_seed(seed)
    t5_s = build_model(t5_config)
    gen_s = torch.Generator().manual_seed(3 + seed)
    fit(
        t5_s,
        lambda model, step, gen=gen_s: seq2seq_loss(
            model, *seq2seq_batch(64, gen)
        ),
        300,
        warmup=30,
    )
    out_s = generate(
        t5_s, torch.full((1000, 1), SEP), N_SORT, src=src, greedy=True
    )[:, 1:]
    whole_right["T5"].append((out_s == answer).all(1).float().mean().item())
table = ["whole answers right by greedy decoding", "seed     GPT      T5"]
for seed in ARCH_SEEDS:
    table.append(
        f"{seed:>4}   {whole_right['GPT'][seed]:.3f}   "
        f"{whole_right['T5'][seed]:.3f}"
    )
means = {name: t_interval(accs) for name, accs in whole_right.items()}
table.append(f"mean   {means['GPT'][0]:.3f}   {means['T5'][0]:.3f}")
table.append(
    "95% CI of the mean, clipped to 1: "
    + ", ".join(
        f"{name} [{low:.3f}, {min(high, 1.0):.3f}]"
        for name, (_, low, high) in means.items()
    )
)
t5_ahead = sum(t > g for g, t in zip(whole_right["GPT"], whole_right["T5"]))
table.append(f"the T5 is ahead in {t5_ahead} of {len(ARCH_SEEDS)} seeds")
print("\n".join(table))

# %% tags=["remove-cell"]
gap = sum(whole_right["T5"]) / len(ARCH_SEEDS) - sum(
    whole_right["GPT"]
) / len(ARCH_SEEDS)
expect(
    "on average over the ten seeds the T5 gets more whole answers right "
    "than the GPT, by a few hundredths up to about a tenth",
    0.0 < gap <= 0.15,  # 0.02, 0.06 and 0.09 under the capabilities tried
    gap=gap,
)
spread = {name: max(accs) - min(accs) for name, accs in whole_right.items()}
expect(
    "the seeds of each model spread over a range at least as wide as the gap",
    min(spread.values()) >= gap,  # ranges 0.11 to 0.19 against the gaps
    gap=gap,
    **spread,
)
ahead = sum(t > g for g, t in zip(whole_right["GPT"], whole_right["T5"]))
expect(
    "the T5 is ahead in most of the ten seeds",
    ahead >= 6,  # 7, 8 and 9 of 10 under the capabilities tried
    t5_ahead=ahead,
)

# %% [markdown]
# The cross-attention of the last decoder layer (mean over its heads) shows
# which source number each output step reads. Each row is one step of the
# decoder. It is labelled by the token the decoder *reads* at that step (its
# input: `SEP`, then the answer so far) and, after the arrow, the token it
# *writes* there (its prediction of the next one): the row `0 → 2` reads the
# 0 and writes the first 2.

# %% tags=["nbval-ignore-output"]
src_example = torch.tensor([[7, 2, 9, 2, 5, 0]])
written = generate(
    t5, torch.full((1, 1), SEP), N_SORT, src=src_example, greedy=True
)
with torch.no_grad():
    out = t5(src_example, written[:, :-1], need_weights=True)
print(
    "source:",
    sort_task.decode(src_example[0]),
    "→ T5 writes:",
    sort_task.decode(written[0, 1:]),
)
reads = sort_task.decode(written[0, :-1]).split()  # the decoder's inputs
steps = [
    f"{read} → {write}"
    for read, write in zip(reads, sort_task.decode(written[0, 1:]).split())
]
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), layout="constrained")
attention_heatmap(
    out.cross_attentions[-1][0].mean(0),
    axes[0],
    query_labels=steps,
    key_labels=sort_task.decode(src_example[0]).split(),
    title="cross-attention (decoder → encoder)",
    annotate=True,
    colorbar=False,
)
axes[0].set_xlabel("key: source number")
attention_heatmap(
    out.attentions[-1][0].mean(0),
    axes[1],
    query_labels=steps,
    key_labels=reads,
    title="decoder self-attention (causal)",
)
axes[1].set_xlabel("key: decoder input")
for ax in axes:
    ax.set_ylabel("decoder step: reads → writes")
plt.show()

# %% tags=["remove-cell"]
writes = written[0, 1:]
expect(
    "the T5 sorts the example correctly",
    torch.equal(writes, src_example[0].sort().values),
    writes=writes.tolist(),
)
cross = out.cross_attentions[-1][0].mean(0)  # (output steps, source)
looks_at = src_example[0][cross.argmax(-1)]
expect(
    "every output step puts its largest cross-attention weight on a source "
    "number equal to the one it writes",
    torch.equal(looks_at, writes),  # so on every CPU we tried
    looks_at=looks_at.tolist(),
    writes=writes.tolist(),
)
twos = src_example[0] == 2
on_twos = cross[writes == 2][:, twos]  # (steps that write 2, the two 2s)
expect_above(
    "the two steps that write a 2 split their weight between both 2s",
    on_twos.min(),
    0.25,  # 0.36 to 0.48 on each 2 under every CPU capability we tried
)
expect_between(
    "about 0.4 on each 2",
    on_twos.max().item(),
    0.3,
    0.5,  # 0.36 to 0.48 on each 2 under every CPU capability we tried
)
first_two = int((writes == 2).nonzero()[0])  # the step 0 → 2
on_zero = cross[first_two, src_example[0] == 0].item()
expect_greater(  # measured: about 0.40 on each 2 against 0.16 on the 0
    "the step that reads 0 and writes the first 2 puts less weight on the 0 "
    "than on either 2",
    on_twos[0].min().item(),
    on_zero,
    margin=0.1,
)
expect_between(  # measured: 0.16
    "the step that writes the first 2 puts about a sixth of its weight on "
    "the 0",
    on_zero,
    0.05,
    0.3,
)
expect(
    "the decoder's self-attention is causal",
    torch.triu(out.attentions[-1][0], diagonal=1).abs().max() == 0,
)

# %% [markdown]
# **What we saw.** In seed 0 the T5 writes nearly all answer tokens and
# most whole answers right by greedy decoding. Over ten seeds it gets more
# whole answers right than the GPT on average and is ahead in most seeds, but
# the gap is small — a few hundredths up to about a tenth, depending on the
# CPU the chapter runs on — and the seeds of each model spread over a range
# at least as wide: on some CPUs the two 95% intervals overlap, on others
# they do not. So the T5 sorts a little better in these runs, no more: we
# have not tuned either model, and they differ in more than the architecture
# (T5's relative bias here, RoPE in the GPT).
#
# The cross-attention is the clearest map in this chapter, read row by row
# by what each step writes (after the arrow): every step puts its largest
# weight on a source number equal to the one it writes — `SEP → 0` on the
# 0; `2 → 5`, `5 → 7` and `7 → 9` on the 5, the 7 and the 9. The two steps
# that write a 2, `0 → 2` and `2 → 2`, split their weight between the two 2s
# of the source, about 0.4 on each; `0 → 2` puts only about 0.16 on the
# source's 0, the number it reads at that step. What a step looks up in the
# source is the number it is about to write, not the one it has just
# written. The decoder's self-attention is causal (nothing above the
# diagonal): the first step can only look at `SEP`, each later one only at
# what was written before it.
#
# ## 5. Generation: greedy, temperature, top-k
#
# A language model gives a distribution over the next token; **decoding**
# turns it into text one token at a time. *Greedy* takes the most likely
# token. *Sampling* draws from $\mathrm{softmax}(z/\tau)$: a temperature
# $\tau<1$ sharpens the distribution, $\tau>1$ flattens it. *Top-k* sampling
# first keeps only the $k$ largest logits, cutting off the unlikely tail. On a
# task with one right answer we can count how often each rule writes it; the
# GPT from §4.1 completes 500 further held-out prompts (a new draw, not the
# 1000 problems of §4.1, so greedy decoding need not score the same here):

# %% tags=["nbval-ignore-output"]
prompts = sort_task.sample(500, N_SORT, 99)
prompt_ids = prompts.inputs[:, : N_SORT + 1]  # the numbers and SEP
truth = prompts.targets[:, N_SORT:]  # the sorted answer
rules = {
    "greedy": {"greedy": True},
    "τ = 0.5": {"temperature": 0.5},
    "τ = 1": {"temperature": 1.0},
    "τ = 2": {"temperature": 2.0},
    "τ = 2, top-k 3": {"temperature": 2.0, "top_k": 3},
    "τ = 2, top-k 1": {"temperature": 2.0, "top_k": 1},
}
decoding = {}  # rule: what its 500 answers get right and wrong
for name, kw in rules.items():
    completion = generate(
        gpt,
        prompt_ids,
        N_SORT,
        generator=torch.Generator().manual_seed(0),
        **kw,
    )[:, N_SORT + 1 :]
    # a written digit that occurs nowhere among the prompt's numbers
    foreign = (completion[:, :, None] != prompt_ids[:, None, :N_SORT]).all(-1)
    decoding[name] = {
        "right": (completion == truth).all(1).float().mean().item(),
        "foreign": foreign.any(1).float().mean().item(),
    }
table = [f"{'':>15}  whole answers right   with a digit not in the prompt"]
for name, result in decoding.items():
    table.append(
        f"{name:>15}  {result['right']:19.3f}   {result['foreign']:30.3f}"
    )
print("\n".join(table))

# %% tags=["remove-cell"]
share = {name: result["right"] for name, result in decoding.items()}
expect_below(
    "greedy gets about the same share of these answers right as of the "
    "1000 problems of §4.1",
    abs(share["greedy"] - greedy_right),
    0.06,  # two draws of problems, each within about ±0.02 by chance
)
expect(
    "sampling at τ = 0.5 is almost as good as greedy decoding",
    -0.03 <= share["greedy"] - share["τ = 0.5"] <= 0.05,  # 0.01 to 0.03
    greedy=share["greedy"],
    sampled=share["τ = 0.5"],
)
expect_greater(
    "at τ = 1 sampling gets fewer whole answers right than greedy",
    share["greedy"],
    share["τ = 1"],
    margin=0.03,  # 0.06 to 0.09 fewer under every capability we tried
)
expect_greater(
    "at τ = 2 it gets far fewer right",
    share["τ = 1"],
    share["τ = 2"],
    margin=0.25,  # 0.39 to 0.46 fewer under every capability we tried
)
expect_greater(
    "keeping the top 3 tokens at τ = 2 brings the share back up",
    share["τ = 2, top-k 3"],
    share["τ = 2"],
    margin=0.1,  # 0.17 to 0.22 more under every capability we tried
)
expect(
    "top-1 sampling is greedy decoding",
    decoding["τ = 2, top-k 1"] == decoding["greedy"],
    top_1=decoding["τ = 2, top-k 1"],
    greedy=decoding["greedy"],
)
expect_above(
    "plain τ = 2 sampling writes a digit not in the prompt into about a "
    "third of its answers",
    decoding["τ = 2"]["foreign"],
    0.25,  # 0.36 to 0.38 under every capability we tried
)
expect_greater(
    "top-3 sampling at τ = 2 does so far less often",
    decoding["τ = 2"]["foreign"],
    decoding["τ = 2, top-k 3"]["foreign"],
    margin=0.15,  # 0.23 to 0.26 less under every capability we tried
)

# %% [markdown]
# Samples for one prompt, five times per rule:

# %% tags=["nbval-ignore-output"]
one = prompt_ids[:1].repeat(5, 1)  # the same prompt five times
rule_names = ("greedy", "τ = 1", "τ = 2", "τ = 2, top-k 3")
samples = {}  # name: the five completions, decoded
for name in rule_names:
    completion = generate(
        gpt,
        one,
        N_SORT,
        generator=torch.Generator().manual_seed(1),
        **rules[name],
    )[:, N_SORT + 1 :]
    samples[name] = [sort_task.decode(row) for row in completion]
table = [
    f"prompt: {sort_task.decode(one[0])}",
    f"{'sample':<8}" + "".join(f"{name:<16}" for name in rule_names).rstrip(),
]
for k in range(len(one)):
    table.append(
        f"{k + 1:<8}"
        + "".join(f"{samples[name][k]:<16}" for name in rule_names).rstrip()
    )
print("\n".join(table))

# %% tags=["remove-cell"]
expect(
    "greedy writes the same answer every time, sampling different ones",
    len(set(samples["greedy"])) == 1  # greedy is deterministic
    and all(len(set(samples[name])) >= 2 for name in rule_names[1:]),
    distinct={name: len(set(samples[name])) for name in rule_names},
)

# %% [markdown]
# **What we saw.** Greedy decoding gets about the same share of these 500
# answers right as of the 1000 problems of §4.1 (another draw of problems).
# Sampling at $\tau = 0.5$ is almost as good; at $\tau = 1$ it gets fewer
# whole answers right, and at $\tau = 2$ far fewer. Keeping only the top 3
# tokens at $\tau = 2$ brings the share back up, because the wild
# low-probability tokens can no longer be drawn: plain $\tau = 2$ sampling
# writes a digit that is not even in the prompt into about a third of its
# answers, top-3 sampling far less often. Top-1 sampling *is* greedy
# decoding, hence exactly the same numbers. The five samples show the other
# side: greedy writes the same answer every time, while sampling gives
# different answers. On this task, with one right answer, diversity only
# costs accuracy; for open-ended text it is what one samples for (not
# measured here).
#
# ## 6. The key-value cache
#
# Generating $n$ tokens by feeding the whole prefix each time recomputes, at
# every step, the keys and values of every earlier token — work that grows
# with the square of the length. A causal model never changes an earlier
# token's keys and values, so `generate` keeps them in a `KVCache` per layer
# and feeds only the newest token after the prompt (`fresh` below; chapter 2
# shows the `KVCache` class itself):

# %% tags=["hide-output"]
show_source(generate)

# %% [markdown]
# The tokens are exactly the same with and without the cache:

# %%
long_config = ModelConfig(
    arch="decoder",
    vocab_size=64,
    d_model=128,
    n_heads=4,
    n_layers=4,
    max_len=512,
)
torch.manual_seed(0)
lm = build_model(long_config).eval()
prompt = torch.randint(
    0, 64, (4, 16), generator=torch.Generator().manual_seed(0)
)
LENGTHS = (25, 50, 100, 200)
timings, identical = {}, []
for new_tokens in LENGTHS:
    tokens = {}
    for use_cache in (True, False):
        start = time.perf_counter()
        tokens[use_cache] = generate(
            lm, prompt, new_tokens, greedy=True, use_cache=use_cache
        )
        timings[new_tokens, use_cache] = time.perf_counter() - start
    identical.append(torch.equal(tokens[True], tokens[False]))
print(
    "identical tokens with and without the cache, at every length:",
    all(identical),
)

# %% tags=["nbval-ignore-output"]
print(
    "\n".join(
        f"{n:>4} new tokens: {timings[n, False]:.2f} s recomputing, "
        f"{timings[n, True]:.2f} s with the cache "
        f"→ {timings[n, False] / timings[n, True]:.1f}× faster"
        for n in LENGTHS
    )
)

# %% tags=["nbval-ignore-output", "hide-input"]
fig, ax = plt.subplots(figsize=(5, 3))
for use_cache, label in ((False, "recompute the prefix"), (True, "KV cache")):
    ax.plot(
        LENGTHS, [timings[n, use_cache] for n in LENGTHS], "o-", label=label
    )
ax.set_xlabel("tokens generated")
ax.set_ylabel("seconds")
ax.set_title("Greedy decoding, 4-layer model, batch 4")
ax.legend()
plt.show()

# %% [markdown]
# **What we saw.** The tokens are identical at every length. The timings above
# change from run to run and with the load on the machine, so we quote none of
# them; in the runs we made, the cache won by more the longer the generation.
# Recomputing costs a forward pass over the whole prefix at every step, so its
# total time grows faster than the length, while the cached steps each process
# one token. For a few dozen tokens of this small model the saving is modest,
# presumably because every step also pays Python and kernel overhead.
#
# ## 7. Save and load
#
# `model.save(path)` writes the config together with the weights (atomically:
# to a temporary file first, then renamed), and `load_model(path)` rebuilds
# the same model:

# %%
import tempfile
from pathlib import Path

from annotated.models.transformer import load_model

with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "gpt_sort.pt"
    gpt.save(path)
    restored = load_model(path)
    print("same config:", restored.config == gpt.config)
    print(
        "same logits:",
        torch.equal(
            restored(test_sort.inputs[:8]).logits,
            gpt(test_sort.inputs[:8]).logits,
        ),
    )
    try:
        load_model(
            path,
            config=ModelConfig(**{**gpt_config.to_dict(), "n_layers": 3}),
        )
    except ValueError as err:
        print(textwrap.fill("ValueError: " + str(err).split(": ", 1)[1], 78))

# %% [markdown]
# ## Exercises
#
# ```{exercise}
# :label: ex-04-no-final-ln
# In pre-LN the stack ends with one extra LayerNorm
# (`model.decoder.final_norm`). Replace it by `nn.Identity()` in a fresh
# 12-layer pre-LN model and measure the gradient norms of §2 again. What
# happens to their size, and why?
# ```
#
# ```{solution-start} ex-04-no-final-ln
# :class: dropdown
# ```

# %%
torch.manual_seed(0)
model = xavier_init(build_model(stack_config(12, "pre")))
model.decoder.final_norm = nn.Identity()
task_loss(model, sort_task.sample(64, N_SORT, 0)).backward()
print(
    "pre-LN without final LN, ‖∂loss/∂W2‖ by layer, 1 … 12:\n"
    + " ".join(
        f"{b.ff.sublayer.down.weight.grad.norm().item():.2f}"
        for b in model.decoder.blocks
    )
)

# %% [markdown]
# The gradients are several times larger (5.33 instead of 1.12 in the first
# layer, 1.43 instead of 0.30 in the last). Our explanation (the cell measures
# only the gradients): without the final LayerNorm the residual stream, a sum
# of the embedding and 24 sub-layer outputs, reaches the output layer at its
# full, depth-dependent size, and so do the logits and their gradients; the
# final LN puts the output back on one scale.
#
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-04-bert-one-way
# Train the BERT of §4.2 again (150 steps), but build it as a *decoder*
# (`arch="decoder"`, causal attention) and ask it for the masked token at the
# masked position. Which masked positions can it still recover, and what
# accuracy do you expect overall?
# ```
#
# ```{solution-start} ex-04-bert-one-way
# :class: dropdown
# ```

# %% tags=["nbval-ignore-output"]
torch.manual_seed(0)
causal_bert = build_model(
    ModelConfig(**{**bert_config.to_dict(), "arch": "decoder"})
)
gen = torch.Generator().manual_seed(2)
fit(
    causal_bert,
    lambda model, step: mlm_loss(model, *masked_copy_batch(64, gen)),
    150,
    warmup=30,
)
masked, full, pos = masked_copy_batch(
    1000, torch.Generator().manual_seed(1234)
)
with torch.no_grad():
    right = (
        causal_bert(masked).logits[torch.arange(1000), pos].argmax(-1)
        == full[torch.arange(1000), pos]
    )
second_half = pos > N_COPY
print(
    "recovered: first half "
    f"{right[~second_half].float().mean():.2f}, second half "
    f"{right[second_half].float().mean():.2f}, "
    f"overall {right.float().mean():.2f}"
)

# %% tags=["remove-cell"]
expect(
    "a causal model only guesses a masked token in the first half (about "
    "one in ten), recovers those in the second half, and a little over half "
    "overall",
    right[~second_half].float().mean() <= 0.2  # chance is 0.1
    and right[second_half].float().mean() >= 0.9  # 1.00 on every CPU tried
    and 0.5 <= right.float().mean() <= 0.65,  # 0.55 on every CPU tried
    first_half=right[~second_half].float().mean().item(),
    second_half=right[second_half].float().mean().item(),
    overall=right.float().mean().item(),
)

# %% [markdown]
# A masked token in the second half has its twin *before* it, which a causal
# model can read; one in the first half has its twin only *after* it, so the
# model can only guess (about one in ten). Overall that is a little over half
# right.
#
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-04-cross-cache
# `generate` caches the decoder's self-attention keys and values, but every
# step of an encoder-decoder still recomputes the cross-attention keys and
# values from the encoder output, although they never change. How many
# multiply-adds per step does that cost for source length $S$ and width $C$,
# per layer, and how would you cache them?
# ```
#
# ```{solution-start} ex-04-cross-cache
# :class: dropdown
# ```
#
# Projecting the memory to keys and values costs $2\,S\,C^2$ multiply-adds per
# layer and step. They depend only on the encoder output, so compute
# `k_proj(memory)` and `v_proj(memory)` once per layer before decoding and
# reuse them at every step (the Hugging Face models keep them next to the
# self-attention cache).
#
# ```{solution-end}
# ```
#
# ## Summary
#
# * A block is attention (mixing positions) and an FFN (per position), each
#   inside a residual connection with a LayerNorm.
# * Post-LN normalises after the residual sum; pre-LN normalises the
#   sub-layer's input and leaves the residual path untouched. In our 12-layer
#   runs (three seeds) pre-LN trained well without warm-up, post-LN stalled
#   without it.
# * GPT, BERT and T5 are the same block with a causal mask, without one, or
#   both plus cross-attention; the training objective follows from what each
#   may see.
# * Decoding rules trade accuracy for diversity; a KV cache makes each
#   decoding step cost one token's work instead of the whole prefix's.
