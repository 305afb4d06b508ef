"""Scaling laws: how held-out loss falls with model size.

Kaplan et al. 2020, "Scaling Laws for Neural Language Models".

Kaplan et al. find that a language model's test loss, trained to convergence
on enough data, follows a power law in its non-embedding parameter count N,

    L(N) = (N_c / N)^α,        α ≈ 0.076,  N_c ≈ 8.8·10¹³,

a straight line on log-log axes: ``log L = α log N_c − α log N``. Hoffmann et
al. (2022) add an irreducible term, ``L(N) = E + (N_c / N)^α``, the entropy of
the text that no model removes. On a small corpus and a short budget the curve
also bends where bigger models stop gaining.

:func:`fit_power_law` fits the straight line by least squares in log-log
space; :func:`fit_power_law_with_floor` profiles over the floor ``E`` (a grid,
then a finer grid) and fits the line to ``log(L − E)`` for each, keeping the
``E`` with the smallest squared error in L. Both give α a 95 % interval by the
bootstrap over runs (resample the runs with replacement, refit, take the 2.5th
and 97.5th percentiles). No scipy: numpy's least squares is all it takes.

Left out: compute-optimal token budgets (every size here sees the same
tokens), and the joint L(N, D) law.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

# Kaplan et al. (2020), eq. 1.1: α_N for L(N), non-embedding parameters
KAPLAN_ALPHA_N = 0.076
KAPLAN_N_C = 8.8e13

# Chapter 8's sweep (scripts/scaling_sweep.py): one recipe, seven widths, the
# same tokens for every size.
CONTEXT = 64
WIDTHS = (16, 24, 32, 48, 64, 96, 128)
# the smallest and the largest size get a second seed
EXTRA_SEEDS = {16: (1,), 128: (1,)}
MODEL = {
    "arch": "decoder",
    "n_layers": 2,
    "n_heads": 4,
    "max_len": CONTEXT,
    "positional": "rope",
}
TRAIN = {
    "steps": 1000,
    "batch_size": 16,
    "lr": 2e-3,
    "warmup_steps": 50,
    "min_lr_ratio": 0.1,
    "weight_decay": 0.1,
    "grad_clip": 1.0,
    "log_every": 50,
    "device": "cpu",
}
EVAL_WINDOWS = 512  # per split, drawn by heldout_loss with its default seed


@dataclass
class PowerLawFit:
    """``L(N) = floor + (n_c / N)^alpha``, with an interval for ``alpha``.

    The interval is a 95 % bootstrap interval."""

    alpha: float
    n_c: float
    floor: float = 0.0
    alpha_interval: tuple[float, float] = (float("nan"), float("nan"))
    rmse: float = float("nan")  # root mean squared error of the fit, in nats

    def predict(self, n) -> np.ndarray:
        return (
            self.floor + (self.n_c / np.asarray(n, dtype=float)) ** self.alpha
        )


def non_embedding_parameters(model: torch.nn.Module) -> int:
    """Kaplan et al.'s N: the parameters outside the embedding tables.

    All but the token embedding and any learned position table.

    A tied output head shares the embedding matrix and is not counted; an
    untied one is counted."""
    embedding = {
        id(p)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Embedding)
        for p in module.parameters(recurse=False)
    }
    return sum(
        p.numel() for p in model.parameters() if id(p) not in embedding
    )


@torch.no_grad()
def heldout_loss(
    model,
    task,
    length: int,
    windows: int,
    *,
    split: str = "val",
    seed: int = 1234,
    batch_size: int = 64,
) -> float:
    """Mean next-token loss (nats) over ``windows`` windows of ``length``.

    The windows are drawn from ``split`` with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, windows, batch_size):
        batch = task.sample(
            min(batch_size, windows - start), length, generator, split=split
        )
        logits = model(batch.inputs).logits  # (B, T, V)
        mask = batch.target_mask
        total += float(
            F.cross_entropy(
                logits[mask].float(), batch.targets[mask], reduction="sum"
            )
        )
        count += int(mask.sum())
    model.train(was_training)
    return total / count


def _line(log_n: np.ndarray, log_l: np.ndarray) -> tuple[float, float]:
    """Least-squares ``log_l = a + b log_n``; returns ``(a, b)``."""
    design = np.stack([np.ones_like(log_n), log_n], axis=1)
    (a, b), *_ = np.linalg.lstsq(design, log_l, rcond=None)
    return float(a), float(b)


def _fit(
    n: np.ndarray, loss: np.ndarray, floor: float
) -> tuple[float, float, float]:
    """α, N_c and the squared error in L of ``L = floor + (N_c / N)^α``.

    The line is fitted in log-log space."""
    a, b = _line(np.log(n), np.log(loss - floor))
    alpha = -b
    n_c = float(np.exp(a / alpha)) if alpha != 0 else float("inf")
    error = float(np.sum((floor + np.exp(a + b * np.log(n)) - loss) ** 2))
    return alpha, n_c, error


def _best_floor(n: np.ndarray, loss: np.ndarray) -> float:
    top = float(loss.min())
    grid = np.linspace(0.0, top * 0.999, 200)
    errors = [_fit(n, loss, e)[2] for e in grid]
    best = float(grid[int(np.argmin(errors))])
    step = grid[1] - grid[0]
    fine = np.linspace(
        max(best - step, 0.0), min(best + step, top * 0.9999), 201
    )
    return float(fine[int(np.argmin([_fit(n, loss, e)[2] for e in fine]))])


def _check(n, loss) -> tuple[np.ndarray, np.ndarray]:
    n, loss = np.asarray(n, dtype=float), np.asarray(loss, dtype=float)
    if n.shape != loss.shape or n.ndim != 1:
        raise ValueError(
            "n and loss must be 1-d arrays of one length, "
            f"got shapes {n.shape} and {loss.shape}"
        )
    if len(np.unique(n)) < 3:
        raise ValueError(
            "a power law needs runs at ≥ 3 different sizes, "
            f"got {len(np.unique(n))}"
        )
    if (n <= 0).any() or (loss <= 0).any():
        raise ValueError("parameter counts and losses must be positive")
    return n, loss


def _bootstrap(
    n, loss, with_floor: bool, samples: int, seed: int
) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    alphas = []
    for _ in range(samples):
        pick = rng.integers(0, len(n), len(n))
        if len(np.unique(n[pick])) < 3:
            continue
        floor = _best_floor(n[pick], loss[pick]) if with_floor else 0.0
        alphas.append(_fit(n[pick], loss[pick], floor)[0])
    low, high = np.percentile(alphas, [2.5, 97.5])
    return float(low), float(high)


def fit_power_law(
    n, loss, *, bootstrap: int = 1000, seed: int = 0
) -> PowerLawFit:
    """Fit ``L = (N_c / N)^α`` by least squares on log-log axes.

    α gets a 95 % bootstrap interval.

    >>> fit = fit_power_law([1e3, 1e4, 1e5], [4.0, 2.0, 1.0], bootstrap=0)
    >>> round(fit.alpha, 4)  # the loss halves every decade: α = log10(2)
    0.301
    """
    n, loss = _check(n, loss)
    alpha, n_c, error = _fit(n, loss, 0.0)
    interval = (
        _bootstrap(n, loss, False, bootstrap, seed)
        if bootstrap
        else (float("nan"),) * 2
    )
    return PowerLawFit(
        alpha, n_c, 0.0, interval, float(np.sqrt(error / len(n)))
    )


def fit_power_law_with_floor(
    n, loss, *, bootstrap: int = 200, seed: int = 0
) -> PowerLawFit:
    """Fit ``L = E + (N_c / N)^α``.

    The floor ``E`` is profiled on a grid below the smallest loss."""
    n, loss = _check(n, loss)
    floor = _best_floor(n, loss)
    alpha, n_c, error = _fit(n, loss, floor)
    interval = (
        _bootstrap(n, loss, True, bootstrap, seed)
        if bootstrap
        else (float("nan"),) * 2
    )
    return PowerLawFit(
        alpha, n_c, floor, interval, float(np.sqrt(error / len(n)))
    )


def sweep_points() -> list[tuple[int, int]]:
    """``(d_model, seed)`` of every run of the sweep."""
    return [(d, s) for d in WIDTHS for s in (0, *EXTRA_SEEDS.get(d, ()))]


def train_point(
    task, d_model: int, seed: int, *, steps: int | None = None
) -> dict:
    """Train one size of the sweep and measure it: a row of scaling_runs.csv.

    ``steps`` overrides the recipe's."""
    import time

    from annotated.models.config import ModelConfig
    from annotated.models.summary import count_parameters
    from annotated.models.transformer import build_model
    from annotated.training.config import TrainConfig
    from annotated.training.loop import train

    config = ModelConfig(vocab_size=task.vocab_size, d_model=d_model, **MODEL)
    recipe = TRAIN | (
        {}
        if steps is None
        else {
            "steps": steps,
            "warmup_steps": min(TRAIN["warmup_steps"], steps),
        }
    )
    torch.manual_seed(seed)
    model = build_model(config)
    began, cpu_began = time.perf_counter(), time.process_time()
    train(
        model,
        task,
        train_length=CONTEXT,
        config=TrainConfig(**recipe, seed=seed, eval_batches=1),
    )
    seconds = time.perf_counter() - began
    cpu_seconds = time.process_time() - cpu_began
    losses = {
        split: heldout_loss(model, task, CONTEXT, EVAL_WINDOWS, split=split)
        for split in ("val", "train")
    }
    return {
        "d_model": d_model,
        "seed": seed,
        "non_embedding_params": non_embedding_parameters(model),
        "params": count_parameters(model),
        "val_loss": round(losses["val"], 5),
        "train_loss": round(losses["train"], 5),
        "tokens": recipe["steps"] * recipe["batch_size"] * CONTEXT,
        "wall_time_s": round(seconds, 1),
        "cpu_time_s": round(cpu_seconds, 1),
    }
