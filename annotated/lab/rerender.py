"""Re-rendering: rebuild a run's or a sweep's reports, plots and summary
from the files it wrote.

The rendering itself lives in :mod:`annotated.lab.reports` and
:mod:`annotated.lab.summary`; here a folder's
CSVs, config.yaml and model.pt are read back, so a report can be redrawn after
the plotting code changes, or after a file was deleted, without training
again.
"""

from __future__ import annotations

from pathlib import Path

from annotated.lab.config import ExperimentConfig, read_yaml_file
from annotated.lab.reports import write_report
from annotated.lab.summary import read_report, write_summary
from annotated.lab.tables import read_csv
from annotated.lab.validation import resolve
from annotated.models.summary import count_parameters
from annotated.models.transformer import load_model
from annotated.training.evaluation import length_range
from annotated.training.history import History
from annotated.training.seq2seq import PairedBatches, PairedEncoderDecoder


def report(path) -> Path:
    """Re-render report.json / report.md / plots of a run folder, or of
    every run of a sweep and its summary."""
    path = Path(path)
    if (path / "sweep.yaml").is_file():
        for child in sorted(
            p for p in path.iterdir() if (p / "config.yaml").is_file()
        ):
            rerender_run(child)
        write_summary(path)
    elif (path / "config.yaml").is_file():
        rerender_run(path)
    else:
        raise ValueError(
            f"{path} is neither a run folder (config.yaml) nor a sweep "
            "folder (sweep.yaml)"
        )
    return path


def rerender_run(folder: Path) -> dict:
    """Rebuild a run's plots and reports from its CSVs (and its model.pt for
    the attention maps)."""
    info = read_report(folder)
    config = read_yaml_file(folder / "config.yaml")
    missing = [
        k
        for k in ("name", "task", "train_length", "eval_lengths")
        if k not in config
    ]
    if missing:
        raise ValueError(
            f"{folder / 'config.yaml'} is damaged: it lacks {missing}"
        )
    info = {
        k: v
        for k, v in info.items()
        if k not in ("per_length", "in_distribution", "generalisation_gap")
    }
    low, high = length_range(config["train_length"])
    info = {
        "name": config["name"],
        "task": config["task"],
        "train_length": [low, high],
        "eval_lengths": config["eval_lengths"],
        "parameters": None,
        "device": None,
        "status": "unknown",
    } | info
    history = History(
        read_csv(folder / "metrics.csv"), read_csv(folder / "eval.csv")
    )
    history.meta = {
        "steps_done": info.get("steps_done"),
        "train_time_s": info.get("train_time_s"),
    }
    model = task = None
    if (folder / "model.pt").is_file():
        try:
            model = load_model(folder / "model.pt")
            task = resolve(
                ExperimentConfig.from_file(folder / "config.yaml")
            ).task
            if isinstance(task, PairedBatches):  # reads source | answer
                model = PairedEncoderDecoder.from_model(
                    model, task.answer_len(high)
                )
            info["parameters"] = count_parameters(model)
        except (ValueError, OSError):
            model = None
    return write_report(
        folder, info, history, model=model, task=task, length=high
    )
