"""The figures of a run folder and of a sweep folder, drawn from the results
the lab already has.

A run folder gets ``curves.png`` (training loss, held-out accuracy),
``grad_norms.png``, ``accuracy_vs_length.png`` (the final evaluation at each
length) and, when the trained model is at hand, ``attention.png`` (every
head's weights on one held-out problem). A sweep folder gets one
``accuracy_vs_length.png``: each group's mean over seeds with its 95%
interval. :mod:`annotated.figures.curves` draws the curves.

matplotlib is imported when a figure is drawn, not with this module: a
command that makes no plot (``--help``, a refused config, a rank that
trains beside rank 0) never loads it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from annotated.core.atomic import write_atomic
from annotated.lab.tables import not_nan
from annotated.training.history import History


def save_figure(fig, path: Path) -> None:
    from annotated.figures import viz  # matplotlib: only once a plot is made

    write_atomic(path, viz.figure_png(fig))


def write_plots(
    folder: Path, history: History, model=None, task=None, length=None
) -> list[str]:
    """Draw a run's figures into ``folder``; return their file names."""
    if not history.steps:
        return []
    from annotated.figures import curves, viz

    plots = {}
    fig = viz.new_figure(figsize=(11, 3.6))
    ax_loss, ax_acc = fig.subplots(1, 2)
    curves.loss_curves(history, ax_loss)
    if history.evals:
        curves.accuracy_curves(history, ax_acc)
    plots["curves.png"] = fig
    fig = viz.new_figure(figsize=(6, 3.6))
    curves.grad_norm_curves(history, fig.subplots())
    plots["grad_norms.png"] = fig
    finals = history.final_evals()
    if finals:
        fig = viz.new_figure(figsize=(6, 3.6))
        lengths = sorted(finals)
        accuracy = {
            m.replace("_", " "): (lengths, [finals[n][m] for n in lengths])
            for m in ("exact_match", "token_accuracy")
        }
        curves.accuracy_vs_length(
            accuracy, fig.subplots(), train_length=length, ylabel="accuracy"
        )
        plots["accuracy_vs_length.png"] = fig
    if model is not None and task is not None and length is not None:
        fig = attention_figure(model, task, length)
        if fig is not None:
            plots["attention.png"] = fig
    for name, fig in plots.items():
        save_figure(fig, folder / name)
    return list(plots)


def attention_figure(model, task, length: int):
    """Every head's attention weights on one held-out problem of ``length``
    (a grid: a row per layer, a column per head), or None when the model's
    kernel returns no weights."""
    batch = task.sample(
        1, length, torch.Generator().manual_seed(0), split="val"
    )
    with torch.no_grad():
        # L × (1, H, T, T)
        attentions = model.eval()(batch.inputs, need_weights=True).attentions
    if not attentions or any(w is None for w in attentions):
        return None
    from annotated.figures import viz

    stack = torch.cat([w[0] for w in attentions])  # (L*H, T, T)
    heads = attentions[0].shape[1]
    ids = batch.inputs[0].tolist()
    labels = [task.token_names[i] for i in ids] if len(ids) <= 40 else None
    fig = viz.new_figure(figsize=(3.2 * heads + 0.8, 3.0 * len(attentions)))
    viz.head_grid(
        stack,
        query_labels=labels,
        key_labels=labels,
        ncols=heads,
        fig=fig,
        titles=[
            f"layer {i // heads} head {i % heads}" for i in range(len(stack))
        ],
    )
    return fig


def plot_group_accuracy(
    path: Path, group_rows: list[dict], keys: list[str], lengths, title: str
) -> None:
    """A sweep's ``accuracy_vs_length.png``: per group (labelled by its
    values of ``keys``), the mean exact match over seeds at each length with
    its 95% interval as error bars."""
    from annotated.figures import curves, viz

    groups = {}
    for g in group_rows:
        present = [
            n for n in lengths if g.get(f"exact_match@{n}") is not None
        ]
        means = [g[f"exact_match@{n}"] for n in present]
        lows = [
            not_nan(g.get(f"exact_match@{n}_ci_lo"), m)
            for n, m in zip(present, means)
        ]
        highs = [
            not_nan(g.get(f"exact_match@{n}_ci_hi"), m)
            for n, m in zip(present, means)
        ]
        errors = [
            [max(m - lo, 0.0) for m, lo in zip(means, lows)],
            [max(hi - m, 0.0) for m, hi in zip(means, highs)],
        ]
        label = ", ".join(str(g[k]) for k in keys) or title
        groups[label] = (present, means, errors)
    fig = viz.new_figure(figsize=(7, 4))
    curves.accuracy_vs_length(
        groups,
        fig.subplots(),
        ylabel="exact match (mean, 95% interval over seeds)",
    )
    save_figure(fig, path)
