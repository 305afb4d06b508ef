"""The scaling-law sweep of chapter 8: one recipe, seven widths, the same token budget for every size.

Every model is a 2-layer, 4-head GPT with RoPE and context 64; only the width changes
(16 … 128, so the non-embedding parameters span 64×). Each trains for 1000 steps of 16 windows
(1,024,000 characters, about one pass over the training split) with AdamW lr 2e-3, 50 warm-up
steps, cosine to 2e-4, weight decay 0.1 and clipping 1.0. The smallest and the largest width run
with seeds 0 and 1, the others with seed 0. Each point is evaluated on 512 held-out windows
(32,768 characters) of the validation split, and on as many windows of the training split, so
the gap between the two shows overfitting.

The sweep is resumable: each finished point is a JSON file in ``--work`` and is skipped when the
script runs again. At the end it writes ``annotated/data/scaling_runs.csv`` and
``annotated/data/scaling_provenance.yaml``. One thread per process, as everything here:

    OMP_NUM_THREADS=1 ANNOTATED_TINYSHAKESPEARE=../shared/data/tinyshakespeare.txt \\
        .venv/bin/python scripts/scaling_sweep.py
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
from pathlib import Path

import torch
import yaml

from annotated.analysis.scaling import (
    CONTEXT,
    EVAL_WINDOWS,
    EXTRA_SEEDS,
    MODEL,
    TRAIN,
    WIDTHS,
    sweep_points,
    train_point,
)
from annotated.lab import environment
from annotated.lab.folders import require_clean
from annotated.tasks import get_task
from annotated.tasks.corpus import tiny_shakespeare_path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "annotated" / "data"
FIELDS = [
    "d_model",
    "seed",
    "non_embedding_params",
    "params",
    "val_loss",
    "train_loss",
    "tokens",
    "wall_time_s",
]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--work",
        type=Path,
        default=ROOT / "experiments" / "scaling",
        help="one JSON per point",
    )
    parser.add_argument("--out", type=Path, default=DATA)
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="store results from a tree that differs from its commit "
        "(the diff's SHA-256 is recorded)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    require_clean(environment("cpu"), args.allow_dirty)
    args.work.mkdir(parents=True, exist_ok=True)
    task = get_task("tiny_shakespeare")
    for d_model, seed in sweep_points():
        done = args.work / f"d{d_model}_seed{seed}.json"
        if done.is_file():
            continue
        row = train_point(task, d_model, seed)
        done.write_text(json.dumps(row))
        print(f"d_model={d_model} seed={seed}: val {row['val_loss']:.4f} train {row['train_loss']:.4f} "
              f"({row['wall_time_s']:.0f} s)", flush=True)  # fmt: skip
    rows = [
        json.loads((args.work / f"d{d}_seed{s}.json").read_text())
        for d, s in sweep_points()
    ]
    with open(args.out / "scaling_runs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    corpus = tiny_shakespeare_path(download=False)
    provenance = {
        "what": "chapter 8's scaling-law sweep: one recipe, widths 16..128, the same tokens for every size",
        "script": "scripts/scaling_sweep.py",
        "model": MODEL
        | {
            "d_model": list(WIDTHS),
            "d_ff": "4 * d_model",
            "tie_weights": True,
        },
        "train": TRAIN
        | {
            "context": CONTEXT,
            "tokens_per_run": TRAIN["steps"] * TRAIN["batch_size"] * CONTEXT,
        },
        "seeds": {str(d): [0, *EXTRA_SEEDS.get(d, ())] for d in WIDTHS},
        "evaluation": f"mean next-character loss (nats) over {EVAL_WINDOWS} windows of {CONTEXT} characters per "
        "split, drawn with torch.Generator seed 1234 (annotated.analysis.scaling.heldout_loss)",
        "corpus": {
            "name": "tiny_shakespeare",
            "sha256": hashlib.sha256(corpus.read_bytes()).hexdigest(),
            "val_fraction": 0.1,
        },  # fmt: skip
        "total_wall_time_s": round(sum(r["wall_time_s"] for r in rows), 1),
        # None for points trained before CPU time was recorded
        "total_cpu_time_s": None
        if any("cpu_time_s" not in r for r in rows)
        else round(sum(r["cpu_time_s"] for r in rows), 1),
        "environment": environment("cpu"),
    }
    (args.out / "scaling_provenance.yaml").write_text(
        yaml.safe_dump(provenance, sort_keys=False)
    )
    print(f"wrote {args.out / 'scaling_runs.csv'} ({len(rows)} runs)")


if __name__ == "__main__":
    main()
