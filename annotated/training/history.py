"""What training records: the :class:`History` of a run, gradient norms per
layer, peak memory.

:class:`History` holds one dict per logged step (loss, lr, gradient norm in
total and per layer, tokens/s) and one per evaluation and length (see
:mod:`annotated.training.evaluation`), ready for ``csv.DictWriter``; the lab
writes them to ``metrics.csv`` and ``eval.csv``.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field

import torch


@dataclass
class History:
    """What training logged: ``steps`` (one dict per logged step) and
    ``evals`` (one dict per evaluation and length), ready for
    ``csv.DictWriter``; ``meta`` holds totals (time, device…)."""

    steps: list[dict] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def series(
        self, key: str, *, length: int | None = None
    ) -> tuple[list[int], list[float]]:
        """``(steps, values)`` of one metric: a step metric, or an eval metric
        at ``length``."""
        rows = (
            self.steps
            if length is None
            else [r for r in self.evals if r["length"] == length]
        )
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
        return {
            "steps": [dict(r) for r in self.steps],
            "evals": [dict(r) for r in self.evals],
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, state: dict) -> History:
        return cls(
            [dict(r) for r in state["steps"]],
            [dict(r) for r in state["evals"]],
            dict(state.get("meta", {})),
        )


def layer_groups(
    model: torch.nn.Module,
) -> dict[str, list[torch.nn.Parameter]]:
    """Parameters grouped by layer: ``blocks.0.attn.q.weight`` → ``blocks.0``;
    others by their module."""
    groups: dict[str, list] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            numbered = re.match(r"^(.*?\.\d+)\.", name)
            groups.setdefault(
                numbered.group(1)
                if numbered
                else name.rpartition(".")[0] or name,
                [],
            ).append(param)
    return groups


def grad_norms(
    groups: dict[str, list[torch.nn.Parameter]],
) -> dict[str, torch.Tensor]:
    """The gradient's L2 norm per group (a parameter without a gradient counts
    as 0); their L2 norm is the total norm that clipping sees."""

    def norm(p: torch.nn.Parameter) -> torch.Tensor:
        return (
            torch.linalg.vector_norm(p.grad.float())
            if p.grad is not None
            else torch.zeros((), device=p.device)
        )

    return {
        name: torch.linalg.vector_norm(torch.stack([norm(p) for p in ps]))
        for name, ps in groups.items()
    }


def peak_memory_bytes(device: torch.device) -> int:
    """Peak memory so far: allocated CUDA memory on a GPU, the process's peak
    RSS on the CPU."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # macOS reports bytes, Linux KiB
        return int(peak if sys.platform == "darwin" else peak * 1024)
    except ImportError:  # Windows
        import psutil

        return int(psutil.Process().memory_info().peak_wset)
