"""The comparison dashboard: controls that train one model per positional
encoding and compare them (week 6).

The question of the length-generalisation chapter — which positional encoding
lets a model trained on short problems solve longer ones (Kazemnejad et al.
2023; Ruoss et al. 2023; Press et al. 2022) — asked with controls: a task, the
encodings, the training steps, the model size (width and depth), the training
length, the longer evaluation lengths and the number of seeds. "Train" trains
one model per encoding and seed, then shows the summary table (in- and
out-of-distribution exact match, token accuracy and loss, and the gap), the
learning curves, accuracy against length and one example's attention maps per
encoding.

It has no training code and no loop of its own. The controls become one sweep
config (:meth:`ComparisonDashboard.sweep_config`): the task, the lengths, the
model and training settings and a grid over ``model.positional`` and ``seed``.
:func:`annotated.lab.sweep` runs it into a sweep folder, exactly as
``python -m annotated sweep`` runs the same config
(:meth:`ComparisonDashboard.command_lines` spells it out), and
:meth:`~annotated.analysis.comparison.Comparison.from_sweep` reads the folder
back as the table and the figure. So the dashboard and the command line give
the same numbers for the same choice, the sweep folder has its own summary.csv
and report.md, and every run can be re-rendered or resumed like any other.

Every encoding gets ``model.max_len`` = the sequence length of the longest
evaluated length, as the shipped ``length_<task>`` sweeps do: the learned
absolute table gets a row for every evaluated position (the rows past the
training length are never trained, and that is part of what the comparison
shows) and randomized draws its positions from 4× that; no other encoding
reads ``max_len``.

Training runs synchronously in the kernel (the controls wait).
:meth:`ComparisonDashboard.train` does the same from code or tests. Where no
widget front end exists (the rendered book, a terminal), the dashboard shows
the table and a static summary figure (PNG) once it has trained.
"""

from __future__ import annotations

import base64
import html
import re
import shlex
from pathlib import Path

import ipywidgets as widgets

from annotated import lab
from annotated.analysis.comparison import METRICS, Comparison, RunResult
from annotated.figures.viz import figure_png
from annotated.figures.widgets import AttentionExplorer
from annotated.positional import POSITIONAL_ENCODINGS
from annotated.tasks import TASKS, get_task

__all__ = [
    "METRICS",
    "Comparison",
    "ComparisonDashboard",
    "RunResult",
    "parse_lengths",
]

DEFAULT_ENCODINGS = ("nope", "rope", "alibi")
MODEL_WIDTHS = (16, 32, 64, 128, 256)  # the d_model slider's stops


def parse_lengths(text) -> list[int]:
    """``"12 16, 32"`` (or a list) → ``[12, 16, 32]``; anything else raises
    ValueError."""
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
            f"evaluation lengths are whole numbers separated by spaces or commas, e.g. '12 16 32'; "
            f"got {text!r}"
        ) from None
    if any(n < 1 for n in lengths):
        raise ValueError(
            f"evaluation lengths must be positive, got {lengths}"
        )
    return lengths


class ComparisonDashboard:
    """Controls → one sweep over encodings and seeds
    (:func:`annotated.lab.sweep`) → table and figures.

    The keyword arguments are the controls' initial values (``encodings`` a
    list of names in ``POSITIONAL_ENCODINGS``; ``eval_lengths`` a list or
    ``"12 16 32"``; ``seeds`` the number of seeds, 0..seeds-1). ``n_heads``,
    ``batch_size``, ``lr``, ``eval_every`` (default steps // 10),
    ``eval_batches`` and ``device`` are fixed settings, kept in ``fixed`` by
    the config section they fill (None = the lab's default). The sweep folder
    goes to ``out_dir``, as with ``--out``.
    """

    def __init__(
        self,
        *,
        task: str = "sort",
        encodings=DEFAULT_ENCODINGS,
        steps: int = 500,
        d_model: int = 64,
        n_layers: int = 2,
        train_length: int = 8,
        eval_lengths=(12, 16, 32),
        seeds: int = 1,
        n_heads: int = 4,
        batch_size: int | None = None,
        lr: float | None = None,
        eval_every: int | None = None,
        eval_batches: int | None = None,
        device: str | None = None,
        out_dir="experiments",
    ):
        if task not in TASKS:
            raise ValueError(
                f"unknown task {task!r}; choose one of {sorted(TASKS)} (or register_task it first)"
            )
        unknown = [e for e in encodings if e not in POSITIONAL_ENCODINGS]
        if unknown:
            raise ValueError(
                f"unknown positional encoding(s) {unknown}; choose from {list(POSITIONAL_ENCODINGS)}"
            )
        for name, value in (
            ("steps", steps),
            ("n_layers", n_layers),
            ("train_length", train_length),
            ("seeds", seeds),
            ("d_model", d_model),
        ):
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or value < 1
            ):
                raise ValueError(
                    f"{name} must be a positive integer, got {value!r}"
                )
        self.fixed = {
            "model": {"n_heads": n_heads},
            "train": {
                "batch_size": batch_size,
                "lr": lr,
                "eval_batches": eval_batches,
                "device": device,
            },
        }
        self.eval_every, self.out_dir = eval_every, Path(out_dir)
        self.controls = {
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
        self.button = widgets.Button(
            description="Train", button_style="primary", icon="play"
        )
        self.progress = widgets.IntProgress(
            value=0, min=0, max=1, description="idle"
        )
        self.status, self.commands, self.table = (
            widgets.HTML(),
            widgets.HTML(),
            widgets.HTML(),
        )
        self.image = widgets.Image(format="png")
        self.result: Comparison | None = None
        self._png: bytes | None = None
        self.button.on_click(lambda _button: self.train_clicked())
        for control in self.controls.values():
            control.observe(
                lambda _change: self.show_commands(), names="value"
            )
        c = self.controls
        self.widget = widgets.VBox(
            [
                widgets.HBox(
                    [
                        c["encodings"],
                        widgets.VBox(
                            [
                                c["task"],
                                c["steps"],
                                c["d_model"],
                                c["n_layers"],
                            ]
                        ),
                        widgets.VBox(
                            [c["train_length"], c["eval_lengths"], c["seeds"]]
                        ),
                    ]
                ),
                widgets.HBox([self.button, self.progress]),
                self.status,
                self.commands,
                self.table,
                self.image,
            ]
        )
        self.show_commands()

    @property
    def values(self) -> dict:
        return {
            name: control.value for name, control in self.controls.items()
        }

    def sweep_config(self) -> lab.ExperimentConfig:
        """The controls as one sweep config: a grid over the chosen encodings
        and seeds 0..seeds-1. ValueError if the choice cannot be trained."""
        v = self.values
        if not v["encodings"]:
            raise ValueError(
                "choose at least one positional encoding (Ctrl/Cmd-click to choose several)"
            )
        train_length, eval_lengths = (
            v["train_length"],
            parse_lengths(v["eval_lengths"]),
        )
        shorter = [n for n in eval_lengths if n < train_length]
        if shorter:
            raise ValueError(
                f"evaluation length(s) {shorter} are shorter than the training length {train_length}; "
                "this dashboard trains short and tests long: raise them or lower the training length"
            )
        steps = v["steps"]
        eval_every = (
            max(1, steps // 10)
            if self.eval_every is None
            else self.eval_every
        )
        # see the module docstring
        longest = get_task(v["task"]).seq_len(
            max([train_length, *eval_lengths])
        )
        model = {
            "d_model": v["d_model"],
            "n_layers": v["n_layers"],
            "max_len": longest,
        }
        train = {"steps": steps, "eval_every": eval_every}
        model |= {
            key: value
            for key, value in self.fixed["model"].items()
            if value is not None
        }
        train |= {
            key: value
            for key, value in self.fixed["train"].items()
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

    def configs(self) -> list[lab.ExperimentConfig]:
        """One checked ExperimentConfig per run: the points of
        :meth:`sweep_config`'s grid."""
        points = lab.expand_grid(self.sweep_config())
        for point in points:
            lab.resolve(point)  # raises ValueError saying what to change
        return points

    def command_lines(self) -> list[str]:
        """The same sweep from a shell: its config written to a YAML file,
        then ``python -m annotated sweep``."""
        config = self.sweep_config()
        path = f"{config.name}.yaml"
        command = shlex.join(
            [
                "python",
                "-m",
                "annotated",
                "sweep",
                path,
                "--out",
                str(self.out_dir),
            ]
        )
        return [
            f"cat > {path} <<'EOF'",
            *config.to_yaml().splitlines(),
            "EOF",
            command,
        ]

    def train(self, *, progress: bool = False) -> Comparison:
        """Run the sweep with :func:`annotated.lab.sweep` (``progress``: a
        tqdm bar per run as well) and show the result; RuntimeError if a run
        failed (its report.md says why)."""
        config, points = self.sweep_config(), self.configs()
        steps = config.train["steps"]
        offsets = {point.name: i * steps for i, point in enumerate(points)}
        self.progress.max, self.progress.value = steps * len(points), 0

        def advance(point, kind, row):
            self.progress.description = (
                f"{point.model['positional']} s{point.seed}"
            )
            if kind == "step":
                self.progress.value = offsets[point.name] + row["step"]

        folder = lab.sweep(
            config, self.out_dir, progress=progress, callback=advance
        )
        result = Comparison.from_sweep(folder)
        failed = [
            run for run in result.runs if run.report["status"] != "completed"
        ]
        if failed:
            reasons = "; ".join(
                f"{run.folder.name}: {run.report.get('error')}"
                for run in failed
            )
            raise RuntimeError(
                f"{len(failed)} run(s) failed ({reasons}); see their report.md in {folder}"
            )
        self.progress.description = "done"
        self.result = result
        self._png = figure_png(result.figure())
        self.table.value, self.image.value = result.table_html(), self._png
        self.status.value = f"trained {len(result.runs)} run(s) into <code>{html.escape(str(folder))}</code>"
        return result

    def train_clicked(self) -> None:
        """The button: train, or say in the status line why not."""
        self.button.disabled = True
        self.status.value = "<i>training…</i>"
        try:
            self.train()
        # a bad choice (ValueError) or a failed run (its folder says more)
        except Exception as error:
            self.status.value = f'<span style="color:#b00020"><b>cannot train:</b> {html.escape(str(error))}</span>'
        finally:
            self.button.disabled = False

    def show_commands(self) -> None:
        """Refresh the command lines shown under the controls (or the reason
        the choice is refused)."""
        try:
            lines = "\n".join(self.command_lines())
            self.commands.value = (
                "<details><summary>the same runs from the command line</summary>"
                f"<pre>{html.escape(lines)}</pre></details>"
            )
        except ValueError as error:
            self.commands.value = f'<span style="color:#b00020">{html.escape(str(error))}</span>'

    def explorer(
        self,
        encoding: str,
        *,
        seed: int | None = None,
        length: int | None = None,
    ) -> AttentionExplorer:
        """Browse one trained run's attention (every layer and head) on one
        held-out example."""
        if self.result is None:
            raise ValueError(
                "nothing trained yet: call train() (or press Train) first"
            )
        run = next(
            (
                r
                for r in self.result.runs
                if r.encoding == encoding and seed in (None, r.seed)
            ),
            None,
        )
        if run is None:
            raise ValueError(
                f"no trained run for encoding {encoding!r}"
                + ("" if seed is None else f" and seed {seed}")
                + f"; trained: {self.result.encodings}"
            )
        attentions, labels = run.attention_example(
            length or self.result.train_length
        )
        return AttentionExplorer(
            attentions, [labels], description=f"attention of {encoding}"
        )

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.widget._repr_mimebundle_()
        v = self.values
        trained = (
            f"{len(self.result.runs)} runs trained"
            if self.result
            else "not trained yet"
        )
        bundle["text/plain"] = (
            f"<comparison dashboard: {v['task']}, {', '.join(v['encodings'])}; {trained}>"
        )
        if self._png is not None:
            png = base64.b64encode(self._png).decode("ascii")
            bundle["image/png"] = png
            bundle["text/html"] = (
                f'{self.result.table_html()}<img src="data:image/png;base64,{png}">'
            )
        return bundle
