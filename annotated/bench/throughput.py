"""Training throughput: the library's decoder against PyTorch's own layers, in
tokens per second.

One training step — forward, next-token cross-entropy, backward, AdamW step —
of the library's decoder-only LM
(:class:`~annotated.models.transformer.DecoderOnly`: pre-LN, GELU, dropout 0,
learned positions or none, tied head) is timed against
:class:`ReferenceDecoder`, the same network built from
``torch.nn.TransformerEncoderLayer`` (``norm_first=True, batch_first=True``,
causal mask, the same ``d_ff``, dropout 0, GELU; token embedding + learned
positions + final LayerNorm + tied head). The two have the same parameters and
compute the same function (a test copies the weights across and compares
logits), so the ratio of their step times is the price of the library's
readable code. Both get the same optimiser,
``torch.optim.AdamW(model.parameters())`` (the library's own decay groups
cannot read ``nn.MultiheadAttention``'s bare ``in_proj_weight``).

The sizes (:data:`THROUGHPUT_SIZES`) are nanoGPT's CPU recipe for Tiny
Shakespeare (README, "I only have a macbook": 4 layers, 4 heads, width 128,
context 64, batch 12, vocabulary 65) and a wide-batch small model (2 layers,
width 64, context 32, batch 64). Beside the bare step, the library's whole
loop :func:`annotated.training.loop.train` is timed per step (the time between
its per-step callbacks): data, learning-rate schedule, gradient norms,
clipping and the divergence guard on top of the step, as the loop is when the
benchmark runs.

Timing: one torch thread; ``warmup`` steps before each timed run are excluded;
the library, the reference and the loop take turns, repeat after repeat, so a
busy machine slows all alike; each number is the median over ``repeats`` runs
of ``steps`` steps. ``timer="wall"`` reads ``time.perf_counter``, ``"cpu"``
the process's CPU time (which other processes cannot inflate). Measured, never
asserted by a test.

Legend: B batch, T context, C width (d_model), V vocabulary, L layers.
"""

from __future__ import annotations

import csv
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from annotated.models.config import ModelConfig
from annotated.models.transformer import DecoderOnly, build_model

TIMERS = {"wall": time.perf_counter, "cpu": time.process_time}
TABLE_COLUMNS = {  # header -> (row key, format)
    "reference ms": ("reference_ms", ".2f"),
    "library ms": ("library_ms", ".2f"),
    "library / reference": ("library_vs_reference", ".3f"),
    "train() ms": ("train_loop_ms", ".2f"),
    "train() / reference": ("train_loop_vs_reference", ".3f"),
    "reference tok/s": ("reference_tokens_per_s", ",.0f"),
    "library tok/s": ("library_tokens_per_s", ",.0f"),
    "train() tok/s": ("train_loop_tokens_per_s", ",.0f"),
}


@dataclass(frozen=True)
class ThroughputSize:
    """One model and batch shape to time."""

    name: str
    n_layers: int
    n_heads: int
    d_model: int
    context: int  # T: tokens per sequence
    batch: int  # B: sequences per step
    vocab_size: int = 65  # Tiny Shakespeare's characters

    @property
    def tokens(self) -> int:
        """Tokens per training step, ``B · T``."""
        return self.batch * self.context


#: The timed sizes: nanoGPT's CPU recipe and a small model with a wide batch.
THROUGHPUT_SIZES = (
    ThroughputSize(
        "nanoGPT CPU",
        n_layers=4,
        n_heads=4,
        d_model=128,
        context=64,
        batch=12,
    ),
    ThroughputSize(
        "small", n_layers=2, n_heads=4, d_model=64, context=32, batch=64
    ),
)
# the library's encoding -> the reference has a position table
POSITIONS = {"learned": True, "none": False}


class ReferenceDecoder(nn.Module):
    """A GPT built from PyTorch's layers: embeddings (+ learned positions) →
    ``nn.TransformerEncoder`` of pre-LN layers under a causal mask → final
    LayerNorm → head tied to the token embedding."""

    def __init__(
        self,
        size: ThroughputSize,
        *,
        positions: bool = True,
        d_ff: int | None = None,
    ):
        super().__init__()
        c = size.d_model
        self.tok_emb = nn.Embedding(size.vocab_size, c)  # (V, C)
        # (T, C)
        self.pos_emb = nn.Embedding(size.context, c) if positions else None
        layer = nn.TransformerEncoderLayer(
            c,
            size.n_heads,
            d_ff or 4 * c,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, size.n_layers, enable_nested_tensor=False
        )
        self.final_norm = nn.LayerNorm(c)
        self.lm_head = nn.Linear(c, size.vocab_size, bias=False)
        # tied, as the library's default
        self.lm_head.weight = self.tok_emb.weight
        # (T, T): 0 or -inf
        causal = nn.Transformer.generate_square_subsequent_mask(size.context)
        self.register_buffer("causal_mask", causal, persistent=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Token ids ``(B, T)`` → logits ``(B, T, V)``."""
        t = idx.shape[1]
        x = self.tok_emb(idx)  # (B, T, C)
        if self.pos_emb is not None:
            # (T, C) broadcast over B
            x = x + self.pos_emb(torch.arange(t, device=idx.device))
        # (B, T, C)
        x = self.encoder(x, mask=self.causal_mask[:t, :t], is_causal=True)
        return self.lm_head(self.final_norm(x))  # (B, T, V)


def library_decoder(
    size: ThroughputSize, positional: str = "learned"
) -> DecoderOnly:
    """The library's decoder at ``size``: pre-LN, GELU, dropout 0, tied head,
    ``max_len`` = context."""
    if positional not in POSITIONS:
        raise ValueError(
            f"positional must be one of {sorted(POSITIONS)} (the reference has no other), got {positional!r}"
        )
    config = ModelConfig(
        arch="decoder",
        vocab_size=size.vocab_size,
        d_model=size.d_model,
        n_layers=size.n_layers,
        n_heads=size.n_heads,
        max_len=size.context,
        positional=positional,
        norm="pre",
        activation="gelu",
        dropout=0.0,
        tie_weights=True,
    )
    return build_model(config)


@torch.no_grad()
def copy_library_weights(
    reference: ReferenceDecoder, library: DecoderOnly
) -> ReferenceDecoder:
    """Load ``library``'s weights into ``reference`` (q, k, v stacked into
    ``in_proj``); returns it."""
    reference.tok_emb.weight.copy_(library.tok_emb.weight)
    if reference.pos_emb is not None:
        reference.pos_emb.weight.copy_(
            library.decoder.positional.table.weight
        )
    for ours, theirs in zip(
        library.decoder.blocks, reference.encoder.layers, strict=True
    ):
        attn = ours.self_attn.sublayer
        projections = (attn.q_proj, attn.k_proj, attn.v_proj)
        # (3C, C)
        theirs.self_attn.in_proj_weight.copy_(
            torch.cat([p.weight for p in projections])
        )
        # (3C,)
        theirs.self_attn.in_proj_bias.copy_(
            torch.cat([p.bias for p in projections])
        )
        pairs = [
            (attn.out_proj, theirs.self_attn.out_proj),
            (ours.ff.sublayer.up, theirs.linear1),
            (ours.ff.sublayer.down, theirs.linear2),
            (ours.self_attn.norm, theirs.norm1),
            (ours.ff.norm, theirs.norm2),
            (library.decoder.final_norm, reference.final_norm),
        ]
        for source, target in pairs:
            target.weight.copy_(source.weight)
            target.bias.copy_(source.bias)
    return reference


def training_step(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    lr: float = 1e-3,
):
    """A function running one full step on the fixed batch: forward,
    cross-entropy, backward, AdamW."""
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
    """Random text over ``size.vocab_size`` printable characters: a step's
    cost does not depend on the text."""
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
    """A function running :func:`annotated.training.loop.train` for
    ``warmup + steps`` steps and returning the mean clock time between the
    per-step callbacks of the last ``steps`` steps."""
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
    """The library's decoder (seeded) and
    ``{"library": step, "reference": step}`` on one random batch, the
    reference holding the library's weights."""
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
    """``torch.profiler``'s operators by self CPU time over ``steps`` training
    steps (after two warm-up steps) of the ``"library"`` or ``"reference"``
    model: where a step's time goes."""
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
    """Seconds per step of the library, the reference and (with ``loop``)
    ``train``: one table row."""
    if timer not in TIMERS:
        raise ValueError(
            f"timer must be one of {sorted(TIMERS)}, got {timer!r}"
        )
    if repeats < 1 or steps < 1 or warmup < 0:
        raise ValueError(
            f"repeats and steps must be ≥ 1 and warmup ≥ 0, got {repeats}, {steps}, {warmup}"
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
    """:func:`measure_size` for each size on ``threads`` torch threads
    (restored after); with ``out_dir`` writes ``throughput.csv`` and
    ``throughput.md`` there. Returns the rows."""
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


def throughput_table(rows: list[dict]) -> str:
    """Markdown: per size, ms per step and tokens/s of reference, library and
    loop, and time ratios."""
    head = (
        "| size | L × C × T × B | parameters | "
        + " | ".join(TABLE_COLUMNS)
        + " |"
    )
    lines = [head, "|---" * (len(TABLE_COLUMNS) + 3) + "|"]
    for r in rows:
        cells = [
            r["size"],
            f"{r['layers']} × {r['width']} × {r['context']} × {r['batch']}",
            f"{r['parameters']:,}",
        ]
        cells += [
            "—" if r[key] is None else format(r[key], fmt)
            for key, fmt in TABLE_COLUMNS.values()
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if rows:
        r = rows[0]
        lines.append(
            f"\nMedian of {r['repeats']} runs of {r['steps']} steps after {r['warmup']} warm-up steps, one torch "
            f"thread, {r['timer']} clock, torch {r['torch']}; positions: {r['positional']}. A ratio below 1 means "
            "faster than the reference. train(): the library's whole loop per step (data, schedule, gradient norms, "
            "clipping, divergence guard)."
        )
    return "\n".join(lines) + "\n"


def write_throughput(rows: list[dict], out_dir) -> dict[str, Path]:
    """Write ``throughput.csv`` and ``throughput.md`` into ``out_dir``;
    returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"csv": out / "throughput.csv", "md": out / "throughput.md"}
    with open(files["csv"], "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
    files["md"].write_text(throughput_table(rows))
    return files
