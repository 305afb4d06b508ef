"""Train the model that chapter 8 ("Inside a trained model") opens up, and store it in annotated/data/.

The recipe has week 5's nanoGPT CPU size and schedule, with three changes: RoPE instead of a
learned position table, biases in the linear layers, and AdamW's beta2 0.98. A 4-layer, 4-head GPT
of width 128, context 64, 2000 steps of 12 windows, AdamW lr 1e-3 (100 warm-up steps, cosine to 1e-4), weight
decay 0.1, gradient clipping 1.0, seed 0. The weights are stored in float16 (1.6 MB; the chapter
loads them back into a float32 model) with a provenance file that says how they were made.

    OMP_NUM_THREADS=1 ANNOTATED_TINYSHAKESPEARE=../shared/data/tinyshakespeare.txt \\
        .venv/bin/python scripts/train_inside_model.py
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import torch
import yaml

from annotated.lab import environment
from annotated.lab.folders import require_clean
from annotated.models.checkpoints import write_checkpoint
from annotated.models.config import ModelConfig
from annotated.models.summary import count_parameters
from annotated.models.transformer import build_model
from annotated.tasks import get_task
from annotated.tasks.corpus import tiny_shakespeare_path
from annotated.training.config import TrainConfig
from annotated.training.loop import train

DATA = Path(__file__).resolve().parent.parent / "annotated" / "data"
CONTEXT = 64


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=DATA / "inside_model.pt")
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="store a model trained from a tree that differs from its "
        "commit (the diff's SHA-256 is recorded)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    require_clean(environment("cpu"), args.allow_dirty)
    task = get_task("tiny_shakespeare")
    model_config = ModelConfig(arch="decoder", vocab_size=task.vocab_size, n_layers=4, n_heads=4, d_model=128,
                               max_len=CONTEXT, positional="rope")  # fmt: skip
    train_config = TrainConfig(steps=args.steps, batch_size=12, lr=1e-3, warmup_steps=100, min_lr_ratio=0.1,
                               weight_decay=0.1, grad_clip=1.0, eval_every=500, eval_batches=8, eval_batch_size=32,
                               log_every=50, seed=0, device="cpu")  # fmt: skip
    torch.manual_seed(0)
    model = build_model(model_config)
    began, cpu_began = time.perf_counter(), time.process_time()
    history = train(model, task, train_length=CONTEXT, config=train_config)
    seconds = time.perf_counter() - began
    cpu_seconds = time.process_time() - cpu_began
    state = {
        k: v.detach().to(torch.float16) for k, v in model.state_dict().items()
    }
    write_checkpoint(args.out, model_config, state)
    corpus = tiny_shakespeare_path(download=False)
    provenance = {
        "what": "the model chapter 8 analyses: week 5's nanoGPT CPU recipe, trained in full",
        "script": "scripts/train_inside_model.py",
        "checkpoint": {
            "file": args.out.name,
            "sha256": sha256(args.out),
            "dtype": "float16 (load into float32)",
        },
        "corpus": {
            "name": "tiny_shakespeare",
            "sha256": sha256(corpus),
            "val_fraction": 0.1,
        },
        "model": model_config.to_dict(),
        "parameters": count_parameters(model),
        "train": train_config.to_dict()
        | {"context": CONTEXT, "tokens_seen": args.steps * 12 * CONTEXT},
        "wall_time_s": round(seconds, 1),
        "cpu_time_s": round(cpu_seconds, 1),
        "validation": [
            {"step": r["step"], "loss": round(r["loss"], 4)}
            for r in history.evals
        ],
        "environment": environment("cpu"),
    }
    (args.out.with_name(args.out.stem + "_provenance.yaml")).write_text(
        yaml.safe_dump(provenance, sort_keys=False)
    )
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) in {seconds:.0f} s; "
          f"validation loss {history.evals[-1]['loss']:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
