"""The comparison dashboard's controls, and the sweep config they stand for.

:func:`comparison_controls` builds the widgets from their initial values
(checked once, here), :func:`controls_box` lays them out, and
:func:`comparison_sweep` turns the controls' current
values into one sweep config: the task, the lengths, the model and training
settings and a grid over ``model.positional`` and ``seed``.

Every encoding gets ``model.max_len`` = the sequence length of the longest
evaluated length, as the shipped ``length_<task>`` sweeps do: the learned
absolute table gets a row for every evaluated position (the rows past the
training length are never trained, and that is part of what the comparison
shows) and randomized draws its positions from 4× that; no other encoding
reads ``max_len``.
"""

from __future__ import annotations

import re

import ipywidgets as widgets

from annotated import lab
from annotated.positional import POSITIONAL_ENCODINGS
from annotated.tasks import TASKS, get_task

DEFAULT_ENCODINGS = ("nope", "rope", "alibi")
MODEL_WIDTHS = (16, 32, 64, 128, 256)  # the d_model slider's stops


def parse_lengths(text) -> list[int]:
    """``"12 16, 32"`` (or a list) → ``[12, 16, 32]``; else ValueError."""
    items = (
        list(text)
        if isinstance(text, list | tuple)
        else re.split(r"[\s,]+", str(text).strip())
    )
    items = [item for item in items if item != ""]
    try:
        lengths = [int(item) for item in items]
    except (TypeError, ValueError):
        raise ValueError(
            "evaluation lengths are whole numbers separated by spaces or "
            f"commas, e.g. '12 16 32'; got {text!r}"
        ) from None
    if any(n < 1 for n in lengths):
        raise ValueError(
            f"evaluation lengths must be positive, got {lengths}"
        )
    return lengths


def comparison_controls(
    *,
    task: str,
    encodings,
    steps: int,
    d_model: int,
    n_layers: int,
    train_length: int,
    eval_lengths,
    seeds: int,
) -> dict[str, widgets.ValueWidget]:
    """The dashboard's controls, by name, set to these initial values.

    ValueError for an unknown task or encoding, or a count that is not a
    positive integer.
    """
    if task not in TASKS:
        raise ValueError(
            f"unknown task {task!r}; choose one of {sorted(TASKS)} "
            "(or register_task it first)"
        )
    unknown = [e for e in encodings if e not in POSITIONAL_ENCODINGS]
    if unknown:
        raise ValueError(
            f"unknown positional encoding(s) {unknown}; "
            f"choose from {list(POSITIONAL_ENCODINGS)}"
        )
    for name, value in (
        ("steps", steps),
        ("n_layers", n_layers),
        ("train_length", train_length),
        ("seeds", seeds),
        ("d_model", d_model),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(
                f"{name} must be a positive integer, got {value!r}"
            )
    return {
        "task": widgets.Dropdown(
            options=sorted(TASKS), value=task, description="task"
        ),
        "encodings": widgets.SelectMultiple(
            options=list(POSITIONAL_ENCODINGS),
            value=tuple(encodings),
            rows=len(POSITIONAL_ENCODINGS),
            description="encodings",
        ),
        "steps": widgets.BoundedIntText(
            value=steps, min=1, max=10**6, description="steps"
        ),
        "d_model": widgets.SelectionSlider(
            options=sorted({*MODEL_WIDTHS, d_model}),
            value=d_model,
            description="d_model",
        ),
        "n_layers": widgets.IntSlider(
            value=n_layers,
            min=1,
            max=max(6, n_layers),
            description="layers",
        ),
        "train_length": widgets.IntSlider(
            value=train_length,
            min=1,
            max=max(64, train_length),
            description="train n",
        ),
        "eval_lengths": widgets.Text(
            value=" ".join(map(str, parse_lengths(eval_lengths))),
            description="eval n",
            placeholder="e.g. 12 16 32",
        ),
        "seeds": widgets.IntSlider(
            value=seeds, min=1, max=max(5, seeds), description="seeds"
        ),
    }


def controls_box(controls: dict) -> widgets.HBox:
    """The controls of :func:`comparison_controls` in three columns.

    The encodings; task, steps and model size; lengths and seeds."""
    c = controls
    model = [c["task"], c["steps"], c["d_model"], c["n_layers"]]
    lengths = [c["train_length"], c["eval_lengths"], c["seeds"]]
    return widgets.HBox(
        [c["encodings"], widgets.VBox(model), widgets.VBox(lengths)]
    )


def comparison_sweep(
    values: dict, *, fixed: dict, eval_every: int | None = None
) -> lab.ExperimentConfig:
    """The controls' ``values`` as one sweep config.

    A grid over the chosen encodings and seeds 0..seeds-1.

    ``fixed``: settings by the config section they fill (``"model"``,
    ``"train"``; None = the lab's default); ``eval_every`` defaults to a
    tenth of the steps. ValueError if the choice cannot be trained.
    """
    v = values
    if not v["encodings"]:
        raise ValueError(
            "choose at least one positional encoding "
            "(Ctrl/Cmd-click to choose several)"
        )
    train_length, eval_lengths = (
        v["train_length"],
        parse_lengths(v["eval_lengths"]),
    )
    shorter = [n for n in eval_lengths if n < train_length]
    if shorter:
        raise ValueError(
            f"evaluation length(s) {shorter} are shorter than the training "
            f"length {train_length}; this dashboard trains short and tests "
            "long: raise them or lower the training length"
        )
    steps = v["steps"]
    eval_every = max(1, steps // 10) if eval_every is None else eval_every
    # see the module docstring
    longest = get_task(v["task"]).seq_len(max([train_length, *eval_lengths]))
    model = {
        "d_model": v["d_model"],
        "n_layers": v["n_layers"],
        "max_len": longest,
    }
    train = {"steps": steps, "eval_every": eval_every}
    model |= {
        key: value
        for key, value in fixed["model"].items()
        if value is not None
    }
    train |= {
        key: value
        for key, value in fixed["train"].items()
        if value is not None
    }
    grid = {
        "model.positional": list(v["encodings"]),
        "seed": list(range(v["seeds"])),
    }
    return lab.ExperimentConfig(
        name=f"compare_{v['task']}",
        task=v["task"],
        train_length=train_length,
        eval_lengths=eval_lengths,
        model=model,
        train=train,
        grid=grid,
    )
