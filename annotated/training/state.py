"""The state of a training run: what the loop carries from step to step, and
what a checkpoint holds to continue it.

:class:`TrainingRun` is everything :func:`~annotated.training.loop.train`
works on: the model, the optimiser, the step, the data and position
generators, the :class:`~annotated.training.history.History` and the last
snapshot. :func:`training_state` turns it into a dict (weights, AdamW
moments, every RNG, the history) from which :meth:`TrainingRun.resume`
continues exactly where the run stood: same data, positions, dropout masks
and optimizer moments. :class:`StepWatch` keeps what the steps saw between
two host syncs: the first non-finite loss or gradient norm, and the tokens.

Three random streams, each seeded from ``TrainConfig.seed``: the data
(``seed``), dropout through the global RNG (``seed + 1``, inside a fork that
leaves the caller's RNG as it was; each rank of a data-parallel run has its
own, :func:`~annotated.training.distributed.dropout_seed`) and randomized
positions (``seed + 2``).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from annotated.tasks import Task, get_task
from annotated.training.config import TrainConfig
from annotated.training.distributed import (
    Ranks,
    check_examples_per_step,
    current_ranks,
    dropout_seed,
)
from annotated.training.evaluation import check_lengths, length_range
from annotated.training.history import History, layer_groups
from annotated.training.optim import make_optimizer

__all__ = ["StepWatch", "TrainingRun", "training_state"]


@dataclass
class TrainingRun:
    """What a run holds while it trains. ``step`` is the last step done;
    ``snapshot`` the state to fall back to (see :func:`training_state`)."""

    model: torch.nn.Module
    task: Task
    config: TrainConfig
    device: torch.device
    optimizer: torch.optim.Optimizer
    # each step draws a length in low..high
    train_range: tuple[int, int]
    # the lengths evaluated at the end, ascending: eval_lengths and high
    lengths: list[int]
    data_rng: torch.Generator
    # randomized positions: a stream apart from the data
    position_rng: torch.Generator
    # this process's place among the ranks (data-parallel under torchrun)
    ranks: Ranks = field(default_factory=Ranks)
    history: History = field(default_factory=History)
    step: int = 0
    snapshot: dict | None = None
    # called as callback("step" | "eval", row) after each record
    callback: Callable[[str, dict], None] | None = None
    # called with a training_state to save
    checkpoint: Callable[[dict], None] | None = None
    # set by prepare(): the model to call (compiled or not), parameters
    # by layer, and the clock's zero (earlier runs' time included)
    forward: torch.nn.Module | None = field(default=None, init=False)
    layers: dict[str, list] = field(default_factory=dict, init=False)
    clock_start: float = field(default=0.0, init=False)
    # set by begin(): what the steps saw since the last host sync
    watch: StepWatch | None = field(default=None, init=False)

    @classmethod
    def start(
        cls,
        model: torch.nn.Module,
        task: Task | str,
        config: TrainConfig,
        device: torch.device,
        train_length,
        eval_lengths: Sequence[int],
    ) -> TrainingRun:
        """A fresh run on ``device``; a length the model cannot run is
        refused before anything moves."""
        task = get_task(task)
        low, high = length_range(train_length)
        lengths = sorted({high, *eval_lengths})
        model_config = getattr(model, "config", None)
        check_lengths(model_config, task, sorted({low, *lengths}))
        model.to(device)
        return cls(
            model=model,
            task=task,
            config=config,
            device=device,
            optimizer=make_optimizer(model, config),
            train_range=(low, high),
            lengths=lengths,
            data_rng=torch.Generator().manual_seed(config.seed),
            position_rng=torch.Generator().manual_seed(config.seed + 2),
            ranks=current_ranks(),
        )

    def resume(self, state: dict) -> None:
        """Continue from a :func:`training_state`: weights, optimizer
        moments, data and position streams, history and step."""
        check_examples_per_step(state, self.config, self.ranks)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.data_rng.set_state(state["data_rng"])
        if "position_rng" in state:
            self.position_rng.set_state(state["position_rng"])
        self.history = History.from_dict(state["history"])
        self.step = int(state["step"])

    def prepare(self) -> None:
        """What the steps need: the model to call (compiled when
        ``config.compile``), the parameters by layer, the clock."""
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        compile_ = self.config.compile
        model = self.ranks.wrap(self.model, self.device)
        self.forward = torch.compile(model) if compile_ else model
        self.layers = layer_groups(self.model)
        self.history.meta["device"] = str(self.device)
        if self.ranks.size > 1:
            self.history.meta["ranks"] = self.ranks.size
        if self.config.stop_accuracy is not None:
            self.history.meta |= {
                "stop_accuracy": self.config.stop_accuracy,
                "stop_patience": self.config.stop_patience,
            }
        # training time so far, across resumes
        spent = self.history.meta.get("train_time_s", 0.0)
        self.clock_start = time.perf_counter() - spent

    @property
    def params(self) -> list[torch.nn.Parameter]:
        """The trainable parameters, layer by layer."""
        return [p for ps in self.layers.values() for p in ps]

    @property
    def cuda_devices(self) -> list[torch.device]:
        """The devices whose RNG dropout draws from, besides the CPU's."""
        return [self.device] if self.device.type == "cuda" else []

    def begin(self, resume_state: dict | None) -> None:
        """Seed dropout's stream (the global RNG, forked by the caller), take
        the first snapshot and switch to training mode."""
        torch.manual_seed(dropout_seed(self.config.seed, self.ranks))
        if resume_state is not None:
            # this rank's own streams, when the ranks saved theirs
            by_rank = resume_state.get("rank_rngs", [])
            if len(by_rank) == self.ranks.size:
                resume_state = resume_state | by_rank[self.ranks.rank]
            torch.set_rng_state(resume_state["torch_rng"])
            if "cuda_rng" in resume_state and self.cuda_devices:
                torch.cuda.set_rng_state_all(resume_state["cuda_rng"])
        self.take_snapshot(save=False)
        self.watch = StepWatch(self.device)
        self.model.train()

    def take_snapshot(self, *, save: bool) -> None:
        """Keep the state to fall back to; ``save`` also hands it to the
        checkpoint function."""
        self.snapshot = copy.deepcopy(training_state(self))
        if save and self.checkpoint:
            self.checkpoint(self.snapshot)

    def mark_stopped(self, status: str) -> None:
        """Record why training stopped early and save the last snapshot,
        marked, so a stopped run can always be resumed."""
        self.history.meta["status"] = status
        if self.checkpoint:
            self.checkpoint(self.snapshot | {"status": status})

    def record_time(self) -> None:
        """The steps done and the training time so far, in the history."""
        self.history.meta |= {
            "steps_done": self.step,
            "train_time_s": time.perf_counter() - self.clock_start,
        }


def training_state(run: TrainingRun) -> dict:
    """Everything needed to continue exactly where ``run`` stands: weights,
    AdamW moments, every RNG, the history and the config."""
    state = {
        "step": run.step,
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
    }
    state |= {
        "data_rng": run.data_rng.get_state(),
        "torch_rng": torch.get_rng_state(),
        "history": run.history.to_dict(),
    }
    state |= {"train_config": run.config.to_dict()}
    state["position_rng"] = run.position_rng.get_state()
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    if run.ranks.size > 1:  # dropout's stream differs between ranks
        rngs = {k: state[k] for k in ("torch_rng", "cuda_rng") if k in state}
        state["rank_rngs"] = run.ranks.gather(rngs)
    return state


class StepWatch:
    """What the steps since the last host sync saw: the first step whose
    loss or gradient norm was not finite (kept on the device), and the
    tokens trained on since the last log (for tokens/s)."""

    def __init__(self, device: torch.device):
        self.first = torch.zeros((), dtype=torch.long, device=device)
        self.loss = torch.zeros((), device=device)
        self.norm = torch.zeros((), device=device)
        self.first_step = 0
        self.tokens, self.since = 0, time.perf_counter()

    def record(
        self, step: int, loss: torch.Tensor, norm: torch.Tensor
    ) -> None:
        finite = torch.isfinite(loss) & torch.isfinite(norm)
        new = (self.first == 0) & ~finite
        self.first = torch.where(new, step, self.first)
        self.loss = torch.where(new, loss.float(), self.loss)
        self.norm = torch.where(new, norm.float(), self.norm)

    def diverged(self) -> bool:
        """Whether a step has been non-finite (the host sync)."""
        self.first_step = int(self.first)
        return self.first_step > 0

    def what(self) -> str:
        """Which value was not finite, in words."""
        loss = float(self.loss)
        if not math.isfinite(loss):
            return f"the loss is {loss}"
        return f"the gradient norm is {float(self.norm)}"

    def throughput(self) -> float:
        """Tokens per second since the last call."""
        now = time.perf_counter()
        rate = self.tokens / max(now - self.since, 1e-9)
        self.tokens, self.since = 0, now
        return rate
