"""The training loop: AdamW with warm-up and cosine decay, clipping, and evaluation at many lengths.

A decoder-only model is trained as a language model on a task's batches (next-token
cross-entropy on the scored positions, see :mod:`annotated.tasks`). The recipe is the
one most transformers since GPT use: AdamW (Loshchilov & Hutter 2019), a linear learning-rate
warm-up then cosine decay (Loshchilov & Hutter 2017, SGDR; Vaswani et al. 2017 warm up too),
and gradient-norm clipping (Pascanu et al. 2013):

    lr(s) = lr · (s + 1) / W                                   for s < W (warm-up)
    lr(s) = lr · (r + (1 − r) · ½ (1 + cos(π · p)))           after,  p = (s − W) / (S − W)

with ``S`` steps, ``W`` warm-up steps and ``r = min_lr_ratio``.

:func:`train` returns a :class:`History`: one dict per logged step (loss, lr, gradient norm in
total and per layer, tokens/s) and one per evaluation and length (loss, perplexity, token
accuracy, exact match = every scored token of a sequence right, attention entropy per layer and
head, peak memory). Held-out data come from a generator seeded apart from the training stream,
the same held-out batches at every evaluation. Randomness is explicit: the data generator
and dropout are seeded from ``TrainConfig.seed`` (the caller seeds the model's initialisation),
and the caller's global RNG is left as it was. A NaN or inf loss raises :class:`TrainingDiverged`
with the model put back to the last weights whose loss was finite.

Nothing is printed; ``progress=True`` shows a ``tqdm.auto`` bar. The GPU is used when present.

Legend: B batch, T sequence length, V vocabulary, L layers, H heads.
"""

from __future__ import annotations

import math
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn.functional as F

from annotated.attention import attention_entropy
from annotated.tasks import Task, get_task

EVAL_SEED_OFFSET = 1_000_003  # held-out stream: seed * this + length, never the training stream


class TrainingDiverged(RuntimeError):
    """The loss became NaN or inf. ``history`` holds everything logged up to then; the model holds
    the last weights whose loss was finite."""

    def __init__(self, message: str, *, step: int, history: History):
        super().__init__(message)
        self.step, self.history = step, history


@dataclass
class TrainConfig:
    """How to train. ``eval_every=0`` evaluates only at the end; ``checkpoint_every=0`` never
    calls the checkpoint function (the lab saves one at the end anyway)."""

    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01  # AdamW's decoupled decay, on matrices only (not biases, norms, embeddings)
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1  # the cosine ends at lr * min_lr_ratio
    grad_clip: float | None = 1.0  # max total gradient norm; None = no clipping
    eval_every: int = 0
    eval_batches: int = 4
    eval_batch_size: int | None = None  # None = batch_size
    log_every: int = 1
    checkpoint_every: int = 0
    seed: int = 0
    device: str | None = None  # None = "cuda" when available, else "cpu"

    def __post_init__(self):
        self.betas = tuple(self.betas)
        counts = {"steps": (self.steps, 1), "batch_size": (self.batch_size, 1), "eval_batches": (self.eval_batches, 1)}
        counts |= {"warmup_steps": (self.warmup_steps, 0), "eval_every": (self.eval_every, 0)}
        counts |= {"log_every": (self.log_every, 1), "checkpoint_every": (self.checkpoint_every, 0)}
        if self.eval_batch_size is not None:
            counts["eval_batch_size"] = (self.eval_batch_size, 1)
        for name, (value, least) in counts.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ValueError(f"TrainConfig.{name} must be an integer ≥ {least}, got {value!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"TrainConfig.seed must be a non-negative integer, got {self.seed!r}")
        if not (isinstance(self.lr, int | float) and self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"TrainConfig.lr must be a positive number, got {self.lr!r}")
        if not (isinstance(self.weight_decay, int | float) and self.weight_decay >= 0):
            raise ValueError(f"TrainConfig.weight_decay must be ≥ 0, got {self.weight_decay!r}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"TrainConfig.betas must be two numbers in [0, 1), got {self.betas!r}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"TrainConfig.min_lr_ratio must lie in [0, 1], got {self.min_lr_ratio!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"TrainConfig.grad_clip must be positive or None (no clipping), got {self.grad_clip!r}")
        if self.warmup_steps > self.steps:
            raise ValueError(f"warmup_steps={self.warmup_steps} exceeds steps={self.steps}; lower warmup_steps")
        if self.device is not None and not re.fullmatch(r"cpu|cuda(:\d+)?|mps", str(self.device)):
            raise ValueError(f"TrainConfig.device must be 'cpu', 'cuda', 'cuda:N', 'mps' or None, got {self.device!r}")

    def to_dict(self) -> dict:
        return {**asdict(self), "betas": list(self.betas)}

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {unknown}; valid: {sorted(f.name for f in fields(cls))}")
        return cls(**values)


def learning_rate(step: int, config: TrainConfig) -> float:
    """The learning rate at ``step`` (0-based): linear warm-up, then cosine to ``lr * min_lr_ratio``."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    decay_steps = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / decay_steps)
    ratio = config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return config.lr * ratio


@dataclass
class History:
    """What training logged: ``steps`` (one dict per logged step) and ``evals`` (one dict per
    evaluation and length), ready for ``csv.DictWriter``; ``meta`` holds totals (time, device…)."""

    steps: list[dict] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def series(self, key: str, *, length: int | None = None) -> tuple[list[int], list[float]]:
        """``(steps, values)`` of one metric: a step metric, or an eval metric at ``length``."""
        rows = self.steps if length is None else [r for r in self.evals if r["length"] == length]
        rows = [r for r in rows if r.get(key) is not None]
        return [int(r["step"]) for r in rows], [float(r[key]) for r in rows]

    def final_evals(self) -> dict[int, dict]:
        """The last evaluation: ``{length: row}``."""
        if not self.evals:
            return {}
        last = max(r["step"] for r in self.evals)
        return {int(r["length"]): r for r in self.evals if r["step"] == last}

    @property
    def lengths(self) -> list[int]:
        return sorted({int(r["length"]) for r in self.evals})

    def to_dict(self) -> dict:
        return {"steps": [dict(r) for r in self.steps], "evals": [dict(r) for r in self.evals], "meta": dict(self.meta)}

    @classmethod
    def from_dict(cls, state: dict) -> History:
        return cls([dict(r) for r in state["steps"]], [dict(r) for r in state["evals"]], dict(state.get("meta", {})))


def resolve_device(device: str | None) -> torch.device:
    return torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))


def length_range(train_length) -> tuple[int, int]:
    """``8`` → (8, 8); ``(4, 8)`` → every step draws a length in 4..8 (in-distribution = up to 8)."""
    pair = [train_length] * 2 if isinstance(train_length, int) else train_length
    if isinstance(pair, Sequence) and not isinstance(pair, str) and len(pair) == 2:
        low, high = pair
        if all(isinstance(v, int) and not isinstance(v, bool) for v in pair) and 1 <= low <= high:
            return low, high
    raise ValueError(f"train_length must be a positive int or a pair [low, high] with low ≤ high, got {train_length!r}")


def check_lengths(model_config, task: Task, lengths: Sequence[int]) -> None:
    """Refuse, before any training, a length a model cannot run: the task's own limits, and (for a
    learned absolute encoding, which has no vector past its table) ``seq_len > max_len``."""
    for length in lengths:
        task.check_length(length)
        if model_config is None or getattr(model_config, "positional", None) != "learned":
            continue
        if task.seq_len(length) > model_config.max_len:
            raise ValueError(
                f"length {length} needs {task.seq_len(length)} positions but the learned positional encoding has "
                f"max_len={model_config.max_len} rows; raise model max_len to ≥ {task.seq_len(length)}, drop that "
                "evaluation length, or choose an encoding that extrapolates (rope, alibi, sinusoidal, …)"
            )


def peak_memory_bytes(device: torch.device) -> int:
    """Peak memory so far: allocated CUDA memory on a GPU, the process's peak RSS on the CPU."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)  # macOS reports bytes, Linux KiB
    except ImportError:  # Windows
        import psutil

        return int(psutil.Process().memory_info().peak_wset)


def layer_groups(model: torch.nn.Module) -> dict[str, list[torch.nn.Parameter]]:
    """Parameters grouped by layer: ``blocks.0.attn.q.weight`` → ``blocks.0``; others by their module."""
    groups: dict[str, list] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            numbered = re.match(r"^(.*?\.\d+)\.", name)
            groups.setdefault(numbered.group(1) if numbered else name.rpartition(".")[0] or name, []).append(param)
    return groups


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW, decaying only matrices: biases, norms and embedding tables are not pulled to zero (nanoGPT)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            is_embedding = "emb" in name or "table" in name
            (decay if param.dim() >= 2 and not is_embedding else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas)


def _logits(model, inputs, **kwargs):
    out = model(inputs, **kwargs)
    return (out.logits, getattr(out, "attentions", None)) if hasattr(out, "logits") else (out, None)


@torch.no_grad()
def evaluate(model, task: Task, length: int, config: TrainConfig, device: torch.device) -> dict:
    """Loss, perplexity, token accuracy, exact match and attention entropy on held-out batches of one length."""
    generator = torch.Generator().manual_seed(config.seed * EVAL_SEED_OFFSET + length)
    was_training = model.training
    model.eval()
    loss_sum, correct, scored, exact, sequences = 0.0, 0, 0, 0, 0
    entropy = None
    for i in range(config.eval_batches):
        batch = task.sample(config.eval_batch_size or config.batch_size, length, generator, split="val").to(device)
        logits, attentions = _logits(model, batch.inputs, need_weights=i == 0)  # (B, T, V); L × (B, H, T, Tk)
        mask = batch.target_mask  # (B, T)
        loss_sum += float(F.cross_entropy(logits[mask].float(), batch.targets[mask], reduction="sum"))
        hits = (logits.argmax(-1) == batch.targets) | ~mask  # (B, T): right, or not scored
        correct += int((hits & mask).sum())
        scored += int(mask.sum())
        exact += int(hits.all(dim=1).sum())
        sequences += batch.inputs.shape[0]
        if attentions and all(w is not None for w in attentions):  # mean entropy over the scored queries: (L, H)
            per_query = torch.stack([attention_entropy(w.float()) for w in attentions])  # (L, B, H, T)
            weights = mask[None, :, None, :].float()
            entropy = (per_query * weights).sum((1, 3)) / weights.sum((1, 3)).clamp_min(1)
    model.train(was_training)
    loss = loss_sum / max(scored, 1)
    row = {"length": length, "loss": loss, "perplexity": math.exp(min(loss, 700.0))}
    row |= {"token_accuracy": correct / max(scored, 1), "exact_match": exact / max(sequences, 1)}
    if entropy is not None:
        row |= {f"entropy/L{i}H{h}": float(e) for i, layer in enumerate(entropy.tolist()) for h, e in enumerate(layer)}
    return row


def training_state(model, optimizer, step: int, data_rng: torch.Generator, history: History, config) -> dict:
    """Everything needed to continue exactly where training stands (weights, AdamW moments, RNGs)."""
    state = {"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict()}
    state |= {"data_rng": data_rng.get_state(), "torch_rng": torch.get_rng_state(), "history": history.to_dict()}
    state |= {"train_config": config.to_dict()}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    return state


def train(
    model: torch.nn.Module,
    task: Task | str,
    *,
    train_length,
    eval_lengths: Sequence[int] = (),
    config: TrainConfig | None = None,
    progress: bool = False,
    callback: Callable[[str, dict], None] | None = None,
    checkpoint: Callable[[dict], None] | None = None,
    resume_state: dict | None = None,
) -> History:
    """Train ``model`` on ``task`` and return its :class:`History`.

    Args:
        train_length: a problem length, or ``[low, high]`` to draw one per step.
        eval_lengths: lengths evaluated besides the (largest) training length.
        callback: called as ``callback("step", row)`` / ``callback("eval", row)`` after each record.
        checkpoint: called with :func:`training_state` every ``config.checkpoint_every`` steps and at the end.
        resume_state: a state from ``checkpoint``; training continues after its step and ends as an
            uninterrupted run would (same data, dropout masks and optimizer moments).
    """
    config = config or TrainConfig()
    task = get_task(task)
    low, high = length_range(train_length)
    lengths = sorted({high, *eval_lengths})
    check_lengths(getattr(model, "config", None), task, sorted({low, *lengths}))
    device = resolve_device(config.device)
    model.to(device)
    optimizer = make_optimizer(model, config)
    data_rng = torch.Generator().manual_seed(config.seed)
    history, start = History(), 0
    if resume_state is not None:
        model.load_state_dict(resume_state["model"])
        optimizer.load_state_dict(resume_state["optimizer"])
        data_rng.set_state(resume_state["data_rng"])
        history, start = History.from_dict(resume_state["history"]), int(resume_state["step"])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    groups = layer_groups(model)
    params = [p for ps in groups.values() for p in ps]
    good = [p.detach().clone() for p in params]  # the last weights whose loss was finite
    from tqdm.auto import tqdm

    bar = tqdm(total=config.steps, initial=start, disable=not progress, desc="train")
    cuda_devices = [device] if device.type == "cuda" else []
    history.meta["device"] = str(device)
    time_before, began = history.meta.get("train_time_s", 0.0), time.perf_counter()
    with torch.random.fork_rng(devices=cuda_devices):  # dropout draws from the global RNG; keep the caller's intact
        torch.manual_seed(config.seed + 1)
        if resume_state is not None:
            torch.set_rng_state(resume_state["torch_rng"])
            if "cuda_rng" in resume_state and cuda_devices:
                torch.cuda.set_rng_state_all(resume_state["cuda_rng"])
        model.train()
        for step in range(start + 1, config.steps + 1):
            tick = time.perf_counter()
            length = high if low == high else int(torch.randint(low, high + 1, (1,), generator=data_rng))
            batch = task.sample(config.batch_size, length, data_rng).to(device)
            lr = learning_rate(step - 1, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            logits, _ = _logits(model, batch.inputs)  # (B, T, V)
            mask = batch.target_mask  # (B, T)
            loss = F.cross_entropy(logits[mask].float(), batch.targets[mask])
            if not torch.isfinite(loss):
                _diverge(model, params, good, step, f"the loss is {float(loss.detach())}", history, bar)
            for saved, p in zip(good, params):
                saved.copy_(p.detach())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norms = {
                name: torch.linalg.vector_norm(torch.stack([_grad_norm(p) for p in ps])) for name, ps in groups.items()
            }
            total = torch.linalg.vector_norm(torch.stack(list(norms.values())))
            if not torch.isfinite(total):
                _diverge(model, params, good, step, f"the gradient norm is {float(total)}", history, bar)
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            bar.update(1)
            if step % config.log_every == 0 or step == config.steps:
                loss_value = float(loss.detach())
                row = {"step": step, "loss": loss_value, "lr": lr, "grad_norm": float(total), "length": length}
                row |= {f"grad_norm/{k}": float(v) for k, v in norms.items()}
                row["tokens_per_s"] = batch.inputs.numel() / max(time.perf_counter() - tick, 1e-9)
                history.steps.append(row)
                bar.set_postfix(loss=f"{loss_value:.4f}", refresh=False)
                if callback:
                    callback("step", row)
            if step == config.steps or (config.eval_every and step % config.eval_every == 0):
                for length_ in lengths:
                    row = {"step": step, **evaluate(model, task, length_, config, device)}
                    row["peak_memory_bytes"] = peak_memory_bytes(device)
                    history.evals.append(row)
                    if callback:
                        callback("eval", row)
            history.meta |= {"steps_done": step, "train_time_s": time_before + time.perf_counter() - began}
            due = config.checkpoint_every and step % config.checkpoint_every == 0
            if checkpoint and (due or step == config.steps):
                checkpoint(training_state(model, optimizer, step, data_rng, history, config))
        bar.close()
    history.meta["status"] = "completed"
    return history


def _grad_norm(p: torch.nn.Parameter) -> torch.Tensor:
    return torch.linalg.vector_norm(p.grad.float()) if p.grad is not None else torch.zeros((), device=p.device)


def _diverge(model, params, good, step: int, what: str, history: History, bar) -> None:
    with torch.no_grad():
        for saved, p in zip(good, params):
            p.copy_(saved)
    bar.close()
    history.meta["status"] = "diverged"
    raise TrainingDiverged(
        f"training diverged at step {step}: {what}. The model holds the weights of the last finite loss; "
        "lower lr, raise warmup_steps, or set grad_clip",
        step=step,
        history=history,
    )
