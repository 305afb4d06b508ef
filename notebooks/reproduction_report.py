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
# # Reproduction report
#
# This appendix goes with week 6 ({doc}`06_length_generalization`). The
# chapter teaches how to measure length generalisation and reads what the
# sweeps found; this page keeps the record a reproduction needs beside it:
#
# 1. **Provenance**: the commands that ran each stored sweep, its seeds, the
#    version of the code (the commit), torch, the CPU capability and thread
#    count where they were recorded, and how long the runs took.
# 2. **The published claims beside ours**: fifteen published numbers, each
#    with its source, our number with its 95 % interval, and a verdict decided
#    by rules fixed before any result was read.
# 3. **The first sweep**: the one-length, 600-step sweep this book first led
#    with, and the protocol bug in it that made the randomized encoding look
#    as if it learned nothing.
#
# The page only reads the results stored in `annotated/data/`; it trains
# nothing and runs in seconds.

# %%
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import yaml

import annotated
from annotated import lab
from annotated.analysis.claims import (
    VERDICTS,
    Claim,
    _value_verdict,
    claims_table,
    judge,
    learned_flags,
    out_of_distribution,
)
from annotated.analysis.claims_text import claims_text
from annotated.analysis.expect import expect, expect_above, expect_below
from annotated.analysis.intervals import t_interval
from annotated.analysis.stored_sweeps import StoredSweeps, interval_text
from annotated.figures.curves import accuracy_vs_length
from annotated.figures.showcode import show_source
from annotated.lab import read_csv

torch.manual_seed(0)  # nothing here draws at random; seeded all the same

DATA = Path(annotated.__file__).parent / "data"


def wrapped(command: str) -> str:
    """A shell command as a `$ ...` line, folded to the page's width."""
    return textwrap.fill(
        "$ " + command, 78, subsequent_indent="    ", break_on_hyphens=False
    )


def indented(text: str) -> str:
    """``text`` folded to the page's width, indented by four spaces."""
    return textwrap.fill(
        text, 78, initial_indent="    ", subsequent_indent="    "
    )


def environment(sweep: dict) -> str:
    """Where a sweep ran: commit, torch, CPU capability and threads."""
    env = sweep["environment"]
    machine = (
        f"{env['cpu_capability']}, {env['threads']} thread(s) per run"
        if env.get("cpu_capability")
        else "capability and threads not recorded"
    )
    return (
        f"commit {env['git_commit'][:7]}, torch {env['torch']}, {machine}, "
        f"started {env['created'][:10]}"
    )


# %% [markdown]
# ## 1. Provenance
#
# Every stored sweep ships as two files in `annotated/data/`:
# `<prefix>summary.csv`, one row per run (status, seed, the step it learned
# at, exact match at every length with its Wilson bounds) and one per
# encoding (mean and standard deviation over seeds); and
# `<prefix>provenance.yaml`, the commands that ran it and, per sweep, its
# config with its grid of encodings and seeds, and its environment.
# `scripts/collect_length_sweep.py --prefix length_protocol_` gathered week
# 6's six sweeps from their run folders. The commands, as they were run
# (`<folder>` is a sweep's output folder):

# %%
sweeps = StoredSweeps("length_protocol_")
SWEEPS = sweeps.sweeps  # task -> its provenance
for command in sweeps.provenance["commands"]:
    print(wrapped(command))

# %% [markdown]
# Each sweep: its runs by status, the seeds and encodings of its grid, the
# sum of its runs' wall times in minutes ("run-min"; two runs at a time, so
# more than the clock time it took), and its environment: the commit is the
# version of the library the sweep ran with.

# %%
for task, sweep in SWEEPS.items():
    grid, wall = sweep["config"].get("grid", {}), sweep["wall_time"]
    others = ", ".join(
        f"{k} {v}" for k, v in sweep["statuses"].items() if k != "completed"
    )  # interrupted, missing: see below
    encodings = grid.get("model.positional", [sweep["config"]["model"].get(
        "positional", "coupled_bias")])  # fmt: skip
    print(f"{sweep['config']['name']} ({task}): {sweep['completed_runs']} "
          f"runs completed{'; ' + others if others else ''}")  # fmt: skip
    print(f"    seeds {grid.get('seed')}; {', '.join(encodings)}")
    print(
        f"    {wall['runs_wall_time_s'] / 60:.1f} run-min, "
        f"{wall['span_s'] / 60:.1f} min from first to last run"
    )
    print(indented(environment(sweep)))
unrecorded = sweeps.provenance["sweeps"][0]["environment"]["unrecorded"]
print(
    textwrap.fill(
        "capability and threads: " + unrecorded.removeprefix("null: "), 78
    )
)

# %% [markdown]
# A sweep that is stopped midway (Ctrl-C, a crash, a machine going down)
# keeps every finished run; the summary then marks the others `interrupted`
# (stopped during training, resumable from their last checkpoint) or
# `missing` (never started), and
# `python -m annotated sweep --resume <folder> --jobs 2` finishes the sweep,
# re-running only those. The randomized sort sweep was resumed twice that way
# (the commands above), once after NoPE and T5's bias joined its grid; every
# sweep then completed all its runs.
#
# The first sweep (section 3) was gathered by the same script with its
# default prefix, `length_generalization_`:

# %%
summary = read_csv(DATA / "length_generalization_summary.csv")
provenance = yaml.safe_load(
    (DATA / "length_generalization_provenance.yaml").read_text()
)
for command in provenance["commands"]:
    print(wrapped(command))
print(
    f"wall time of the whole sweep: {provenance['wall_time_s'] / 60:.1f} min "
    "(two sweeps at a time, 2 cores)"
)
for sweep in provenance["sweeps"]:
    grid = sweep["config"]["grid"]
    print(
        f"{sweep['config']['name']:<25} {sweep['completed_runs']} runs, "
        f"seeds {grid['seed']}, {len(grid['model.positional'])} encodings"
    )
    print(indented(environment(sweep)))

# %% [markdown]
# ## 2. The published claims, side by side
#
# Each row is one published claim: its number, with the number of its source
# in the list under the table (the paper, the table or figure, and the setting
# the number belongs to; "≈" marks a number read off a figure), ours, and a
# verdict. Ours is the mean and 95 % $t$-interval over the seeds that learned
# the training lengths, of the mean exact match over $L+1 \dots 2L$ unless the
# row says otherwise (the numbers themselves are those of week 6, sections
# 4–6). The verdict follows the rules of
# `annotated.analysis.claims`, fixed before any result was read and applied
# literally to the unrounded numbers (0.94 is below 0.95; the table prints two
# decimals). For a published value:

# %%
show_source(_value_verdict)

# %% [markdown]
# For an order "A > B": *reproduced* when A's interval lies wholly above B's,
# *partly* when only the means are in that order. For a threshold "≥ 0.95":
# *reproduced* when our mean reaches it, *partly* when only the top of our
# interval does. Three verdicts say that the numbers cannot decide. *Not
# comparable*: the run that would test the claim is a different experiment
# (another method, or a longer extrapolation than the paper reports). *Not
# testable here*: the setting was not run. *Inconclusive: not learned*: the
# runs never learned their training lengths, so whatever they score beyond
# them neither confirms nor refutes a claim about extrapolation — an
# encoding is judged only on its runs that learned, and one with fewer than
# three such runs is inconclusive (two lucky seeds make no mean). A claim on
# several encodings is *partly* when they disagree or when some could not be
# judged.

# %%
K, R = "Kazemnejad et al. 2023", "Ruoss et al. 2023"
C, M = "Cho et al. 2024", "McLeish et al. 2024"
K_COPY = (
    "Kazemnejad et al. 2023, Fig. 3 'Copy' (Fig. F.4 'Copy (Variant 1)'): "
    "one symbol repeated n times; trained on n ≤ 20, tested on 21–40; "
    "each number is the mean over 21–40 and 3 seeds of the authors' "
    "released runs (split rsc_tr20_ts40), plotted in the figure"
)
K_RANDOM = (
    "Kazemnejad et al. 2023, Fig. F.4 'Copy (Variant 3)': random symbols; "
    "trained on n ≤ 20, tested on 21–40; means over 21–40 and 3 seeds of "
    "the authors' released runs (split cmc_tr20_ts40): T5 0.42, ALiBi 0.33, "
    "absolute (sinusoidal) 0.03"
)
K_SORT = (
    "Kazemnejad et al. 2023, Fig. F.5 'Sorting (Single Token)': trained on "
    "n ≤ 8, tested on 9–16; means over 9–16 read off the figure (≈): "
    "absolute 0.10 (0.68 at 9, 0.14 at 10, 0 from 11), NoPE 0.99, T5 0.99"
)
K_PARITY = (
    "Kazemnejad et al. 2023, Fig. F.5 'Parity': trained on n ≤ 8, tested on "
    "9–16; means over 9–16 read off the figure (≈)"
)
K_ADD = (
    "Kazemnejad et al. 2023, Fig. 3 'Addition': trained on operands of ≤ 8 "
    "digits, tested on 9–16; read off the figure (≈): absolute 0.06 at 9 "
    "digits and 0 beyond, Rotary 0 from 9 on"
)
R_MEAN = (
    "Ruoss et al. 2023, abstract: randomized positional encodings raise "
    "test accuracy by 12.0% on average over the 15 algorithmic tasks of its "
    "Table 1 (bucket sort among them), tested beyond the training lengths"
)
M_ABACUS = (
    "McLeish et al. 2024, abstract: up to 99% on 100-digit addition after "
    "training on 20-digit numbers (Abacus embeddings; one GPU for a day)"
)
C_COUPLED = (
    "Cho et al. 2024, abstract of arXiv v1 (a 1-layer model trained on "
    "1–30-digit additions generalizes up to 200 digits, 6.67×) and Fig. 1 "
    "(more than 95% exact match up to 200 digits)"
)
CLAIMS = [
    Claim(K, "counting copy 1..20 -> 21..40: NoPE", "counting_copy",
          value={"nope": 0.99}, source=K_COPY),
    Claim(K, "counting copy: T5 bias", "counting_copy",
          value={"t5": 0.77}, source=K_COPY),
    Claim(K, "counting copy: ALiBi", "counting_copy",
          value={"alibi": 0.29}, source=K_COPY),
    Claim(K, "counting copy: RoPE and absolute", "counting_copy",
          value={"rope": 0.0, "sinusoidal": 0.0}, source=K_COPY),
    Claim(K, "random copy: ALiBi above absolute", "copy_eos",
          order=("alibi", "sinusoidal"), source=K_RANDOM),
    Claim(K, "random copy: T5 above absolute", "copy_eos",
          order=("t5", "sinusoidal"), source=K_RANDOM),
    Claim(K, "sort 1..8 -> 9..16: absolute", "sort",
          value={"sinusoidal": 0.10}, source=K_SORT, read_off=True),
    Claim(K, "sort: NoPE and T5 near 1", "sort",
          value={"nope": 0.99, "t5": 0.99}, source=K_SORT, read_off=True),
    Claim(R, "randomized above its base (ours: sort)", "sort",
          order=("randomized", "sinusoidal"), source=R_MEAN),
    Claim(K, "parity 1..8 -> 9..16", "parity",
          value={"nope": 0.75, "sinusoidal": 0.54, "rope": 0.51},
          source=K_PARITY, read_off=True),
    Claim(K, "addition: absolute and RoPE fail beyond the training digits "
          "(ours: 1..10 -> 11..20 digits)", "addition_marked",
          value={"sinusoidal": 0.01, "rope": 0.0}, source=K_ADD,
          read_off=True),
    Claim(M, "Abacus: 1..20 -> 100 digits", None, value={"abacus": 0.99},
          reason="the 1-layer Abacus variant we tried did not fit 10 "
          "digits; the deeper models of the paper were not run",
          source=M_ABACUS),
    Claim(C, "coupling, 6.7x the training length; ours: 1..10 -> 50 "
          "digits (5x)", "addition_coupled@50",
          at_least={"coupled_bias": 0.95}, source=C_COUPLED),
    Claim(C, "the same at 1..10 -> 100 digits", "addition_coupled@100",
          at_least={"coupled_bias": 0.95}, source=C_COUPLED,
          differs="10x the training length; the paper reports 6.7x"),
    Claim(C, "the same at 1..10 -> 200 digits", "addition_coupled@200",
          at_least={"coupled_bias": 0.95}, source=C_COUPLED,
          differs="20x the training length; the paper reports 6.7x"),
]  # fmt: skip
# sweep name -> (task, beyond, upto): the lengths each sweep is judged on
LENGTHS = {
    "counting_copy": ("counting_copy", None, None),
    "copy_eos": ("copy_eos", None, None),
    "sort": ("sort", None, None),
    "parity": ("parity", None, None),
    "addition_marked": ("addition_marked", 10, 20),
} | {
    f"addition_coupled@{n}": ("addition_coupled", n - 1, n)
    for n in (50, 100, 200)
}
results, learned = {}, {}
for name, (task, beyond, upto) in LENGTHS.items():
    rows = [r for r in sweeps.rows if r["task"] == task]
    results[name] = out_of_distribution(rows, beyond=beyond, upto=upto)
    learned[name] = learned_flags(rows, beyond=beyond, upto=upto)
table = claims_table(CLAIMS, results, learned)
print(claims_text(table))

# %% tags=["remove-cell"]
# The claims are judged on stored numbers, the same on every machine; this
# keeps the tally in the sentences below true if the data are re-stored.
tally = {v: sum(row["verdict"] == v for row in table) for v in VERDICTS}
expect(
    "4 reproduced, 4 partly, 1 not reproduced, 2 not comparable, "
    "3 inconclusive (not learned), 1 not testable here",
    list(tally.values()) == [4, 4, 1, 2, 3, 1],
    **{v.replace(" ", "_").replace(":", ""): n for v, n in tally.items()},
)

# %% [markdown]
# Row 10 names three encodings; here is each on its own, by the same rule
# (the distance is that of our unrounded mean from the published number):

# %%
print("row 10, parity, one encoding at a time:")
for e, published in CLAIMS[9].value.items():
    row = judge(
        Claim(K, "parity", "parity", value={e: published},
              source=K_PARITY, read_off=True),
        results["parity"],
        learned["parity"],
    )  # fmt: skip
    kept = [
        v for v, ok in zip(results["parity"][e], learned["parity"][e]) if ok
    ]
    distance = (
        f"distance {abs(sum(kept) / len(kept) - published):.3f}: "
        if kept
        else ""
    )
    print(
        f"  {e:<11} published ≈{published:.2f}, ours "
        f"{row['ours'].removeprefix(e + ' ')} "
        f"({len(kept)}/{len(learned['parity'][e])} seeds learned)\n"
        f"  {'':<11} {distance}{row['verdict']}"
    )

# %% [markdown]
# **What we saw.** The tally under the table: 4 reproduced, 4 partly, 1 not
# reproduced, 2 not comparable, 3 inconclusive (not learned), 1 not testable
# here. Reproduced: ALiBi's counting-copy number (row 3: 0.25 [0.04, 0.46]
# against 0.29); the absolute encoding on sort (row 7: 0.00 [0.00, 0.01]
# against ≈0.10 read off the paper's figure); the randomized encoding above
# its base on sort, with separated intervals (row 9: 0.80 [0.47, 1.00] against
# 0.00 [0.00, 0.01]); and coupled addition at 5× the training length (row 13:
# 1.00 [1.00, 1.00] at 50 digits, against Cho et al.'s "more than 95 %" up to
# 6.7×). Partly: NoPE on the counting copy (row 1: 0.89 against 0.99, more
# than 0.10 below it and inside an interval wider than `MAX_WIDTH`); RoPE and
# the absolute encoding on the counting copy (row 4: sinusoidal at 0.00 as
# published, but RoPE's 0.48 [0.00, 1.00] pins nothing down); NoPE and T5 on
# sort (row 8: 0.62 [0.26, 0.98] and 0.19 [0.16, 0.22] against ≈0.99 each —
# both learned sort in every seed, neither comes near 1 beyond it); and parity
# (row 10, taken apart above: NoPE's 0.63 [0.53, 0.73] lies 0.118 below ≈0.75,
# further than the tolerance and outside its interval, but on the same side of
# 0.5 — partly; only two of the ten RoPE runs learned parity (they give 0.61,
# 0.097 from ≈0.51, with an interval spanning [0.00, 1.00]), too few to judge
# by, and no sinusoidal run learned it, so those two thirds of the claim are
# inconclusive). Not reproduced: T5's bias on the counting copy (row 2: 0.26
# [0.00, 0.73] against 0.77). Inconclusive, because the runs never learned
# their training lengths: both random-copy orders (rows 5 and 6: the
# sinusoidal and T5 runs learned the task in none of their seeds; ALiBi's two
# seeds that did score 0.62 [0.22, 1.00]), and the addition baselines (row 11:
# none of the six sinusoidal and RoPE runs learned 1…10 digits; they score
# 0.00 beyond them, as published, but that failure starts inside the training
# lengths). Not comparable: coupled addition at 10× and 20× the training
# length (rows 14 and 15: 1.00 [1.00, 1.00] at 100 digits and 0.94 [0.80,
# 1.00] at 200), further than the 6.7× the paper reports. Abacus (row 12) was
# not run here.

# %% [markdown]
# ### Parity again, under another float order
#
# Parity is the sweep whose outcome varies most from seed to seed, so it
# is the one most likely to come out differently on another computer. We
# ran it a second time with the same code, config and ten seeds, but with
# PyTorch's vector kernels switched off (`ATEN_CPU_CAPABILITY=default`):
# the same arithmetic, its floats added in another order, as on a CPU
# whose vector instructions differ. Per encoding, the seeds that learned
# the training lengths and the mean over $9 \dots 16$ of those seeds (95 %
# $t$-interval), first as stored above, then again:

# %%
again = StoredSweeps("length_parity_default_")
print("stored:\n" + indented(environment(sweeps.sweeps["parity"])))
print("again:\n" + indented(environment(again.sweeps["parity"])))
again_rows = [r for r in again.rows if r["task"] == "parity"]
parity_runs = {
    "stored": (results["parity"], learned["parity"]),
    "again": (
        out_of_distribution(again_rows),
        learned_flags(again_rows),
    ),
}
print(f"\n{'':<19}learned  OOD, the seeds that learned")
for e in ("nope", "sinusoidal", "rope", "randomized"):
    for name, (ood, ok) in parity_runs.items():
        kept = [v for v, learned_it in zip(ood[e], ok[e]) if learned_it]
        print(
            f"{e if name == 'stored' else '':<11}{name:<8}"
            f"{sum(ok[e]):>2}/{len(ok[e]):<5}"
            f"{interval_text(kept) if kept else '–'}"
        )
verdicts = {
    name: judge(CLAIMS[9], ood, ok)["verdict"]
    for name, (ood, ok) in parity_runs.items()
}
print(
    f"\nrow 10's verdict: {verdicts['stored']} (stored), "
    f"{verdicts['again']} (again)"
)

# %% tags=["remove-cell"]
counts = {
    name: {e: sum(v) for e, v in ok.items()}
    for name, (_, ok) in parity_runs.items()
}
for name, (ood, ok) in parity_runs.items():
    expect(
        f"{name}: NoPE learns parity in every seed, the others in at most "
        "2 of 10",
        all(ok["nope"])
        and max(n for e, n in counts[name].items() if e != "nope") <= 2,
        **counts[name],
    )
    nope = sum(ood["nope"]) / len(ood["nope"])
    expect(
        f"{name}: NoPE's mean beyond the training lengths is above chance "
        "and below ≈0.75",
        0.55 < nope < 0.75,
        nope=nope,
    )
expect(
    "RoPE learned in 2 seeds, then in none; randomized in 2, then in 1",
    (counts["stored"]["rope"], counts["again"]["rope"]) == (2, 0)
    and (counts["stored"]["randomized"], counts["again"]["randomized"])
    == (2, 1),
    **counts,
)
nope_t = {
    name: t_interval(ood["nope"]) for name, (ood, _) in parity_runs.items()
}
expect(
    "NoPE's mean moved by a few hundredths, inside both intervals",
    abs(nope_t["stored"][0] - nope_t["again"][0]) < 0.05
    and all(
        lo <= nope_t[other][0] <= hi
        for name, (_, lo, hi) in nope_t.items()
        for other in nope_t
    ),
    **{name: str([round(v, 3) for v in t]) for name, t in nope_t.items()},
)
expect(
    "row 10 keeps its verdict",
    verdicts["stored"] == verdicts["again"],
    **verdicts,
)

# %% [markdown]
# **What we saw.** NoPE learned parity in 10 of 10 seeds both times, and
# the sinusoidal encoding in none. Which seeds of RoPE and the randomized
# encoding learn is a matter of float order: 2 and 2 of 10 as stored, 0
# and 1 of 10 again. NoPE's mean beyond the training lengths moved by a
# few hundredths, inside both intervals, and row 10's verdict is the same.
# What week 6 concludes from parity — NoPE learns it where the others
# mostly do not, and decays to chance by twice the training length — held
# under both float orders; the exact count of lucky seeds did not.

# %% [markdown]
# ## 3. The first sweep: one training length, 600 steps
#
# Before the protocol of week 6, this book led with a different sweep: 147
# runs (7 tasks × 7 encodings × 3 seeds), each trained for a fixed 600 steps
# at **one** training length $L$ and tested at $1.5L$, $2L$ and $4L$. It
# trained the randomized encoding on sorted random positions from a large
# range, as Ruoss et al. do, and then *evaluated it at positions
# $0 \dots T-1$*, values it had never seen: its training loss was low while
# its held-out loss at the training length was high (printed below). From
# those numbers the book concluded that "the randomized encoding learned no
# task". That was a protocol bug, not a property of the encoding. The
# corrected protocol draws the positions at test time as in training, and
# under it the randomized encoding learns sort in 3 of 3 seeds and sorts
# 0.80 [0.47, 1.00] of the inputs of 9 to 16 symbols exactly (week 6,
# section 5; row 9 above). The sweep's data stay in the library, and its
# findings are summarised here with that in mind; week 6's sweeps also
# differ from it in drawing the training lengths from $1 \dots L$ and in
# training until learned.
#
# Its tables give mean ± standard deviation over seeds 0, 1, 2, and the
# **generalisation gap**
# $a(L) - \frac{1}{3}\bigl(a(1.5L) + a(2L) + a(4L)\bigr)$ for accuracy $a(n)$
# at size $n$ (0: as good on long problems as at $L$). Exact match is the
# metric for sequence and one-token answers; for the two labelling tasks
# (running sum, $k$-back: one label per position) it is token accuracy.
#
# Each task's settings, as its config holds them (every task: 2 layers, 4
# heads, $d_\text{model} = 64$, AdamW with 20 warm-up steps then cosine decay,
# no weight decay; held-out accuracy on 2 × 256 fresh problems per length).
# `T at L` is the number of positions a training sequence takes. `max_len` is
# the learned table's size: the lab refuses to evaluate a learned encoding
# past its table (`check_lengths` raises before training), so each config sets
# `max_len` to the positions of the longest test, $4L$; the rows past `T at L`
# are never trained. The randomized encoding draws its positions from
# `range(4 · max_len)`, and no other encoding reads `max_len`.

# %%
TASKS = [
    "reverse",
    "sort",
    "addition_reversed",
    "running_sum",
    "k_back",
    "contains_pattern",
    "long_range_match",
]
ENCODINGS = [
    "nope",
    "sinusoidal",
    "learned",
    "rope",
    "alibi",
    "t5",
    "randomized",
]
METRIC = {
    "running_sum": "token_accuracy",
    "k_back": "token_accuracy",
}  # every other task: exact_match
SHORT = {"exact_match": "exact", "token_accuracy": "token acc"}
configs = {
    s["config"]["task"]: lab.ExperimentConfig.from_dict(s["config"])
    for s in provenance["sweeps"]
}
first = [
    f"{'task':<18}{'L':>3} {'test lengths':<13}{'steps':>6}{'batch':>6}"
    f"{'lr':>7} {'metric':<10}{'chance':>7}"
]
second = [f"{'task':<18}{'T at L':>7}{'max_len':>8}{'randomized range':>18}"]
for task in TASKS:
    c, resolved = (
        configs[task],
        lab.resolve(lab.expand_grid(configs[task])[0]),
    )
    chance = (
        "–"
        if resolved.task.chance_accuracy is None
        else resolved.task.chance_accuracy
    )
    max_len = resolved.model_config.max_len
    first.append(
        f"{task:<18}{c.train_length:>3} "
        f"{str(c.eval_lengths):<13}{c.train['steps']:>6}"
        f"{c.train['batch_size']:>6}{c.train['lr']:>7} "
        f"{SHORT[METRIC.get(task, 'exact_match')]:<10}{chance:>7}"
    )
    second.append(
        f"{task:<18}{resolved.task.seq_len(c.train_length):>7}{max_len:>8}"
        f"{4 * max_len:>18}"
    )
print("\n".join(first) + "\n\n" + "\n".join(second))


# %%
def group(task, encoding):
    """The summary's mean-and-std row of one task and encoding (over its 3
    seeds)."""
    return next(
        r
        for r in summary
        if r["kind"] == "group"
        and r["task"] == task
        and r["model.positional"] == encoding
    )


def cell(row, key, digits=2):
    return f"{row[key]:.{digits}f}±{row[key + '_std']:.{digits}f}"


learned_tasks = []
print("Learned at the training length? (best encoding, mean of 3 seeds)")
for task in TASKS:
    metric = METRIC.get(task, "exact_match")
    best = max(ENCODINGS, key=lambda e: group(task, e)[f"in_dist_{metric}"])
    score = group(task, best)[f"in_dist_{metric}"]
    verdict = "learned" if score >= 0.95 else "NOT learned"
    learned_tasks += [task] if score >= 0.95 else []
    print(
        f"  {task:<18} {SHORT[metric]:<10} best {best:<11} "
        f"{score:.3f}  -> {verdict}"
    )


# %%
for task in TASKS:
    metric, c = METRIC.get(task, "exact_match"), configs[task]
    lengths = [c.train_length, *c.eval_lengths]
    flag = (
        ""
        if task in learned_tasks
        else "\n  (not learned: the differences are noise)"
    )
    print(
        f"\n{task} — {metric.replace('_', ' ')}, "
        f"trained at n = {c.train_length}{flag}"
    )
    print(
        f"  {'encoding':<11}"
        + "".join(f"{'n=' + str(n):>11}" for n in lengths)
        + f"{'gap':>12}"
    )
    for encoding in ENCODINGS:
        g = group(task, encoding)
        print(
            f"  {encoding:<11}"
            + "".join(f"{cell(g, f'{metric}@{n}'):>11}" for n in lengths)
            + f"{cell(g, f'gap_{metric}'):>12}"
        )

# %%
figures = [
    plt.subplots(2, 2, figsize=(9.5, 7), layout="constrained")
    for _ in range(2)
]
panels = [ax for _, axes in figures for ax in axes.flat]
for ax, task in zip(panels, TASKS):
    metric, c = METRIC.get(task, "exact_match"), configs[task]
    lengths = [c.train_length, *c.eval_lengths]
    curves = {
        e: (
            lengths,
            [group(task, e)[f"{metric}@{n}"] for n in lengths],
            [group(task, e)[f"{metric}@{n}_std"] for n in lengths],
        )
        for e in ENCODINGS
    }
    accuracy_vs_length(
        curves,
        ax,
        train_length=c.train_length,
        ylabel=metric.replace("_", " "),
        title=task + ("" if task in learned_tasks else " (not learned)"),
    )
    chance = lab.resolve(lab.expand_grid(c)[0]).task.chance_accuracy
    if chance is not None:
        ax.axhline(chance, color="black", lw=0.8, ls=":")
    ax.set_xscale("log", base=2)
    ax.set_xticks(lengths, [str(n) for n in lengths])
    ax.get_legend().remove()
handles, names = panels[0].get_legend_handles_labels()
# the first figure has no spare panel: its legend goes to the right
figures[0][0].legend(
    handles,
    names,
    loc="outside right center",
    title="encoding\n(dotted:\nchance)",
)
panels[-1].axis("off")  # the second has one: its legend goes there
panels[-1].legend(
    handles, names, loc="center", title="encoding (dotted: chance)"
)
for fig, _ in figures:
    fig.suptitle(
        "Accuracy against length, mean ± std over 3 seeds (dashed: "
        "the training length)"
    )
plt.show()


# %% [markdown]
# **What we saw under the old protocol.** Five of the seven tasks were learned
# at $L$ by at least one encoding; addition and the running sum were not,
# within 600 steps. On reverse and sort every encoding that learned the task
# (0.99–1.00 at $L$) falls to 0.00 exact match at $1.5L$. Per-position tasks
# degrade gradually: on $k$-back RoPE keeps 0.97, 0.94 and 0.83 of the labels
# at $1.5L$, $2L$ and $4L$ and T5's bias 0.93, 0.86 and 0.71, against 0.82,
# 0.73–0.74 and 0.61 for the absolute encodings. Two differences from the
# protocol of week 6 explain much of the contrast with it: one
# training length instead of $1 \dots L$ (a model that has only seen $n = L$
# has no reason to handle any other length, shorter ones included), and 600
# steps instead of training until learned. The rows for the randomized
# encoding in this sweep are wrong, not merely low: it was evaluated at
# positions $0 \dots T-1$ it had never seen in training, so its scores near 0
# measure the bug. The losses show it: the loss on its own training batches
# (random positions) against the held-out loss at the training length
# (positions $0 \dots T-1$), mean over 3 seeds, beside the sinusoidal
# encoding's:

# %%
print(f"{'':<18}{'randomized':^24}{'sinusoidal':^24}")
print(f"{'task':<18}" + f"{'train loss':>12}{'held-out':>12}" * 2)
for task in TASKS:
    r, b = group(task, "randomized"), group(task, "sinusoidal")
    print(
        f"{task:<18}{r['final_train_loss']:>12.3f}{r['in_dist_loss']:>12.3f}"
        f"{b['final_train_loss']:>12.3f}{b['in_dist_loss']:>12.3f}"
    )

# %% tags=["remove-cell"]
# Stored numbers, the same on every machine: these keep the sentences of
# this section true if the sweep is re-stored.
expect("five of the seven tasks were learned at L", len(learned_tasks) == 5,
       learned=", ".join(learned_tasks))  # fmt: skip
for task in ("reverse", "sort"):
    for e in ENCODINGS:
        g = group(task, e)
        if g["in_dist_exact_match"] >= 0.95:
            expect_below(f"{task}, {e}: whole answers fall to 0 at 1.5L",
                         g["exact_match@12"], 0.005)  # fmt: skip
r, b = group("sort", "randomized"), group("sort", "sinusoidal")
expect_above("sort, randomized: held-out loss far above the training loss",
             r["in_dist_loss"] - r["final_train_loss"], 1.0)  # fmt: skip
expect_below(
    "sort, sinusoidal: the two losses agree",
    abs(b["in_dist_loss"] - b["final_train_loss"]),
    0.05,
)

# %% [markdown]
# On sort the randomized models end training at loss 0.143 and score 1.954 on
# held-out data of the same length; the sinusoidal ones 0.001 and 0.001. A gap
# that size at the *training* length is not overfitting: held-out problems are
# drawn like the training ones (for the sinusoidal models the two losses
# agree), and what differs for the randomized models is the positions they
# were given. Week 6, section 5, measures the encoding as trained.
