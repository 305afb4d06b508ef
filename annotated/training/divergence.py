"""What to change after a run diverged: advice that applies to its config,
with values to try.

A loss that turns NaN or inf means a step went too far. These fields of
:class:`~annotated.training.config.TrainConfig` shorten the steps, and each
is advised only where it would change something:

- ``lr``, always: a tenth of it (and of ``muon_lr`` when Muon trains);
- ``warmup_steps``, when the run diverged early (within the warm-up or the
  first tenth of the steps), where a longer ramp keeps the first steps
  small: the larger of twice the warm-up and a tenth of the steps;
- ``grad_clip``, only when clipping is off: 1.0.

All are fields a run may change when it resumes
(:data:`~annotated.training.config.MID_RUN`), so the advice can be handed
on as a command (the lab's ``resume RUN --lr …``).
"""

from __future__ import annotations

from annotated.training.config import TrainConfig

__all__ = ["advice_text", "divergence_advice"]


def divergence_advice(config: TrainConfig, step: int) -> dict:
    """``{field: value to try}`` for a run that diverged at ``step``.

    >>> divergence_advice(TrainConfig(lr=0.1, warmup_steps=0), 19)
    {'lr': 0.01, 'warmup_steps': 100}
    """
    advice = {"lr": float(f"{config.lr / 10:.3g}")}
    if config.optimizer == "muon":
        advice["muon_lr"] = float(f"{config.muon_lr / 10:.3g}")
    early = step <= max(config.warmup_steps, config.steps // 10)
    longer = min(
        config.steps, max(2 * config.warmup_steps, config.steps // 10)
    )
    if early and longer > config.warmup_steps:
        advice["warmup_steps"] = longer
    if config.grad_clip is None:
        advice["grad_clip"] = 1.0
    return advice


def advice_text(config: TrainConfig, advice: dict) -> str:
    """The advice in words: ``"lower lr (0.1; try 0.01) or raise
    warmup_steps (0; try 100)"``."""
    verbs = {"warmup_steps": "raise", "grad_clip": "set"}  # else "lower"
    now = {n: getattr(config, n) for n in advice}
    parts = [
        f"{verbs.get(n, 'lower')} {n} "
        f"({'off' if now[n] is None else now[n]}; try {v})"
        for n, v in advice.items()
    ]
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " or " + parts[-1]
