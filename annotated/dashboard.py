"""The comparison dashboard: train one model per positional encoding and compare them (week 6).

The question of the length-generalisation chapter — which positional encoding lets a model
trained on short problems solve longer ones (Kazemnejad et al. 2023; Ruoss et al. 2023;
Press et al. 2022) — asked with controls: a task, the encodings, the training steps, the
model size (width and depth), the training length, the longer evaluation lengths and the
number of seeds. "Train" trains one model per encoding and seed, then shows the summary
table (in- and out-of-distribution exact match, token accuracy and loss, and the gap), the
learning curves, accuracy against length and one example's attention maps per encoding.

It has no training code of its own. Each choice becomes a command line
``python -m annotated train …`` (:meth:`ComparisonDashboard.command_lines`), which the CLI's
own parser and :func:`annotated.__main__.experiment_from_args` turn into an
:class:`~annotated.lab.ExperimentConfig` (:meth:`ComparisonDashboard.configs`), and
:func:`annotated.lab.run` trains it into a run folder, exactly as the command line does. So the
dashboard and the CLI give the same numbers for the same choice, and every run can be
re-rendered or resumed like any other. The table's rows are those of a sweep's summary.csv
(:func:`annotated.reports.run_row`, mean and std over seeds by
:func:`annotated.reports.group_statistics`).

The learned absolute encoding has no vector past its table, so the dashboard sizes its table
to the longest evaluation length (``--max-len``). The rows past the training length are never
trained, and that is part of what the comparison shows.

Training runs synchronously in the kernel (the controls wait). :meth:`ComparisonDashboard.train`
does the same from code or tests. Where no widget front end exists (the rendered book, a
terminal), the dashboard shows the table and a static summary figure (PNG) once it has trained.
"""

from __future__ import annotations

import base64
import html
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import ipywidgets as widgets
import torch
from matplotlib.ticker import LogFormatter

from annotated import lab
from annotated.models import load_model
from annotated.positional import POSITIONAL_ENCODINGS
from annotated.reports import group_statistics, read_csv, run_row
from annotated.tasks import TASKS
from annotated.train import History
from annotated.viz import accuracy_vs_length, attention_heatmap, figure_png, new_figure
from annotated.widgets import AttentionExplorer

DEFAULT_ENCODINGS = ("nope", "rope", "alibi")
MODEL_WIDTHS = (16, 32, 64, 128, 256)  # the d_model slider's stops
METRICS = ("exact_match", "token_accuracy", "loss")


def parse_lengths(text) -> list[int]:
    """``"12 16, 32"`` (or a list) → ``[12, 16, 32]``; anything else raises ValueError."""
    items = list(text) if isinstance(text, list | tuple) else re.split(r"[\s,]+", str(text).strip())
    items = [item for item in items if item != ""]
    try:
        lengths = [int(item) for item in items]
    except (TypeError, ValueError):
        raise ValueError(f"evaluation lengths are whole numbers separated by spaces or commas, e.g. '12 16 32'; "
                         f"got {text!r}") from None  # fmt: skip
    if any(n < 1 for n in lengths):
        raise ValueError(f"evaluation lengths must be positive, got {lengths}")
    return lengths


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


@dataclass
class RunResult:
    """One trained run: which encoding and seed, its config, its run folder, report.json and history."""

    encoding: str
    seed: int
    config: lab.ExperimentConfig
    folder: Path
    report: dict
    history: History

    def row(self) -> dict:
        """A summary.csv row, plus ``ood_*``: the mean over the evaluation lengths longer than training."""
        row = {"kind": "run", "run": self.folder.name, "status": self.report["status"]}
        row |= {"encoding": self.encoding, "seed": self.seed} | run_row(self.report)
        trained = self.report["in_distribution"]["length"]
        longer = [r for n, r in self.report["per_length"].items() if int(n) > trained]
        for metric in METRICS:
            row[f"ood_{metric}"] = _mean(r.get(metric) for r in longer)
        return row

    def attention_example(self, length: int) -> tuple[list[torch.Tensor], list[str]]:
        """The attention weights (one ``(1, H, T, T)`` per layer) and token labels of one held-out
        example of ``length`` — the example of the run folder's attention.png."""
        model = load_model(self.folder / "model.pt").eval()
        task = lab.resolve(self.config).task
        batch = task.sample(1, length, torch.Generator().manual_seed(0), split="val")
        with torch.no_grad():
            attentions = model(batch.inputs, need_weights=True).attentions  # L × (1, H, T, T)
        return list(attentions), [task.token_names[i] for i in batch.inputs[0].tolist()]


@dataclass
class Comparison:
    """What one press of "Train" produced: the runs, their table and their figure."""

    task: str
    train_length: int
    eval_lengths: list[int]
    runs: list[RunResult]

    @property
    def encodings(self) -> list[str]:
        return list(dict.fromkeys(r.encoding for r in self.runs))

    @property
    def lengths(self) -> list[int]:
        return sorted({self.train_length, *self.eval_lengths})

    def rows(self) -> list[dict]:
        return [r.row() for r in self.runs]

    def groups(self) -> list[dict]:
        """One row per encoding: mean and ``*_std`` over its seeds of every metric."""
        return group_statistics(self.rows(), ["encoding", "seed"])

    def table_html(self) -> str:
        """The summary as an HTML table: one row per encoding, mean ± std over seeds."""
        n_seeds = len({r.seed for r in self.runs})
        longer = [n for n in self.lengths if n > self.train_length]

        def cell(g, key):
            if g.get(key) is None:
                return "–"
            return f"{g[key]:.3f}" if n_seeds == 1 else f"{g[key]:.3f} ± {g[f'{key}_std']:.3f}"

        columns = [("in-dist exact match", "in_dist_exact_match"), ("in-dist token acc.", "in_dist_token_accuracy"),
                   ("in-dist loss", "in_dist_loss"), ("OOD exact match", "ood_exact_match"),
                   ("OOD token acc.", "ood_token_accuracy"), ("OOD loss", "ood_loss"),
                   ("gap (exact match)", "gap_exact_match")]  # fmt: skip
        columns += [(f"exact match n={n}", f"exact_match@{n}") for n in self.lengths]
        head = "".join(f"<th>{html.escape(title)}</th>" for title in ["encoding", "runs", *[c[0] for c in columns]])
        body = "".join(
            f"<tr><td><b>{html.escape(g['encoding'])}</b></td><td>{html.escape(g['status'])}</td>"
            + "".join(f"<td>{cell(g, key)}</td>" for _, key in columns)
            + "</tr>"
            for g in self.groups()
        )
        ood = f"mean over n = {', '.join(map(str, longer))}" if longer else "no longer lengths evaluated"
        spread = "one seed" if n_seeds == 1 else f"mean ± std over {n_seeds} seeds"
        caption = (f"Task <code>{html.escape(self.task)}</code>, trained at n = {self.train_length}; "
                   f"out of distribution (OOD) = {ood}; gap = in-dist − OOD; {spread}.")  # fmt: skip
        return (f'<table style="text-align:right"><caption style="caption-side:top">{caption}</caption>'
                f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")  # fmt: skip

    def figure(self):
        """Learning curves, accuracy vs length, and per encoding the attention maps (mean over heads,
        one row per layer) of one held-out example at the training length."""
        colors = {e: f"C{i}" for i, e in enumerate(self.encodings)}
        examples = {e: next(r for r in self.runs if r.encoding == e).attention_example(self.train_length)
                    for e in self.encodings}  # fmt: skip
        n_layers = max(len(attentions) for attentions, _ in examples.values())
        fig = new_figure(figsize=(max(13, 3.4 * len(examples)), 3.8 + 3.2 * n_layers), layout="constrained")
        top, bottom = fig.subfigures(2, 1, height_ratios=[3.8, 3.2 * n_layers])
        ax_loss, ax_acc, ax_len = top.subplots(1, 3)
        longest = self.lengths[-1]
        for run in self.runs:
            first = run is next(r for r in self.runs if r.encoding == run.encoding)
            color = colors[run.encoding]
            ax_loss.plot(*run.history.series("loss"), color=color, lw=0.8, alpha=0.8,
                         label=run.encoding if first else None)  # fmt: skip
            for length, style in {self.train_length: "-", longest: "--"}.items():
                ax_acc.plot(*run.history.series("exact_match", length=length), style, color=color, marker="o", ms=3,
                            label=f"{run.encoding} n={length}" if first else None)  # fmt: skip
        ax_loss.set(yscale="log", xlabel="step", ylabel="cross-entropy (nats)", title="training loss")
        ax_loss.yaxis.set_major_formatter(LogFormatter())  # 2.3, not 2.3×10⁰
        ax_loss.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
        ax_acc.set(ylim=(-0.02, 1.02), xlabel="step", ylabel="exact match",
                   title=f"held-out exact match (solid n={self.train_length}, dashed n={longest})")  # fmt: skip
        for ax in (ax_loss, ax_acc):
            ax.legend(fontsize=7)
        curves = {}
        for g in self.groups():
            present = [n for n in self.lengths if g.get(f"exact_match@{n}") is not None]
            curves[g["encoding"]] = (present, [g[f"exact_match@{n}"] for n in present],
                                     [g[f"exact_match@{n}_std"] for n in present])  # fmt: skip
        accuracy_vs_length(curves, ax_len, train_length=self.train_length, ylabel="exact match (mean ± std)")
        axes = bottom.subplots(n_layers, len(examples), squeeze=False)  # (layers, encodings)
        for column, (encoding, (attentions, labels)) in enumerate(examples.items()):
            labels = labels if len(labels) <= 40 else None
            for layer in range(n_layers):
                ax = axes[layer, column]
                if layer >= len(attentions) or attentions[layer] is None:
                    ax.axis("off")
                    continue
                attention_heatmap(attentions[layer][0].mean(0), ax, query_labels=labels, key_labels=labels,
                                  colorbar=False, title=f"{encoding}: layer {layer}, mean over heads")  # fmt: skip
        bottom.suptitle(f"attention of one held-out example at n = {self.train_length}", fontsize=10)
        return fig


class ComparisonDashboard:
    """Controls → one ``python -m annotated train`` per encoding and seed → table and figures.

    The keyword arguments are the controls' initial values (``encodings`` a list of names in
    ``POSITIONAL_ENCODINGS``; ``eval_lengths`` a list or ``"12 16 32"``; ``seeds`` the number of
    seeds, 0..seeds-1). ``n_heads``, ``batch_size``, ``lr``, ``eval_every`` (default steps // 10),
    ``eval_batches`` and ``device`` are fixed settings passed on as the CLI's flags (None = the
    CLI's default). Run folders go to ``out_dir``, as with ``--out``.
    """

    def __init__(self, *, task: str = "sort", encodings=DEFAULT_ENCODINGS, steps: int = 500, d_model: int = 64,
                 n_layers: int = 2, train_length: int = 8, eval_lengths=(12, 16, 32), seeds: int = 1,
                 n_heads: int = 4, batch_size: int | None = None, lr: float | None = None,
                 eval_every: int | None = None, eval_batches: int | None = None, device: str | None = None,
                 out_dir="experiments"):  # fmt: skip
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; choose one of {sorted(TASKS)} (or register_task it first)")
        unknown = [e for e in encodings if e not in POSITIONAL_ENCODINGS]
        if unknown:
            raise ValueError(f"unknown positional encoding(s) {unknown}; choose from {list(POSITIONAL_ENCODINGS)}")
        for name, value in (("steps", steps), ("n_layers", n_layers), ("train_length", train_length),
                            ("seeds", seeds), ("d_model", d_model)):  # fmt: skip
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.fixed = {"heads": n_heads, "batch-size": batch_size, "lr": lr, "eval-batches": eval_batches,
                      "device": device}  # fmt: skip
        self.eval_every, self.out_dir = eval_every, Path(out_dir)
        self.controls = {
            "task": widgets.Dropdown(options=sorted(TASKS), value=task, description="task"),
            "encodings": widgets.SelectMultiple(options=list(POSITIONAL_ENCODINGS), value=tuple(encodings),
                                                rows=len(POSITIONAL_ENCODINGS), description="encodings"),
            "steps": widgets.BoundedIntText(value=steps, min=1, max=10**6, description="steps"),
            "d_model": widgets.SelectionSlider(options=sorted({*MODEL_WIDTHS, d_model}), value=d_model,
                                               description="d_model"),
            "n_layers": widgets.IntSlider(value=n_layers, min=1, max=max(6, n_layers), description="layers"),
            "train_length": widgets.IntSlider(value=train_length, min=1, max=max(64, train_length),
                                              description="train n"),
            "eval_lengths": widgets.Text(value=" ".join(map(str, parse_lengths(eval_lengths))),
                                         description="eval n", placeholder="e.g. 12 16 32"),
            "seeds": widgets.IntSlider(value=seeds, min=1, max=max(5, seeds), description="seeds"),
        }  # fmt: skip
        self.button = widgets.Button(description="Train", button_style="primary", icon="play")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="idle")
        self.status, self.commands, self.table = widgets.HTML(), widgets.HTML(), widgets.HTML()
        self.image = widgets.Image(format="png")
        self.result: Comparison | None = None
        self._png: bytes | None = None
        self.button.on_click(lambda _button: self.train_clicked())
        for control in self.controls.values():
            control.observe(lambda _change: self.show_commands(), names="value")
        c = self.controls
        self.widget = widgets.VBox([
            widgets.HBox([c["encodings"], widgets.VBox([c["task"], c["steps"], c["d_model"], c["n_layers"]]),
                          widgets.VBox([c["train_length"], c["eval_lengths"], c["seeds"]])]),
            widgets.HBox([self.button, self.progress]), self.status, self.commands, self.table, self.image,
        ])  # fmt: skip
        self.show_commands()

    @property
    def values(self) -> dict:
        return {name: control.value for name, control in self.controls.items()}

    def plan(self) -> list[tuple[str, int, list[str]]]:
        """``(encoding, seed, CLI arguments)`` per run; ValueError if the choice cannot be trained."""
        v = self.values
        if not v["encodings"]:
            raise ValueError("choose at least one positional encoding (Ctrl/Cmd-click to choose several)")
        train_length, eval_lengths = v["train_length"], parse_lengths(v["eval_lengths"])
        shorter = [n for n in eval_lengths if n < train_length]
        if shorter:
            raise ValueError(f"evaluation length(s) {shorter} are shorter than the training length {train_length}; "
                             "this dashboard trains short and tests long: raise them or lower the training length")  # fmt: skip
        steps = v["steps"]
        eval_every = max(1, steps // 10) if self.eval_every is None else self.eval_every
        common = ["--task", v["task"], "--train-length", str(train_length), "--steps", str(steps),
                  "--d-model", str(v["d_model"]), "--layers", str(v["n_layers"]), "--eval-every", str(eval_every)]  # fmt: skip
        if eval_lengths:
            common += ["--eval-lengths", *map(str, eval_lengths)]
        common += [arg for flag, value in self.fixed.items() if value is not None for arg in (f"--{flag}", str(value))]
        runs = []
        for encoding in v["encodings"]:
            extra = []
            if encoding == "learned":  # a table row for every evaluated position (see the module docstring)
                extra = ["--max-len", str(TASKS[v["task"]].seq_len(max([train_length, *eval_lengths])))]
            for seed in range(v["seeds"]):
                name = f"{v['task']}_{encoding}-seed={seed}"
                runs.append((encoding, seed, ["train", *common, "--pe", encoding, *extra, "--seed", str(seed),
                                              "--name", name, "--out", str(self.out_dir)]))  # fmt: skip
        return runs

    def command_lines(self) -> list[str]:
        """The same runs as shell commands."""
        return [shlex.join(["python", "-m", "annotated", *argv]) for _, _, argv in self.plan()]

    def configs(self) -> list[lab.ExperimentConfig]:
        """One checked ExperimentConfig per run, built by the CLI's parser from :meth:`plan`'s arguments."""
        from annotated.__main__ import build_parser, experiment_from_args

        parser, configs = build_parser(), []
        for _, _, argv in self.plan():
            try:
                args = parser.parse_args(argv)
            except SystemExit:
                raise ValueError(f"the command line refused: {shlex.join(argv)}") from None
            config = experiment_from_args(args)
            lab.resolve(config)  # raises ValueError saying what to change
            configs.append(config)
        return configs

    def train(self, *, progress: bool = False) -> Comparison:
        """Train every run with :func:`annotated.lab.run` (``progress``: a tqdm bar per run as well)
        and show the result."""
        plan, configs = self.plan(), self.configs()
        total = sum(config.train["steps"] for config in configs)
        self.progress.max, self.progress.value = total, 0
        runs, done = [], 0
        for (encoding, seed, _), config in zip(plan, configs):
            self.progress.description = f"{encoding} s{seed}"

            def advance(kind, row, done=done):
                if kind == "step":
                    self.progress.value = done + row["step"]

            folder = lab.run(config, self.out_dir, progress=progress, callback=advance)
            report = json.loads((folder / "report.json").read_text())
            history = History(read_csv(folder / "metrics.csv"), read_csv(folder / "eval.csv"))
            runs.append(RunResult(encoding, seed, config, folder, report, history))
            done += config.train["steps"]
        self.progress.description = "done"
        v = self.values
        self.result = Comparison(v["task"], v["train_length"], parse_lengths(v["eval_lengths"]), runs)
        self._png = figure_png(self.result.figure())
        self.table.value, self.image.value = self.result.table_html(), self._png
        self.status.value = f"trained {len(runs)} run(s) into <code>{html.escape(str(self.out_dir))}</code>"
        return self.result

    def train_clicked(self) -> None:
        """The button: train, or say in the status line why not."""
        self.button.disabled = True
        self.status.value = "<i>training…</i>"
        try:
            self.train()
        except Exception as error:  # a bad choice (ValueError) or a failed run (its folder says more)
            self.status.value = f'<span style="color:#b00020"><b>cannot train:</b> {html.escape(str(error))}</span>'
        finally:
            self.button.disabled = False

    def show_commands(self) -> None:
        """Refresh the command lines shown under the controls (or the reason the choice is refused)."""
        try:
            lines = "\n".join(self.command_lines())
            self.commands.value = ("<details><summary>the same runs from the command line</summary>"
                                   f"<pre>{html.escape(lines)}</pre></details>")  # fmt: skip
        except ValueError as error:
            self.commands.value = f'<span style="color:#b00020">{html.escape(str(error))}</span>'

    def explorer(self, encoding: str, *, seed: int | None = None, length: int | None = None) -> AttentionExplorer:
        """Browse one trained run's attention (every layer and head) on one held-out example."""
        if self.result is None:
            raise ValueError("nothing trained yet: call train() (or press Train) first")
        run = next((r for r in self.result.runs if r.encoding == encoding and seed in (None, r.seed)), None)
        if run is None:
            raise ValueError(f"no trained run for encoding {encoding!r}"
                             + ("" if seed is None else f" and seed {seed}") + f"; trained: {self.result.encodings}")  # fmt: skip
        attentions, labels = run.attention_example(length or self.result.train_length)
        return AttentionExplorer(attentions, [labels], description=f"attention of {encoding}")

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.widget._repr_mimebundle_()
        v = self.values
        trained = f"{len(self.result.runs)} runs trained" if self.result else "not trained yet"
        bundle["text/plain"] = f"<comparison dashboard: {v['task']}, {', '.join(v['encodings'])}; {trained}>"
        if self._png is not None:
            png = base64.b64encode(self._png).decode("ascii")
            bundle["image/png"] = png
            bundle["text/html"] = f'{self.result.table_html()}<img src="data:image/png;base64,{png}">'
        return bundle
