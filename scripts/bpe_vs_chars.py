"""Week 5's model on characters and on BPE tokens, at equal compute, in bits
per character.

    OMP_NUM_THREADS=1 python scripts/bpe_vs_chars.py [--steps 2000]
        [--seeds 0 1 2] [--vocab-size 512] [--eval-every 250]
        [--arms chars bpe] [--out annotated/data] [--work /tmp/bpe_chars]

Two arms, the same recipe (week 5's stored full run: 4 layers, 4 heads,
width 128, learned positions, no dropout, no biases, tied head; AdamW lr
1e-3, betas (0.9, 0.99), weight decay 0.1, warm-up 100, cosine to a tenth,
clip 1; batch 12 windows of 64 tokens):

* ``chars`` — the 65 characters of Tiny Shakespeare (week 5's vocabulary);
* ``bpe`` — byte-level BPE with ``--vocab-size`` ids, trained on the
  training split only (annotated.tasks.bpe).

Equal compute: the same model width and depth, the same steps × batch ×
context *in tokens* (so the same number of block forward/backward passes
per step). What differs: the embedding table and the tied head (V × 128),
and the characters a window covers (64 BPE tokens ≈ 1.9 × 64 characters).

Both arms split the text at the same character (the first 90 % train) and
are scored on the same validation characters: those after the first BPE
token of the validation text, every one of them, in consecutive windows of
64 tokens (annotated.analysis.tokens), converted to bits per character:
total NLL (nats) / (characters · ln 2). Every ``--eval-every`` steps and at
the end. Training seconds exclude that evaluation.

Writes ``bpe_vs_chars_summary.csv`` (one row per arm and seed),
``bpe_vs_chars_curves.csv`` (arm, seed, step, bpc, loss per token, training
seconds) and ``bpe_vs_chars_provenance.yaml``. Finished runs are kept in
``--work`` as JSON, so a stopped script resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from annotated.analysis.tokens import (  # noqa: E402
    SplitText,
    val_bits_per_character,
)
from annotated.lab import environment  # noqa: E402
from annotated.lab.tables import write_csv  # noqa: E402
from annotated.models.config import ModelConfig  # noqa: E402
from annotated.models.summary import count_parameters  # noqa: E402
from annotated.models.transformer import build_model  # noqa: E402
from annotated.tasks.bpe import BPETokenizer  # noqa: E402
from annotated.tasks.corpus import load_tiny_shakespeare  # noqa: E402
from annotated.tasks.text import CharTokenizer  # noqa: E402
from annotated.training.config import TrainConfig  # noqa: E402
from annotated.training.loop import train  # noqa: E402

CONTEXT, BATCH = 64, 12
ARMS = ("chars", "bpe")


def model_config(vocab_size: int) -> ModelConfig:
    """Week 5's model (its stored full run) for a vocabulary."""
    return ModelConfig(
        arch="decoder", vocab_size=vocab_size, n_layers=4, n_heads=4,
        d_model=128, max_len=CONTEXT, positional="learned", dropout=0.0,
        bias=False,
    )  # fmt: skip


def train_config(steps: int, seed: int, eval_every: int, **kw):
    """Week 5's recipe; the loop's own evaluation kept to one batch."""
    return TrainConfig(
        steps=steps, batch_size=BATCH, lr=1e-3, weight_decay=0.1,
        betas=(0.9, 0.99), warmup_steps=100, min_lr_ratio=0.1,
        grad_clip=1.0, eval_every=eval_every, eval_batches=1, log_every=50,
        seed=seed, device="cpu", **kw,
    )  # fmt: skip


def make_tasks(vocab_size: int):
    """The two arms' tasks and the validation characters both skip."""
    text = load_tiny_shakespeare()
    chars = SplitText(text, CharTokenizer(text))
    bpe_tok = BPETokenizer.from_text(chars.split_texts["train"], vocab_size)
    bpe = SplitText(text, bpe_tok)
    skip = len(bpe.decode(bpe.splits["val"][:1]))  # BPE's first token
    return {"chars": chars, "bpe": bpe}, skip


def run_one(task, skip, steps, seed, eval_every, stop_after=None):
    """Train one arm with one seed; its curve in bits per character."""
    torch.manual_seed(seed)
    model = build_model(model_config(task.tokenizer.vocab_size))
    curve, spent, start = [], [0.0], time.perf_counter()

    def on_eval(kind, row):
        if kind != "eval":
            return
        now = time.perf_counter()
        bpc, nll, n_chars = val_bits_per_character(model, task, CONTEXT, skip)
        curve.append(
            {
                "step": int(row["step"]),
                "val_bpc": bpc,
                "val_nll_nats": nll,
                "val_chars": n_chars,
                "train_seconds": round(now - start - spent[0], 3),
            }
        )
        spent[0] += time.perf_counter() - now

    config = train_config(steps, seed, eval_every, stop_after=stop_after)
    history = train(
        model, task, train_length=CONTEXT, config=config, callback=on_eval
    )
    return model, history, curve


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--vocab-size", type=int, default=512)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument(
        "--arms", nargs="+", choices=ARMS, default=list(ARMS),
        help="train these arms only (two processes can share the work)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=ROOT / "annotated/data")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bpe_chars"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    wall, cpu = time.perf_counter(), time.process_time()
    args.work.mkdir(parents=True, exist_ok=True)
    tasks, skip = make_tasks(args.vocab_size)
    env = environment("cpu")
    for seed in args.seeds:
        for arm in args.arms:
            done = args.work / f"{arm}-{seed}.json"
            if done.exists():
                continue
            task = tasks[arm]
            t0, c0 = time.perf_counter(), time.process_time()
            model, history, curve = run_one(
                task, skip, args.steps, seed, args.eval_every
            )
            last = curve[-1]
            val_tokens = len(task.splits["val"])
            scored_tokens = val_tokens - (1 if arm == "bpe" else skip)
            result = {
                "arm": arm,
                "seed": seed,
                "vocab_size": task.tokenizer.vocab_size,
                "parameters": count_parameters(model),
                "steps": args.steps,
                "batch_size": BATCH,
                "context_tokens": CONTEXT,
                "train_tokens_seen": args.steps * BATCH * CONTEXT,
                "train_chars_per_token": len(task.split_texts["train"])
                / len(task.splits["train"]),
                "val_chars_scored": last["val_chars"],
                "val_tokens_scored": scored_tokens,
                "val_nll_nats": last["val_nll_nats"],
                "val_loss_per_token": last["val_nll_nats"] / scored_tokens,
                "val_bpc": last["val_bpc"],
                "final_train_loss": history.steps[-1]["loss"],
                "train_seconds": last["train_seconds"],
                "ms_per_step": 1000 * last["train_seconds"] / args.steps,
                "run_wall_s": round(time.perf_counter() - t0, 1),
                "run_cpu_s": round(time.process_time() - c0, 1),
                "curve": curve,
                "environment": env,
            }
            done.write_text(json.dumps(result))
            print(
                f"{arm:>5} seed {seed}: bpc {last['val_bpc']:.4f} "
                f"({result['run_wall_s']:.0f} s)",
                flush=True,
            )
    finished = [
        (args.work / f"{arm}-{seed}.json").exists()
        for seed in args.seeds
        for arm in ARMS
    ]
    if all(finished):
        write_outputs(args, tasks, skip, wall, cpu)
    return 0


def write_outputs(args, tasks, skip, wall, cpu) -> None:
    results = [
        json.loads((args.work / f"{arm}-{seed}.json").read_text())
        for seed in args.seeds
        for arm in ARMS
    ]
    summary = [
        {k: v for k, v in r.items() if k not in ("curve", "environment")}
        for r in results
    ]
    curves = [
        {"arm": r["arm"], "seed": r["seed"], **point}
        for r in results
        for point in r["curve"]
    ]
    write_csv(args.out / "bpe_vs_chars_summary.csv", summary)
    write_csv(args.out / "bpe_vs_chars_curves.csv", curves)
    envs = {json.dumps(r["environment"], sort_keys=True) for r in results}
    provenance = {
        "what": (
            "week 5's model (4 layers, 4 heads, width 128, context 64 "
            "tokens, batch 12) trained on characters and on byte-level BPE "
            f"tokens ({args.vocab_size} ids, trained on the training split), "
            f"{args.steps} steps, seeds {args.seeds}; validation in bits per "
            "character on the same characters for both arms"
        ),
        "command": "OMP_NUM_THREADS=1 ANNOTATED_TINYSHAKESPEARE="
        "../shared/data/tinyshakespeare.txt python scripts/bpe_vs_chars.py "
        + " ".join(argv_of(args)),
        "equal_compute": (
            "same width, depth, heads, context (64 tokens), batch (12), "
            "steps and optimiser: the same tokens through the same blocks; "
            "differs: the embedding table and tied head (V x 128) and the "
            "characters a token covers"
        ),
        "validation": {
            "chars_skipped": skip,
            "rule": "total NLL over the validation text after its first "
            "BPE token, consecutive windows of 64 tokens, / (chars ln 2)",
        },
        "environments": [json.loads(e) for e in sorted(envs)],
        "tree_note": (
            "git_dirty compares tracked files with the commit; this script "
            "and annotated/analysis/tokens.py were new files, not yet in "
            "that commit, when the runs were made"
        ),
        "runs_wall_time_s": round(sum(r["run_wall_s"] for r in results), 1),
        "runs_cpu_time_s": round(sum(r["run_cpu_s"] for r in results), 1),
        "wall_time_s": round(time.perf_counter() - wall, 1),
        "cpu_time_s": round(time.process_time() - cpu, 1),
        "wall_time_note": "the last invocation only; runs_* sum all runs",
        "machine": f"{torch.get_num_threads()} thread(s), CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}",
    }
    (args.out / "bpe_vs_chars_provenance.yaml").write_text(
        yaml.safe_dump(provenance, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )


def argv_of(args) -> list[str]:
    return [
        f"--steps {args.steps}",
        "--seeds " + " ".join(map(str, args.seeds)),
        f"--vocab-size {args.vocab_size}",
        f"--eval-every {args.eval_every}",
    ]


if __name__ == "__main__":
    sys.exit(main())
