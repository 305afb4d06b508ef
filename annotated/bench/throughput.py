"""Training throughput in tokens per second: the library against PyTorch.

The library's decoder against the same network built from PyTorch's own
layers.

One training step — forward, next-token cross-entropy, backward, AdamW step —
of the library's decoder-only LM is timed against :class:`ReferenceDecoder`,
the same network built from ``torch.nn.TransformerEncoderLayer``
(:mod:`annotated.bench.throughput_models`), at each size of
:data:`THROUGHPUT_SIZES`. Both get the same optimiser,
``torch.optim.AdamW(model.parameters())`` (the library's own decay groups
cannot read ``nn.MultiheadAttention``'s bare ``in_proj_weight``). Beside the
bare step, the library's whole loop :func:`annotated.training.loop.train` is
timed per step (the time between its per-step callbacks): data,
learning-rate schedule, gradient norms, clipping and the divergence guard on
top of the step, as the loop is when the benchmark runs.

Timing: one torch thread; ``warmup`` steps before each timed run are excluded;
the library, the reference and the loop take turns, repeat after repeat, so a
busy machine slows all alike; each number is the median over ``repeats`` runs
of ``steps`` steps. ``timer="wall"`` reads ``time.perf_counter``, ``"cpu"``
the process's CPU time (which other processes cannot inflate). Measured, never
asserted by a test; :mod:`annotated.bench.throughput_report` writes the table.

Legend: B batch, T context, C width (d_model), V vocabulary, L layers.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from annotated.bench.throughput_models import (
    POSITIONS,
    THROUGHPUT_SIZES,
    ReferenceDecoder,
    ThroughputSize,
    copy_library_weights,
    library_decoder,
)
from annotated.bench.throughput_report import write_throughput
from annotated.models.transformer import DecoderOnly

TIMERS = {"wall": time.perf_counter, "cpu": time.process_time}


def training_step(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    lr: float = 1e-3,
):
    """A function running one full training step on the fixed batch.

    Forward, cross-entropy, backward, AdamW."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()

    def step() -> None:
        out = model(inputs)
        # (B, T, V); the library returns a ModelOutput
        logits = getattr(out, "logits", out)
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def synthetic_text(
    size: ThroughputSize, n_chars: int = 20_000, seed: int = 0
) -> str:
    """Random text over ``size.vocab_size`` printable characters.

    A step's cost does not depend on the text."""
    alphabet = "".join(chr(c) for c in range(33, 33 + size.vocab_size))
    ids = torch.randint(
        0,
        len(alphabet),
        (n_chars,),
        generator=torch.Generator().manual_seed(seed),
    )
    # every character at least once
    return alphabet + "".join(alphabet[i] for i in ids.tolist())


def loop_runner(
    size: ThroughputSize,
    model: DecoderOnly,
    *,
    warmup: int,
    steps: int,
    clock,
):
    """A function timing one step of :func:`annotated.training.loop.train`.

    It runs ``warmup + steps`` steps and returns the mean clock time between
    the per-step callbacks of the last ``steps`` steps."""
    from annotated.tasks import TextDataset
    from annotated.training.config import TrainConfig
    from annotated.training.loop import train

    task = TextDataset(synthetic_text(size))
    config = TrainConfig(
        steps=warmup + steps,
        batch_size=size.batch,
        warmup_steps=0,
        log_every=1,
        eval_batches=1,
        device="cpu",
    )

    def run() -> float:
        ticks = []
        train(
            model,
            task,
            train_length=size.context,
            config=config,
            callback=lambda kind, _row: (
                ticks.append(clock()) if kind == "step" else None
            ),
        )
        return (ticks[-1] - ticks[-1 - steps]) / steps

    return run


def step_functions(
    size: ThroughputSize, positional: str = "learned", seed: int = 0
) -> tuple[DecoderOnly, dict]:
    """The library's decoder, and a training step of it and of the reference.

    The decoder is seeded; ``{"library": step, "reference": step}`` run on one
    random batch, the reference holding the library's weights."""
    g = torch.Generator().manual_seed(seed)
    inputs, targets = (
        torch.randint(
            0, size.vocab_size, (size.batch, size.context), generator=g
        )
        for _ in range(2)
    )
    torch.manual_seed(seed)
    library = library_decoder(size, positional)
    reference = copy_library_weights(
        ReferenceDecoder(size, positions=POSITIONS[positional]), library
    )
    return library, {
        "library": training_step(library, inputs, targets),
        "reference": training_step(reference, inputs, targets),
    }


def profile_step(
    size: ThroughputSize,
    model: str = "library",
    *,
    steps: int = 3,
    row_limit: int = 20,
) -> str:
    """Where a training step's time goes: ``torch.profiler``'s operators.

    By self CPU time over ``steps`` training steps (after two warm-up steps)
    of the ``"library"`` or ``"reference"`` model."""
    step = step_functions(size)[1][model]
    for _ in range(2):
        step()
    with torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU]
    ) as prof:
        for _ in range(steps):
            step()
    return prof.key_averages().table(
        sort_by="self_cpu_time_total", row_limit=row_limit
    )


def measure_size(
    size: ThroughputSize,
    *,
    repeats: int = 7,
    steps: int = 5,
    warmup: int = 2,
    timer: str = "wall",
    positional: str = "learned",
    loop: bool = True,
    seed: int = 0,
) -> dict:
    """Seconds per step of the library, the reference and ``train``.

    One table row; ``train`` only with ``loop``."""
    if timer not in TIMERS:
        raise ValueError(
            f"timer must be one of {sorted(TIMERS)}, got {timer!r}"
        )
    if repeats < 1 or steps < 1 or warmup < 0:
        raise ValueError(
            "repeats and steps must be ≥ 1 and warmup ≥ 0, "
            f"got {repeats}, {steps}, {warmup}"
        )
    clock = TIMERS[timer]
    library, runs = step_functions(size, positional, seed)

    def timed(step):
        def run() -> float:
            for _ in range(warmup):
                step()
            start = clock()
            for _ in range(steps):
                step()
            return (clock() - start) / steps

        return run

    runs = {name: timed(step) for name, step in runs.items()}
    if loop:
        runs["train_loop"] = loop_runner(
            size,
            library_decoder(size, positional),
            warmup=max(warmup, 1),
            steps=steps,
            clock=clock,
        )
    seconds = {name: [] for name in runs}
    # take turns, so a busy machine slows every run alike
    for _ in range(repeats):
        for name, run in runs.items():
            seconds[name].append(run())
    median = {
        name: statistics.median(values) for name, values in seconds.items()
    }
    row = {
        "size": size.name,
        "layers": size.n_layers,
        "heads": size.n_heads,
        "width": size.d_model,
        "context": size.context,
        "batch": size.batch,
        "positional": positional,
        "parameters": sum(p.numel() for p in library.parameters()),
    }
    for name in ("reference", "library", "train_loop"):
        s = median.get(name)
        row[f"{name}_ms"] = None if s is None else 1e3 * s
        row[f"{name}_tokens_per_s"] = None if s is None else size.tokens / s
        if name != "reference":
            row[f"{name}_vs_reference"] = (
                None if s is None else s / median["reference"]
            )
    return row | {
        "timer": timer,
        "repeats": repeats,
        "steps": steps,
        "warmup": warmup,
        "torch": torch.__version__,
    }


def run_throughput(
    sizes=THROUGHPUT_SIZES,
    *,
    threads: int = 1,
    out_dir=None,
    progress: bool = True,
    **kwargs,
) -> list[dict]:
    """:func:`measure_size` for each size; returns the rows.

    On ``threads`` torch threads (restored after); with ``out_dir`` writes
    ``throughput.csv`` and ``throughput.md`` there."""
    from tqdm.auto import tqdm

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        rows = [
            measure_size(size, **kwargs)
            for size in tqdm(sizes, desc="throughput", disable=not progress)
        ]
    finally:
        torch.set_num_threads(previous)
    if out_dir is not None:
        write_throughput(rows, out_dir)
    return rows
