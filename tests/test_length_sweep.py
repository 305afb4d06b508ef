"""The week-6 sweep stored in the book is the sweep of the shipped configs, and it reproduces.

``annotated/data/length_generalization_summary.csv`` holds the results the chapter reads
(made by ``python -m annotated sweep length_<task>`` per task, gathered by
scripts/collect_length_sweep.py). Here one cell of it — one task × one encoding × one seed,
the cheapest — is trained again through the same code path (shipped config →
``lab.expand_grid`` → ``lab.run``) and must give the stored numbers.

Why not the stored digits: the sweep ran with one thread per process (OMP_NUM_THREADS=1) on one CPU.
Another CPU sums floats in another order (PyTorch picks its vector kernels by CPU), the weights drift
apart in the last bits, and held-out sequences whose answers were near-ties flip. So the short cell is
compared with a two-proportion test (two_proportion_limit), and the protocol cells, which train for
thousands of steps, long enough for that drift to become a different run, are judged as one more seed
of their group (seed_envelope). Both rules use a stated α with a Bonferroni correction over the lengths
compared; both reject another model (test_the_rules_reject_another_model).
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from statistics import NormalDist

import pytest
import torch
import yaml

import annotated
from annotated import lab
from annotated.analysis.intervals import wilson_interval
from annotated.lab.config import CONFIG_DIR
from annotated.lab.tables import read_csv
from annotated.training.evaluation import expand_lengths

DATA = Path(annotated.__file__).parent / "data"
TASKS = [
    "addition_reversed",
    "contains_pattern",
    "k_back",
    "long_range_match",
    "reverse",
    "running_sum",
    "sort",
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
# 600 steps at n = 8: ~6 s
CELL = {
    "task": "contains_pattern",
    "model.positional": "nope",
    "seed": 0,
}
# Measured: re-trained natively (AVX512) exact match 0.607 at n = 16 against the stored 0.590; under
# ATEN_CPU_CAPABILITY=avx2 0.670 at n = 32 against 0.697 — a few problems of 512 on the other side.
ALPHA = 0.05
SPREAD_SEEDS = 10  # seed_envelope widens by the seeds' spread from this many seeds on


def z_corrected(tests: int) -> float:
    """The two-sided normal quantile at ALPHA, Bonferroni-corrected over ``tests`` comparisons."""
    return NormalDist().inv_cdf(1 - ALPHA / (2 * tests))


def two_proportion_limit(a: float, b: float, problems: int, tests: int) -> float:
    """The largest |a - b| between two exact matches, each on ``problems`` problems, that a two-sided
    two-proportion z-test at ALPHA (Bonferroni over ``tests``) does not reject; the pooled rate is kept
    half a problem away from 0 and 1, so that one flipped answer next to a perfect score is allowed."""
    pooled = min(max((a + b) / 2, 0.5 / problems), 1 - 0.5 / problems)
    return z_corrected(tests) * math.sqrt(2 * pooled * (1 - pooled) / problems)


@pytest.fixture(scope="module")
def rows():
    return read_csv(DATA / "length_generalization_summary.csv")


def test_stored_sweep_is_the_shipped_configs_and_complete(rows):
    provenance = yaml.safe_load(
        (DATA / "length_generalization_provenance.yaml").read_text()
    )
    stored = {s["config"]["task"]: s for s in provenance["sweeps"]}
    assert sorted(stored) == TASKS
    for task, sweep in stored.items():
        shipped = lab.ExperimentConfig.from_file(
            CONFIG_DIR / f"length_{task}.yaml"
        ).to_dict()
        assert (
            lab.ExperimentConfig.from_dict(sweep["config"]).to_dict()
            == shipped
        ), f"{task}: config changed"
        assert sweep["completed_runs"] == "21/21"
        assert (
            sweep["environment"]["git_commit"]
            and sweep["environment"]["torch"]
        )
        runs = [r for r in rows if r["task"] == task and r["kind"] == "run"]
        assert sorted({r["model.positional"] for r in runs}) == sorted(
            ENCODINGS
        )
        assert sorted(r["seed"] for r in runs) == [0] * 7 + [1] * 7 + [2] * 7
        assert all(r["status"] == "completed" for r in runs)
        groups = [
            r for r in rows if r["task"] == task and r["kind"] == "group"
        ]
        assert len(groups) == 7 and all(
            g["status"] == "3/3 completed" for g in groups
        )


def retrain(rows, cell: dict, config, out_dir) -> tuple[dict, dict]:
    """(the stored row, the re-trained run's report) for one cell of a stored sweep, trained again
    through the shipped config's grid point and ``lab.run`` with one thread, as the sweeps ran."""
    (stored,) = [
        r
        for r in rows
        if r["kind"] == "run"
        and all(str(r[k]) == str(v) for k, v in cell.items())
    ]
    (point,) = [p for p in lab.expand_grid(config)
                if p.model["positional"] == cell["model.positional"] and p.seed == cell["seed"]]  # fmt: skip
    assert point.name == stored["run"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        folder = lab.run(point, out_dir)
    finally:
        torch.set_num_threads(threads)
    # JSON is YAML
    return stored, yaml.safe_load((folder / "report.json").read_text())


@pytest.mark.slow
def test_one_cell_of_the_stored_sweep_reproduces(rows, tmp_path):
    config = lab.ExperimentConfig.from_file(
        CONFIG_DIR / f"length_{CELL['task']}.yaml"
    )
    stored, report = retrain(rows, CELL, config, tmp_path)
    assert report["status"] == "completed"
    lengths = [config.train_length, *config.eval_lengths]
    assert sorted(int(n) for n in report["per_length"]) == lengths
    problems = config.train["eval_batches"] * config.train["eval_batch_size"]
    metrics = ("exact_match", "token_accuracy")
    for n in lengths:
        for metric in metrics:
            ours, theirs = report["per_length"][str(n)][metric], stored[f"{metric}@{n}"]
            limit = two_proportion_limit(ours, theirs, problems, len(lengths) * len(metrics))
            assert abs(ours - theirs) <= limit, f"n={n} {metric}: {ours:.3f} against the stored {theirs:.3f}"
    assert report["final_train_loss"] == pytest.approx(
        stored["final_train_loss"], rel=0.2, abs=0.01
    )


def test_protocol_sweeps_are_the_shipped_configs_and_say_what_completed():
    """annotated/data/length_protocol_* (scripts/collect_length_sweep.py --prefix length_protocol_), which
    the length-generalisation chapter leads with: each sweep is its shipped config, its completed-run count matches its rows, and
    every completed run carries every evaluated length with a Wilson interval around its exact match."""
    provenance = yaml.safe_load(
        (DATA / "length_protocol_provenance.yaml").read_text()
    )
    rows = read_csv(DATA / "length_protocol_summary.csv")
    assert sorted(s["config"]["task"] for s in provenance["sweeps"]) == [
        "addition_coupled", "addition_marked", "copy_eos", "counting_copy", "parity", "sort"]  # fmt: skip
    for sweep in provenance["sweeps"]:
        config = lab.ExperimentConfig.from_dict(sweep["config"])
        shipped = lab.ExperimentConfig.from_file(
            CONFIG_DIR / f"{config.name}.yaml"
        )
        assert config.to_dict() == shipped.to_dict(), (
            f"{config.name}: config changed since the sweep ran"
        )
        assert (
            sweep["environment"]["git_commit"]
            and sweep["environment"]["torch"]
        )
        runs = [
            r for r in rows if r["task"] == config.task and r["kind"] == "run"
        ]
        done = [r for r in runs if r["status"] == "completed"]
        points = len(lab.expand_grid(config))
        assert (
            len(runs) == points
            and sweep["completed_runs"] == f"{len(done)}/{points}"
        )
        for run in done:
            assert run["learned"] in (0, 1) and (
                run["steps_to_learn"] is not None
            ) == bool(run["learned"])
            for n in expand_lengths(config.eval_lengths):
                low, high = (
                    run[f"exact_match_lo@{n}"],
                    run[f"exact_match_hi@{n}"],
                )
                # Wilson's 1.0 may round to 1 - 1e-16
                assert low - 1e-9 <= run[f"exact_match@{n}"] <= high + 1e-9


# Cells of the protocol sweeps, re-trained. Sort, randomized encoding, seed 2: it learned sort in
# 2,000 steps, the fewest of the sweep's runs that learned (about 1-2.5 minutes on one thread). Parity,
# NoPE, seed 0: a chaotic cell — on another CPU this seed's run learns at another step or not at all
# within the cap (measured: stored learned at step 1,600 on one machine, never on another).
PROTOCOL_CELLS = [
    ("randomized_sort", {"task": "sort", "model.positional": "randomized", "seed": 2}),
    ("length_parity", {"task": "parity", "model.positional": "nope", "seed": 0}),
]  # fmt: skip


def seed_envelope(runs: list[dict], n: int, problems: int, tests: int) -> tuple[float, float]:
    """The exact matches at length ``n`` that the stored seeds of one group make plausible for one more
    seed: from the lowest seed's Wilson lower end to the highest seed's upper end, at ALPHA with a
    Bonferroni correction over the ``tests`` lengths judged; for a group of SPREAD_SEEDS seeds or more,
    widened on each side by the seeds' standard deviation at ``n``.

    Why this rule: another CPU or thread count sums floats in another order, and a small training run
    amplifies that into a different run, much as another seed would (measured: the same sort cell gives
    0.941 at n = 9 under ATEN_CPU_CAPABILITY=default and 0.969 natively; the parity cell, re-trained under
    avx2, 0.734 at n = 14, above all twenty seeds stored under two float orders, 0.297-0.678). So a
    re-trained run is judged as one more seed of its group: the Wilson ends allow for the 512 problems
    of each length, the spread for a seed beyond the ones stored — with k seeds a new one lies beyond
    all of them with probability 2/(k+1) at each length. Ten seeds estimate their spread well enough to
    widen by it; three do not (a three-seed spread would admit another encoding), so a three-seed group
    keeps the Wilson band. A regression that changes the model — positions ignored, a mask
    dropped, another encoding — moves whole curves outside that band
    (test_the_rules_reject_another_model)."""
    values = [r[f"exact_match@{n}"] for r in runs]
    spread = statistics.stdev(values) if len(values) >= SPREAD_SEEDS else 0.0
    z = z_corrected(tests)
    ends = [wilson_interval(round(v * problems), problems, z) for v in values]
    return (
        min(low for low, _ in ends) - spread - 1e-9,
        max(high for _, high in ends) + spread + 1e-9,
    )


def group_runs(rows: list[dict], task: str, positional: str) -> list[dict]:
    return [r for r in rows if r["kind"] == "run" and r["task"] == task
            and r["model.positional"] == positional and r["status"] == "completed"]  # fmt: skip


def outside_envelope(per_length: dict, runs: list[dict], lengths, problems: int = 512) -> list[str]:
    """The lengths at which ``per_length`` (n -> exact match) leaves the group's seed envelope."""
    out = []
    for n in lengths:
        low, high = seed_envelope(runs, n, problems, len(lengths))
        if not low <= per_length[n] <= high:
            out.append(f"n={n}: {per_length[n]:.3f} outside the seeds' [{low:.3f}, {high:.3f}]")
    return out


def test_the_rules_reject_another_model(rows):
    """The rules are not vacuous. The seed envelope: every stored seed of the sort sweep lies inside its
    own group's envelope, and so does every NoPE parity seed trained under another float order
    (ATEN_CPU_CAPABILITY=default), while a run of another encoding (sort: sinusoidal fails beyond the
    training lengths, NoPE ignores positions; parity: sinusoidal never learns) is judged outside at some
    length. The two-proportion test: the short cell's stored run against the same seed of another
    encoding differs at some length by more than it admits."""
    protocol = read_csv(DATA / "length_protocol_summary.csv")
    lengths = range(1, 17)

    def curve(run):
        return {n: run[f"exact_match@{n}"] for n in lengths}

    randomized = group_runs(protocol, "sort", "randomized")
    assert not any(outside_envelope(curve(r), randomized, lengths) for r in randomized)
    for other in ("sinusoidal", "nope"):
        worst = min(group_runs(protocol, "sort", other), key=lambda r: r["exact_match@12"])
        assert outside_envelope(curve(worst), randomized, lengths), other
    nope = group_runs(protocol, "parity", "nope")
    again = [r | {"task": "parity"} for r in read_csv(DATA / "length_parity_default_summary.csv")]
    assert not any(outside_envelope(curve(r), nope, lengths) for r in group_runs(again, "parity", "nope"))
    assert all(outside_envelope(curve(r), nope, lengths) for r in group_runs(protocol, "parity", "sinusoidal"))

    def cell(positional):
        (row,) = [r for r in rows if r["kind"] == "run" and r["task"] == CELL["task"]
                  and r["model.positional"] == positional and r["seed"] == CELL["seed"]]  # fmt: skip
        return row

    short = [8, 12, 16, 32]
    ours = cell(CELL["model.positional"])
    for other in ("sinusoidal", "learned"):
        theirs = cell(other)
        assert any(
            abs(ours[f"exact_match@{n}"] - theirs[f"exact_match@{n}"])
            > two_proportion_limit(ours[f"exact_match@{n}"], theirs[f"exact_match@{n}"], 512, 8)
            for n in short
        ), other


@pytest.mark.slow
@pytest.mark.parametrize("config_name, cell", PROTOCOL_CELLS, ids=["sort", "parity"])
def test_a_protocol_cell_retrained_lands_among_its_seeds(tmp_path, config_name, cell):
    """The stop rule, the positions drawn at training and test time and the held-out problems all come
    from seeded generators, so on the machine that made them the same code gives the stored run back.
    Elsewhere the run is judged as one more seed of its group (seed_envelope): it must learn if every
    stored seed of its group learned, and each length must land inside the seeds' envelope."""
    config = lab.ExperimentConfig.from_file(CONFIG_DIR / f"{config_name}.yaml")
    rows = read_csv(DATA / "length_protocol_summary.csv")
    _, report = retrain(rows, cell, config, tmp_path)
    assert report["status"] == "completed"
    runs = group_runs(rows, cell["task"], cell["model.positional"])
    if all(r["learned"] for r in runs):
        assert report["learned"], "every stored seed of this group learned; the re-trained run did not"
    lengths = expand_lengths(config.eval_lengths)
    ours = {n: report["per_length"][str(n)]["exact_match"] for n in lengths}
    problems = config.train["eval_batches"] * config.train["eval_batch_size"]
    outside = outside_envelope(ours, runs, lengths, problems)
    assert not outside, outside


def test_parity_re_run_under_another_capability_is_the_shipped_config():
    """annotated/data/length_parity_default_*: the parity sweep run a second
    time, from a clean tree, with the vector kernels off — the shipped config
    and seeds, complete, under another CPU capability than the stored one
    (the appendix compares the two)."""
    stored, again = (
        yaml.safe_load((DATA / f"{prefix}provenance.yaml").read_text())
        for prefix in ("length_protocol_", "length_parity_default_")
    )
    (parity,) = [s for s in stored["sweeps"] if s["config"]["task"] == "parity"]
    (rerun,) = again["sweeps"]
    shipped = lab.ExperimentConfig.from_file(CONFIG_DIR / "length_parity.yaml")
    config = lab.ExperimentConfig.from_dict(rerun["config"])
    assert config.to_dict() == shipped.to_dict()
    assert rerun["completed_runs"] == "40/40" and rerun["clean"]
    env, env0 = rerun["environment"], parity["environment"]
    assert env["git_dirty"] is False and env["threads"] == env0["threads"] == 1
    assert env["cpu_capability"] == "DEFAULT" != env0["cpu_capability"]
    rows = read_csv(DATA / "length_parity_default_summary.csv")
    seeds = sorted(r["seed"] for r in rows if r["kind"] == "run")
    assert seeds == sorted(list(range(10)) * 4)
