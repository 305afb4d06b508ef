"""The week-6 sweep stored in the book is the sweep of the shipped configs, and it reproduces.

``annotated/data/length_generalization_summary.csv`` holds the results the chapter reads
(made by ``python -m annotated sweep length_<task>`` per task, gathered by
scripts/collect_length_sweep.py). Here one cell of it — one task × one encoding × one seed,
the cheapest — is trained again through the same code path (shipped config →
``lab.expand_grid`` → ``lab.run``) and must give the stored numbers.

Why a tolerance (0.02 absolute on accuracies, for the short contains_pattern cell): the sweep ran
with one thread per process (OMP_NUM_THREADS=1). Another thread count or CPU sums floats in another
order, the weights drift apart in the last bits, and a held-out sequence whose answer was a near-tie
can flip. The protocol cells train for thousands of steps, long enough for that drift to become a
different run; they are judged as one more seed of their group instead (seed_envelope).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

import annotated
from annotated import lab
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
# Re-training on this 2-core machine gives exact match 0.607 at n = 16 against the stored 0.590, with
# the library before and after the mask_mod/score_mod refactor alike (same losses step by step); the
# stored sweep ran elsewhere. 0.02 admits that float-level drift over 600 steps and nothing larger.
TOLERANCE = 0.02


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
    for n in lengths:
        for metric in ("exact_match", "token_accuracy"):
            assert report["per_length"][str(n)][metric] == pytest.approx(
                stored[f"{metric}@{n}"], abs=TOLERANCE
            )
    assert report["final_train_loss"] == pytest.approx(
        stored["final_train_loss"], rel=0.2, abs=0.01
    )
    assert report["generalisation_gap"]["exact_match"] == pytest.approx(
        stored["gap_exact_match"], abs=TOLERANCE
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


def seed_envelope(runs: list[dict], n: int) -> tuple[float, float]:
    """The exact matches at length ``n`` that the stored seeds of one group make plausible: from the
    lowest seed's Wilson 95% lower end to the highest seed's upper end.

    Why this rule: another CPU or thread count sums floats in another order, and a small training run
    amplifies that into a different run, much as another seed would (measured: the same sort cell gives
    0.941 at n = 9 under ATEN_CPU_CAPABILITY=default and 0.969 natively). So a re-trained run is judged
    as one more seed of its group, not against its own stored digits: each length must land where the
    group's seeds landed, widened by each seed's sampling interval (512 problems). A regression that
    changes the model — positions ignored, a mask dropped, another encoding — moves whole curves
    outside that band (test_the_seed_envelope_rejects_another_model)."""
    return (
        min(r[f"exact_match_lo@{n}"] for r in runs) - 1e-9,
        max(r[f"exact_match_hi@{n}"] for r in runs) + 1e-9,
    )


def group_runs(rows: list[dict], task: str, positional: str) -> list[dict]:
    return [r for r in rows if r["kind"] == "run" and r["task"] == task
            and r["model.positional"] == positional and r["status"] == "completed"]  # fmt: skip


def outside_envelope(per_length: dict, runs: list[dict], lengths) -> list[str]:
    """The lengths at which ``per_length`` (n -> exact match) leaves the group's seed envelope."""
    out = []
    for n in lengths:
        low, high = seed_envelope(runs, n)
        if not low <= per_length[n] <= high:
            out.append(f"n={n}: {per_length[n]:.3f} outside the seeds' [{low:.3f}, {high:.3f}]")
    return out


def test_the_seed_envelope_rejects_another_model():
    """The rule is not vacuous: a stored seed of the sort sweep is inside its own group's envelope, while
    a run of another encoding (sinusoidal: it fails beyond the training lengths; NoPE: positions
    ignored) is judged outside the randomized group's envelope at some length."""
    rows = read_csv(DATA / "length_protocol_summary.csv")
    lengths = range(1, 17)
    randomized = group_runs(rows, "sort", "randomized")

    def curve(run):
        return {n: run[f"exact_match@{n}"] for n in lengths}

    assert not any(outside_envelope(curve(r), randomized, lengths) for r in randomized)
    for other in ("sinusoidal", "nope"):
        worst = min(group_runs(rows, "sort", other), key=lambda r: r["exact_match@12"])
        assert outside_envelope(curve(worst), randomized, lengths), other


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
    assert not outside_envelope(ours, runs, lengths), outside_envelope(ours, runs, lengths)


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
