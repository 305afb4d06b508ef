"""The training loop: the step, the stop rule, the divergence guard, and resumable state.

A decoder-only model is trained as a language model on a task's batches (next-token
cross-entropy on the scored positions, see :mod:`annotated.tasks`). The recipe is the
one most transformers since GPT use, each piece in its own module:

- AdamW decaying ``nn.Linear`` weights only, linear warm-up then cosine decay
  (:mod:`annotated.optim`), and gradient-norm clipping (Pascanu et al. 2013);
- evaluation on held-out batches at every requested length (:mod:`annotated.evaluation`);
- a :class:`~annotated.metrics.History` of what was logged (:mod:`annotated.metrics`);
- the knobs, one :class:`~annotated.train_config.TrainConfig` (:mod:`annotated.train_config`).

:func:`train` returns a :class:`History`: one dict per logged step (loss, lr, gradient norm in
total and per layer, tokens/s) and one per evaluation and length (loss, perplexity, token
accuracy, exact match, attention entropy per layer and head, peak memory). Randomness is
explicit: the data generator and dropout are seeded from ``TrainConfig.seed`` (the caller seeds
the model's initialisation), and the caller's global RNG is left as it was. A NaN or inf loss
raises :class:`TrainingDiverged` with the model put back to the last weights whose loss was finite.

Nothing is printed; ``progress=True`` shows a ``tqdm.auto`` bar. The GPU is used when present.

Legend: B batch, T sequence length, V vocabulary.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from annotated.evaluation import EVAL_SEED_OFFSET, check_lengths, evaluate, length_range, model_logits
from annotated.metrics import History, grad_norms, layer_groups, peak_memory_bytes
from annotated.optim import decay_groups, learning_rate, make_optimizer
from annotated.tasks import Task, get_task
from annotated.train_config import TrainConfig

__all__ = [  # the loop's own names, and those of its parts that callers import from here
    "EVAL_SEED_OFFSET", "History", "TrainConfig", "TrainingDiverged", "check_lengths", "decay_groups", "evaluate",
    "layer_groups", "learning_rate", "length_range", "make_optimizer", "resolve_device", "train", "training_state",
]  # fmt: skip


class TrainingDiverged(RuntimeError):
    """The loss became NaN or inf. ``history`` holds everything logged up to then; the model holds
    the last weights whose loss was finite."""

    def __init__(self, message: str, *, step: int, history: History):
        super().__init__(message)
        self.step, self.history = step, history


def resolve_device(device: str | None) -> torch.device:
    """``None`` → ``cuda`` when available, else ``cpu``; a name → that device."""
    return torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))


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
            logits, _ = model_logits(model, batch.inputs)  # (B, T, V)
            mask = batch.target_mask  # (B, T)
            loss = F.cross_entropy(logits[mask].float(), batch.targets[mask])
            if not torch.isfinite(loss):
                _diverge(model, params, good, step, f"the loss is {float(loss.detach())}", history, bar)
            for saved, p in zip(good, params):
                saved.copy_(p.detach())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norms = grad_norms(groups)  # per layer
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
