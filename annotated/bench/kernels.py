"""How time and memory grow with T for each attention kernel, measured.

Dense attention costs O(T²) time and memory; the kernels of
:mod:`annotated.kernels` promise O(T) memory (block-wise, local, linear) or
O(T) time (linear, local). This module measures, for each kind and length T:

* forward time and forward + backward time: the fastest of ``repeats`` runs
  after one warm-up (on a shared machine the minimum is the least disturbed
  estimate; ``torch.cuda.synchronize`` around each run on a GPU).
  ``timer="wall"`` (default) reads ``time.perf_counter``; ``timer="cpu"``
  reads ``time.process_time``, the CPU seconds of this process, which other
  processes on a busy machine cannot inflate; with one torch thread it equals
  the wall time of an idle machine (CPU only);
* peak memory of the forward pass under ``torch.no_grad`` (so
  saved-for-backward tensors do not count): on CUDA
  ``torch.cuda.max_memory_allocated`` minus what was allocated before; on CPU,
  PyTorch has no peak counter, so we record every allocation and free of the
  CPU allocator with ``torch.profiler(profile_memory=True)`` and take the
  maximum of their running sum. Both count tensor bytes allocated *during* the
  pass (inputs excluded, output included), not process RSS, which is too
  coarse to see a 1 MiB tile.

A (kind, T) whose estimated memory exceeds the budget is skipped and recorded
as such. Results (:mod:`annotated.bench.kernel_results`) go to a CSV, a
Markdown table and a log-log plot whose legend holds each kind's fitted
exponent. Run ``python -m annotated.bench --help``; ``make bench`` writes to
``_build/bench``. Timings are never asserted by tests.

Legend: B batch, H heads, T time, D head dim.
"""

from __future__ import annotations

import torch

from annotated.attention.attend import attend
from annotated.bench.kernel_results import (
    BenchmarkResult,
    fit_exponents,
    write_outputs,
)
from annotated.bench.measure import fastest_seconds, peak_forward_bytes
from annotated.kernels import ATTENTION_KERNELS, AttentionKernel

DEFAULT_LENGTHS = tuple(2**i for i in range(8, 15))  # 256 … 16384
QUICK_LENGTHS = tuple(2**i for i in range(8, 13))  # 256 … 4096
# The readable reference, for the O(T²) wall: "full" is PyTorch's fused
# SDPA, which on a CPU runs a flash-style kernel and never holds the T × T
# scores either.
BENCH_KERNELS = {
    "reference": AttentionKernel(
        attend,
        attend,
        exact=True,
        score_mods=True,
        query_masks=True,
        memory="O(T²)",
        summary="the readable attend (scores, softmax, weights)",
    ),
    **ATTENTION_KERNELS,
}
# Settings for the kernels that need one; block 128 keeps the Python tile
# loop short on a CPU.
KERNEL_PARAMS = {
    "local": {"window": 128},
    "topk": {"top_k": 32},
    "blockwise": {"block_size": 128},
    "linear": {},
    "flex": {},
}
CPU_BUDGET_BYTES = 8 * 2**30


def estimate_forward_bytes(
    kind: str, t: int, *, batch: int, n_heads: int, d_head: int, params=None
) -> int:
    """A rough upper estimate of the forward pass's float32 bytes.

    It is used to skip what cannot fit."""
    params = KERNEL_PARAMS.get(kind, {}) if params is None else params
    bh, f = batch * n_heads, 4
    io = 2 * bh * t * d_head * f  # output + one scaled copy of the inputs
    per_row = {  # float32 elements alive per query row, beyond io
        # scores, masked scores, softmax (+ boolean masks)
        "reference": 3 * t,
        # as the reference, an upper bound: a fused kernel may need far less
        "full": 3 * t,
        "topk": 9 * t // 2,  # as full, plus top-k indices and the keep mask
        # band scores + gathered k, v spans
        "local": 5 * 2 * params.get("window", 128) + 4 * d_head,
        "linear": 4 * params.get("chunk_size", 64)
        + 4 * d_head * d_head // params.get("chunk_size", 64)
        + 6 * d_head,
        # running accumulators; tiles are counted below
        "blockwise": 4 * d_head,
        "flex": 4 * d_head,  # a fused tiled kernel
    }[kind]
    tiles = (
        8 * params.get("block_size", 64) ** 2 * bh * f
        if kind == "blockwise"
        else 0
    )
    return io + bh * t * per_row * f + tiles


def run_benchmark(
    kinds=None,
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
    """Time and peak memory of each attention kind at each length T.

    Optionally write files.

    ``device=None`` uses CUDA when available. The memory budget defaults to
    half the free GPU memory, or 8 GiB on a CPU; a (kind, T) whose
    :func:`estimate_forward_bytes` (×2 with ``backward``, for saved
    activations) exceeds it is recorded as skipped. With ``out_dir``, writes
    ``results.csv``, ``results.md`` and ``scaling.png`` there.
    """
    from tqdm.auto import tqdm

    device = torch.device(
        device
        if device is not None
        else ("cuda" if torch.cuda.is_available() else "cpu")
    )
    kinds = (
        [
            k
            for k, spec in BENCH_KERNELS.items()
            if device.type in spec.devices
        ]
        if kinds is None
        else kinds
    )
    unknown = [k for k in kinds if k not in BENCH_KERNELS]
    if unknown:
        raise ValueError(
            f"unknown attention kinds {unknown}; "
            f"choose from {sorted(BENCH_KERNELS)}"
        )
    if repeats <= 0 or any(int(t) <= 0 for t in lengths):
        raise ValueError(
            "repeats and every length must be positive, "
            f"got repeats={repeats}, lengths={list(lengths)}"
        )
    if timer not in ("wall", "cpu") or (
        timer == "cpu" and device.type != "cpu"
    ):
        raise ValueError(
            "timer must be 'wall', or 'cpu' on a CPU device; "
            f"got timer={timer!r} on {device}"
        )
    if memory_budget_bytes is None:
        memory_budget_bytes = (
            torch.cuda.mem_get_info(device)[0] // 2
            if device.type == "cuda"
            else CPU_BUDGET_BYTES
        )
    gen = torch.Generator().manual_seed(seed)
    rows = []
    bar = tqdm(
        [(k, int(t)) for k in kinds for t in lengths],
        desc="attention benchmark",
        disable=not progress,
    )
    for kind, t in bar:
        bar.set_postfix_str(f"{kind} T={t}")
        kernel, params = BENCH_KERNELS[kind], KERNEL_PARAMS.get(kind, {})
        shape = dict(batch=batch, n_heads=n_heads, d_head=d_head)
        estimate = estimate_forward_bytes(kind, t, **shape, params=params)
        row = dict(
            kind=kind,
            T=t,
            **shape,
            causal=causal,
            device=str(device),
            threads=torch.get_num_threads(),
            timer=timer,
            forward_ms=None,
            forward_backward_ms=None,
            peak_forward_mib=None,
            estimated_mib=round(estimate / 2**20, 2),
        )
        if estimate * (2 if backward else 1) > memory_budget_bytes:
            row["status"] = (
                f"skipped: estimated {estimate / 2**20:.0f} MiB > "
                f"budget {memory_budget_bytes / 2**20:.0f} MiB"
            )
            rows.append(row)
            continue
        # (B, H, T, D)
        q, k, v = (
            torch.randn(batch, n_heads, t, d_head, generator=gen).to(device)
            for _ in range(3)
        )

        def forward(q=q, k=k, v=v, kernel=kernel, params=params):
            with torch.no_grad():
                return kernel.fn(q, k, v, causal=causal, **params)[0]

        row["peak_forward_mib"] = round(
            peak_forward_bytes(forward, device) / 2**20, 3
        )
        row["forward_ms"] = round(
            1e3 * fastest_seconds(forward, repeats, device, timer), 3
        )
        if backward:
            leaves = [x.detach().requires_grad_(True) for x in (q, k, v)]
            grad_out = torch.randn(
                batch, n_heads, t, d_head, generator=gen
            ).to(device)

            def forward_backward(
                leaves=leaves, grad_out=grad_out, kernel=kernel, params=params
            ):
                for x in leaves:
                    x.grad = None
                kernel.fn(*leaves, causal=causal, **params)[0].backward(
                    grad_out
                )

            row["forward_backward_ms"] = round(
                1e3
                * fastest_seconds(forward_backward, repeats, device, timer),
                3,
            )
        row["status"] = "ok"
        rows.append(row)
        del q, k, v
    result = BenchmarkResult(rows, fit_exponents(rows))
    if out_dir is not None:
        result.files = write_outputs(result, out_dir)
    return result
