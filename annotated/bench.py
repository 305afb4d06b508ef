"""How time and memory grow with T for each attention kernel, measured.

Dense attention costs O(T²) time and memory; the kernels of :mod:`annotated.kernels`
promise O(T) memory (block-wise, local, linear) or O(T) time (linear, local). This module
measures, for each kind and length T:

* forward time and forward + backward time: the fastest of ``repeats`` runs after one
  warm-up (on a shared machine the minimum is the least disturbed estimate;
  ``torch.cuda.synchronize`` around each run on a GPU). ``timer="wall"`` (default) reads
  ``time.perf_counter``; ``timer="cpu"`` reads ``time.process_time``, the CPU seconds of
  this process, which other processes on a busy machine cannot inflate; with one torch
  thread it equals the wall time of an idle machine (CPU only);
* peak memory of the forward pass under ``torch.no_grad`` (so saved-for-backward tensors
  do not count): on CUDA ``torch.cuda.max_memory_allocated`` minus what was allocated
  before; on CPU, PyTorch has no peak counter, so we record every allocation and free of
  the CPU allocator with ``torch.profiler(profile_memory=True)`` and take the maximum of
  their running sum. Both count tensor bytes allocated *during* the pass (inputs excluded,
  output included), not process RSS, which is too coarse to see a 1 MiB tile.

A (kind, T) whose estimated memory exceeds the budget is skipped and recorded as such.
Results go to a CSV, a Markdown table and a log-log plot whose legend holds each kind's
fitted exponent (least-squares slope of log cost against log T): ≈ 2 is the O(T²) wall,
≈ 1 linear. A kernel with a fixed working set (block-wise tiles) plus an O(T) output has
a fitted memory slope below 1 at short T that tends to 1 as T grows. Run
``python -m annotated.bench --help``; ``make bench`` writes to ``_build/bench``. Timings
are never asserted by tests.

Legend: B batch, H heads, T time, D head dim.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from annotated.kernels import ATTENTION_KERNELS

DEFAULT_LENGTHS = tuple(2**i for i in range(8, 15))  # 256 … 16384
QUICK_LENGTHS = tuple(2**i for i in range(8, 13))  # 256 … 4096
# Settings for the kernels that need one; block 128 keeps the Python tile loop short on a CPU.
KERNEL_PARAMS = {"local": {"window": 128}, "topk": {"top_k": 32}, "blockwise": {"block_size": 128}, "linear": {}}
METRICS = {"forward_ms": "forward time (ms)", "forward_backward_ms": "forward + backward time (ms)",
           "peak_forward_mib": "peak forward memory (MiB)"}  # fmt: skip
CPU_BUDGET_BYTES = 8 * 2**30


@dataclass
class BenchmarkResult:
    """Rows (one per kind and T), fitted exponents per kind and metric, and the files written."""

    rows: list[dict]
    exponents: dict[str, dict[str, float]]
    files: dict[str, Path] = field(default_factory=dict)


def estimate_forward_bytes(kind: str, t: int, *, batch: int, n_heads: int, d_head: int, params=None) -> int:
    """A rough upper estimate of the forward pass's float32 bytes, used to skip what cannot fit."""
    params = KERNEL_PARAMS.get(kind, {}) if params is None else params
    bh, f = batch * n_heads, 4
    io = 2 * bh * t * d_head * f  # output + one scaled copy of the inputs
    per_row = {  # float32 elements alive per query row, beyond io
        "full": 3 * t,  # scores, masked scores, softmax (+ boolean masks)
        "topk": 9 * t // 2,  # as full, plus top-k indices and the keep mask
        "local": 5 * 2 * params.get("window", 128) + 4 * d_head,  # band scores + gathered k, v spans
        "linear": 4 * params.get("chunk_size", 64) + 4 * d_head * d_head // params.get("chunk_size", 64) + 6 * d_head,
        "blockwise": 4 * d_head,  # running accumulators; tiles are counted below
    }[kind]
    tiles = 8 * params.get("block_size", 64) ** 2 * bh * f if kind == "blockwise" else 0
    return io + bh * t * per_row * f + tiles


@contextlib.contextmanager
def _native_stderr_silenced():
    """The CPU profiler prints start/stop lines from C++; keep them out of the progress bar."""
    try:
        saved = os.dup(2)
    except OSError:  # no real stderr (some notebook front ends)
        yield
        return
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def peak_forward_bytes(fn, device: torch.device | str = "cpu") -> int:
    """Peak bytes allocated while ``fn()`` runs, above what was allocated before it (see module doc)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True)
    with _native_stderr_silenced():
        prof.__enter__()
    try:
        fn()
    finally:
        with _native_stderr_silenced():
            prof.__exit__(None, None, None)
    # Allocator events: nbytes > 0 is an allocation, < 0 a free, in the order they happened.
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    running = peak = 0
    for _, nbytes in events:
        running += nbytes
        peak = max(peak, running)
    return peak


def _fastest_seconds(fn, repeats: int, device: torch.device, timer: str = "wall") -> float:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda *_: None)
    clock = time.process_time if timer == "cpu" else time.perf_counter
    fn()  # warm-up: first-call allocations, kernel selection
    times = []
    for _ in range(repeats):
        sync(device)
        start = clock()
        fn()
        sync(device)
        times.append(clock() - start)
    return min(times)


def fit_exponent(lengths, values) -> float:
    """Least-squares slope of log(value) against log(T): cost ∝ T^slope."""
    pairs = [(t, v) for t, v in zip(lengths, values, strict=True) if v is not None and v > 0 and math.isfinite(v)]
    if len(pairs) < 2:
        return float("nan")
    x, y = np.log([p[0] for p in pairs]), np.log([p[1] for p in pairs])
    return float(np.polyfit(x, y, 1)[0])


def fit_exponents(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Fitted exponent per kind and metric over the measured (not skipped) rows."""
    out = {}
    for kind in dict.fromkeys(r["kind"] for r in rows):
        done = [r for r in rows if r["kind"] == kind and r["status"] == "ok"]
        out[kind] = {m: fit_exponent([r["T"] for r in done], [r[m] for r in done]) for m in METRICS}
    return out


def run_benchmark(
    kinds=tuple(ATTENTION_KERNELS),
    lengths=DEFAULT_LENGTHS,
    *,
    d_head: int = 64,
    n_heads: int = 4,
    batch: int = 1,
    causal: bool = True,
    backward: bool = True,
    repeats: int = 3,
    device=None,
    out_dir=None,
    memory_budget_bytes: int | None = None,
    seed: int = 0,
    timer: str = "wall",
    progress: bool = True,
) -> BenchmarkResult:
    """Time and peak memory of each attention kind at each length T; optionally write files.

    ``device=None`` uses CUDA when available. The memory budget defaults to half the free
    GPU memory, or 8 GiB on a CPU; a (kind, T) whose :func:`estimate_forward_bytes` (×2
    with ``backward``, for saved activations) exceeds it is recorded as skipped. With
    ``out_dir``, writes ``results.csv``, ``results.md`` and ``scaling.png`` there.
    """
    from tqdm.auto import tqdm

    unknown = [k for k in kinds if k not in ATTENTION_KERNELS]
    if unknown:
        raise ValueError(f"unknown attention kinds {unknown}; choose from {sorted(ATTENTION_KERNELS)}")
    if repeats <= 0 or any(int(t) <= 0 for t in lengths):
        raise ValueError(f"repeats and every length must be positive, got repeats={repeats}, lengths={list(lengths)}")
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    if timer not in ("wall", "cpu") or (timer == "cpu" and device.type != "cpu"):
        raise ValueError(f"timer must be 'wall', or 'cpu' on a CPU device; got timer={timer!r} on {device}")
    if memory_budget_bytes is None:
        memory_budget_bytes = torch.cuda.mem_get_info(device)[0] // 2 if device.type == "cuda" else CPU_BUDGET_BYTES
    gen = torch.Generator().manual_seed(seed)
    rows = []
    bar = tqdm([(k, int(t)) for k in kinds for t in lengths], desc="attention benchmark", disable=not progress)
    for kind, t in bar:
        bar.set_postfix_str(f"{kind} T={t}")
        kernel, params = ATTENTION_KERNELS[kind], KERNEL_PARAMS.get(kind, {})
        shape = dict(batch=batch, n_heads=n_heads, d_head=d_head)
        estimate = estimate_forward_bytes(kind, t, **shape, params=params)
        row = dict(kind=kind, T=t, **shape, causal=causal, device=str(device), threads=torch.get_num_threads(),
                   timer=timer, forward_ms=None, forward_backward_ms=None, peak_forward_mib=None,
                   estimated_mib=round(estimate / 2**20, 2))  # fmt: skip
        if estimate * (2 if backward else 1) > memory_budget_bytes:
            row["status"] = (
                f"skipped: estimated {estimate / 2**20:.0f} MiB > budget {memory_budget_bytes / 2**20:.0f} MiB"
            )
            rows.append(row)
            continue
        q, k, v = (torch.randn(batch, n_heads, t, d_head, generator=gen).to(device) for _ in range(3))  # (B, H, T, D)

        def forward(q=q, k=k, v=v, kernel=kernel, params=params):
            with torch.no_grad():
                return kernel.fn(q, k, v, causal=causal, **params)[0]

        row["peak_forward_mib"] = round(peak_forward_bytes(forward, device) / 2**20, 3)
        row["forward_ms"] = round(1e3 * _fastest_seconds(forward, repeats, device, timer), 3)
        if backward:
            leaves = [x.detach().requires_grad_(True) for x in (q, k, v)]
            grad_out = torch.randn(batch, n_heads, t, d_head, generator=gen).to(device)

            def forward_backward(leaves=leaves, grad_out=grad_out, kernel=kernel, params=params):
                for x in leaves:
                    x.grad = None
                kernel.fn(*leaves, causal=causal, **params)[0].backward(grad_out)

            row["forward_backward_ms"] = round(1e3 * _fastest_seconds(forward_backward, repeats, device, timer), 3)
        row["status"] = "ok"
        rows.append(row)
        del q, k, v
    result = BenchmarkResult(rows, fit_exponents(rows))
    if out_dir is not None:
        result.files = write_outputs(result, out_dir)
    return result


def markdown_table(result: BenchmarkResult) -> str:
    """The rows and the fitted exponents as two Markdown tables."""
    cell = lambda x: "—" if x is None else f"{x:g}" if isinstance(x, float) else str(x)  # noqa: E731
    lines = ["| kind | T | forward ms | fwd+bwd ms | peak fwd MiB | status |", "|---|---:|---:|---:|---:|---|"]
    for r in result.rows:
        values = (r["kind"], r["T"], r["forward_ms"], r["forward_backward_ms"], r["peak_forward_mib"], r["status"])
        lines.append("| " + " | ".join(cell(x) for x in values) + " |")
    lines += ["", "Fitted exponents (cost ∝ T^slope over the measured T):", ""]
    lines += ["| kind | " + " | ".join(METRICS.values()) + " |", "|---|" + "---:|" * len(METRICS)]
    for kind, fits in result.exponents.items():
        lines.append(f"| {kind} | " + " | ".join("—" if math.isnan(s) else f"{s:.2f}" for s in fits.values()) + " |")
    return "\n".join(lines) + "\n"


def plot_scaling(result: BenchmarkResult, path=None):
    """Log-log panels of each metric against T, one line per kind, fitted slope in the legend.

    Built on a bare ``matplotlib.figure.Figure`` (Agg canvas, no pyplot): saving needs no
    display and never switches a notebook's backend; a notebook shows the returned figure.
    """
    import matplotlib.ticker
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5 * len(METRICS), 4), layout="constrained")
    axes = fig.subplots(1, len(METRICS))
    for ax, (metric, label) in zip(axes, METRICS.items(), strict=True):
        for kind, fits in result.exponents.items():
            done = [r for r in result.rows if r["kind"] == kind and r["status"] == "ok" and r[metric] is not None]
            if done:
                slope = fits[metric]
                ax.loglog([r["T"] for r in done], [r[metric] for r in done], "o-", label=f"{kind} (slope {slope:.2f})")
        lengths = sorted({r["T"] for r in result.rows})
        ax.set_xscale("log", base=2)
        ax.set_xticks(lengths, [str(t) for t in lengths], rotation=45 if len(lengths) > 5 else 0)
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set(xlabel="sequence length T", ylabel=label, title=label)
        ax.grid(True, which="both", alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def write_outputs(result: BenchmarkResult, out_dir) -> dict[str, Path]:
    """Write ``results.csv``, ``results.md`` and ``scaling.png`` into ``out_dir``; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"csv": out_dir / "results.csv", "markdown": out_dir / "results.md", "plot": out_dir / "scaling.png"}
    with open(files["csv"], "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(result.rows[0]))
        writer.writeheader()
        writer.writerows(result.rows)
    files["markdown"].write_text(markdown_table(result))
    plot_scaling(result, files["plot"])
    return files


def main(argv=None) -> BenchmarkResult:
    """Command line: ``python -m annotated.bench [--quick] [--lengths ...] [--kinds ...] [--out DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m annotated.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", help="sequence lengths T (default 256 … 16384)")
    parser.add_argument("--kinds", nargs="+", choices=list(ATTENTION_KERNELS), default=list(ATTENTION_KERNELS))
    parser.add_argument("--out", default="_build/bench", help="folder for results.csv, results.md, scaling.png")
    parser.add_argument("--quick", action="store_true", help="T = 256 … 4096 and two timed runs each")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per point (default 3, 2 with --quick)")
    parser.add_argument("--no-backward", action="store_true", help="skip the forward+backward timing")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--d-head", type=int, default=64)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (1 is steadiest on a busy machine)"
    )
    parser.add_argument(
        "--timer", choices=["wall", "cpu"], default="wall", help="cpu: process CPU time (busy CPU hosts)"
    )
    parser.add_argument("--budget-mib", type=float, default=None, help="skip points estimated above this memory")
    args = parser.parse_args(argv)
    lengths = args.lengths or (QUICK_LENGTHS if args.quick else DEFAULT_LENGTHS)
    repeats = args.repeats or (2 if args.quick else 3)
    if args.threads:
        torch.set_num_threads(args.threads)
    budget = None if args.budget_mib is None else int(args.budget_mib * 2**20)
    result = run_benchmark(
        args.kinds, lengths, d_head=args.d_head, n_heads=args.heads, batch=args.batch, backward=not args.no_backward,
        repeats=repeats, device=args.device, out_dir=args.out, memory_budget_bytes=budget, timer=args.timer,
    )  # fmt: skip
    print(markdown_table(result))
    print("wrote " + ", ".join(str(p) for p in result.files.values()))
    return result


if __name__ == "__main__":
    main()
