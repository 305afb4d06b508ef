"""What a training step of each modern-transformer recipe costs, measured on
a quiet machine: one thread, the recipes taking turns, several rounds.

    python scripts/recipe_step_cost.py [--steps 60] [--rounds 3]
        [--out annotated/data]

Each recipe of annotated.analysis.recipes.RECIPES is built from its sweep's
config (seed 0) and trained for ``--steps`` steps (warm-up 5, no
evaluation, no checkpoint); its step cost is the median over the steps after
the tenth of batch tokens / the tokens per second the loop logs. A round
measures every recipe once, in order; the stored cost is the median over
rounds. Writes ``modern_step_cost.csv`` (recipe, ms_per_step, one column per
round) and ``modern_step_cost_provenance.yaml`` (the command, the
environment). A sweep's own times hold whatever else ran on the machine
beside it; this measurement is what the book's table multiplies steps by.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from annotated.analysis.recipes import RECIPES  # noqa: E402
from annotated.lab import (  # noqa: E402
    ExperimentConfig,
    environment,
    expand_grid,
    find_config,
    resolve,
)
from annotated.lab.tables import write_csv  # noqa: E402
from annotated.training.loop import train  # noqa: E402


def point_of(sweep: str, values: dict):
    for point in expand_grid(ExperimentConfig.from_file(find_config(sweep))):
        if point.seed != 0:
            continue
        got = {k: getattr(point, k) if "." not in k else getattr(point, k.split(".")[0])[k.split(".")[1]] for k in values}
        if got == values:
            return point
    raise ValueError(f"no seed-0 point of {sweep} with {values}")


def step_ms(point, steps: int) -> float:
    resolved = resolve(point)
    config = dataclasses.replace(
        resolved.train_config, steps=steps, warmup_steps=5, eval_every=0,
        checkpoint_every=0, log_every=1, device="cpu",
    )  # fmt: skip
    model = resolved.build_model()
    length = resolved.lengths[1]
    history = train(model, resolved.task, train_length=length, config=config)
    tokens = config.batch_size * length
    ms = [1000 * tokens / row["tokens_per_s"] for row in history.steps[10:]]
    return statistics.median(ms)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "annotated/data")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    wall, cpu = time.perf_counter(), time.process_time()
    points = {label: point_of(*spec) for label, spec in RECIPES.items()}
    rounds = {label: [] for label in points}
    for r in range(args.rounds):
        for label, point in points.items():
            rounds[label].append(step_ms(point, args.steps))
            print(f"round {r}: {label:<16} {rounds[label][-1]:6.1f} ms", flush=True)
    rows = [
        {"recipe": label, "ms_per_step": round(statistics.median(ms), 2),
         **{f"round_{i}": round(m, 2) for i, m in enumerate(ms)}}
        for label, ms in rounds.items()
    ]  # fmt: skip
    write_csv(args.out / "modern_step_cost.csv", rows)
    provenance = {
        "what": "ms per training step of each recipe, one thread, median of the steps after the tenth, median over rounds in which the recipes took turns",
        "command": "OMP_NUM_THREADS=1 python scripts/recipe_step_cost.py " + " ".join(argv or sys.argv[1:]),
        "environment": environment("cpu"),
        "wall_time_s": round(time.perf_counter() - wall, 1),
        "cpu_time_s": round(time.process_time() - cpu, 1),
    }
    (args.out / "modern_step_cost_provenance.yaml").write_text(yaml.safe_dump(provenance, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
