"""The training loop: steps, evaluations, the stop rule, the divergence
guard, and resumable state.

A decoder-only model is trained as a language model on a task's batches
(next-token cross-entropy on the scored positions, see
:mod:`annotated.tasks`). The recipe is the one most transformers since GPT
use, each piece in its own module:

- one step: AdamW decaying ``nn.Linear`` weights only (or, with
  ``optimizer="muon"``, Muon for the blocks' matrices), linear warm-up then
  cosine decay, gradient-norm clipping (:mod:`annotated.training.steps`,
  :mod:`annotated.training.optim`);
- evaluation on held-out batches at every requested length
  (:mod:`annotated.training.evaluation`);
- what the loop carries from step to step, and what a checkpoint holds
  (:mod:`annotated.training.state`);
- a :class:`~annotated.training.history.History` of what was logged;
- the knobs, one :class:`~annotated.training.config.TrainConfig`.

:func:`train` returns the :class:`History`: one dict per logged step (loss,
lr, gradient norm in total and per layer, tokens/s) and one per evaluation
and length (loss, perplexity, token accuracy, exact match, attention entropy
per layer and head, peak memory). Randomness is explicit: the data, dropout
and randomized positions are seeded from ``TrainConfig.seed`` (the caller
seeds the model's initialisation), and the caller's global RNG is left as it
was. A NaN or inf loss or gradient norm raises :class:`TrainingDiverged`
with the model put back to the last snapshot (kept every ``snapshot_every``
steps, and at every checkpoint).

Nothing is printed; ``progress=True`` shows a ``tqdm.auto`` bar. The GPU is
used when present.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch
from tqdm.auto import tqdm

from annotated.tasks import Task
from annotated.training.config import TrainConfig
from annotated.training.divergence import advice_text, divergence_advice
from annotated.training.history import History
from annotated.training.state import TrainingRun
from annotated.training.steps import (
    evaluate_lengths,
    evaluate_the_rest,
    every,
    log_step,
    train_step,
)
from annotated.training.torchrun import stop_signals

__all__ = [
    "TrainingDiverged",
    "evaluate_and_judge",
    "resolve_device",
    "stop_rule",
    "train",
]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or inf. ``history`` holds everything logged up to
    then; the model holds the last weights whose loss was finite;
    ``advice`` the config fields to change, with values to try
    (:func:`~annotated.training.divergence.divergence_advice`)."""

    def __init__(
        self, message: str, *, step: int, history: History, advice=None
    ):
        super().__init__(message)
        self.step, self.history = step, history
        self.advice = advice or {}


def resolve_device(device: str | None) -> torch.device:
    """``None`` → ``cuda`` when available, else ``cpu``; a name → that
    device."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


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
        checkpoint: called with a
            :func:`~annotated.training.state.training_state` every
            ``config.checkpoint_every`` steps and at the end; and, when
            training stops early (Ctrl-C, SIGTERM turned into
            KeyboardInterrupt, or a divergence), with the last snapshot and
            ``state["status"]`` = ``"interrupted"``/``"diverged"`` before the
            exception propagates, so a stopped run can always be resumed.
        resume_state: a state from ``checkpoint``; training continues after
            its step and ends as an uninterrupted run would (same data,
            positions, dropout masks and optimizer moments).

    Every ``eval_every`` steps the model is evaluated and, with
    ``config.stop_accuracy`` set, judged by :func:`stop_rule`; when it stops,
    and at the last step, every length is evaluated.

    In a process group (``torchrun``) the model trains data-parallel
    (:mod:`annotated.training.distributed`): rank 0 alone evaluates and
    calls ``callback`` and ``checkpoint``, and sends its stop decision to
    the other ranks; a lost rank raises
    :class:`~annotated.training.distributed.RankLost` after rank 0 saved
    the last snapshot marked ``"failed"``.
    """
    config = config or TrainConfig()
    device = resolve_device(config.device)
    run = TrainingRun.start(
        model, task, config, device, train_length, eval_lengths
    )
    if run.ranks.is_main:  # the rank that records and writes
        run.callback, run.checkpoint = callback, checkpoint
    if resume_state is not None:
        run.resume(resume_state)
    run.prepare()
    bar = tqdm(
        total=config.end_step,
        initial=run.step,
        disable=not (progress and run.ranks.is_main),
        desc="train",
    )
    # dropout draws from the global RNG; keep the caller's intact
    with (
        bar,
        torch.random.fork_rng(devices=run.cuda_devices),
        stop_signals(run.ranks),
    ):
        run.begin(resume_state)
        try:
            for step in range(run.step + 1, config.end_step + 1):
                last = step == config.end_step
                logged = every(config.log_every, step) or last
                row = train_step(run, step, per_layer=logged)
                bar.update(1)
                evaluated = every(config.eval_every, step) or last
                saved = every(config.checkpoint_every, step) or last
                kept = saved or every(config.snapshot_every, step)
                if not (logged or evaluated or kept):
                    continue  # no host sync on this step
                raise_if_diverged(run)
                if logged:
                    row = log_step(run, row)
                    bar.set_postfix(loss=f"{row['loss']:.4f}", refresh=False)
                judge = partial(evaluate_and_judge, run, step)
                stop = evaluated and run.ranks.from_main(judge)
                if (stop or last) and run.ranks.is_main:
                    evaluate_the_rest(run, step)
                run.record_time()
                if kept or stop:
                    run.take_snapshot(save=saved or stop)
                if stop:
                    break
        except KeyboardInterrupt:
            run.mark_stopped("interrupted")
            raise
        except RuntimeError as error:
            lost = run.ranks.lost(error, run.step)
            if lost is None:
                raise
            run.mark_stopped("failed")
            raise lost from error
    run.history.meta["status"] = "completed"
    if config.stop_accuracy is not None:
        run.history.meta.setdefault("learned", False)
    return run.history


def stop_rule(
    history: History, config: TrainConfig, step: int, rows: dict[int, dict]
) -> bool:
    """Learn, then stop: whether training ends at this evaluation.

    ``rows`` are this step's held-out evaluations at the training lengths.
    The run has *learned* once their mean exact match reaches
    ``config.stop_accuracy`` in ``config.stop_patience`` evaluations in a
    row; ``history.meta`` records ``learned`` and the step,
    ``steps_to_learn``. A run that has learned stops at the first evaluation
    at or after ``config.min_steps``; one that reaches ``config.steps`` first
    ends with ``learned = False``.
    """
    meta = history.meta
    score = sum(r["exact_match"] for r in rows.values()) / len(rows)
    reached = score >= config.stop_accuracy
    streak = meta.get("stop_streak", 0) + 1 if reached else 0
    meta["stop_streak"] = streak
    if streak >= config.stop_patience and not meta.get("learned"):
        meta |= {"learned": True, "steps_to_learn": step}
    return bool(meta.get("learned")) and step >= config.min_steps


def evaluate_and_judge(run: TrainingRun, step: int) -> bool:
    """The evaluation every ``eval_every`` steps; returns whether to stop.

    Without a stop rule every length is evaluated (the last step's
    evaluation is left to the final one). With a stop rule only the training
    lengths are, cheaply, and :func:`stop_rule` judges them.
    """
    config, (low, high) = run.config, run.train_range
    if config.stop_accuracy is None:
        if step != config.end_step:
            evaluate_lengths(run, step, run.lengths)
        return False
    trained = [n for n in run.lengths if low <= n <= high]
    return stop_rule(
        run.history, config, step, evaluate_lengths(run, step, trained)
    )


def raise_if_diverged(run: TrainingRun) -> None:
    """When a loss or gradient norm since the last check was not finite: put
    the model and optimizer back to the last snapshot, save it marked
    ``"diverged"``, and raise :class:`TrainingDiverged`."""
    if not run.watch.diverged():
        return
    snapshot = run.snapshot
    run.model.load_state_dict(snapshot["model"])
    run.optimizer.load_state_dict(snapshot["optimizer"])
    run.mark_stopped("diverged")
    step = run.watch.first_step
    advice = divergence_advice(run.config, step)
    raise TrainingDiverged(
        f"training diverged at step {step}: {run.watch.what()}. The model "
        f"holds the weights of step {snapshot['step']}, the last snapshot; "
        + advice_text(run.config, advice),
        step=step,
        history=run.history,
        advice=advice,
    )
