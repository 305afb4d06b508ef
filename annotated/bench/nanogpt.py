"""``python -m annotated.bench.nanogpt``: the ``train`` command against
nanoGPT's ``train.py``, whole process against whole process.

nanoGPT (https://github.com/karpathy/nanoGPT) trains a 4-layer, 128-wide
character model on Tiny Shakespeare with its README's CPU recipe
(:data:`NANOGPT_RECIPE`); :data:`LIBRARY_RECIPE` is the same run for
``python -m annotated train``. Both run as subprocesses with one torch
thread (``OMP_NUM_THREADS=1``), taking turns, so a busy machine slows both
alike. Wall time: ``time.perf_counter`` around the whole process; CPU time:
``resource.getrusage(RUSAGE_CHILDREN)``; validation loss: nanoGPT's last
``step N: … val loss X`` line, the last row of the library's ``eval.csv``.
``NANOGPT_DIR`` names a nanoGPT checkout; both train on its input.txt (the
library's text, :mod:`annotated.tasks.corpus`, when missing). Measured,
never asserted by a test; ``make bench`` runs it when NANOGPT_DIR is set.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from annotated.tasks import corpus

CONTEXT = 64  # block_size, the library's --train-length
EVAL_EVERY, WARMUP = 250, 100  # warm-up: half the steps, at most 100
# nanoGPT's README, "I only have a macbook": its CPU recipe
NANOGPT_RECIPE = (
    "config/train_shakespeare_char.py --device=cpu --compile=False "
    f"--eval_iters=20 --log_interval=1 --block_size={CONTEXT} "
    "--batch_size=12 --n_layer=4 --n_head=4 --n_embd=128 --dropout=0.0"
).split()
# the same run for the library (nanoGPT's bias=False covers LayerNorms too;
# its evaluation reads blocks of 64 characters only)
LIBRARY_RECIPE = (
    "--task=tiny_shakespeare --name=nanogpt_recipe --positional=learned "
    f"--train-length={CONTEXT} --eval-lengths={CONTEXT} --n-layers=4 "
    "--n-heads=4 --d-model=128 --dropout=0 --no-bias --no-norm-bias "
    "--batch-size=12 --lr=1e-3 --min-lr-ratio=0.1 --weight-decay=0.1 "
    f"--betas 0.9 0.99 --grad-clip=1.0 --eval-every={EVAL_EVERY} "
    "--eval-batches=20 --device=cpu --no-progress"
).split()
NANOGPT_FILES = (
    "train.py model.py configurator.py config/train_shakespeare_char.py "
    "data/shakespeare_char/prepare.py"
).split()
DATA_FILES = ("train.bin", "val.bin", "meta.pkl")
HOW_TO_GET = (
    "get a nanoGPT checkout with `git clone "
    "https://github.com/karpathy/nanoGPT` and "
    "`export NANOGPT_DIR=$PWD/nanoGPT`"
)
STEP_LINE = re.compile(r"^step (\d+): train loss \S+, val loss (\S+)$", re.M)


class SetupError(ValueError):
    """What stops the benchmark before anything is timed (exit 2)."""


def nanogpt_checkout(value: str | None) -> Path:
    """The checkout ``NANOGPT_DIR`` names, checked for the files used."""
    if not value:
        raise SetupError(f"NANOGPT_DIR is not set: {HOW_TO_GET}")
    path = Path(value).expanduser()
    missing = [f for f in NANOGPT_FILES if not (path / f).is_file()]
    if missing:
        raise SetupError(
            f"NANOGPT_DIR={value} is not a nanoGPT checkout (no "
            f"{', '.join(missing)}): {HOW_TO_GET}"
        )
    return path.resolve()


def prepare_data(checkout: Path) -> Path:
    """nanoGPT's shakespeare_char data, made by its prepare.py when they are
    missing. Returns its input.txt, the text both sides train on (the
    library's, copied there when it is missing)."""
    folder = checkout / "data" / "shakespeare_char"
    text = folder / "input.txt"
    if not text.is_file():
        shutil.copyfile(corpus.tiny_shakespeare_path(), text)
    if all((folder / f).is_file() for f in DATA_FILES):
        return text
    command = [sys.executable, "prepare.py"]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    if done.returncode != 0:
        raise SetupError(
            f"{folder}/prepare.py failed (it needs numpy and requests):\n"
            + done.stderr[-2000:]
        )
    return text


def nanogpt_command(iters: int, out_dir: Path) -> list[str]:
    """nanoGPT's recipe for ``iters`` iterations (run in its checkout)."""
    return [sys.executable, "train.py", *NANOGPT_RECIPE] + [
        f"--max_iters={iters}",
        f"--lr_decay_iters={iters}",
        f"--warmup_iters={min(WARMUP, iters // 2)}",
        f"--out_dir={out_dir}",
    ]


def library_command(iters: int, out_dir: Path) -> list[str]:
    """The library's ``train`` command on the same recipe."""
    return [sys.executable, "-m", "annotated", "train", *LIBRARY_RECIPE] + [
        f"--steps={iters}",
        f"--warmup-steps={min(WARMUP, iters // 2)}",
        f"--out={out_dir}",
    ]


def nanogpt_val_loss(output: str) -> tuple[int, float] | None:
    """(step, val loss) of the last ``step N: train loss X, val loss Y``
    line nanoGPT printed, or None."""
    found = STEP_LINE.findall(output)
    return (int(found[-1][0]), float(found[-1][1])) if found else None


def library_val_loss(eval_csv: str, length: int = CONTEXT):
    """(step, loss) of the last evaluation at ``length`` in the text of a
    run's eval.csv (a tuple), or None."""
    rows = list(csv.DictReader(io.StringIO(eval_csv)))
    rows = [r for r in rows if int(r["length"]) == length]
    if not rows:
        return None
    last = max(rows, key=lambda r: int(r["step"]))
    return int(last["step"]), float(last["loss"])


def timed(command: list[str], cwd: Path, env: dict, log: Path) -> dict:
    """Run ``command`` to the end: wall and CPU seconds, exit status."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log, "w") as out:
        start = time.perf_counter()
        code = subprocess.call(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if code != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(command)} exited {code}:\n{tail}")
    return {"wall_s": wall, "cpu_s": cpu}


def run_pair(checkout: Path, iters: int, env: dict, order: list[str]):
    """Both whole processes once, in ``order``: {side: measures}."""
    found = {}
    with tempfile.TemporaryDirectory(prefix="nanogpt_ab_") as tmp:
        tmp = Path(tmp)
        for side in order:
            out, log = tmp / side, tmp / f"{side}.log"
            if side == "nanogpt":
                r = timed(nanogpt_command(iters, out), checkout, env, log)
                r["val"] = nanogpt_val_loss(log.read_text())
            else:
                r = timed(library_command(iters, out), tmp, env, log)
                evals = [p.read_text() for p in out.glob("*/eval.csv")]
                r["val"] = library_val_loss(evals[0]) if evals else None
            found[side] = r
    return found


def ab_rows(checkout: Path, iters_list, repeats: int, text: Path) -> list:
    """One row per iteration count: median wall and CPU seconds of each
    side over ``repeats`` interleaved runs, their ratio, the val losses.
    Both runs: one thread, the same ``text``."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["ANNOTATED_TINYSHAKESPEARE"], rows = str(text), []
    for iters in iters_list:
        runs = []
        for i in range(repeats):
            order = ["nanogpt", "library"][:: 1 if i % 2 == 0 else -1]
            print(f"{iters} iterations, run {i + 1}/{repeats}", flush=True)
            runs.append(run_pair(checkout, iters, env, order))
        row = {"iterations": iters, "repeats": repeats}
        for side in ("nanogpt", "library"):
            for key in ("wall_s", "cpu_s"):
                values = [r[side][key] for r in runs]
                row[f"{side}_{key}"] = statistics.median(values)
            step, loss = runs[-1][side]["val"] or (None, None)
            row[f"{side}_val_step"], row[f"{side}_val_loss"] = step, loss
        row["wall_ratio"] = row["library_wall_s"] / row["nanogpt_wall_s"]
        row["cpu_ratio"] = row["library_cpu_s"] / row["nanogpt_cpu_s"]
        rows.append(row)
    return rows


COLUMNS = {  # header -> (row key, format)
    "iterations": ("iterations", "d"),
    "nanoGPT wall s": ("nanogpt_wall_s", ".1f"),
    "library wall s": ("library_wall_s", ".1f"),
    "library / nanoGPT": ("wall_ratio", ".3f"),
    "nanoGPT CPU s": ("nanogpt_cpu_s", ".1f"),
    "library CPU s": ("library_cpu_s", ".1f"),
    "CPU library / nanoGPT": ("cpu_ratio", ".3f"),
}


def ab_table(rows: list[dict]) -> str:
    """Markdown: per iteration count, wall and CPU seconds of each side,
    the library / nanoGPT ratios and the final validation losses."""
    head = [*COLUMNS, "nanoGPT val loss", "library val loss"]
    lines = ["| " + " | ".join(head) + " |", "|---:" * len(head) + "|"]
    for r in rows:
        cells = [format(r[k], f) for k, f in COLUMNS.values()]
        for s in ("nanogpt", "library"):
            loss, step = r[f"{s}_val_loss"], r[f"{s}_val_step"]
            cells.append("—" if loss is None else f"{loss:.4f} (step {step})")
        lines.append("| " + " | ".join(cells) + " |")
    repeats = rows[0]["repeats"] if rows else 0
    lines.append(
        f"\nWhole processes, median of {repeats} interleaved run(s), one "
        f"torch thread, torch {version('torch')}; below 1: the library is "
        "faster. nanoGPT trains iterations + 1 steps and evaluates train "
        f"and val at step 0 and every {EVAL_EVERY}; the library every "
        f"{EVAL_EVERY} and at the last step, then writes its report."
    )
    return "\n".join(lines) + "\n"


def write_results(rows: list[dict], out: Path) -> dict[str, Path]:
    """nanogpt_ab.csv and nanogpt_ab.md in ``out``; their paths."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"csv": out / "nanogpt_ab.csv", "md": out / "nanogpt_ab.md"}
    with open(files["csv"], "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
    files["md"].write_text(ab_table(rows))
    return files


_HELP = {
    "iters": "iteration counts: nanoGPT's max_iters, the library's --steps "
    "(default: 300 2000)",
    "repeats": "runs of each side per count, taking turns; the medians are "
    "reported (default: 1)",
    "out": "folder for nanogpt_ab.md and nanogpt_ab.csv "
    "(default: _build/bench)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m annotated.bench.nanogpt",
        description=__doc__.split("\n\n")[0].replace("``", ""),
        epilog="Runs nanoGPT's train.py on its README's CPU recipe and "
        "python -m annotated train on the same recipe, whole processes "
        "taking turns, one torch thread each; prints their wall and CPU "
        "seconds, the ratios and each one's final validation loss "
        f"(2,000 iterations take minutes each). NANOGPT_DIR: {HOW_TO_GET}.",
    )
    add, h = parser.add_argument, _HELP
    add("--iters", type=int, nargs="+", default=[300, 2000], help=h["iters"])
    add("--repeats", type=int, default=1, help=h["repeats"])
    add("--out", default="_build/bench", help=h["out"])
    return parser


def main(argv=None) -> int:
    """The command line; returns the exit status (2: no usable checkout
    or data, 1: a run failed)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if min(args.iters) < 1 or args.repeats < 1:
        parser.error("--iters and --repeats must be at least 1")
    try:
        checkout = nanogpt_checkout(os.environ.get("NANOGPT_DIR"))
        text = prepare_data(checkout)
    except (SetupError, OSError, corpus.ChecksumMismatchError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        rows = ab_rows(checkout, args.iters, args.repeats, text)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    files = write_results(rows, Path(args.out))
    print("The train command against nanoGPT's train.py, whole process:")
    print(ab_table(rows))
    print("wrote " + ", ".join(str(p) for p in files.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
