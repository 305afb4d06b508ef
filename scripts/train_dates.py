"""Train the date translator of chapter 4b on three seeds and store what
the chapter shows in annotated/data/.

The recipe (also written out in the chapter, which checks it against the
provenance file): an encoder-decoder of width 128, 2 + 2 layers, 4 heads,
RoPE, PAD hidden; 2,000 steps of 64 dates, AdamW lr 2e-3 (100 warm-up
steps, cosine to 2e-4), the library's training loop on source | answer rows
(annotated.training.seq2seq). Then, per seed and held-out split: greedy
exact match on 2,000 fresh dates, and greedy against beam search of widths
1, 2 and 4 on 500 of them (exact match, mean log-probability, how many
answers beam search made likelier).

    OMP_NUM_THREADS=1 .venv/bin/python scripts/train_dates.py --seed 0 \\
        --work /tmp/dates_work          # one seed (run three in parallel)
    .venv/bin/python scripts/train_dates.py --collect --work /tmp/dates_work

Writes dates_summary.csv, dates_beam.csv, dates_curves.csv, dates_model.pt
(seed 0, float32) and dates_provenance.yaml.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import torch
import yaml

from annotated.analysis.intervals import wilson_interval
from annotated.lab import environment
from annotated.lab.folders import require_clean
from annotated.models.beam import beam_search
from annotated.models.config import ModelConfig
from annotated.models.transformer import EncoderDecoder
from annotated.tasks.dates import ANSWER_LEN, DateTask
from annotated.training.config import TrainConfig
from annotated.training.loop import train
from annotated.training.seq2seq import PairedBatches, PairedEncoderDecoder

DATA = Path(__file__).resolve().parent.parent / "annotated" / "data"
SPLITS = ("test", "test_forms", "test_years")
N_GREEDY, N_BEAM, WIDTHS = 2000, 500, (1, 2, 4)
EVAL_SEED = 4242  # the held-out draws: the same for every seed


def recipe(task: DateTask, seed: int, steps: int = 2000):
    """(ModelConfig, TrainConfig) of the chapter's translator."""
    model = ModelConfig(
        arch="encoder-decoder",
        vocab_size=task.vocab_size,
        d_model=128,
        n_layers=2,
        n_heads=4,
        max_len=task.seq_len(1),
        pad_id=task.pad_id,
    )
    training = TrainConfig(
        steps=steps,
        batch_size=64,
        lr=2e-3,
        warmup_steps=min(100, steps),
        eval_every=250,
        eval_batches=2,
        eval_batch_size=250,
        log_every=25,
        seed=seed,
        device="cpu",
    )
    return model, training


def decode(model, task, src, width):
    """Best answers (B, A) and their log-probabilities (B,)."""
    start = torch.full((len(src), 1), task.bos_id)
    beams = beam_search(model, start, ANSWER_LEN, beam_size=width, src=src)
    return beams.best[:, 1:], beams.log_probs[:, 0]


def held_out(task, split, n):
    g = torch.Generator().manual_seed(EVAL_SEED + SPLITS.index(split))
    return task.seq2seq(n, 1, g, split=split)


def train_seed(seed: int, steps: int, work: Path) -> None:
    task = DateTask()
    model_config, train_config = recipe(task, seed, steps)
    torch.manual_seed(seed)
    model = PairedEncoderDecoder(model_config, ANSWER_LEN)
    wall, cpu = time.perf_counter(), time.process_time()
    history = train(
        model, PairedBatches(task), train_length=1, config=train_config
    )
    times = {
        "train_wall_s": time.perf_counter() - wall,
        "train_cpu_s": time.process_time() - cpu,
    }
    model.eval()
    rows, beams = [], []
    with torch.no_grad():
        for split in SPLITS:
            src, answer = held_out(task, split, N_GREEDY)
            exact = sum(
                int((decode(model, task, s, 1)[0] == a).all(1).sum())
                for s, a in zip(src.split(500), answer.split(500))
            )
            lo, hi = wilson_interval(exact, N_GREEDY)
            rows.append(
                {"seed": seed, "split": split, "n": N_GREEDY}
                | {"correct": exact, "exact_match": exact / N_GREEDY}
                | {"lo": lo, "hi": hi}
            )
            src, answer = src[:N_BEAM], answer[:N_BEAM]
            _, greedy_lp = decode(model, task, src, 1)
            for width in WIDTHS:
                best, lp = decode(model, task, src, width)
                beams.append(
                    {"seed": seed, "split": split, "width": width}
                    | {
                        "n": N_BEAM,
                        "exact_match": float(
                            (best == answer).all(1).float().mean()
                        ),
                    }
                    | {"mean_log_prob": float(lp.mean())}
                    | {"likelier": int((lp > greedy_lp + 1e-4).sum())}
                )
    times["total_wall_s"] = time.perf_counter() - wall
    times["total_cpu_s"] = time.process_time() - cpu
    curves = [
        {"seed": seed, "step": r["step"], "loss": r["loss"]}
        for r in history.steps
    ]
    evals = [
        {"seed": seed, "step": r["step"], "val_exact": r["exact_match"]}
        for r in history.evals
    ]
    work.mkdir(parents=True, exist_ok=True)
    out = {"rows": rows, "beams": beams, "curves": curves, "evals": evals}
    out |= {"times": times, "environment": environment("cpu")}
    (work / f"seed{seed}.json").write_text(json.dumps(out))
    if seed == 0:
        EncoderDecoder.save(model, work / "seed0.pt")


def write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def collect(work: Path, seeds: list[int], steps: int) -> None:
    runs = [json.loads((work / f"seed{s}.json").read_text()) for s in seeds]
    write_csv(
        DATA / "dates_summary.csv", [r for x in runs for r in x["rows"]]
    )
    write_csv(DATA / "dates_beam.csv", [r for x in runs for r in x["beams"]])
    curves = {}
    for run in runs:
        for row in run["curves"]:
            curves[(row["seed"], row["step"])] = dict(row, val_exact="")
        for row in run["evals"]:
            curves[(row["seed"], row["step"])]["val_exact"] = row["val_exact"]
    write_csv(DATA / "dates_curves.csv", list(curves.values()))
    (DATA / "dates_model.pt").write_bytes((work / "seed0.pt").read_bytes())
    model_config, train_config = recipe(DateTask(), 0, steps)
    provenance = {
        "what": "chapter 4b's date translator: three seeds of one recipe, "
        "greedy exact match per held-out split (2,000 dates each, Wilson "
        "95% intervals), greedy against beam search (500 dates each), the "
        "training curves, and seed 0's weights",
        "command": "OMP_NUM_THREADS=1 python scripts/train_dates.py --seed "
        "S --work W (S = 0, 1, 2, three processes at once, one thread "
        "each), then --collect --work W",
        "model": model_config.to_dict(),
        "train": train_config.to_dict() | {"seed": "0, 1, 2"},
        "eval_seed": EVAL_SEED,
        "environments": [run["environment"] for run in runs],
        "runs_wall_time_s": [run["times"]["total_wall_s"] for run in runs],
        "runs_cpu_time_s": [run["times"]["total_cpu_s"] for run in runs],
        "train_cpu_time_s": [run["times"]["train_cpu_s"] for run in runs],
    }
    text = yaml.safe_dump(provenance, sort_keys=False, allow_unicode=True)
    (DATA / "dates_provenance.yaml").write_text(text)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int)
    parser.add_argument("--collect", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="store results of a tree that differs from its commit (the "
        "diff's SHA-256 is recorded)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    require_clean(environment("cpu"), args.allow_dirty)
    if args.collect:
        collect(args.work, args.seeds, args.steps)
    else:
        train_seed(args.seed, args.steps, args.work)


if __name__ == "__main__":
    main()
