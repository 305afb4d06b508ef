"""Measuring cost: peak memory, the fastest run, a fitted exponent.

Peak memory of a call (CUDA counters, or the CPU allocator's events through
the profiler), the fastest of several timed runs, and the exponent of a power
law fitted to them."""

from __future__ import annotations

import contextlib
import math
import os
import time

import numpy as np
import torch


@contextlib.contextmanager
def _native_stderr_silenced():
    """Keep the CPU profiler's C++ start/stop lines off the progress bar."""
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
    """Peak bytes allocated while ``fn()`` runs, above those before it.

    See the module docstring for how each device counts them."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    prof = torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True
    )
    with _native_stderr_silenced():
        prof.__enter__()
    try:
        fn()
    finally:
        with _native_stderr_silenced():
            prof.__exit__(None, None, None)
    # Allocator events: nbytes > 0 is an allocation, < 0 a free, in the order
    # they happened.
    events = sorted(
        (e.start_ns(), e.nbytes())
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]"
    )
    running = peak = 0
    for _, nbytes in events:
        running += nbytes
        peak = max(peak, running)
    return peak


def fastest_seconds(
    fn, repeats: int, device: torch.device, timer: str = "wall"
) -> float:
    sync = (
        torch.cuda.synchronize if device.type == "cuda" else (lambda *_: None)
    )
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
    pairs = [
        (t, v)
        for t, v in zip(lengths, values, strict=True)
        if v is not None and v > 0 and math.isfinite(v)
    ]
    if len(pairs) < 2:
        return float("nan")
    x, y = np.log([p[0] for p in pairs]), np.log([p[1] for p in pairs])
    return float(np.polyfit(x, y, 1)[0])
