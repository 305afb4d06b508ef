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

# %% [markdown]
# # Week 6b — Making transformers extrapolate
#
# **Learning goals.** By the end of this chapter you can
#
# 1. say what a model trained on lengths $1 \dots L$ has never seen when it
#    meets length $2L$, and name three remedies the field found: randomized
#    positions {cite:p}`ruoss2023randomized`, Abacus embeddings
#    {cite:p}`mcleish2024abacus` and position coupling
#    {cite:p}`cho2024coupling`;
# 2. read each remedy in the library, as a positional encoding or a task
#    format, and check the property that defines it;
# 3. train a one-layer model on additions of 1…10 digits and read its exact
#    match at 20, 50, 100 and 200 digits, beside baselines trained with the
#    same budget;
# 4. find the mechanism in the attention: an answer digit reads the operand
#    digits of its own significance and of the one below, at any length.
#
# Week 6 measured *who* extrapolates under the papers' protocol. This chapter
# is about *how to make* a model extrapolate. It reads the same sweeps (their
# results ship with the library in `annotated/data/`), a trained model that
# ships beside them, and trains one small model live.

# %%
import math
import tempfile
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import yaml

import annotated
from annotated import lab
from annotated.analysis.claims import (
    Claim,
    claims_table,
    learned_flags,
    out_of_distribution,
)
from annotated.analysis.claims_text import claims_text
from annotated.analysis.expect import (
    expect,
    expect_above,
    expect_below,
    expect_between,
    expect_greater,
)
from annotated.analysis.stored_sweeps import StoredSweeps
from annotated.figures import viz
from annotated.figures.palette import encoding_color
from annotated.figures.position_diagrams import position_ids_diagram
from annotated.figures.showcode import show_source
from annotated.figures.viz import figure_image
from annotated.lab.config import CONFIG_DIR
from annotated.models.transformer import load_model
from annotated.positional.abacus import AbacusEncoding
from annotated.positional.coupled import CoupledRelativeBias
from annotated.positional.randomized import sample_sorted_positions
from annotated.tasks import get_task
from annotated.tasks.extrapolation import ReversedAdditionTask, digit_places

torch.manual_seed(0)
torch.set_num_threads(1)  # as the sweeps ran: one thread per process
DATA = Path(annotated.__file__).parent / "data"
sweeps = StoredSweeps()

# %% [markdown]
# ## 1. What a model has never seen beyond $L$
#
# A decoder trained on sequences of up to $T$ tokens has seen position ids
# $0 \dots T-1$ and, inside attention, query–key offsets $0 \dots T-1$. At
# length $2T$ half the ids, and half the offsets, are new. An absolute
# encoding (sinusoidal, a learned table) then feeds the model vectors it never
# trained on; a relative one (RoPE, ALiBi, T5's bias) meets only new
# *offsets*, which a local rule can ignore. Week 6 showed both failures and
# their exceptions. Three remedies change what "new" means:
#
# * **randomize** the ids in training, so that large ids are not new at test
#   time;
# * **number tokens by their role** rather than their index: a digit gets its
#   place within its number (Abacus), or the digits of one significance share
#   an id across both operands and the answer (coupling), so a longer problem
#   reuses the ids and offsets that mattered in training.
#
# The figure numbers one addition, `472 + 351 = 823` written least significant
# digit first {cite:p}`lee2024arithmetic` with an end marker per operand (week
# 6, section 6), in the three ways this chapter uses. The ids are computed by
# the library's own task code.

# %%
figure_image(position_ids_diagram())

# %% [markdown]
# Under `0 … T−1` the answer digit `8` (index 14) and the operand digits it is
# made from (`4` and `3`, indices 2 and 8) stand at offsets 12 and 6, offsets
# that grow with the numbers' length. Under coupling all three carry id 3:
# "read the operand digits with my own id" is the same rule at 3 digits and
# at 300.
#
# ## 2. Randomized positions
#
# Ruoss et al. train with positions drawn as a sorted random subset of a range
# much longer than any training sequence, and evaluate the same way. The model
# sees every id up to the range during training, in increasing order but with
# random gaps, so it can only use their order:

# %%
show_source(sample_sorted_positions)

# %%
draw = sample_sorted_positions(3, 6, 24, torch.Generator().manual_seed(0))
print("three sequences of 6 tokens, positions from range(24):")
print(draw)

# %% [markdown]
# Every row is increasing, and no id repeats within a row. The `randomized`
# encoding of week 3 declares the range it draws from, and the training loop
# and evaluation pass such draws to it; it reads them through the sinusoidal
# encoding by default. The sort
# sweep (8 symbols, training lengths $1 \dots 8$, tested to 16, three seeds
# each, stop rule of week 6) sets it beside its base and beside two encodings
# that need no remedy in the literature, NoPE and T5's bias (week 6, section
# 5, draws the curves):

# %%
SORT = ["sinusoidal", "randomized", "nope", "t5"]
print(sweeps.table("sort", SORT))
print(sweeps.at_lengths("sort", ["sinusoidal", "randomized"], (8, 12, 16)))

# %% tags=["remove-cell"]
# read from stored files: the same on every machine
sort_runs, sort_seeds = sweeps.completed("sort"), sweeps.per_seed("sort")
expect(
    "all four learned sort in 3 of 3 seeds; randomized beats its base in "
    "every seed",
    len(sort_runs) == 12
    and all(r["learned"] for r in sort_runs)
    and min(sort_seeds["randomized"]) > 0.5
    and max(sort_seeds["sinusoidal"]) < 0.02,
    per_seed=sort_seeds,
)

# %% [markdown]
# **What we saw.** All four learned sort in 3 of 3 seeds. The randomized
# encoding keeps 0.80 [0.47, 1.00] of the sorts exactly right over lengths
# 9…16, its base 0.00 [0.00, 0.01]: the remedy works here in every seed
# (0.709–0.936 at $n = 12$, 0.395–0.723 at 16), though not without loss. NoPE
# keeps 0.62 [0.26, 0.98] and T5's bias 0.19 [0.16, 0.22] — an encoding that
# never saw a large position is not thereby safe from length. The appendix
# ({doc}`reproduction_report`) sets these numbers beside the papers'.
#
# ## 3. Abacus: a digit's place within its number
#
# McLeish et al. give each digit the learned vector of its place within its
# own number (1, 2, 3, …, counted from the least significant digit in the
# reversed format), and 0 to every other token. The task computes the places:

# %%
show_source(digit_places)

# %% [markdown]
# During training each sequence adds a random offset $k < K$ to its places, so
# table rows up to $n + K - 1$ are trained by numbers of only $n$ digits; at
# evaluation there is no offset, and a longer number reads rows that training
# already reached:

# %%
show_source(AbacusEncoding.shifted)

# %%
abacus = AbacusEncoding(64, 8, max_offset=32, seed=0)
places = torch.tensor([[1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 4]]).expand(
    2, -1
)  # two sequences, 3-digit operands
print("places             ", places[0].tolist())
for i, rows in enumerate(abacus.train().shifted(places, 2).tolist()):
    print(f"training, row {i}    ", rows)
for i, rows in enumerate(abacus.eval().shifted(places, 2).tolist()):
    print(f"evaluation, row {i}  ", rows)

# %% [markdown]
# In training the two sequences read different rows for the same places (each
# its own offset; non-digits keep row 0); at evaluation they read the places
# themselves. What Abacus does not give a one-layer model is a way to find
# *which* operand digit to read: every number's first digit has place 1.
# McLeish et al. pair it with deeper models (and NoPE or FIRE inside
# attention). The library has the encoding and the task format
# (`addition_abacus`), but this chapter has no Abacus sweep: a one-layer
# Abacus model, in a trial not shown here, did not fit 10-digit addition, and
# the deeper models do not fit the compute of this chapter. The claim stays
# *not testable here*.
#
# ## 4. Position coupling, read as a relative bias
#
# Cho et al. give the digits of one significance in both operands and the
# answer the same id (figure, bottom row), and feed those ids to a learned
# absolute table with a random start. The library reads the same ids through a
# learned bias on their clipped difference, one scalar per head and difference
# in $-3 \dots 3$:
#
# $$\text{score}(i, j) \mathrel{+}=
# b_h\big[\operatorname{clip}(p_i - p_j, -3, 3)\big]$$
#
# (the class docstring says why: in trial runs not shown here, the absolute
# table over coupled ids fitted 10 digits and failed at 15, while the bias
# extrapolated). As a `score_mod`:

# %%
show_source(CoupledRelativeBias.score_mod)

# %% [markdown]
# Its defining property: the bias a query adds to a key depends only on their
# ids' difference, so an answer query in the middle of a 12-digit problem and
# one in the middle of a 100-digit problem add the same bias to the operand
# digits one significance above their own. Checked on a bias with random
# entries:

# %%
bias = CoupledRelativeBias(4)
with torch.no_grad():
    bias.theta.normal_()
task = get_task("addition_coupled")
for n in (12, 100):
    batch = task.sample(1, n, torch.Generator().manual_seed(0))
    ids = batch.positions[0]  # (T,) coupled ids of the input tokens
    mod = bias.score_mod(ids, ids)
    query = int(
        (ids == n // 2 + 1).nonzero()[-1]
    )  # the answer token with id n/2 + 1 (the last one)
    keys = (
        (ids == n // 2 + 2).nonzero().flatten()[:2]
    )  # the two operand digits one significance up
    b, h = torch.tensor(0), torch.tensor(1)
    with torch.no_grad():
        adds = [
            round(
                float(mod(torch.tensor(0.0), b, h, torch.tensor(query), k)), 4
            )
            for k in keys
        ]
    print(
        f"n = {n:>3}: the answer query at index {query} has id "
        f"{int(ids[query])}; head 1 adds {adds}\n"
        f"         to the operand digits of id {n // 2 + 2} (indices "
        f"{keys.tolist()})"
    )

# %% [markdown]
# ## 5. Adding 100-digit numbers after training on 10
#
# The sweep `length_addition_coupled` trains this model — one layer,
# width 128, four heads — on additions of 1…10 digits (least significant digit
# first, end markers), for 6,000 steps, three seeds, and tests it on 512 fresh
# problems at every length up to 20 digits and at 30, 50, 100 and 200. The
# stop rule of week 6 records when each run learned 1…10 digits (0.99 exact
# match, three evaluations in a row) but does not end it (`min_steps`; the
# second table below shows what ending it costs). Beside it,
# `length_addition_baselines`: the same model, data, optimiser and cap, with
# the tokens numbered $0 \dots T-1$ and read by the sinusoidal encoding
# (absolute) or RoPE (relative), stopped by the rule when learned.

# %%
ADDITION = {
    "addition_coupled": ["coupled_bias"],
    "addition_marked": ["sinusoidal", "rope"],
}
NAMES = {
    "coupled_bias": "position coupling",
    "sinusoidal": "sinusoidal, ids 0…T−1",
    "rope": "RoPE, ids 0…T−1",
}
fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
ax.set_prop_cycle(  # each encoding in its colour of the whole book
    color=[encoding_color(e) for es in ADDITION.values() for e in es]
)
for task_name, encodings in ADDITION.items():
    sweeps.plot(
        ax,
        task_name,
        encodings,
        "addition: trained on 1…10 digits (dashed line)",
        xscale="log",
        xlabel="digits per operand n (log scale)",
        labels=NAMES,
    )
DIGITS = [1, 10, 20, 50, 100, 200]
ax.set_xticks(DIGITS, labels=[str(n) for n in DIGITS])
ax.tick_params(axis="x", which="minor", labelbottom=False)
plt.show()
for task_name, encodings in ADDITION.items():
    print(sweeps.table(task_name, encodings))
print(
    sweeps.at_lengths(
        "addition_coupled", ["coupled_bias"], (10, 20, 50, 100, 200)
    )
)
minutes = [
    f"{r['train_time_s'] / 60:.1f}"
    for r in sweeps.completed("addition_coupled")
]
print(
    "training minutes per coupled run (one thread each): "
    f"{', '.join(minutes)}"
)

# %% [markdown]
# **What we saw.** The coupled model learned 1…10-digit addition in 3 of 3
# seeds (the stop rule was met at 800, 2,200 and 800 steps) and, trained on to
# 6,000 steps, adds 20-, 50- and 100-digit numbers at 1.000 exact match in
# every seed (Wilson lower bound 0.993, 512 problems each); at 200 digits it
# scores 1.000, 0.900 and 0.908 (lower bounds 0.993, 0.871, 0.880). That is
# 10× the longest training operand in 3 of 3 seeds, and 20× at 0.900 or better
# — past the published 5× (McLeish et al.) and 6.7× (Cho et al.), from 20–29
# minutes of one CPU thread per run. The baselines, with the same model, data
# and 6,000 steps, learned the training lengths in none of their six runs (ID
# 0.28 [0.21, 0.35] for sinusoidal, 0.10 [0.06, 0.14] for RoPE; week 6 prints
# them per length) and score 0.00 beyond 10 digits. So the comparison is not
# "extrapolates against does not" but "learns addition at all, with one layer,
# against does not": coupled ids make the rule local enough for one layer to
# find it.
#
# A second sweep lets the stop rule end each run as soon as 1…10 digits are
# learned (the same config without `min_steps`, evaluated to 100 digits; its
# results sit beside the others as `length_addition_stopped_*`):

# %%
stopped = StoredSweeps("length_addition_stopped_")
print(stopped.at_lengths("addition_coupled", ["coupled_bias"], (20, 50, 100)))
print(
    "steps trained (the rule ended each run when it was met):",
    ", ".join(
        str(r["steps_to_learn"])
        for r in stopped.completed("addition_coupled")
    ),
)

# %% tags=["remove-cell"]
# read from stored files: the same on every machine
full_runs = sweeps.completed("addition_coupled")
cut_runs = stopped.completed("addition_coupled")
expect(
    "the stop rule was met at 800, 2,200 and 800 steps, in both sweeps; "
    "trained on, every seed is at 0.90 or better at 200 digits",
    [r["steps_to_learn"] for r in full_runs]
    == [r["steps_to_learn"] for r in cut_runs]
    == [800, 2200, 800]
    and min(r["exact_match@200"] for r in full_runs) >= 0.9,
    at_200=[r["exact_match@200"] for r in full_runs],
)
expect(
    "stopped, every seed adds 20 digits at 0.98 or better, 50 digits at "
    "0.719-0.996 and 100 digits at 0.25 or less: 2x, not 10x",
    all(
        r["exact_match@20"] >= 0.98
        and 0.7 <= r["exact_match@50"] < 1
        and r["exact_match@100"] <= 0.25
        for r in cut_runs
    ),
    stopped=[
        (r["exact_match@20"], r["exact_match@50"], r["exact_match@100"])
        for r in cut_runs
    ],
)

# %% [markdown]
# **What we saw.** The same models, the same data, the same first 800–2,200
# steps: stopped there, they add 20-digit numbers (0.980–1.000) but 50-digit
# ones only at 0.719–0.996, and 100-digit ones at 0.246, 0.074 and 0.000.
# Trained on to 6,000 steps, every seed is at 1.000 at 100 digits. "Learned at
# the training lengths" is where the rule is learned well enough for 2×, not
# for 10×; section 7 shows what the extra training changes inside.
#
# ## 6. A slice, live
#
# The sweep's runs take minutes each. This cell trains one model of the same
# kind live, seed 0, for 1,200 steps instead of 6,000 (the schedule compressed
# to match), and tests it at 10, 20 and 50 digits on 256 problems each. It
# goes through the same code as the sweep: the shipped config,
# `lab.expand_grid`, `lab.run`.
#
# The tables above read the sweeps' results, which print the same on every
# machine; this run trains on yours. Re-executed, its numbers differ in their
# later digits with the CPU and the thread count, and a 50-digit problem or
# two may come out differently. What this page draws from it holds
# regardless: 10 and 20 digits right, or all but right; at least nine in ten
# 50-digit problems right; and section 7's blurring with length.

# %% tags=["nbval-ignore-output"]
config = lab.ExperimentConfig.from_file(
    CONFIG_DIR / "length_addition_coupled.yaml"
)
(point,) = [p for p in lab.expand_grid(config) if p.seed == 0]
point.train |= {
    "steps": 1200,
    "warmup_steps": 36,
    "min_steps": 0,
    "stop_accuracy": None,
    "eval_every": 0,
    "eval_batches": 1,
    "checkpoint_every": 0,
}
point.eval_lengths = [20, 50]
live = lab.run(point, Path(tempfile.mkdtemp(prefix="week6b_")))
print(
    "trained in "
    + format(
        yaml.safe_load((live / "report.json").read_text())["train_time_s"]
        / 60,
        ".1f",
    )
    + " min"
)

# %% tags=["nbval-ignore-output"]
report = yaml.safe_load((live / "report.json").read_text())
print(
    "live run, seed 0, 1,200 steps: exact match on 256 problems [Wilson 95%]"
)
for n, row in report["per_length"].items():
    print(
        f"  n = {n:>3}: {row['exact_match']:.3f}  "
        f"[{row['exact_match_lo']:.3f}, {row['exact_match_hi']:.3f}]"
    )

# %% tags=["remove-cell"]
exact = {
    int(n): row["exact_match"] for n, row in report["per_length"].items()
}
# 1.000 at 10 and 20 digits under every CPU capability tried; 0.98 allows
# five mistakes in 256
for n in (10, 20):
    expect_above(
        f"the live model adds {n}-digit numbers (almost) without a mistake",
        exact[n],
        0.98,
    )
# 0.977-1.000 at 50 digits across capabilities; nine in ten leaves room
expect_above(
    "the live model gets at least nine in ten 50-digit additions right",
    exact[50],
    0.9,
)

# %% [markdown]
# **What we saw.** A fifth of the sweep's training gives a model that adds 10-
# and 20-digit numbers without a mistake, or almost, on 256 problems each, and
# gets at least nine in ten of the 50-digit ones right, from minutes on one
# CPU thread. One seed and one short run: section 7 shows where it falls short
# of the sweep's 6,000-step model.
#
# ## 7. The mechanism: an answer digit reads its own significance
#
# Seed 0 of the sweep, trained its 6,000 steps, ships with the library
# (`annotated/data/addition_coupled.pt`, with a note of what it is), so we
# can look inside without training. For each answer query, group its
# attention by the difference of coupled ids $p_q - p_k$. The query at answer
# digit $c_{s-1}$ (id $s$) predicts $c_s$: it needs the operand digits of
# significance $s$ (id $s + 1$, difference $-1$) and, for the carry, those of
# $s - 1$ (id $s$, difference 0).

# %%
stored = load_model(DATA / "addition_coupled.pt").eval()
provenance = yaml.safe_load(
    (DATA / "addition_coupled_provenance.yaml").read_text()
)
task = get_task("addition_coupled")


def attention_by_role(model, n, problems=256):
    """Mean attention of the answer queries, split by key: operand digits
    whose coupled id differs from the query's by −1 or 0, other operand
    tokens, and the rest ("=" and the answer so far): (H, 4)."""
    batch = task.sample(
        problems, n, torch.Generator().manual_seed(1), split="val"
    )
    with torch.no_grad():
        out = model(
            batch.inputs, positions=batch.positions, need_weights=True
        )
    weights = out.attentions[0]  # (B, H, T, T): the one layer
    ids = batch.positions[0]  # (T,): every row has the same ids
    answer = (
        batch.target_mask[0].nonzero().flatten()
    )  # the queries that predict answer tokens and EOS
    operand = torch.arange(len(ids)) < task.prompt_len(
        n
    )  # (Tk,): the two operands and "+"
    difference = ids[answer, None] - ids[None, :]  # (Tq, Tk): p_q − p_k
    keys = [
        operand & (difference == -1),
        operand & (difference == 0),
        operand & (difference.abs() > 0) & (difference != -1),
        ~operand.expand_as(difference),
    ]
    mass = torch.stack(
        [(weights[:, :, answer] * k).sum(-1).mean((0, 2)) for k in keys],
        dim=1,
    )  # (H, 4)
    right = (
        (out.logits.argmax(-1) == batch.targets)[:, answer]
        .all(-1)
        .float()
        .mean()
    )
    return mass, float(right)


def roles_by_length(model, lengths=(10, 50, 100)):
    """attention_by_role at each length: {n: (mass (H, 4), exact match)}."""
    return {n: attention_by_role(model, n) for n in lengths}


def role_table(by_length):
    """roles_by_length as one table (one printed block)."""
    lines = [
        f"{'':<9}{'head':<6}{'−1':>7}{'0':>7}{'other':>7}{'rest':>7}"
        "   exact match"
    ]
    for n, (mass, right) in by_length.items():
        for h in range(mass.shape[0]):
            tail = f"{right:>13.3f}" if h == 0 else ""
            lines.append(
                f"{f'n = {n}':<9}{h:<6}"
                + "".join(f"{m:>7.2f}" for m in mass[h].tolist())
                + tail
            )
    return "\n".join(lines)


stored_roles = roles_by_length(stored)
print(
    textwrap.fill(provenance["what"], 78)
    + "\n\n"
    + "answer queries' attention (mean of 256 problems) on operand digits "
    "at\n"
    "p_q − p_k = −1 (the significance being written), "
    "0 (the one below: the carry),\n"
    "other operand tokens, and the rest (= and the answer so far)\n"
    + role_table(stored_roles)
)

# %% tags=["remove-cell"]
# the stored model on fixed problems: the same on every machine up to
# float rounding (measured: head 3 0.989-0.997 at −1, head 0 0.789-0.813
# at 0)
expect(
    "head 3 puts 0.99 or more on the digits being written and head 0 "
    "0.79-0.81 (most of the rest on the answer so far) one place below, at "
    "10, 50 and 100 digits; all 256 problems right at each",
    all(
        int(stored_roles[n][0][:, 0].argmax()) == 3
        and stored_roles[n][0][3, 0] >= 0.985
        and int(stored_roles[n][0][:, 1].argmax()) == 0
        and 0.785 <= stored_roles[n][0][0, 1] <= 0.815
        and stored_roles[n][0][0, 3] > stored_roles[n][0][0, 2]
        and stored_roles[n][1] == 1.0
        for n in (10, 50, 100)
    ),
    roles={n: m.tolist() for n, (m, _) in stored_roles.items()},
    exact={n: right for n, (_, right) in stored_roles.items()},
)

# %% [markdown]
# **What we saw.** The model splits the work between heads. Head 3 puts 1.00
# of its weight (at 10 digits; 0.99 at 50 and 100) on the operand digits of
# the significance being written (difference −1); head 0 puts 0.79–0.81 on the
# operand digits one place below, where the carry comes from, and most of its
# remaining weight on the answer so far. Heads 1 and 2 spread theirs more
# widely. The pattern does not change with length: at 100 digits, ten times
# the longest operand seen in training, the two heads read the same places as
# at 10, and all 256 problems are right. This is what coupling buys: "one
# significance up" is the same bias entry at every length, and the exercise
# {ref}`ex-06b-carry` shows that these two places are all a digit needs.
#
# The live model of section 6 was trained for 1,200 steps instead of 6,000.
# The same measurement on it:

# %% tags=["nbval-ignore-output"]
short = load_model(live / "model.pt").eval()
short_roles = roles_by_length(short)
print("the live model (1,200 steps)\n" + role_table(short_roles))


# %% tags=["remove-cell"]
def role_heads(by_length, n):
    """(weight on its role, weight on other operand digits) at n digits for
    each role head: a head that puts at least half its weight at difference
    −1 or at 0 at 10 digits."""
    at_10 = by_length[10][0][:, :2]  # (H, 2): −1, 0
    heads = (at_10.max(1).values >= 0.5).nonzero().flatten()
    role = at_10.argmax(1)[heads]
    mass = by_length[n][0]
    return mass[heads, role], mass[heads, 2]


short_10, short_100 = short_roles[10][0], short_roles[100][0]
# the short model at 10 digits, across capabilities: 0.95 at −1 and
# 0.78-0.80 at 0; 0.15 below that still means "most of its weight"
expect_above(
    "the short model has a head reading the significance being written",
    short_10[:, 0].max(),
    0.7,
)
expect_above(
    "the short model has a head reading the one below",
    short_10[:, 1].max(),
    0.6,
)
(role_10, other_10), (role_100, other_100) = (
    role_heads(short_roles, 10),
    role_heads(short_roles, 100),
)
kept_10, kept_100 = (
    role_heads(stored_roles, 10)[0],
    role_heads(stored_roles, 100)[0],
)
expect(
    "every role head of the short model keeps less of its weight in place "
    "at 100 digits than at 10",
    bool((role_100 < role_10).all()),
    at_10=role_10.tolist(),
    at_100=role_100.tolist(),
)
# the short model's role heads lose 0.13 on average across capabilities
# (the least 0.06), the 6,000-step model's none: a gap of 0.05 holds
expect_greater(
    "the short model's roles blur with length, the 6,000-step model's do not",
    (role_10 - role_100).mean(),
    (kept_10 - kept_100).mean(),
    margin=0.05,
)
# other operand digits gain 0.13 on average across capabilities
expect_greater(
    "more of the short model's weight goes to other operand digits at 100",
    other_100.mean(),
    other_10.mean(),
    margin=0.05,
)
# 0.13-0.22 at 100 digits across capabilities, 1.000 at 10; the 6,000-step
# model is at 1.000 at 100
expect_above(
    "the short model adds every 10-digit problem (or almost)",
    short_roles[10][1],
    0.98,
)
expect_below(
    "most 100-digit problems defeat the short model", short_roles[100][1], 0.5
)
expect_greater(
    "the 6,000-step model adds 100-digit numbers far better",
    stored_roles[100][1],
    short_roles[100][1],
    margin=0.4,
)

# %% [markdown]
# **What we saw.** The short-trained model found the same two roles, in heads
# of its own (the table shows which read the significance being written and
# which the one below), but they blur as the numbers grow: every one of those
# heads keeps less of its weight where it belongs at 100 digits than at 10,
# more goes to other operand digits, and most 100-digit problems come out
# wrong. The sweep's model, trained five times longer, keeps its weight in
# place at every length tested and gets all of them right. One model of
# each, so this is a reading, not a law: the training after the stop rule's
# "learned" sharpens the attention that extrapolation depends on, which is
# why the sweep trains on to 6,000 steps.
#
# One 7-digit problem, drawn for the two heads with the clearest roles in the
# table above: the answer queries (rows) against the prompt (columns), each
# labelled `token·coupled id`.

# %%
roles, _ = attention_by_role(stored, 10)
heads = {
    "significance head": int(roles[:, 0].argmax()),
    "carry head": int(roles[:, 1].argmax()),
}
example = task.sample(1, 7, torch.Generator().manual_seed(3), split="val")
with torch.no_grad():
    weights = stored(
        example.inputs, positions=example.positions, need_weights=True
    ).attentions[0][0]  # (H, T, T)
names = [task.token_names[t] for t in example.inputs[0].tolist()]
answer = example.target_mask[0].nonzero().flatten()
prompt_len = task.prompt_len(7) + 1  # the operands, "+" and "="
labels = [
    f"{name}·{int(i)}" for name, i in zip(names, example.positions[0])
]  # token · coupled id
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
for ax, (role, h) in zip(axes, heads.items()):
    image = viz.attention_heatmap(
        weights[h][answer][:, :prompt_len],
        ax,
        query_labels=[labels[i] for i in answer],
        key_labels=labels[:prompt_len],
        colorbar=False,
        title=f"head {h}, the {role}",
    )
    ax.set(
        xlabel="key: prompt token · coupled id",
        ylabel="query: input token · coupled id",
    )
fig.colorbar(image, ax=axes, label="attention weight", shrink=0.9)
plt.show()

# %% [markdown]
# Each answer query of the significance head splits its weight, about half
# each, between the two operand digits whose id is one above its own: the
# query `=·0` reads `6·1` and `5·1`, the digits it is about to add. The carry
# head reads the two digits of the query's own id, the pair that produced the
# digit just written (and whose sum decides the carry); `=·0`, with no digit
# below it, reads `+·0` and itself. Two diagonals per head, one per operand,
# at any length.
#
# ## 8. A thousand digits: where the softmax dilutes
#
# Section 5 stopped at 200 digits. Nothing about a longer problem is new to
# this model's positions: the coupled bias depends only on the difference of
# two ids, clipped, so a 1,000-digit sum uses the same bias entries as a
# 10-digit one. What does change is the number of keys. An answer query of
# a 10-digit problem spreads its softmax over at most 37 tokens; at 1,000
# digits over about 3,000. We measured the stored model on 128 fresh
# problems at each length from 10 to 2,000 digits
# (`scripts/long_addition.py`, stored in `annotated/data/addition_long_*`).
# Exact match is read from one pass with the true answer as input: every
# answer token is the argmax given the true tokens before it exactly when
# greedy decoding writes the whole answer, so the count is greedy
# decoding's, at a fraction of its cost. Beside it, the attention the
# answer queries of the two role heads of section 7 put where they belong
# (4 problems per length).

# %%
from annotated.analysis.dilution import ROLES, exact_by_length  # noqa: E402
from annotated.analysis.intervals import wilson_interval  # noqa: E402
from annotated.lab.tables import read_csv  # noqa: E402

long_rows = read_csv(DATA / "addition_long_exact.csv")
long_exact = exact_by_length(long_rows)
long_mass = read_csv(DATA / "addition_long_mass.csv")
digit_head = int(stored_roles[10][0][:, 0].argmax())
carry_head = int(stored_roles[10][0][:, 1].argmax())


def role_curve(setting, head, role):
    """{n: the head's mean weight on keys of that role}."""
    return {
        int(r["length"]): float(r[role])
        for r in long_mass
        if str(r["scale"]) == setting and int(r["head"]) == head
    }


plain = long_exact["1.0"]
digit_mass = role_curve("1.0", digit_head, "digit")
carry_mass = role_curve("1.0", carry_head, "carry")
print(
    f"{'digits':>6} {'keys':>6} {'exact match [Wilson 95%]':>26} "
    f"{'head ' + str(digit_head) + ' digit':>13} "
    f"{'head ' + str(carry_head) + ' carry':>13}"
)
for n, (right, total) in plain.items():
    lo, hi = wilson_interval(right, total)
    print(
        f"{n:>6} {task.seq_len(n):>6} "
        f"{f'{right}/{total} = {right / total:.3f} [{lo:.2f}, {hi:.2f}]':>26}"
        f" {digit_mass.get(n, float('nan')):>13.3f}"
        f" {carry_mass.get(n, float('nan')):>13.3f}"
    )
others = {
    h: role_curve("1.0", h, "other operand") for h in (digit_head, carry_head)
}
print("weight on the other operand digits at 10 and at 2,000 digits:")
for h, other in others.items():
    print(f"  head {h}: {other[10]:.3f} and {other[2000]:.3f}")

# %% tags=["remove-cell"]
# read from stored files: the same on every machine
expect(
    "the stored model adds every problem up to 500 digits",
    all(c == t for n, (c, t) in plain.items() if n <= 500),
    plain=plain,
)
expect(
    "at 1,000 digits fewer than half are right, at 2,000 none",
    wilson_interval(*plain[1000])[1] < 0.5 and plain[2000][0] == 0,
    at_1000=plain[1000],
    at_2000=plain[2000],
)
lengths_in_order = sorted(digit_mass)
expect(
    "the significance head's weight on its digits falls at every length",
    all(
        digit_mass[b] < digit_mass[a]
        for a, b in zip(lengths_in_order, lengths_in_order[1:])
    ),
    mass=digit_mass,
)
expect_between(
    "the carry head loses about an eighth of its weight by 2,000 digits",
    carry_mass[10] - carry_mass[2000],
    0.08,
    0.16,
)
lost = {
    digit_head: digit_mass[10] - digit_mass[2000],
    carry_head: carry_mass[10] - carry_mass[2000],
}
expect(
    "the weight the two heads lose goes to the other operand digits",
    all(others[h][2000] - others[h][10] > 0.5 * lost[h] > 0.05 for h in lost),
    lost=lost,
    other={h: (o[10], o[2000]) for h, o in others.items()},
)

# %% [markdown]
# **What we saw.** Every problem is right up to 500 digits, fifty times the
# longest training operand. Then exact match falls off a cliff: 51 of 128 at
# 1,000 digits, none of 128 at 2,000. The attention does not fall off a
# cliff; it erodes. The significance head keeps 0.997 of its weight on the
# digits it must read at 10 digits, 0.954 at 500, 0.914 at 1,000 and 0.843
# at 2,000; the carry head goes from 0.79 to 0.67. The weight they lose goes
# to the other operand digits (0.134 and 0.172 of it at 2,000 digits, from
# 0.002 or less at 10), thousands of them, each with a small share —
# exactly what a softmax over more keys does when the logit gap between the
# right keys and the rest stays what training made it (exercise
# {ref}`ex-06b-log-n` works the numbers). An answer of 1,000 digits is right
# only if every one of its digits is, so a small blur per digit becomes a
# wrong answer.
#
# **A temperature, chosen on a held-out length.** If the gap is too small
# for 3,000 keys, multiply every logit by a constant $c > 1$ at inference —
# one line, `set_logit_scale(model, c)`, no retraining. We chose $c$ on
# 700-digit problems, a length used only for the choice, by the mean
# cross-entropy of the answer tokens (exact match is 32 of 32 there for
# every $c$ from 1.1 to 1.7, so it cannot choose), and then tested the
# chosen $c$ at 1,000 and 2,000 digits. Beside it, a rule with no constant
# to choose: multiply by $\max(1, \ln n / \ln 37)$, $n$ the keys a query
# sees and 37 the keys of a 10-digit problem
# (`set_length_scale(model, "log_ratio_beyond", 37)`), exactly 1 within the
# training lengths.

# %%
select_rows = read_csv(DATA / "addition_select_loss.csv")
selection = {  # the stored model's constants; a length rule comes later
    str(r["scale"]): r["answer_loss"]
    for r in select_rows
    if r["model"] == "addition_coupled"
    and not str(r["scale"]).startswith("log_")
}
chosen = min(selection, key=selection.get)
select_exact = exact_by_length(read_csv(DATA / "addition_select_exact.csv"))
print(
    "700 digits: mean cross-entropy of the answer tokens (16 problems),\n"
    "exact match (32 other problems; –: not measured)"
)
for c, loss in selection.items():
    right = (
        "{}/{}".format(*select_exact[c][700]) if c in select_exact else "–"
    )
    print(
        f"  × {c:<4}: {loss:.2e}  {right:>5}"
        + ("  <- chosen" if c == chosen else "")
    )
first, last = task.prompt_len(1000), task.seq_len(1000)  # answer queries
print(
    "the rule's factor ln n / ln 37 at 1,000 digits: "
    f"{math.log(first) / math.log(37):.2f} to "
    f"{math.log(last) / math.log(37):.2f}"
)
for setting in (chosen, "log_ratio_beyond"):
    on_digits = role_curve(setting, digit_head, "digit")
    print(
        f"\nlogits × {setting}: right [Wilson 95%]; "
        f"head {digit_head} on its digits"
    )
    for n, (right, total) in long_exact[setting].items():
        lo, hi = wilson_interval(right, total)
        weight = f"{on_digits[n]:.4f}" if n in on_digits else "–"
        print(
            f"  {n:>5} digits: {right:>3}/{total} [{lo:.2f}, {hi:.2f}]"
            f"  {weight:>6}"
        )
slow = [
    r
    for r in long_rows
    if str(r["scale"]) == chosen and int(r["length"]) == 5000
]
seconds = sum(r["seconds"] for r in slow) / sum(r["problems"] for r in slow)
print(f"5,000 digits: {seconds:.0f} s a problem on one thread (mean of 16)")

# %% tags=["hide-input"]
FIXES = {  # setting in the stored files -> how the figure names it
    "1.0": "as trained",
    chosen: f"× {chosen} (chosen at 700 digits)",
    "log_ratio_beyond": "× max(1, ln n / ln 37)",
}
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
for setting, label in FIXES.items():
    if setting not in long_exact:
        continue
    lengths = list(long_exact[setting])
    rates = [c / t for c, t in long_exact[setting].values()]
    bounds = [wilson_interval(c, t) for c, t in long_exact[setting].values()]
    left.errorbar(
        lengths,
        rates,
        yerr=[
            [r - lo for r, (lo, _) in zip(rates, bounds)],
            [hi - r for r, (_, hi) in zip(rates, bounds)],
        ],
        marker="o",
        capsize=3,
        label=label,
    )
    for head, role, style in (
        (digit_head, "digit", "-"),
        (carry_head, "carry", "--"),
    ):
        curve = role_curve(setting, head, role)
        right.plot(
            list(curve),
            list(curve.values()),
            style,
            marker="o",
            color=left.lines[-1].get_color(),
            label=f"head {head} on its {role} keys, {label}",
        )
left.set(
    xscale="log",
    xlabel="digits per operand (trained on 1…10)",
    ylabel="exact match (Wilson 95%)",
    ylim=(-0.03, 1.03),
)
right.set(
    xscale="log",
    xlabel="digits per operand",
    ylabel="attention weight of the answer queries",
    ylim=(0, 1.03),
)
left.legend(fontsize=8, loc="lower left")
right.legend(fontsize=8, loc="lower left")
plt.show()

# %% tags=["remove-cell"]
fixed, ruled = long_exact[chosen], long_exact["log_ratio_beyond"]
ruled_digit = role_curve("log_ratio_beyond", digit_head, "digit")
expect(
    "the answer loss at 700 digits is lowest at × 1.4, and × 2.0 is worse "
    "than no change",
    chosen == "1.4" and selection["2.0"] > selection["1.0"],
    losses=selection,
)
expect(
    "exact match at 700 digits is 32 of 32 for every c from 1.1 to 1.7, "
    "so it cannot choose; × 2.0 spoils most of them",
    all(
        select_exact[c][700] == (32, 32)
        for c in ("1.1", "1.2", "1.3", "1.4", "1.5", "1.7")
    )
    and select_exact["2.0"][700][0] < 16,
    exact=select_exact,
)
expect(
    "× 1.4 adds all 128 problems at 1,000 digits and all 128 at 2,000",
    fixed[1000] == fixed[2000] == (128, 128),
    at_1000=fixed[1000],
    at_2000=fixed[2000],
)
expect(
    "at 5,000 digits × 1.4 gets most but not all of 16 problems",
    fixed[5000][1] == 16 and 10 <= fixed[5000][0] < 16,
    at_5000=fixed[5000],
)
expect(
    "× 1.4 keeps every answer right at 10, 100 and 500 digits",
    all(fixed[n][0] == fixed[n][1] for n in (10, 100, 500)),
    fixed=fixed,
)
expect(
    "the log-ratio rule breaks the sums from 500 digits on, with its "
    "significance head's weight at 0.999 or more",
    ruled[500][0] < 0.6 * ruled[500][1]
    and ruled[1000][0] == 0
    and min(v for n, v in ruled_digit.items() if n >= 500) >= 0.999,
    at_500=ruled[500],
    at_1000=ruled[1000],
)

# %% [markdown]
# **What we saw.** The temperature works: multiplied by 1.4, chosen at 700
# digits, the same weights add 128 of 128 problems at 1,000 digits and 128 of
# 128 at 2,000, where they added 51 and none; at 10, 100 and 500 digits every
# answer stays right. At 5,000 digits, 15,000 keys, a problem takes about
# 18 s to check on one thread, so we ran 16 problems there: 13 are right,
# [0.57, 0.93] — the constant that suits 2,000 digits starts to fall short at
# 5,000. The length rule, which needs no choice, fails: it sharpens the
# significance head to 0.999 and more of its weight on the right digits, yet
# from 500 digits on the sums break (65 of 128 at 500, none at 1,000; we did
# not run it at 2,000). At 1,000 digits its factor is 2.1–2.2 — as large as
# the ×2.0 that already spoils the 700-digit answers (8 of 32 right) — and
# the exercise {ref}`ex-06b-log-n` shows why $\ln n / \ln 37$ over-shoots:
# only part of a trained gap grows with $\ln n$. A sharper softmax is not a
# better one; the heads were trained to a particular sharpness, and the
# right correction restores it rather than maximising it.
#
# **A rule with one constant, on three seeds.** A constant suits the
# lengths it was chosen near; the factor should grow with the keys, but
# far more slowly than $\ln n / \ln 37$. YaRN {cite:p}`peng2024yarn`
# multiplies queries and keys each by $1 + 0.1 \ln s$ for a context $s$
# times the trained one; we take that shape for the logits. Here
# $g(n) = 1 + \beta \max(0, \ln(n / 37))$
# (`set_length_scale(model, "log_beyond", 37, beta)`). It is exactly 1 on
# every sequence training saw, so a model trained with it is the model
# trained without: the three seeds of section 5 are models trained with
# it, and all that is left to choose is $\beta$ — on 700-digit problems
# again. Beside it, the papers' own recipe: the same sweep retrained
# with every logit $\times \ln n / \ln 37$ from the first step
# {cite:p}`chiang2022overcoming` (shipped as `length_addition_logn`).
# The target we set ourselves: at least 0.99 exact match at 1,000 digits,
# a hundred times the training length, in all three seeds.

# %%
def best_at_700(model, rule):
    """{setting: answer loss} at 700 digits for one model, and the best."""
    losses = {
        str(r["scale"]): r["answer_loss"]
        for r in select_rows
        if r["model"] == model and str(r["scale"]).startswith(rule)
    }
    return losses, min(losses, key=losses.get)


betas, best = best_at_700("addition_coupled", "log_beyond:")
beta, RULE = best.partition(":")[2], best
print("700 digits, 16 problems: answer cross-entropy with 1 + β ln(n/37)")
for setting, loss in betas.items():
    b = setting.partition(":")[2]
    print(f"  β = {b:<5}: {loss:.2e}" + ("  <- chosen" if b == beta else ""))
low_g, high_g = (1 + float(beta) * math.log(k / 37) for k in (first, last))
print(f"the rule's factor at 1,000 digits: {low_g:.2f} to {high_g:.2f}")

seed_rows = read_csv(DATA / "addition_long_exact.csv") + read_csv(
    DATA / "addition_seeds_exact.csv"
)
SEED_MODELS = {  # seed -> its name in the stored files
    0: "addition_coupled",
    1: "length_addition_coupled-seed=1",
    2: "length_addition_coupled-seed=2",
}
LOGN_MODELS = {s: f"length_addition_logn-seed={s}" for s in range(3)}
seed_exact = {
    s: exact_by_length(seed_rows, m) for s, m in SEED_MODELS.items()
}
logn_exact = {
    s: exact_by_length(seed_rows, m) for s, m in LOGN_MODELS.items()
}
LONG = (100, 200, 500, 1000, 2000)
for s, model in SEED_MODELS.items():
    if s:  # seed 0 is the stored model above
        b, c = (best_at_700(model, r)[1] for r in ("log_beyond:", "1."))
        print(f"seed {s} at 700 digits: best {b}, best constant × {c}")


def rates(by_n):
    """'1.00 0.90 …' over LONG, '–' where not run."""
    return " ".join(
        f"{by_n[n][0] / by_n[n][1]:>5.2f}" if n in by_n else f"{'–':>5}"
        for n in LONG
    )


print(f"\n{'exact match at':<30}" + " ".join(f"{n:>5}" for n in LONG))
for s in SEED_MODELS:
    as_trained, ruled = seed_exact[s]["1.0"], seed_exact[s][RULE]
    print(f"{f'seed {s}, as trained':<30}" + rates(as_trained))
    print(f"{f'seed {s}, 1 + {beta} ln(n/37)':<30}" + rates(ruled))
for s, by_setting in logn_exact.items():
    trained = by_setting["1.0"]
    print(f"{f'seed {s}, ln n / ln 37 trained':<30}" + rates(trained))
print("\nWilson 95% intervals with the rule:")
for s in SEED_MODELS:
    for n in (1000, 2000):
        c, t = seed_exact[s][RULE][n]
        lo, hi = wilson_interval(c, t)
        print(f"  seed {s}, {n:,} digits: {c}/{t} [{lo:.2f}, {hi:.2f}]")

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
CURVES = (  # (the seeds' results, setting, line, marker, label)
    (seed_exact, "1.0", ":", "o", "as trained"),
    (seed_exact, RULE, "-", "o", f"× (1 + {beta} ln(n/37))"),
    (logn_exact, "1.0", "--", "s", "× ln n / ln 37 trained in"),
)
for exact, setting, style, marker, label in CURVES:
    for s, by_setting in exact.items():
        by_n = by_setting[setting]
        ax.plot(
            list(by_n),
            [c / t for c, t in by_n.values()],
            style,
            marker=marker,
            color=f"C{s}",
            alpha=0.6 if exact is logn_exact else 1.0,
            label=f"seed {s}, {label}",
        )
ax.set(
    xscale="log",
    xlabel="digits per operand (trained on 1…10)",
    ylabel="exact match",
    ylim=(-0.03, 1.03),
)
ax.legend(fontsize=7, loc="lower left", ncols=2)
plt.show()

# %%
seed_mass = read_csv(DATA / "addition_seeds_mass.csv")


def head_roles(model, setting, n, head):
    """{role: weight} of one head of a stored seed."""
    (row,) = [
        r
        for r in seed_mass
        if r["model"] == model
        and str(r["scale"]) == setting
        and int(r["length"]) == n
        and int(r["head"]) == head
    ]
    return {role: float(row[role]) for role in ROLES}


spread = head_roles(SEED_MODELS[1], "1.0", 10, 0)
kept = head_roles(SEED_MODELS[1], RULE, 1000, 1)["digit"]
fixed_1 = seed_exact[1]["1.4"][1000]
print(f"seed 1, 1,000 digits, × 1.4: {fixed_1[0]}/{fixed_1[1]}")
print(f"seed 1, 1,000 digits, the rule: head 1 puts {kept:.3f} on its digits")
print(
    "seed 1, head 0 at 10 digits:\n  "
    + ", ".join(f"{role} {weight:.2f}" for role, weight in spread.items())
)
logn_sweep = StoredSweeps("length_addition_logn_")
logn_learned = {
    int(r["seed"]): r["steps_to_learn"]
    for r in logn_sweep.completed("addition_coupled")
}
trained_in = {s: e["1.0"] for s, e in logn_exact.items()}
print("ln n / ln 37 trained in:")
for s, e in trained_in.items():
    print(
        f"  seed {s}: learned at step {logn_learned[s]}; "
        "{}/{} at 1,000 digits, {}/{} at 2,000".format(*e[1000], *e[2000])
    )

# %% tags=["remove-cell"]
# read from stored files: the same on every machine
ruled_at = {s: seed_exact[s][RULE] for s in SEED_MODELS}
plain_at = {s: seed_exact[s]["1.0"] for s in SEED_MODELS}
expect(
    "β = 0.1 is the best β at 700 digits for every seed",
    beta == "0.1"
    and all(
        best_at_700(m, "log_beyond:")[1] == RULE for m in SEED_MODELS.values()
    ),
)
expect(
    "as trained, seeds 1 and 2 add none of the 500-digit problems, seed 0 "
    "all; with the rule all three add every problem to 500 digits",
    plain_at[0][500][0] == 128
    and plain_at[1][500][0] == plain_at[2][500][0] == 0
    and all(
        ruled_at[s][n][0] == ruled_at[s][n][1]
        for s in SEED_MODELS
        for n in (10, 100, 200, 500)
    ),
    plain=plain_at,
)
expect(
    "at 1,000 digits the rule gives seed 0 every problem, seed 2 at least "
    "0.94 (Wilson lower bound), seed 1 between 0.8 and 0.95; the target "
    "(0.99 in every seed) is missed",
    ruled_at[0][1000][0] == 128
    and wilson_interval(*ruled_at[2][1000])[0] >= 0.94
    and 0.8 <= ruled_at[1][1000][0] / 128 <= 0.95
    and wilson_interval(*ruled_at[1][1000])[1] < 0.99,
    at_1000={s: ruled_at[s][1000] for s in SEED_MODELS},
)
expect(
    "at 2,000 digits: seed 0 all, seed 2 most, seed 1 almost none",
    ruled_at[0][2000][0] == ruled_at[0][2000][1] == 128
    and 0.8 <= ruled_at[2][2000][0] / ruled_at[2][2000][1] < 0.95
    and ruled_at[1][2000][0] / ruled_at[1][2000][1] < 0.1,
    at_2000={s: ruled_at[s][2000] for s in SEED_MODELS},
)
expect(
    "× 1.4 gives seed 1 the same 1,000-digit sums as the rule",
    fixed_1 == ruled_at[1][1000],
    fixed=fixed_1,
    ruled=ruled_at[1][1000],
)
expect(
    "trained in, ln n / ln 37 is exact to 200 digits in every seed; at "
    "1,000 digits seeds 1 and 2 add every problem and seed 0 almost none",
    all(e[n][0] == e[n][1] for e in trained_in.values() for n in (100, 200))
    and trained_in[1][1000][0] == trained_in[2][1000][0] == 128
    and trained_in[0][1000][0] <= 2,
    trained_in=trained_in,
)
expect(
    "seed 1's head 0 spreads its weight at 10 digits (≈ 0.21 carry, 0.38 "
    "other operand, 0.41 rest); its significance head (1) keeps ≥ 0.99 of "
    "its weight on the digits with the rule at 1,000 digits",
    abs(spread["carry"] - 0.21) < 0.01
    and abs(spread["other operand"] - 0.38) < 0.01
    and abs(spread["rest"] - 0.41) < 0.01
    and kept >= 0.99,
    spread=spread,
    kept=kept,
)
expect(
    "trained in, seeds 1 and 2 add all 32 problems at 2,000 digits",
    trained_in[1][2000] == trained_in[2][2000] == (32, 32),
)
expect(
    "every trained-in seed learned 1…10 digits, within 1,000–1,600 steps",
    sorted(logn_learned) == [0, 1, 2]
    and all(1000 <= v <= 1600 for v in logn_learned.values()),
    steps=logn_learned,
)

# %% [markdown]
# **What we saw.** The rule needs one constant, and 700-digit problems
# choose the same one for all three seeds: $\beta = 0.1$. On the stored
# model it does all that × 1.4 did; on the other two seeds, most of it. As
# trained, seeds 1 and 2 dilute sooner than seed 0: they add none of 128
# problems at 500 digits, where seed 0 adds all.
# With the rule every seed adds every problem at 100, 200 and 500 digits.
# At 1,000 digits seed 0 adds 128 of 128, seed 2 126 of 128 and seed 1
# 115 of 128 (Wilson [0.83, 0.94]); at 2,000 digits seed 0 adds all 128,
# seed 2 57 of 64 and seed 1 2 of 32. The target — at least 0.99 at 1,000
# digits in all three seeds — is met by one seed, nearly by a second, and
# missed by the third. Seed 1 is not short of a better constant: × 1.4
# gives it the same 115 of 128. One factor for every head restores the
# heads that point at one place (its significance head keeps 0.997 of its
# weight there at 1,000 digits), but seed 1 also has a head that spreads
# its weight on purpose — at 10 digits 0.21 on the carry digits, 0.38 on
# the other operand, 0.41 on the rest — and a factor on its logits
# reshapes that spread. That is a candidate, not a cause we have shown.
#
# Trained in, the papers' recipe does better on two seeds and worse on one.
# Every seed learns 1…10 digits (in 1,000–1,600 steps; 800–2,200 without
# the factor) and is exact to 200 digits; at 1,000 digits seeds 1 and 2
# add all 128 problems (and all 32 at 2,000), while seed 0 adds 1 of 128.
# So a softmax that knows how many keys it spreads over can carry a sum to
# a hundred times its training length, but three seeds say it does not do
# so reliably at this size; neither way of adding $\log n$ meets our
# target in all three.
#
# ## 9. The addition claims
#
# Judged by the rules of the appendix ({doc}`reproduction_report`;
# `annotated.analysis.claims`), on the sweeps
# above; ours is the mean exact match at the lengths named, over the
# seeds that learned 1…10 digits. Each published number carries the number of
# its source, listed under the table.

# %%
K_ADD = (
    "Kazemnejad et al. 2023, Fig. 3 'Addition': trained on operands of ≤ 8 "
    "digits, tested on 9–16; read off the figure (≈): absolute 0.06 at 9 "
    "digits and 0 beyond, Rotary 0 from 9 on"
)
C_COUPLED = (
    "Cho et al. 2024, abstract of arXiv v1 (a 1-layer model trained on "
    "1–30-digit additions generalizes up to 200 digits, 6.67×) and Fig. 1 "
    "(more than 95% exact match up to 200 digits)"
)
M_ABACUS = (
    "McLeish et al. 2024, abstract: up to 99% on 100-digit addition after "
    "training on 20-digit numbers (Abacus embeddings; one GPU for a day)"
)
C_LOGN = (
    "Chiang & Cholak 2022, abstract: when a head must focus on one "
    "position, models can fail on longer inputs; their remedy, attention "
    "logits × log n, improves length generalization"
)
N_AFTER = (
    "Nakanishi 2025, abstract: models that started training with Softmax "
    "can still gain some length generalization by replacing it with SSMax "
    "(logits × s log n) during or after pretraining"
)
ADDITION_CLAIMS = [
    Claim("Kazemnejad et al. 2023", "addition: absolute and RoPE fail "
          "beyond the training digits; ours: sinusoidal and RoPE, 1..10 -> "
          "11..20 digits", "baselines",
          value={"sinusoidal": 0.01, "rope": 0.0}, source=K_ADD,
          read_off=True),
    Claim("Cho et al. 2024", "coupling, 6.7x the training length; ours: "
          "1..10 -> 50 digits (5x)", "coupled@50",
          at_least={"coupled_bias": 0.95}, source=C_COUPLED),
    Claim("McLeish et al. 2024", "Abacus, 20 -> 100 digits (5x) at 0.99; "
          "ours: coupling, 1..10 -> 100 digits (10x)", "coupled@100",
          value={"coupled_bias": 0.99}, source=M_ABACUS,
          differs="another method (coupled positions, not Abacus "
          "embeddings), and 10x the training length against 5x"),
    Claim("Chiang & Cholak 2022", "logits x log n trained in beat a plain "
          "softmax beyond the training lengths; ours: x ln n / ln 37, "
          "1..10 -> 1,000 digits", "logn@1000",
          order=("log n, trained in", "softmax"), source=C_LOGN),
    Claim("Nakanishi 2025", "a log-n factor added after training helps; "
          "ours: x (1 + 0.1 ln(n/37)) beyond 37 keys, 1..10 -> 1,000 "
          "digits", "after@1000",
          order=("log n, after training", "softmax"), source=N_AFTER),
]  # fmt: skip
results, learned = {}, {}
for name, task, beyond, upto in (
    ("baselines", "addition_marked", 10, 20),
    ("coupled@50", "addition_coupled", 49, 50),
    ("coupled@100", "addition_coupled", 99, 100),
):
    rows = [r for r in sweeps.rows if r["task"] == task]
    results[name] = out_of_distribution(rows, beyond=beyond, upto=upto)
    learned[name] = learned_flags(rows, beyond=beyond, upto=upto)


def at_1000(exact, setting):
    """Each seed's exact match at 1,000 digits under one setting."""
    return [c / t for c, t in (e[setting][1000] for e in exact.values())]


plain_1000 = at_1000(seed_exact, "1.0")
results["logn@1000"] = {
    "log n, trained in": at_1000(logn_exact, "1.0"),
    "softmax": plain_1000,
}
results["after@1000"] = {
    "log n, after training": at_1000(seed_exact, RULE),
    "softmax": plain_1000,
}
addition_table = claims_table(ADDITION_CLAIMS, results, learned)
print(claims_text(addition_table))

# %% tags=["remove-cell"]
expect(
    "the verdicts: inconclusive, reproduced, not comparable, partly, "
    "reproduced",
    [r["verdict"] for r in addition_table]
    == [
        "inconclusive: not learned",
        "reproduced",
        "not comparable",
        "partly",
        "reproduced",
    ],
    verdicts=[r["verdict"] for r in addition_table],
)
expect(
    "added after training, the log-n factor lifts every seed above the "
    "plain softmax at 1,000 digits",
    all(ruled_at[s][1000][0] > plain_at[s][1000][0] for s in SEED_MODELS),
    ruled={s: ruled_at[s][1000] for s in SEED_MODELS},
    plain={s: plain_at[s][1000] for s in SEED_MODELS},
)

# %% [markdown]
# **What we saw.** Two rows are reproduced, one partly, one is
# inconclusive, one is not comparable. Row 2: coupling carries training on
# 1…10 digits to 50 digits at 1.00 [1.00, 1.00], above the "more than
# 95 %" of Cho et al.'s Fig. 1 at a ratio (5×) inside the one they report
# (6.7×). Row 1 is inconclusive: the
# baselines score 0.00 beyond 10 digits, as Kazemnejad et al.'s absolute and
# rotary models do beyond theirs, but none of the six runs learned 1…10
# digits (0 of 6), so they fail inside the training lengths too and say
# nothing about extrapolation. Row 3 is not comparable: 1.00 [1.00, 1.00] at
# 100 digits is a larger ratio than McLeish et al. report (10× against 5×),
# reached by a different method than their Abacus embeddings. Rows 4 and 5
# are section 8's 1,000-digit sums, one number per seed. Added after
# training, a log-n factor lifts every seed above the plain softmax (0.96
# [0.83, 1.00] against 0.13 [0.00, 0.70]): reproduced, though with our
# slow-growing rule rather than Nakanishi's $s \log n$. Trained in, the
# mean is higher too (0.67 against 0.13), but one seed of three fails, so
# the intervals overlap: partly. Abacus itself stays not testable here
# (section 3); the appendix's table holds the other claims.
#
# ## Exercises
#
# ```{exercise}
# :label: ex-06b-carry
# Section 7 says the query that predicts answer digit $c_s$ needs the operand
# digits of significance $s$ and $s - 1$. Show that, with the previous answer
# digit $c_{s-1}$ as the query's own token, these are enough to compute $c_s$
# exactly: the carry into $s$ is 1 exactly when $c_{s-1} < a_{s-1} + b_{s-1}$.
# Check the rule on 10,000 random additions.
# ```
#
# ```{solution-start} ex-06b-carry
# :class: dropdown
# ```

# %%
g = torch.Generator().manual_seed(0)
a, b = torch.randint(0, 10, (2, 10_000, 12), generator=g)
carry, wrong = torch.zeros(10_000, dtype=torch.long), 0
for s in range(12):
    column = a[:, s] + b[:, s] + carry
    c = column % 10
    carry_next = column // 10
    wrong += int(
        ((c < a[:, s] + b[:, s]).long() != carry_next).sum()
    )  # the rule, from c_s, a_s, b_s alone
    carry = carry_next
print(f"carries predicted wrongly by the rule: {wrong} of {10_000 * 12}")

# %% [markdown]
# The rule holds on every column: without an incoming carry $c = a + b$ (or
# $a + b - 10$ with a carry out, which is then less than $a + b$); with one,
# $c = a + b + 1$ or $a + b - 9$, and again the carry out is 1 exactly when
# $c < a + b$. So one attention layer that reads two significances suffices,
# whatever the length — which is why one layer can extrapolate here.
#
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-06b-ids
# Give `ReversedAdditionTask(end_marker=False)` coupled ids for `472 + 351`
# and compare them with the end-marked ids of the figure. Which tokens lose a
# key of their own significance without the marker?
# ```
#
# ```{solution-start} ex-06b-ids
# :class: dropdown
# ```

# %%
plain = ReversedAdditionTask(end_marker=False, position_ids="coupled")
s = torch.tensor(
    [
        [
            2,
            7,
            4,
            plain.token_id("+"),
            1,
            5,
            3,
            plain.token_id("="),
            3,
            2,
            8,
            0,
            plain.token_id("EOS"),
        ]
    ]
)
print(" ".join(plain.token_names[t] for t in s[0].tolist()))
print(" ".join(str(i) for i in plain.ids(s)[0].tolist()))

# %% [markdown]
# Without the marker the operands stop at id 3, while the answer's carry-out
# digit has id 4 and `EOS` id 5: no prompt token carries their significance,
# so their queries have nothing at difference $-1$ to read, and must spread
# their weight over far keys. With the marker, the padded `0` (id 4) and `$`
# (id 5) give them one.
#
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-06b-log-n
# A query's softmax puts one key a gap $\Delta$ above $n - 1$ others that
# share one logit. Show that the weight on that key is
# $p = 1 / (1 + (n - 1)e^{-\Delta})$, so that holding $p$ as $n$ grows
# needs $\Delta = \ln(n - 1) + \ln\frac{p}{1 - p}$: the gap must grow like
# $\ln n$. By what factor must a gap that held $p = 0.99$ at $n = 37$ keys
# (a 10-digit problem) grow to hold it at $n = 3{,}007$ (1,000 digits)?
# Compare it with the factor $\ln n / \ln 37$.
# ```
#
# ```{solution-start} ex-06b-log-n
# :class: dropdown
# ```

# %%
def gap_for(p, n):
    """The logit gap that puts weight p on one key among n."""
    return math.log(n - 1) + math.log(p / (1 - p))


short_gap, long_gap = gap_for(0.99, 37), gap_for(0.99, 3007)
print(
    f"gap for 0.99 at 37 keys: {short_gap:.2f}, at 3,007: {long_gap:.2f}\n"
    f"needed factor {long_gap / short_gap:.2f}; "
    f"ln n / ln 37 = {math.log(3007) / math.log(37):.2f}"
)

# %% [markdown]
# With $e^{\Delta}$ against $n - 1$ equal rivals, $p = e^{\Delta} /
# (e^{\Delta} + n - 1)$, which rearranges to the formula. The gap for
# $p = 0.99$ grows from 8.18 to 12.60, a factor of 1.54; the rule
# $\ln n / \ln 37$ multiplies it by 2.22, more than the target needs,
# because part of the gap ($\ln 99 = 4.6$ here) does not depend on $n$.
# A factor of $(\ln n + c) / (\ln 37 + c)$ with that constant would be
# exact for this toy softmax; a real head has rivals at many logits, so the
# right factor is measured, not derived.
#
# ```{solution-end}
# ```
#
# ## Summary
#
# * A model trained on lengths $1 \dots L$ meets new position ids, or new
#   offsets, at $2L$. The remedies change what is new: randomized positions
#   make large ids familiar; Abacus and coupling number digits by their place,
#   so longer numbers reuse the ids that mattered.
# * Randomized positions on sort (3 seeds each): 0.80 [0.47, 1.00] exact match
#   over 9…16 against 0.00 [0.00, 0.01] for the sinusoidal base; NoPE 0.62
#   [0.26, 0.98], T5's bias 0.19 [0.16, 0.22].
# * Abacus is in the library with its offset shown on the page; this chapter
#   has no Abacus sweep (a one-layer Abacus model did not fit 10 digits, in
#   a trial not shown here).
# * Coupling read as a relative bias, one layer, trained on 1…10 digits for
#   6,000 steps: 1.000 exact match at 20, 50 and 100 digits in 3 of 3 seeds,
#   0.900–1.000 at 200. Stopped as soon as the training lengths were learned
#   (800–2,200 steps), the same models scored 0.000–0.246 at 100 digits. The
#   baselines with the same budget never learned 1…10 digits (0 of 6 runs).
# * Inside the sweep's model one head puts 0.99–1.00 of its weight on the
#   operand digits of the significance being written and another 0.79–0.81 on
#   those one place below, at 10, 50 and 100 digits alike. A model trained
#   1,200 steps has the same roles, but at 100 digits they blur and most
#   100-digit problems defeat it — one model of each, a reading rather than a
#   law.
# * Trained on 1…10 digits, the stored model adds every problem up to 500
#   digits, then 51 of 128 at 1,000 and none at 2,000: its heads' weight on
#   the digits they must read erodes as the keys multiply (0.997 → 0.843
#   for the significance head). Every logit × 1.4, chosen at 700 digits,
#   restores 128 of 128 at 1,000 and at 2,000; the rule × ln n / ln 37
#   over-sharpens and fails from 500 digits on.
# * A rule that is 1 on every training length and grows slowly beyond,
#   × (1 + 0.1 ln(n/37)) with 0.1 chosen at 700 digits, on three seeds:
#   every problem to 500 digits in all three (two of them add none there as
#   trained); at 1,000 digits seed 0 adds 128, seed 2 126 and seed 1 115 of
#   128; at 2,000, in the same order, 128 of 128, 57 of 64 and 2 of 32.
#   Trained in from the first step, × ln n / ln 37 gives seed 0 1 of 128 at
#   1,000 digits, seeds 1 and 2 128 of 128. Our target, 0.99 at 1,000
#   digits in every seed, is met by neither.
# * Two significances are all a digit needs: the carry rule of
#   {ref}`ex-06b-carry` holds on 120,000 random columns without exception.
