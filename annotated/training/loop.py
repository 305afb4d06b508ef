"""The training loop: the step, the stop rule, the divergence guard, and
resumable state.

A decoder-only model is trained as a language model on a task's batches
(next-token cross-entropy on the scored positions, see
:mod:`annotated.tasks`). The recipe is the one most transformers since GPT
use, each piece in its own module:

- AdamW decaying ``nn.Linear`` weights only, linear warm-up then cosine decay
  (:mod:`annotated.training.optim`), and gradient-norm clipping (Pascanu et
  al. 2013);
- evaluation on held-out batches at every requested length
  (:mod:`annotated.training.evaluation`);
- a :class:`~annotated.training.history.History` of what was logged
  (:mod:`annotated.training.history`);
- the knobs, one :class:`~annotated.training.config.TrainConfig`
  (:mod:`annotated.training.config`).

:func:`train` returns a :class:`History`: one dict per logged step (loss, lr,
gradient norm in total and per layer, tokens/s) and one per evaluation and
length (loss, perplexity, token accuracy, exact match, attention entropy per
layer and head, peak memory). Randomness is
explicit: the data generator, randomized positions and dropout are seeded from
``TrainConfig.seed`` (the caller seeds the model's initialisation), and the
caller's global RNG is left as it was. A NaN or inf loss or gradient norm
raises :class:`TrainingDiverged` with the model put back to the last snapshot
(kept every ``snapshot_every`` steps, and at every checkpoint).

The step is kept cheap: non-finite values are recorded on the device and read
only at logging, evaluation, checkpoint and snapshot steps (one host sync
each), per-layer gradient norms are computed only on logged steps, and
``TrainConfig.compile`` runs the model through ``torch.compile``.

Nothing is printed; ``progress=True`` shows a ``tqdm.auto`` bar. The GPU is
used when present.

Legend: B batch, T sequence length, V vocabulary.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from annotated.tasks import Task, get_task
from annotated.training.config import TrainConfig
from annotated.training.evaluation import (
    batch_positions,
    check_lengths,
    evaluate,
    length_range,
    model_logits,
)
from annotated.training.history import (
    History,
    grad_norms,
    layer_groups,
    peak_memory_bytes,
)
from annotated.training.optim import learning_rate, make_optimizer

__all__ = ["TrainingDiverged", "resolve_device", "train", "training_state"]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or inf. ``history`` holds everything logged up to
    then; the model holds the last weights whose loss was finite."""

    def __init__(self, message: str, *, step: int, history: History):
        super().__init__(message)
        self.step, self.history = step, history


def resolve_device(device: str | None) -> torch.device:
    """``None`` → ``cuda`` when available, else ``cpu``; a name → that
    device."""
    return torch.device(
        device
        if device is not None
        else ("cuda" if torch.cuda.is_available() else "cpu")
    )


def training_state(
    model,
    optimizer,
    step: int,
    data_rng: torch.Generator,
    history: History,
    config,
    position_rng: torch.Generator | None = None,
) -> dict:
    """Everything needed to continue exactly where training stands (weights,
    AdamW moments, RNGs)."""
    state = {
        "step": step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
    }
    state |= {
        "data_rng": data_rng.get_state(),
        "torch_rng": torch.get_rng_state(),
        "history": history.to_dict(),
    }
    state |= {"train_config": config.to_dict()}
    if position_rng is not None:
        state["position_rng"] = position_rng.get_state()
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
        train_length: a problem length, or ``[low, high]`` to draw one per
            step (the papers' 1…L).
        eval_lengths: lengths evaluated besides the (largest) training length.
        callback: called as ``callback("step", row)`` /
            ``callback("eval", row)`` after each record.
        checkpoint: called with :func:`training_state` every
            ``config.checkpoint_every`` steps and at the end; and, when
            training stops early (Ctrl-C, SIGTERM turned into
            KeyboardInterrupt, or a divergence), with the last snapshot and
            ``state["status"]`` = ``"interrupted"``/``"diverged"`` before the
            exception propagates, so a stopped run can always be resumed.
        resume_state: a state from ``checkpoint``; training continues after
            its step and ends as an uninterrupted run would (same data,
            positions, dropout masks and optimizer moments).

    The stop rule (``config.stop_accuracy``): every ``eval_every`` steps the
    lengths in the training range are evaluated; once their mean exact match
    reaches the target ``stop_patience`` times in a row, training stops, every
    length is evaluated, and ``history.meta`` records ``learned`` and
    ``steps_to_learn``. A run that reaches ``steps`` first has
    ``learned = False``. With ``config.min_steps`` a run that has learned
    trains on to that step before it stops (what it learns after the rule is
    met can still change how far it extrapolates).
    """
    config = config or TrainConfig()
    task = get_task(task)
    low, high = length_range(train_length)
    lengths = sorted({high, *eval_lengths})
    check_lengths(
        getattr(model, "config", None), task, sorted({low, *lengths})
    )
    device = resolve_device(config.device)
    model.to(device)
    optimizer = make_optimizer(model, config)
    data_rng = torch.Generator().manual_seed(config.seed)
    # randomized positions, apart from the data
    position_rng = torch.Generator().manual_seed(config.seed + 2)
    history, start = History(), 0
    if resume_state is not None:
        model.load_state_dict(resume_state["model"])
        optimizer.load_state_dict(resume_state["optimizer"])
        data_rng.set_state(resume_state["data_rng"])
        if "position_rng" in resume_state:
            position_rng.set_state(resume_state["position_rng"])
        history, start = (
            History.from_dict(resume_state["history"]),
            int(resume_state["step"]),
        )
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    forward = torch.compile(model) if config.compile else model
    groups = layer_groups(model)
    params = [p for ps in groups.values() for p in ps]
    from tqdm.auto import tqdm

    bar = tqdm(
        total=config.steps, initial=start, disable=not progress, desc="train"
    )
    cuda_devices = [device] if device.type == "cuda" else []
    history.meta["device"] = str(device)
    if config.stop_accuracy is not None:
        history.meta |= {
            "stop_accuracy": config.stop_accuracy,
            "stop_patience": config.stop_patience,
        }
    time_before, began = (
        history.meta.get("train_time_s", 0.0),
        time.perf_counter(),
    )

    def state(step: int) -> dict:
        return training_state(
            model, optimizer, step, data_rng, history, config, position_rng
        )

    def evaluate_lengths(step: int, which: Sequence[int]) -> dict[int, dict]:
        rows = {}
        for length_ in which:
            rows[length_] = row = {
                "step": step,
                **evaluate(model, task, length_, config, device),
            }
            row["peak_memory_bytes"] = peak_memory_bytes(device)
            history.evals.append(row)
            if callback:
                callback("eval", row)
        return rows

    # dropout draws from the global RNG; keep the caller's intact
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(config.seed + 1)
        if resume_state is not None:
            torch.set_rng_state(resume_state["torch_rng"])
            if "cuda_rng" in resume_state and cuda_devices:
                torch.cuda.set_rng_state_all(resume_state["cuda_rng"])
        # the state to fall back to: refreshed every snapshot_every steps
        snapshot = copy.deepcopy(state(start))
        # non-finite loss or gradient norm, recorded on the device, read at
        # sync points
        watch = _Watch(device)
        model.train()
        try:
            for step in range(start + 1, config.steps + 1):
                length = (
                    high
                    if low == high
                    else int(
                        torch.randint(low, high + 1, (1,), generator=data_rng)
                    )
                )
                batch = task.sample(config.batch_size, length, data_rng).to(
                    device
                )
                lr = learning_rate(step - 1, config)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                positions = batch_positions(model, batch, position_rng)
                # (B, T, V)
                logits, _ = model_logits(forward, batch.inputs, **positions)
                mask = batch.target_mask  # (B, T)
                loss = F.cross_entropy(
                    logits[mask].float(), batch.targets[mask]
                )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                logging = step % config.log_every == 0 or step == config.steps
                # per layer, before clipping
                norms = grad_norms(groups) if logging else None
                # clips when grad_clip is set
                total = _total_norm(params, config.grad_clip)
                watch.record(step, loss.detach(), total)
                optimizer.step()
                bar.update(1)
                watch.tokens += batch.inputs.numel()
                due_eval = step == config.steps or (
                    config.eval_every and step % config.eval_every == 0
                )
                due_save = bool(
                    config.checkpoint_every
                    and step % config.checkpoint_every == 0
                )
                if not (
                    logging
                    or due_eval
                    or due_save
                    or step % config.snapshot_every == 0
                ):
                    continue  # no host sync on this step
                if watch.diverged():
                    model.load_state_dict(snapshot["model"])
                    optimizer.load_state_dict(snapshot["optimizer"])
                    history.meta["status"] = "diverged"
                    if checkpoint:
                        checkpoint(snapshot | {"status": "diverged"})
                    raise TrainingDiverged(
                        f"training diverged at step {watch.first_step}: {watch.what()}. The model holds the weights "
                        f"of step {snapshot['step']}, the last snapshot; lower lr, raise warmup_steps, or set grad_clip",
                        step=watch.first_step,
                        history=history,
                    )
                if logging:
                    row = {
                        "step": step,
                        "loss": float(loss.detach()),
                        "lr": lr,
                        "grad_norm": float(total),
                    }
                    row |= {
                        "length": length,
                        **{
                            f"grad_norm/{k}": float(v)
                            for k, v in norms.items()
                        },
                    }
                    row["tokens_per_s"] = watch.throughput()
                    history.steps.append(row)
                    bar.set_postfix(loss=f"{row['loss']:.4f}", refresh=False)
                    if callback:
                        callback("step", row)
                learned = due_eval and _stop_rule(
                    history,
                    config,
                    low,
                    high,
                    lengths,
                    step,
                    evaluate_lengths,
                )
                # the final evaluation: every length not yet seen at this step
                if learned or step == config.steps:
                    seen = {
                        int(r["length"])
                        for r in history.evals
                        if r["step"] == step
                    }
                    evaluate_lengths(
                        step, [n for n in lengths if n not in seen]
                    )
                history.meta |= {
                    "steps_done": step,
                    "train_time_s": time_before + time.perf_counter() - began,
                }
                if (
                    due_save
                    or learned
                    or step % config.snapshot_every == 0
                    or step == config.steps
                ):
                    snapshot = copy.deepcopy(state(step))
                    if checkpoint and (
                        due_save or step == config.steps or learned
                    ):
                        checkpoint(snapshot)
                if learned:
                    break
        except KeyboardInterrupt:
            bar.close()
            history.meta["status"] = "interrupted"
            if checkpoint:
                checkpoint(snapshot | {"status": "interrupted"})
            raise
        bar.close()
    history.meta["status"] = "completed"
    if config.stop_accuracy is not None:
        history.meta.setdefault("learned", False)
    return history


def _stop_rule(
    history, config, low, high, lengths, step, evaluate_lengths
) -> bool:
    """Evaluate (every length with the stop rule off; the training lengths
    with it on) and say whether the run has now learned: mean exact match at
    the training lengths ≥ target, ``stop_patience`` times in a row."""
    if config.stop_accuracy is None:
        if step != config.steps:
            evaluate_lengths(step, lengths)
        return False
    rows = evaluate_lengths(step, [n for n in lengths if low <= n <= high])
    score = sum(r["exact_match"] for r in rows.values()) / len(rows)
    streak = (
        history.meta.get("stop_streak", 0) + 1
        if score >= config.stop_accuracy
        else 0
    )
    history.meta["stop_streak"] = streak
    if streak >= config.stop_patience and not history.meta.get("learned"):
        history.meta |= {"learned": True, "steps_to_learn": step}
    return bool(history.meta.get("learned")) and step >= config.min_steps


def _total_norm(params, grad_clip: float | None) -> torch.Tensor:
    """The total gradient norm (before clipping), clipping to ``grad_clip``
    when it is set."""
    if grad_clip is not None:
        return torch.nn.utils.clip_grad_norm_(params, grad_clip)
    return torch.nn.utils.get_total_norm(
        [p.grad for p in params if p.grad is not None]
    )


class _Watch:
    """The first step whose loss or gradient norm was not finite, kept on the
    device (no host sync per step), and tokens seen since the last log for
    tokens/s."""

    def __init__(self, device):
        self.first = torch.zeros((), dtype=torch.long, device=device)
        self.loss = torch.zeros((), device=device)
        self.norm = torch.zeros((), device=device)
        self.tokens, self.since = 0, time.perf_counter()

    def record(
        self, step: int, loss: torch.Tensor, norm: torch.Tensor
    ) -> None:
        new = (self.first == 0) & ~(
            torch.isfinite(loss) & torch.isfinite(norm)
        )
        self.first = torch.where(new, step, self.first)
        self.loss = torch.where(new, loss.float(), self.loss)
        self.norm = torch.where(new, norm.float(), self.norm)

    def diverged(self) -> bool:
        self.first_step = int(self.first)  # the host sync
        return self.first_step > 0

    def what(self) -> str:
        loss = float(self.loss)
        return (
            f"the loss is {loss}"
            if not math.isfinite(loss)
            else f"the gradient norm is {float(self.norm)}"
        )

    def throughput(self) -> float:
        now = time.perf_counter()
        rate = self.tokens / max(now - self.since, 1e-9)
        self.tokens, self.since = 0, now
        return rate
