"""Exact match and attention dilution of a coupled-addition model on long
additions, in resumable chunks.

    python scripts/long_addition.py [--model annotated/data/addition_coupled.pt]
        [--name addition_coupled]
        [--lengths 10 20 50 100 200 500 1000 2000] [--problems 128]
        [--chunk 16] [--scales 1.0] [--mass-problems 4]
        [--out annotated/data/addition_long]

Writes ``<out>_exact.csv`` (a row per model, logit scale, length and chunk
of ``--chunk`` problems: how many were answered exactly) and
``<out>_mass.csv`` (a row per model, scale, length and head: the answer
queries' mean attention on the digit, carry, other-operand and other keys,
annotated.analysis.dilution.role_mass) and, with ``--loss-problems``,
``<out>_loss.csv`` (the answer tokens' mean cross-entropy, which tells
settings apart where exact match saturates). A chunk already in the file is
skipped, so a stopped run goes on where it stopped; each row is written as
soon as it is measured. One thread: run two scales or lengths as two
processes to use two cores.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from annotated.analysis.dilution import (  # noqa: E402
    ROLES,
    answer_loss,
    exact_match_count,
    role_mass,
)
from annotated.models.logit_scale import (  # noqa: E402
    set_length_scale,
    set_logit_scale,
)
from annotated.models.transformer import load_model  # noqa: E402
from annotated.tasks import get_task  # noqa: E402

EXACT = ["model", "scale", "length", "chunk", "seed", "problems", "correct", "seconds"]
MASS = ["model", "scale", "length", "head", "problems", *ROLES]
LOSS = ["model", "scale", "length", "problems", "seed", "answer_loss"]
CHUNK_SEED = 1000  # chunk c draws with generator seed CHUNK_SEED + c
MASS_SEED = 7


def done(path: Path, keys: list[str]) -> set[tuple]:
    if not path.is_file():
        return set()
    with path.open(encoding="utf-8") as f:
        return {tuple(row[k] for k in keys) for row in csv.DictReader(f)}


def append(path: Path, columns: list[str], rows: list[dict]) -> None:
    new = not path.is_file()
    with path.open("a", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, columns)
        if new:
            writer.writeheader()
        writer.writerows(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "annotated/data/addition_coupled.pt")
    parser.add_argument("--lengths", type=int, nargs="+", default=[10, 20, 50, 100, 200, 500, 1000, 2000])
    parser.add_argument("--name", help="the model column of the rows (default: the checkpoint's file name without .pt; a run folder's model.pt: pass the run's name)")
    parser.add_argument("--problems", type=int, default=128)
    parser.add_argument("--chunk", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--scales", nargs="+", default=["1.0"], help="a number: every logit × it, on top of any length rule the model was trained with; a length rule (log_ratio, log_ratio_beyond): logits × log n / log n_train, n_train the keys of the longest training problem; log_beyond:B: logits × (1 + B · max(0, log(n / n_train)))")
    parser.add_argument("--mass-problems", type=int, default=4, help="problems per length for the attention mass (0: none)")
    parser.add_argument("--loss-problems", type=int, default=0, help="problems per length for the answer tokens' mean cross-entropy, in <out>_loss.csv (0: none)")
    parser.add_argument("--out", type=Path, default=ROOT / "annotated/data/addition_long")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    task = get_task("addition_coupled")
    model = load_model(args.model).eval()
    name = args.name or args.model.stem
    exact_path = Path(f"{args.out}_exact.csv")
    mass_path = Path(f"{args.out}_mass.csv")
    loss_path = Path(f"{args.out}_loss.csv")
    n_train = task.seq_len(10)  # the keys of a 10-digit problem
    # a number keeps the model's own length rule (one trained in stays on)
    own = (model.config.length_scale, model.config.length_scale_train,
           model.config.length_scale_slope)  # fmt: skip
    for scale in args.scales:
        rule, _, slope = scale.partition(":")  # "log_beyond:0.1": β = 0.1
        if rule.replace(".", "").isdigit():
            set_length_scale(model, *own)
            set_logit_scale(model, float(scale))
        else:
            set_length_scale(model, rule, n_train, float(slope or 0.1))
            set_logit_scale(model, 1.0)
        for n in args.lengths:
            have = done(mass_path, ["model", "scale", "length"])
            if args.mass_problems and (name, str(scale), str(n)) not in have:
                mass = role_mass(model, task, n, args.mass_problems, seed=MASS_SEED)
                append(mass_path, MASS, [
                    {"model": name, "scale": scale, "length": n, "head": h,
                     "problems": args.mass_problems,
                     **{r: round(float(v), 5) for r, v in zip(ROLES, mass[h])}}
                    for h in range(mass.shape[0])
                ])  # fmt: skip
            have = done(loss_path, ["model", "scale", "length"])
            if args.loss_problems and (name, str(scale), str(n)) not in have:
                loss = answer_loss(model, task, n, args.loss_problems, seed=MASS_SEED, batch_size=args.batch_size)
                append(loss_path, LOSS, [
                    {"model": name, "scale": scale, "length": n,
                     "problems": args.loss_problems, "seed": MASS_SEED,
                     "answer_loss": float(f"{loss:.6g}")}
                ])  # fmt: skip
                print(f"{scale} {n}: answer loss {loss:.4g}", flush=True)
            have = done(exact_path, ["model", "scale", "length", "chunk"])
            for c in range(-(-args.problems // args.chunk)):
                if (name, str(scale), str(n), str(c)) in have:
                    continue
                size = min(args.chunk, args.problems - c * args.chunk)
                start = time.perf_counter()
                right = exact_match_count(model, task, n, size, seed=CHUNK_SEED + c, batch_size=args.batch_size)
                row = {"model": name, "scale": scale, "length": n, "chunk": c,
                       "seed": CHUNK_SEED + c, "problems": size, "correct": right,
                       "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
                append(exact_path, EXACT, [row])
                print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
