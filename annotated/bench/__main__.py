"""``python -m annotated.bench``: kernel, encoding and throughput tables.

The kernel benchmark, the encoding memory table and the training throughput
table (see :mod:`annotated.bench`)."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from annotated.bench.encodings import (
    ENCODING_LENGTHS,
    encoding_memory,
    encoding_table,
)
from annotated.bench.kernel_results import BenchmarkResult, markdown_table
from annotated.bench.kernels import (
    BENCH_KERNELS,
    DEFAULT_LENGTHS,
    QUICK_LENGTHS,
    run_benchmark,
)
from annotated.bench.throughput import profile_step, run_throughput
from annotated.bench.throughput_models import THROUGHPUT_SIZES
from annotated.bench.throughput_report import throughput_table


def main(argv=None) -> BenchmarkResult | list[dict] | list[str]:
    """The command line; returns what it measured.

    ``python -m annotated.bench --help`` lists the options."""
    parser = argparse.ArgumentParser(
        prog="python -m annotated.bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--lengths",
        type=int,
        nargs="+",
        help="sequence lengths T (default 256 … 16384)",
    )
    parser.add_argument(
        "--kinds",
        nargs="+",
        choices=list(BENCH_KERNELS),
        default=None,
        help="kernels to time (default: every kernel that runs on the "
        "device)",
    )
    parser.add_argument(
        "--encoding-lengths",
        type=int,
        nargs="+",
        default=list(ENCODING_LENGTHS),
        help="T for the block-wise memory table of RoPE / ALiBi / T5 "
        "(default 1024 … 8192)",
    )
    parser.add_argument(
        "--skip-kernels", action="store_true", help="no kernel timings"
    )
    parser.add_argument(
        "--skip-throughput",
        action="store_true",
        help="no training-throughput table",
    )
    parser.add_argument(
        "--throughput-only",
        action="store_true",
        help="only the training-throughput table "
        "(library decoder vs nn.TransformerEncoderLayer)",
    )
    parser.add_argument(
        "--throughput-repeats",
        type=int,
        default=7,
        help="timed runs per model in the throughput table; "
        "the median is reported (default 7)",
    )
    parser.add_argument(
        "--profile",
        choices=["library", "reference"],
        default=None,
        help="print torch.profiler's operator table of that model's "
        "training step at each throughput size, and stop",
    )
    parser.add_argument(
        "--out",
        default="_build/bench",
        help="folder for results.csv, results.md, scaling.png",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="T = 256 … 4096 and two timed runs each",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed runs per point (default 3, 2 with --quick)",
    )
    parser.add_argument(
        "--no-backward",
        action="store_true",
        help="skip the forward+backward timing",
    )
    parser.add_argument(
        "--device",
        default=None,
        help="cpu or cuda (default: cuda when available)",
    )
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--d-head", type=int, default=64)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (1 is steadiest on a busy machine)",
    )
    parser.add_argument(
        "--timer",
        choices=["wall", "cpu"],
        default="wall",
        help="cpu: process CPU time (busy CPU hosts)",
    )
    parser.add_argument(
        "--budget-mib",
        type=float,
        default=None,
        help="skip points estimated above this memory",
    )
    args = parser.parse_args(argv)
    lengths = args.lengths or (
        QUICK_LENGTHS if args.quick else DEFAULT_LENGTHS
    )
    repeats = args.repeats or (2 if args.quick else 3)
    if args.threads:
        torch.set_num_threads(args.threads)
    budget = None if args.budget_mib is None else int(args.budget_mib * 2**20)
    if args.profile:
        torch.set_num_threads(1)
        tables = [
            profile_step(size, args.profile) for size in THROUGHPUT_SIZES
        ]
        for size, table in zip(THROUGHPUT_SIZES, tables, strict=True):
            print(
                f"{args.profile}, {size.name}: "
                f"operators by self CPU time over 3 steps\n{table}"
            )
        return tables
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.skip_throughput:
        # One torch thread (set inside run_throughput) whatever --threads
        # says: tokens/s of one core.
        steps = run_throughput(
            THROUGHPUT_SIZES,
            repeats=args.throughput_repeats,
            timer=args.timer,
            out_dir=out,
        )
        print(
            "Training throughput, one step "
            "(forward, loss, backward, AdamW):\n" + throughput_table(steps)
        )
        if args.throughput_only:
            return steps
    rows = encoding_memory(
        lengths=args.encoding_lengths, device=args.device or "cpu"
    )
    (out / "encodings.md").write_text(encoding_table(rows))
    print(
        "Peak forward memory of block-wise attention (H=4, D=16), "
        "MiB (× RoPE):\n" + encoding_table(rows)
    )
    if args.skip_kernels:
        return rows
    result = run_benchmark(
        args.kinds,
        lengths,
        d_head=args.d_head,
        n_heads=args.heads,
        batch=args.batch,
        backward=not args.no_backward,
        repeats=repeats,
        device=args.device,
        out_dir=args.out,
        memory_budget_bytes=budget,
        timer=args.timer,
    )
    print(markdown_table(result))
    print("wrote " + ", ".join(str(p) for p in result.files.values()))
    return result


if __name__ == "__main__":
    main()
