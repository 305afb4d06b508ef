"""One trained run of a comparison, read back from its run folder.

Which encoding and seed, its config, report and history, its summary row and
one held-out example's attention.

:class:`~annotated.analysis.comparison.Comparison` holds one per run of a
sweep.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from annotated import lab
from annotated.lab.tables import read_csv, run_row
from annotated.models.transformer import load_model
from annotated.training.history import History

METRICS = ("exact_match", "token_accuracy", "loss")


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


@dataclass
class RunResult:
    """One trained run: encoding, seed, config, folder, report, history."""

    encoding: str
    seed: int
    config: lab.ExperimentConfig
    folder: Path
    report: dict
    history: History

    @classmethod
    def from_folder(
        cls, config: lab.ExperimentConfig, folder: Path
    ) -> RunResult:
        """The run of ``config``, read back from its run folder ``folder``."""
        report = (
            json.loads((folder / "report.json").read_text())
            if (folder / "report.json").is_file()
            else {}
        )
        history = History(
            read_csv(folder / "metrics.csv"), read_csv(folder / "eval.csv")
        )
        report.setdefault("status", "missing")
        encoding = lab.resolve(config).model_config.positional
        return cls(encoding, config.seed, config, folder, report, history)

    def row(self) -> dict:
        """A summary.csv row, plus ``ood_*``.

        ``ood_*`` is the mean over the evaluation lengths longer than
        training."""
        row = {
            "kind": "run",
            "run": self.folder.name,
            "status": self.report["status"],
        }
        row |= {"encoding": self.encoding, "seed": self.seed} | run_row(
            self.report
        )
        trained = self.report["in_distribution"]["length"]
        longer = [
            r
            for n, r in self.report["per_length"].items()
            if int(n) > trained
        ]
        for metric in METRICS:
            row[f"ood_{metric}"] = _mean(r.get(metric) for r in longer)
        return row

    def attention_example(
        self, length: int
    ) -> tuple[list[torch.Tensor], list[str]]:
        """The attention weights (one ``(1, H, T, T)`` per layer) and token
        labels of one held-out example of ``length`` — the example of the run
        folder's attention.png."""
        model = load_model(self.folder / "model.pt").eval()
        task = lab.resolve(self.config).task
        batch = task.sample(
            1, length, torch.Generator().manual_seed(0), split="val"
        )
        with torch.no_grad():
            # L × (1, H, T, T)
            attentions = model(batch.inputs, need_weights=True).attentions
        return list(attentions), [
            task.token_names[i] for i in batch.inputs[0].tolist()
        ]
