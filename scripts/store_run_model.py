"""Ship one run's trained model with the book: its weights (no optimizer state) and provenance.

    python scripts/store_run_model.py RUN_FOLDER --name addition_coupled \\
        --what "seed 0 of length_addition_coupled: ..." [--out annotated/data]

Writes ``<name>.pt`` (a checkpoint ``annotated.models.transformer.load_model`` reads, float32) and
``<name>_provenance.yaml``: the run folder, its config as run, the environment it recorded
(library and torch versions, git commit, date), its status, steps, training time and exact match
per evaluated length, and the file's sha256. A chapter loads the model instead of training it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from annotated.lab.folders import unclean_provenance  # noqa: E402
from annotated.models.checkpoints import read_checkpoint, write_checkpoint  # noqa: E402
from annotated.models.config import ModelConfig  # noqa: E402


def store(
    run: Path, name: str, what: str, out: Path, *, allow_dirty: bool = False
) -> Path:
    report = json.loads((run / "report.json").read_text())
    if report.get("status") != "completed":
        raise SystemExit(
            f"{run} has status {report.get('status')!r}; store a completed run"
        )
    checkpoint = read_checkpoint(run / "model.pt")
    config = ModelConfig.from_dict(checkpoint["config"])
    target = out / f"{name}.pt"
    write_checkpoint(
        target,
        config,
        {k: v.float() for k, v in checkpoint["state_dict"].items()},
    )
    run_config = yaml.safe_load((run / "config.yaml").read_text())
    problem = unclean_provenance([run_config.get("environment") or {}])
    if problem and not allow_dirty:
        raise SystemExit(f"error: {run}: {problem}")
    provenance = {
        "what": what,
        "script": "scripts/store_run_model.py",
        "run": run.name,
        "sweep": run.parent.name,
        "checkpoint": {
            "file": target.name,
            "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
            "dtype": "float32",
        },  # fmt: skip
        "config": {k: v for k, v in run_config.items() if k != "environment"},
        "environment": run_config.get("environment"),
        "status": report["status"],
        "steps_done": report.get("steps_done"),
        "learned": report.get("learned"),
        "steps_to_learn": report.get("steps_to_learn"),
        "train_time_s": round(report.get("train_time_s", 0.0), 1),
        "wall_time_s": report.get("wall_time_s"),
        "cpu_time_s": report.get("cpu_time_s"),
        "exact_match": {
            int(n): round(row["exact_match"], 4)
            for n, row in report["per_length"].items()
        },
    }
    (out / f"{name}_provenance.yaml").write_text(
        yaml.safe_dump(provenance, sort_keys=False, allow_unicode=True)
    )
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "run",
        type=Path,
        help="a completed run folder (report.json, model.pt, config.yaml)",
    )
    parser.add_argument(
        "--name",
        required=True,
        help="file stem under --out, e.g. addition_coupled",
    )
    parser.add_argument(
        "--what",
        required=True,
        help="one sentence: what the model is and why the book keeps it",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "annotated" / "data"
    )
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="store a run made from a tree that differed from its commit (its diff's SHA-256 is recorded)",
    )
    args = parser.parse_args(argv)
    print(
        store(
            args.run,
            args.name,
            args.what,
            args.out,
            allow_dirty=args.allow_dirty,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
