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
# # Week 5 — A character-level language model
#
# **Learning goals.** By the end of this chapter you can
#
# 1. read a language model's loss in nats and its perplexity, and place them
#    against simple baselines (uniform guessing, character frequencies,
#    character pairs);
# 2. train a small GPT on Tiny Shakespeare with a published CPU recipe, and
#    say what part of it runs here and what one command line runs in full;
# 3. sample from it at several temperatures and top-$k$ values and describe
#    what each changes;
# 4. compare positional encodings on the classic "train short, test long"
#    experiment at 1×, 2× and 4× the training context.
#
# The model is the decoder-only GPT of week 4 (`annotated/models/`), the
# data the text task of `annotated/tasks/`, the loop `annotated/training/`.

# %%
import csv
import dataclasses
import math
import textwrap
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
import yaml

import annotated
from annotated.analysis.intervals import format_interval, t_interval
from annotated.figures.curves import loss_curves
from annotated.figures.palette import encoding_color
from annotated.figures.showcode import show_source
from annotated.figures.task_diagrams import next_character_diagram
from annotated.figures.viz import figure_image
from annotated.models.config import ModelConfig
from annotated.models.generate import sample_next
from annotated.models.summary import count_parameters
from annotated.models.transformer import build_model
from annotated.tasks import get_task
from annotated.training.config import TrainConfig
from annotated.training.evaluation import evaluate
from annotated.training.loop import train

torch.manual_seed(0)
# small models: one thread is as fast as two here, and makes the numbers
# independent of the core count (not of the CPU's vector instructions)
torch.set_num_threads(1)

# %% [markdown]
# ## 1. The task and its yardsticks
#
# A character-level language model reads a window of text and predicts, at
# every position, the next character. Its loss is the mean cross-entropy of
# the true next character,
#
# $$
# \mathcal{L} = -\frac{1}{T}\sum_{t=1}^{T}
# \ln p_\theta(x_{t+1} \mid x_1, \dots, x_t)
# \quad\text{(nats)},\qquad \mathrm{PPL} = e^{\mathcal{L}},
# $$
#
# and the perplexity $e^{\mathcal{L}}$ reads as "the model is as unsure as if
# it chose uniformly among PPL characters". The corpus is Tiny Shakespeare
# (Karpathy's char-rnn data, about a million characters); the task keeps the
# first 90 % for training and the last 10 % for validation. One training
# window, and what it is trained to predict:

# %% tags=["hide-input"]
figure_image(next_character_diagram())

# %%
task = get_task(
    "tiny_shakespeare"
)  # reads the corpus (downloads it once if there is no local copy)
train_ids, val_ids = task.splits["train"], task.splits["val"]
V = task.vocab_size
print(
    f"{len(task.text):,} characters, "
    f"vocabulary of {V}:\n{task.tokenizer.chars!r}\n"
    f"train {len(train_ids):,} characters, validation {len(val_ids):,}\n"
    + textwrap.fill(repr(task.text[:100]), 78)
)

# %% [markdown]
# Three models that need no training set the scale. *Uniform* guessing costs
# $\ln 65$ nats. A *unigram* model predicts every character with its frequency
# in the training text; a *bigram* model with its frequency after the previous
# character (add-one smoothing, so no pair has probability zero). Both are
# counted on the training split and scored on the validation split:

# %%
unigram = (
    torch.bincount(train_ids, minlength=V).float() + 1
)  # (V,) counts, add-one
unigram_loss = -(unigram / unigram.sum()).log()[val_ids].mean()
pairs = torch.ones(V, V).index_put_(
    (train_ids[:-1], train_ids[1:]), torch.tensor(1.0), accumulate=True
)  # (V, V)
bigram_loss = (
    -(pairs / pairs.sum(1, keepdim=True))
    .log()[val_ids[:-1], val_ids[1:]]
    .mean()
)
baselines = {
    "uniform": math.log(V),
    "unigram": unigram_loss.item(),
    "bigram": bigram_loss.item(),
}
print(
    "\n".join(
        f"{name:>8}: validation loss {loss:.3f} nats, "
        f"perplexity {math.exp(loss):5.2f}"
        for name, loss in baselines.items()
    )
)

# %% [markdown]
# Knowing the previous character already brings the perplexity from 65 down to
# about 12. Everything a transformer gains beyond the bigram line comes from
# reading further back.
#
# ## 2. The recipe: nanoGPT on a CPU
#
# Karpathy's nanoGPT publishes a recipe for this corpus that runs on a laptop
# CPU, and reports that it reaches a validation loss of about **1.88**
# ({cite:t}`karpathy2022nanogpt`, its README; we have not run nanoGPT itself):
#
# * **model** — nanoGPT CPU recipe: 4 layers, 4 heads, $d_\text{model} = 128$,
#   learned absolute positions, no dropout. Here: the same (`ModelConfig`).
# * **data** — nanoGPT CPU recipe: context 64 characters, batch 12. Here: the
#   same.
# * **optimiser** — nanoGPT CPU recipe: AdamW, lr $10^{-3}$,
#   $\beta_2 = 0.99$, 100 warm-up steps, cosine to $10^{-4}$ over 2000 steps,
#   weight decay 0.1, clip 1.0. Here: the same in the stored full run (§2.1);
#   the live run keeps the library's $\beta_2 = 0.98$ and biases in the
#   linear layers (nanoGPT: none).
# * **evaluation** — nanoGPT CPU recipe: 20 batches of 12 × 64 held-out
#   characters. Here: the same number of characters.
#
# The full 2000 steps take minutes on one core (the estimate printed below the
# training cell) — more than this chapter can spend beside its other
# experiments, which share its three minutes. **What runs live here is the
# same model and recipe for 300 steps** — the warm-up and the cosine squeezed
# into those 300 steps (warm-up 15, the same 5 % share). The full run is one
# command line, and its result is stored with the book (§2.1).

# %% tags=["nbval-ignore-output"]
CONTEXT = 64
recipe_model = ModelConfig(
    arch="decoder",
    vocab_size=V,
    n_layers=4,
    n_heads=4,
    d_model=128,
    max_len=CONTEXT,
    positional="learned",
    dropout=0.0,
)
LIVE_STEPS = 300
recipe_train = TrainConfig(
    steps=LIVE_STEPS,
    batch_size=12,
    lr=1e-3,
    warmup_steps=15,
    min_lr_ratio=0.1,
    weight_decay=0.1,
    grad_clip=1.0,
    eval_every=50,
    eval_batches=20,
    device="cpu",
)
torch.manual_seed(0)
gpt = build_model(recipe_model)

start = time.perf_counter()
history = train(gpt, task, train_length=CONTEXT, config=recipe_train)
live_seconds = time.perf_counter() - start
final = history.final_evals()[CONTEXT]
print(
    f"{count_parameters(gpt):,} parameters\n"
    f"after {LIVE_STEPS} steps: validation loss {final['loss']:.3f} nats, "
    f"perplexity {final['perplexity']:.2f},\n"
    f"next-character accuracy {final['token_accuracy']:.3f}"
)

# %% tags=["nbval-ignore-output"]
tokens_per_s = [row["tokens_per_s"] for row in history.steps]
median_rate = sorted(tokens_per_s)[len(tokens_per_s) // 2]
print(
    f"trained in {live_seconds:.0f} s on one CPU thread: "
    f"median {median_rate:,.0f} tokens/s per training step;\n"
    "2000 steps at that rate ≈ "
    f"{2000 * 12 * CONTEXT / median_rate / 60:.1f} min"
)

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(8, 4))
loss_curves(
    history,
    ax,
    title=(
        f"the nanoGPT CPU recipe, first {LIVE_STEPS} steps "
        f"(cosine over {LIVE_STEPS})"
    ),
)
# each line's label sits inside the axes, right-aligned just above the line
label_box = {"facecolor": "white", "edgecolor": "none", "alpha": 0.8}
for name, loss in baselines.items():
    ax.axhline(loss, color="0.3", ls=":", lw=1)
    ax.text(
        LIVE_STEPS,
        loss + 0.03,
        f"{name} ({loss:.2f})",
        ha="right",
        va="bottom",
        fontsize=8,
        color="0.3",
        bbox=label_box,
    )
ax.axhline(1.88, color="black", ls="--", lw=1)
ax.text(
    LIVE_STEPS,
    1.88 + 0.03,
    "nanoGPT after 2000 steps (1.88)",
    ha="right",
    va="bottom",
    fontsize=8,
    color="black",
    bbox=label_box,
)
ax.set_yscale("linear")
ax.set_ylim(1.7, 4.5)
ax.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0.01, 0.12))
plt.show()

# %% tags=["nbval-ignore-output"]
print(
    "\n".join(
        f"step {row['step']:>3}: validation loss {row['loss']:.3f}, "
        f"perplexity {row['perplexity']:6.2f}"
        for row in history.evals
    )
)

# %% tags=["remove-cell"]
from annotated.analysis.expect import (  # noqa: E402
    expect,
    expect_above,
    expect_below,
    expect_between,
)

# This run gave the same digits under AVX512, AVX2 and no vector kernels
# (one thread); the margins below are what another machine's float order,
# or another seed, may cost it: several hundredths of a nat at most.
train_loss = [row["loss"] for row in history.steps]
expect_below(
    "by step 50 the validation loss is well below the unigram line",
    history.evals[0]["loss"] - baselines["unigram"],
    -0.3,  # measured: 2.697 against 3.347
)
expect_between(
    "after 300 steps the validation loss is only just below the bigram "
    "model's",
    baselines["bigram"] - final["loss"],
    0.02,  # measured 0.08 below
    0.15,  # far from the full run's 1.89
)
expect_below(
    "the validation loss runs through the middle of the training curve "
    "(no overfitting)",
    abs(final["loss"] - sum(train_loss[-50:]) / 50),
    0.05,  # measured: 0.01 from the mean of the last 50 training losses
)
rises = {  # step -> how much the training loss rose at it
    b["step"]: b["loss"] - a["loss"]
    for a, b in zip(history.steps, history.steps[1:])
    if b["step"] <= 50
}
spike = max(rises, key=rises.get)
expect(
    "the training loss spikes at the end of the short warm-up",
    rises[spike] > 0.3  # measured: +1.0 nats in one step
    and abs(spike - recipe_train.warmup_steps) <= 5,
    rise=rises[spike],
    at_step=spike,
)

# %% [markdown]
# **What we saw.** The training loss (grey, one batch of 12 windows per step,
# hence the noise) falls fast for the first few dozen steps — with a spike at
# the end of the short warm-up — and slowly after that. By the first
# evaluation, at step 50, the validation loss (2.697) is already well below
# the unigram line (3.347); after 300 steps it is 2.400 (perplexity 11.02),
# only just below the bigram model's 2.482. So 300 steps of this recipe buy
# little more than what counting character pairs gives; nanoGPT reports its
# 1.88 after the full 2000 steps, almost seven times as many (the stored full
# run of §2.1 gets there too). The validation curve runs through the middle of
# the training curve: no sign of overfitting, which is no surprise, since the
# live run reads 300 × 12 × 64 = 230,400 characters, a quarter of the training
# split ({ref}`ex-05-epochs`). The tokens/s line depends on the machine and
# what else it runs, and changes from run to run.
#
# Re-run on your machine, the trained numbers of this chapter may differ from
# the ones printed here in their later digits: PyTorch sums floats in an
# order that depends on the CPU's vector instructions and the thread count,
# and training amplifies such differences. What we conclude from them holds
# regardless: the live run ends just below the bigram line, far above the
# full run; the sampling rules rank the same; and in §4 ALiBi stays flat
# while RoPE and the sinusoidal encoding rise past the training length.
#
# ### 2.1 The full run, stored
#
# The lab's command line trains the whole recipe and writes a run folder with
# the curves, `metrics.csv`, `eval.csv`, a checkpoint and a report
# (`python -m annotated train --help` lists every flag). With nanoGPT's
# $\beta_2$ and no biases it is nanoGPT's recipe as far as this library can
# express it:
#
# ```bash
# OMP_NUM_THREADS=1 python -m annotated train --task tiny_shakespeare \
#     --name shakespeare_nanogpt --positional learned --train-length 64 \
#     --n-layers 4 --n-heads 4 --d-model 128 --dropout 0 --no-bias \
#     --batch-size 12 --steps 2000 --lr 1e-3 --warmup-steps 100 \
#     --min-lr-ratio 0.1 --weight-decay 0.1 --betas 0.9 0.99 \
#     --grad-clip 1.0 --eval-every 250 --eval-batches 20 --device cpu
# ```
#
# We ran it once (seed 0) and keep its small outputs in the package,
# `annotated/data/`: the resolved config with the environment that ran it,
# every step's training loss, the evaluations, two samples written by the
# trained model, and how long it took. The checkpoint (about 3 MB of weights)
# is not stored. This cell reads them back:

# %%
DATA = Path(annotated.__file__).parent / "data"
provenance = yaml.safe_load(
    (DATA / "shakespeare_nanogpt_provenance.yaml").read_text(encoding="utf-8")
)
full_steps = list(
    csv.DictReader(
        (DATA / "shakespeare_nanogpt_metrics.csv").open(encoding="utf-8")
    )
)
full_evals = list(
    csv.DictReader(
        (DATA / "shakespeare_nanogpt_eval.csv").open(encoding="utf-8")
    )
)
env = provenance["config"]["environment"]
print(
    f"stored run: seed {provenance['config']['seed']}, "
    f"{provenance['parameters']:,} parameters, "
    f"{provenance['wall_time_s'] / 60:.1f} min\non {provenance['machine']}\n"
    f"run on {env['created'][:10]} with torch {env['torch']} "
    f"(library {env['annotated']})\n"
    + "\n".join(
        f"step {int(row['step']):>4}: "
        f"validation loss {float(row['loss']):.3f}, "
        f"perplexity {float(row['perplexity']):5.2f}"
        for row in full_evals
    )
    + "\nnanoGPT's published validation loss after 2000 steps: 1.88"
)

# %% tags=["remove-cell"]
# The stored run's numbers are read from files: they do not change with the
# CPU. These checks keep the prose below tied to those files.
stored_losses = [float(row["loss"]) for row in full_evals]
expect_below(
    "the stored run reproduces nanoGPT's 1.88 after 2000 steps",
    abs(stored_losses[-1] - 1.88),
    0.02,  # a few hundredths: what 20 random batches move an evaluation
)
expect(
    "the stored run's validation loss falls at every evaluation",
    all(b < a for a, b in zip(stored_losses, stored_losses[1:])),
    losses=stored_losses,
)
expect_between(
    "at step 250 the stored run is just below the bigram line",
    baselines["bigram"] - stored_losses[0],
    0.0,
    0.2,
)

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(8, 4))
ax.plot(
    [int(r["step"]) for r in full_steps],
    [float(r["loss"]) for r in full_steps],
    color="0.6",
    lw=0.6,
    label="training loss (one batch)",
)
ax.plot(
    [int(r["step"]) for r in full_evals],
    [float(r["loss"]) for r in full_evals],
    "o-",
    color="tab:blue",
    label="validation loss (20 batches)",
)
ax.axhline(
    1.88, color="black", ls="--", lw=1, label="nanoGPT, published (1.88)"
)
ax.axhline(
    baselines["bigram"],
    color="0.3",
    ls=":",
    lw=1,
    label=f"bigram baseline ({baselines['bigram']:.3f})",
)
ax.set(
    xlabel="step",
    ylabel="loss (nats)",
    ylim=(1.3, 4.5),
    title="the stored full run: 2000 steps of the recipe",
)
ax.legend(fontsize=8)
plt.show()

# %%
full_samples = (DATA / "shakespeare_nanogpt_samples.txt").read_text(
    encoding="utf-8"
)
print(textwrap.fill(provenance["samples"]["how"], 78) + "\n\n" + full_samples)

# %% [markdown]
# **What we saw.** The stored run ends at a validation loss of 1.887
# (perplexity 6.60) after 2000 steps, beside nanoGPT's published 1.88:
# **reproduced**, for one seed. Do not read the agreement as closer than it
# is: one run's evaluation on 20 random batches moves by a few hundredths, and
# the two implementations still differ in details (which parameters decay,
# biases in the LayerNorms). The validation loss falls at every evaluation —
# 2.413 at step 250, just below the bigram model's 2.482, then 2.055 at step
# 1000 and 1.887 at 2000 — and is still falling at the end. The samples at
# $\tau = 0.8$ have the play's layout, capitalised speaker names and many real
# short words ("I fear, it is", "my father", "heaven"), next to invented ones
# ("meether", "giventy"). The run took 9.6 minutes of wall-clock time on a
# busy 2-core computer; the estimate printed under the live run is what one
# free core needs, and it varies with the load. Either way it does not fit
# beside this chapter's other experiments in its three minutes, so its result
# is read here rather than trained again.
#
# ## 3. Sampling
#
# `generate` (week 4) extends a prompt with a key-value cache; positions then
# run past the learned table's 64 rows. nanoGPT instead feeds the model at
# most the last `CONTEXT` characters at every step, and so do we — a short
# loop around the library's `sample_next`, which applies a temperature $\tau$
# (sample from $\mathrm{softmax}(z/\tau)$) and a top-$k$ cut:

# %%
show_source(sample_next)


# %%
@torch.no_grad()
def sample_text(
    model, prompt: str, n_new: int, *, n_samples: int, generator, **rule
) -> list[str]:
    """Extend ``prompt`` by ``n_new`` characters, ``n_samples`` times, feeding
    the last CONTEXT characters each step."""
    model.eval()
    ids = task.encode(prompt)[None].repeat(n_samples, 1)  # (B, T0)
    for _ in range(n_new):
        logits = model(ids[:, -CONTEXT:]).logits[
            :, -1
        ]  # (B, V): the next character's logits
        ids = torch.cat(
            [ids, sample_next(logits, generator=generator, **rule)], dim=1
        )  # (B, T + 1)
    return [task.decode(row) for row in ids]


# %% [markdown]
# To put a number on the samples we draw 32 of 150 characters with each rule
# (about a thousand words) and count the share of *real words*, words (runs
# of letters) that occur somewhere in the training text — a crude check of
# spelling, blind to grammar and sense — and the *stray* characters: digits,
# `$` and `&`, and capitals right after a lower-case letter.

# %% tags=["nbval-ignore-output"]
import re

train_words = set(re.findall(r"[A-Za-z]+", task.decode(train_ids)))
rules = {
    "greedy": {"greedy": True},
    "τ = 0.5": {"temperature": 0.5},
    "τ = 1.0": {"temperature": 1.0},
    "τ = 1.5": {"temperature": 1.5},
    "τ = 1.0, top-k 5": {"temperature": 1.0, "top_k": 5},
    "τ = 1.5, top-k 5": {"temperature": 1.5, "top_k": 5},
}
PROMPT = "ROMEO:\n"
STRAY = r"[0-9$&]|(?<=[a-z])[A-Z]"
samples, words, known, stray = {}, {}, {}, {}
table = [
    f"{'rule':>17}{'words':>8}{'real words':>12}"
    f"{'stray per 1,000 characters':>28}"
]
for name, rule in rules.items():
    samples[name] = sample_text(
        gpt,
        PROMPT,
        150,
        n_samples=32,
        generator=torch.Generator().manual_seed(0),
        **rule,
    )
    new_text = "\n".join(s[len(PROMPT) :] for s in samples[name])
    words[name] = re.findall(r"[A-Za-z]+", new_text)
    known[name] = sum(w in train_words for w in words[name]) / len(
        words[name]
    )
    stray[name] = len(re.findall(STRAY, new_text)) / (150 * 32)
    table.append(
        f"{name:>17}{len(words[name]):>8,}{known[name]:>12.2f}"
        f"{1000 * stray[name]:>28.1f}"
    )
print("\n".join(table))

# %% tags=["remove-cell"]
# Sampling from this model gave the same text under AVX512, AVX2 and no
# vector kernels. Another model or generator draws other words: with about
# 1,000 words per rule a share moves by about ±0.03 (two standard errors),
# so the margins below are at least that.
greedy_words = [w.lower() for w in words["greedy"]]
most = max(set(greedy_words), key=greedy_words.count)
expect_above(
    "greedy decoding repeats one word",
    greedy_words.count(most) / len(greedy_words),
    0.8,  # measured: every word but one cut at the end is 'the'
)
shares = {name: round(share, 3) for name, share in known.items()}
expect(
    "greedy has the highest share of real words",
    known["greedy"] > max(v for k, v in known.items() if k != "greedy"),
    shares=shares,
)
expect(
    "the share of real words falls as the temperature rises",
    known["τ = 0.5"] - known["τ = 1.0"] > 0.05  # measured 0.49 vs 0.27
    and known["τ = 1.0"] - known["τ = 1.5"] > 0.05,  # 0.27 vs 0.16
    shares=shares,
)
for tau in ("1.0", "1.5"):
    expect_above(
        f"top-k 5 raises the share of real words at τ = {tau}",
        known[f"τ = {tau}, top-k 5"] - known[f"τ = {tau}"],
        0.05,  # measured: +0.12 at τ = 1, +0.21 at τ = 1.5
    )
expect_above(
    "at τ = 1.5 stray capitals and symbols appear",
    1000 * stray["τ = 1.5"],
    5.0,  # per 1,000 characters
)
for name in ("τ = 1.0, top-k 5", "τ = 1.5, top-k 5"):
    expect_below(
        f"top-k 5 all but removes the stray characters ({name})",
        1000 * stray[name],
        1.0,  # per 1,000 characters; measured 0.0 for both
    )


# %% tags=["nbval-ignore-output"]
def wrapped(text: str, width: int = 78) -> str:
    """Long lines folded at ``width`` characters for the page; the sample's
    own line breaks kept."""
    return "\n".join(
        textwrap.fill(line, width) if line else line
        for line in text.split("\n")
    )


print(
    "\n\n".join(
        f"——— {name} ———\n{wrapped(samples[name][0])}"
        for name in (
            "greedy",
            "τ = 0.5",
            "τ = 1.0",
            "τ = 1.5",
            "τ = 1.5, top-k 5",
        )
    )
)

# %% [markdown]
# **What we saw.** Greedy decoding gets stuck at once: `The the the …`, the
# likeliest character after "the " starting "the" again. Its share of real
# words (0.97) is the highest of all and means nothing — it is one word
# repeated — so the share has to be read with the samples. Sampling breaks the
# loop. At $\tau = 0.5$ the model picks mostly its likelier characters:
# word-like chunks (`the`, `there`, `here`), 0.49 of the words real. At
# $\tau = 1$ (the model's own distribution) the share falls to 0.27, and at
# $\tau = 1.5$ to 0.16, with stray capitals inside words (`alaJUr`, `inGe`)
# that the flattened distribution now draws, 30 in every 1,000 characters.
# Cutting the tail with top-$k$ = 5 raises the share at both temperatures
# (0.39 at $\tau = 1$, 0.37 at $\tau = 1.5$) and all but removes the stray
# characters. Every sampling rule (greedy aside) already writes text laid
# out like the play — capitalised line starts, line breaks — while most
# words are still invented: after 300 steps the model has learned the
# layout and common short words, not yet the vocabulary.
#
# ## 4. Train short, test long: positional encodings on a language model
#
# A language model that has only ever seen windows of 64 characters may be
# asked for more. {cite:t}`press2022alibi` measured exactly this: train at one
# context length, evaluate the validation loss at longer ones. Week 3 ran a
# small version of it (7 encodings, 2 layers, context 32); here we take five
# encodings to the recipe's context of 64 and evaluate at 64, 128 and 256
# characters:
#
# * **sinusoidal** — the original fixed waves added to the embeddings
#   {cite:p}`vaswani2017attention`;
# * **learned** — a trained table of 64 position vectors (nanoGPT's choice);
# * **RoPE** — queries and keys rotated by their position
#   {cite:p}`su2021roformer`;
# * **ALiBi** — a per-head linear penalty on distance added to the scores
#   {cite:p}`press2022alibi`;
# * **NoPE** — no positional information at all; the causal mask alone tells a
#   token how many came before it {cite:p}`kazemnejad2023nope`.
#
# A learned table has no row for position 64 or later, so the learned model
# *cannot* be run at 128 or 256 as it is (the library raises an error, shown
# in week 3). For the table we switch on its explicit fallback
# `overflow="clamp"`, which gives every later position the vector of position
# 63, and mark that row "learned*" (clamped).
#
# To fit five models into the budget they are **smaller and shorter-trained
# than the recipe**: 2 layers, $d_\text{model} = 64$, 4 heads, 200 steps of 16
# windows at a higher learning rate (3 × 10⁻³). Each is evaluated on 8 batches
# of 16 held-out windows per length, and each is trained three times, with
# seeds 0, 1 and 2 (the initial weights and the batches). Like the live run
# of §2, runs this short end near the bigram model's 2.482 nats, far from
# the full recipe's 1.887; keep that in mind when reading the table.

# %% tags=["nbval-ignore-output"]
ENCODINGS = ["sinusoidal", "learned", "rope", "alibi", "nope"]
EVAL_LENGTHS = [CONTEXT, 2 * CONTEXT, 4 * CONTEXT]
compare_train = TrainConfig(
    steps=200,
    batch_size=16,
    lr=3e-3,
    warmup_steps=20,
    weight_decay=0.1,
    eval_batches=8,
    device="cpu",
)
SEEDS = (0, 1, 2)
# (encoding, seed) -> [validation loss at each of EVAL_LENGTHS]
seed_loss = {}
start = time.perf_counter()
for seed in SEEDS:
    seed_train = dataclasses.replace(
        compare_train, seed=seed
    )  # the batches and the evaluation windows
    for name in ENCODINGS:
        torch.manual_seed(seed)  # the initial weights
        model = build_model(
            ModelConfig(
                arch="decoder",
                vocab_size=V,
                n_layers=2,
                n_heads=4,
                d_model=64,
                max_len=CONTEXT,
                positional=name,
            )
        )
        train(model, task, train_length=CONTEXT, config=seed_train)
        if name == "learned":
            model.decoder.positional.overflow = (
                "clamp"  # explicit: positions ≥ 64 reuse row 63
            )
        seed_loss[name, seed] = [
            evaluate(model, task, n, seed_train, torch.device("cpu"))["loss"]
            for n in EVAL_LENGTHS
        ]
compare_seconds = time.perf_counter() - start
compare_loss = {
    name: [
        t_interval([seed_loss[name, s][j] for s in SEEDS])
        for j in range(len(EVAL_LENGTHS))
    ]
    for name in ENCODINGS
}  # encoding -> [(mean, low, high) at each length]

table = [
    f"validation loss, mean [95% CI] over seeds {', '.join(map(str, SEEDS))}",
    f"{'encoding':<11}"
    + "".join(f"{'@ ' + str(n):>22}" for n in EVAL_LENGTHS),
]
for name, cells in compare_loss.items():
    label = name + ("*" if name == "learned" else "")
    table.append(
        f"{label:<11}"
        + "".join(f"{format_interval(*cell, digits=3):>22}" for cell in cells)
    )
table.append(
    "* clamped: every position from 64 on uses the vector of position 63"
)
print("\n".join(table))

# %% tags=["remove-cell"]
# Under AVX512, AVX2 and no vector kernels only the sinusoidal models moved
# (by about 0.002); over seeds 0-4 every per-seed ordering below held with
# room to spare (measured margins in the comments).
at = {  # encoding -> [[loss of each seed] at each of EVAL_LENGTHS]
    name: [[seed_loss[name, s][j] for s in SEEDS] for j in range(3)]
    for name in ENCODINGS
}


def mean(xs):
    return sum(xs) / len(xs)


def every_seed(a, b, j):
    """The smallest margin by which ``a`` beats ``b`` at length j."""
    return min(y - x for x, y in zip(at[a][j], at[b][j]))


expect_above(
    "at 64, RoPE is below ALiBi in every seed",
    every_seed("rope", "alibi", 0),
    0.01,  # measured: at least 0.04 in each of seeds 0-4
)
for worse in ("nope", "learned", "sinusoidal"):
    expect_above(
        f"at 64, ALiBi is below {worse} in every seed",
        every_seed("alibi", worse, 0),
        0.05,  # measured: at least 0.12
    )
expect_above(
    "at 64, sinusoidal is last, behind even NoPE, in every seed",
    min(every_seed(other, "sinusoidal", 0) for other in ENCODINGS[1:]),
    0.05,  # measured: at least 0.18 (over NoPE)
)
expect_below(
    "at 64, NoPE and the learned table are close together",
    abs(mean(at["nope"][0]) - mean(at["learned"][0])),
    0.05,  # measured 0.01; the learned table no better than NoPE
)
expect_above(
    "at 64, the learned table is no better than NoPE",
    mean(at["learned"][0]) - mean(at["nope"][0]),
    -0.01,  # measured +0.012
)
spread_64 = max(mean(at[n][0]) for n in ENCODINGS) - min(
    mean(at[n][0]) for n in ENCODINGS
)
expect_below(
    "at the training context the models differ more than the "
    "extrapolation changes them",
    max(abs(mean(at[n][2]) - mean(at[n][0])) for n in ENCODINGS) - spread_64,
    -0.2,  # measured: changes of at most 0.19 against a spread of 0.56
)
expect_below(
    "ALiBi is flat from 64 to 256 in every seed",
    max(abs(x - y) for x, y in zip(at["alibi"][0], at["alibi"][2])),
    0.05,  # measured: at most 0.03
)
expect_below(
    "RoPE holds at 128",
    mean(at["rope"][1]) - mean(at["rope"][0]),
    0.04,  # measured 0.011
)
expect_above(
    "RoPE rises at 256, in every seed",
    min(y - x for x, y in zip(at["rope"][0], at["rope"][2])),
    0.03,  # measured: at least 0.05
)
rope_256, alibi_256 = compare_loss["rope"][2], compare_loss["alibi"][2]
expect(
    "at 256 ALiBi is lower than RoPE on average, but the intervals overlap",
    alibi_256[0] < rope_256[0] - 0.02  # measured 0.06 lower
    and rope_256[1] < alibi_256[2],
    rope=rope_256,
    alibi=alibi_256,
)
expect(
    "sinusoidal degrades from the start: it rises at 128 and again at 256, "
    "in every seed",
    min(y - x for x, y in zip(at["sinusoidal"][0], at["sinusoidal"][1]))
    > 0.01  # measured: at least 0.036
    and min(y - x for x, y in zip(at["sinusoidal"][1], at["sinusoidal"][2]))
    > 0.03,  # measured: at least 0.06
    sinusoidal=[mean(x) for x in at["sinusoidal"]],
)
to_bigram = {  # encoding -> mean loss at 64 minus the bigram model's
    name: mean(at[name][0]) - baselines["bigram"] for name in ENCODINGS
}
expect_below(
    "these short runs end near the bigram model: NoPE and the learned "
    "table close to it",
    max(abs(to_bigram["nope"]), abs(to_bigram["learned"])),
    0.06,  # measured: 0.036 and 0.024 below it
)
expect_between(
    "RoPE ends about a quarter of a nat below the bigram model",
    to_bigram["rope"],
    -0.32,
    -0.18,  # measured -0.254
)
expect_between(
    "the sinusoidal model ends about 0.3 above the bigram model",
    to_bigram["sinusoidal"],
    0.22,
    0.4,  # measured +0.305
)
expect_above(
    "every model ends far above the stored full run",
    min(mean(at[name][0]) for name in ENCODINGS) - stored_losses[-1],
    0.2,  # measured: RoPE's 2.228 against 1.887
)
for name in ("learned", "nope"):
    expect_between(
        f"{name} rises mildly at 256",
        mean(at[name][2]) - mean(at[name][0]),
        0.02,  # measured 0.07 (learned) and 0.06 (NoPE)
        0.15,
    )

# %% tags=["nbval-ignore-output"]
print(
    f"trained and evaluated {len(seed_loss)} models in "
    f"{compare_seconds:.0f} s"
)

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(7.5, 4))
for name, cells in compare_loss.items():
    means, lows, highs = zip(*cells)
    ax.errorbar(
        EVAL_LENGTHS,
        means,
        yerr=[
            [m - lo for m, lo in zip(means, lows)],
            [h - m for m, h in zip(means, highs)],
        ],
        fmt="o-",
        capsize=3,
        color=encoding_color(name),
        label=name + (" (clamped)" if name == "learned" else ""),
    )
ax.axvline(CONTEXT, color="0.5", ls="--", lw=1)
ax.text(
    CONTEXT,
    0.98,
    " training context",
    transform=ax.get_xaxis_transform(),  # x in characters, y in axes
    va="top",
    fontsize=8,
    color="0.4",
)
ax.axhline(
    baselines["bigram"],
    color="0.3",
    ls=":",
    lw=1,
    label=f"bigram baseline ({baselines['bigram']:.2f})",
)
ax.set_xscale("log", base=2)
ax.set_xticks(EVAL_LENGTHS, [str(n) for n in EVAL_LENGTHS])
ax.set_xlabel("evaluation context (characters)")
ax.set_ylabel("validation loss (nats)")
ax.set_title(
    "train at 64 characters, test at 64, 128 and 256\n"
    "(mean and 95% CI of 3 seeds, 200 steps each)",
    fontsize=10,
)
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
plt.show()

# %% [markdown]
# **What we saw.** All numbers are means over the three seeds, with 95%
# intervals in brackets. At the training context the five models already
# differ more than the extrapolation changes them: RoPE is best (2.228 [2.183,
# 2.272]), ALiBi next (2.286 [2.230, 2.342]), NoPE (2.446) and the learned
# table (2.458) close together, and sinusoidal last (about 2.79, with the
# widest interval). Sinusoidal models get their token embeddings
# multiplied by $\sqrt{d_\text{model}}$ (the library's default for a fixed
# encoding); even so this one trails NoPE, which has no positional information
# at all. We have not tuned it further.
#
# **That ranking is not settled.** These models trained for 200 steps and
# end near a model that only counts character pairs: NoPE and the learned
# table within 0.04 nats of the bigram model's 2.482, RoPE 0.25 below it,
# the sinusoidal model about 0.3 *above* it, where the full recipe reaches
# 1.887. Week 3's models, of the same size (2 layers, width 64, 4 heads,
# the same $\sqrt{d}$ scale) and also trained for 200 steps, ranked the
# encodings differently within the training length: there the sinusoids
# came first, level with RoPE; here they come last. The two setups differ in
# context (32 there, 64 here), batch, learning-rate schedule, weight decay
# and whether the output layer shares the token embeddings, and neither
# trained long enough to say how the encodings rank once a model has learned
# more than pairs of characters. That would take the full recipe with each
# encoding, and several seeds (the command at the end of this section).
#
# What the three seeds do show is how each model changes past the training
# context, which is what this experiment asks:
#
# * **ALiBi** is flat: 2.286, 2.291, 2.293 at 64, 128, 256 —
#   {cite:t}`press2022alibi`'s result. A distance it never saw only gets a
#   larger penalty on the same straight line.
# * **RoPE** holds at 128 (2.239) but rises at 256 (2.354 [2.221, 2.487]),
#   where ALiBi (2.293) is lower on average — but the two intervals overlap,
#   so three seeds do not establish that ALiBi overtakes it. Distances of 64
#   and more are new to RoPE at both lengths; up to 127 they cost it 0.011
#   nats on average, up to 255 they cost 0.126.
# * **Sinusoidal** degrades from the start: its loss rises at 128 and again
#   at 256, by about 0.19 nats on average in all.
# * **Learned (clamped)** and **NoPE** rise by about 0.07 and 0.06 at 256:
#   mildly, from a level no better than a model without positions.
#
# Beyond the training length week 3's models moved the same way: ALiBi
# flat, RoPE and the sinusoids rising. {ref}`ex-05-position-loss` adds a
# caution: the live model of §2, after 300 steps, uses only the last two or
# three characters. If these models, trained for fewer steps, do the same,
# the length of the window matters less to them than it would to a
# well-trained model, and a flat curve here is weaker evidence than it would
# be there.
#
# The full-size comparison, the recipe's model with each encoding for 2000
# steps, is one loop of the command line (the learned table is left out of the
# longer evaluations, which the lab refuses for it; its full run is the
# command of §2.1):
#
# ```bash
# for pe in sinusoidal rope alibi nope; do
#   python -m annotated train --task tiny_shakespeare \
#       --name shakespeare_$pe --positional $pe --train-length 64 \
#       --eval-lengths 128 256 --n-layers 4 --n-heads 4 --d-model 128 \
#       --dropout 0 --batch-size 12 --steps 2000 --lr 1e-3 \
#       --warmup-steps 100 --min-lr-ratio 0.1 --weight-decay 0.1 \
#       --eval-every 250 --eval-batches 20
# done
# ```
#
# ## Exercises
#
# ```{exercise}
# :label: ex-05-temperature-loss
# Sampling at $\tau \neq 1$ draws from $\mathrm{softmax}(z/\tau)$ instead of
# the model's own distribution. Compute the validation loss of that *tempered*
# distribution for $\tau \in \{0.5, 0.8, 1, 1.25, 1.5\}$ with the live model
# of §2. Which $\tau$ gives the lowest loss, and what does that say about
# sampling at $\tau = 0.5$?
# ```
#
# ```{solution-start} ex-05-temperature-loss
# :class: dropdown
# ```

# %% tags=["nbval-ignore-output"]
held_out = task.sample(
    1024, CONTEXT, torch.Generator().manual_seed(5), split="val"
)
with torch.no_grad():
    logits = gpt.eval()(held_out.inputs).logits  # (B, T, V)
tempered = {  # τ -> validation loss of softmax(z / τ)
    tau: F.cross_entropy(
        (logits / tau).flatten(0, 1), held_out.targets.flatten()
    ).item()
    for tau in (0.5, 0.8, 1.0, 1.25, 1.5)
}
print(
    "\n".join(
        f"τ = {tau:<4}: validation loss {loss:.3f}"
        for tau, loss in tempered.items()
    )
)

# %% tags=["remove-cell"]
expect(
    "τ = 1 scores best",
    min(tempered, key=tempered.get) == 1.0,
    losses=tempered,
)
expect_below(
    "the loss rises slowly near τ = 1",
    tempered[0.8] - tempered[1.0],
    0.08,  # measured 0.02
)
expect_above(
    "the loss rises steeply at τ = 0.5",
    tempered[0.5] - tempered[1.0],
    0.2,  # measured 0.39
)

# %% [markdown]
# $\tau = 1$ scores best (2.404): training minimises exactly this loss at
# $\tau = 1$. The loss rises on both sides, slowly near 1 (2.423 at
# $\tau = 0.8$) and steeply further away (2.797 at $\tau = 0.5$). A lower
# temperature makes samples *look* better (more real words, §3) while the
# tempered model is a *worse* model of the text: it is overconfident. Sampling
# at $\tau < 1$ trades faithfulness to the learned distribution for fewer odd
# characters.
#
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-05-position-loss
# Every window scores all 64 positions, but the character at position 0 is
# predicted from one character of context and the one at position 63 from 64.
# Plot the validation loss of the live model of §2 by position (1024 held-out
# windows). Where does more context stop helping, and what does that mean for
# the comparison of §4?
# ```
#
# ```{solution-start} ex-05-position-loss
# :class: dropdown
# ```

# %%
with torch.no_grad():
    per_position = F.cross_entropy(
        logits.transpose(1, 2), held_out.targets, reduction="none"
    ).mean(0)  # (T,)
fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(per_position, ".-")
ax.set_xlabel("position in the window (characters of context − 1)")
ax.set_ylabel("validation loss (nats)")
plt.show()

# %% tags=["nbval-ignore-output"]
blocks = per_position.view(8, 8).mean(
    1
)  # (8,): mean over positions 0–7, 8–15, …, 56–63
print(
    "positions 0, 1, 2, 3: "
    f"{[round(loss, 3) for loss in per_position[:4].tolist()]}\n"
    "mean over blocks of 8 positions (0–7, 8–15, …, "
    f"56–63):\n{[round(loss, 3) for loss in blocks.tolist()]}"
)

# %% tags=["remove-cell"]
expect_above(
    "position 0 costs more than the bigram model",
    float(per_position[0]) - baselines["bigram"],
    0.05,  # measured 0.16
)
expect_above(
    "after position 2 more context stops helping",
    float(per_position[3:40].mean() - per_position[2]),
    -0.02,  # measured: positions 3-39 average 0.04 above position 2
)
expect_above(
    "the last three blocks of 8 positions are slightly worse",
    float(blocks[5:].mean() - blocks[1:5].mean()),
    0.01,  # measured 0.05
)

# %% [markdown]
# Position 0, predicted from one character, costs 2.64 nats — more than the
# bigram model's 2.482, which uses exactly that one character: after 300 steps
# the model has not even caught up with pair counting there. The loss falls to
# 2.345 at position 2 and then stops improving: the blocks of 8 positions stay
# between 2.369 and 2.400 up to position 39, and the last three blocks are
# slightly *worse* (2.425–2.439). So this model uses the last two or three
# characters and little beyond; why its late positions are worse we have not
# investigated.
#
# For §4 this means two things. A mean over a window mixes positions with
# little and much context; a model that used long context well would score
# *lower* on longer windows, so a loss that rises with the length is doing
# worse than it looks. And for models that barely look past a few characters,
# a longer window changes little — a flat curve after so little training is
# weaker evidence than it would be for a fully trained model.
#
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-05-epochs
# How many characters does the full recipe read in training, and how many
# passes over the training split is that? How does this compare with the live
# run?
# ```
#
# ```{solution-start} ex-05-epochs
# :class: dropdown
# ```

# %%
print(
    "\n".join(
        f"{steps:>4} steps × 12 windows × {CONTEXT} = "
        f"{steps * 12 * CONTEXT:>9,} characters "
        f"= {steps * 12 * CONTEXT / len(train_ids):.2f} passes"
        for steps in (2000, LIVE_STEPS)
    )
)

# %% [markdown]
# The full recipe reads each training character about one and a half times on
# average (1.53 passes; windows are drawn at random offsets, so some
# characters are read more often, some never); the live run reads about a
# quarter of the training split (0.23 passes). With so little repetition a
# model this size has little chance to overfit, which is why the recipe can do
# without dropout.
#
# ```{solution-end}
# ```
#
# ## Summary
#
# * Loss in nats and perplexity $e^{\mathcal{L}}$ mean most against baselines:
#   uniform guessing, character frequencies and character pairs need no
#   training at all.
# * The nanoGPT CPU recipe (4 layers, 4 heads, width 128, context 64, 2000
#   steps) is one command line of the lab. Its stored 2000-step run reaches a
#   validation loss of 1.887, beside nanoGPT's published 1.88 (one seed); the
#   300 steps that run live reach 2.400, only just below the bigram baseline's
#   2.482.
# * A temperature below 1 trades faithfulness (a higher loss) for tidier
#   samples; top-$k$ tidies them too.
# * Trained at 64 characters and tested at 256 (small models, 200 steps, three
#   seeds), ALiBi stays flat (2.286 to 2.293) while the sinusoidal encoding
#   degrades (by about 0.19 nats on average) and RoPE rises at 256 (2.228 to
#   2.354, with a wide interval), in every seed; a learned table cannot go
#   past its 64 rows at all without a fallback.
# * These short runs end near the bigram baseline (2.482), far from the full
#   recipe's 1.887, so their ranking *within* the training context (RoPE
#   first, sinusoidal last here; sinusoidal first in week 3) is not settled:
#   it would take the full recipe with each encoding, and several seeds.
