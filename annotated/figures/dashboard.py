"""The comparison dashboard: one model per positional encoding, compared.

The question of the length-generalisation chapter — which positional encoding
lets a model trained on short problems solve longer ones (Kazemnejad et al.
2023; Ruoss et al. 2023; Press et al. 2022) — asked with controls: a task, the
encodings, the training steps, the model size (width and depth), the training
length, the longer evaluation lengths and the number of seeds. "Train" trains
one model per encoding and seed, then shows the summary table (in- and
out-of-distribution exact match, token accuracy and loss, and the gap), the
learning curves, accuracy against length and one example's attention maps per
encoding.

It has no training code and no loop of its own. The controls
(:mod:`annotated.figures.dashboard_controls`) become one sweep config
(:meth:`ComparisonDashboard.sweep_config`): the task, the lengths, the model
and training settings and a grid over ``model.positional`` and ``seed``.
:func:`annotated.lab.sweeps.sweep` runs it into a sweep folder, exactly as
``python -m annotated sweep`` runs the same config
(:meth:`ComparisonDashboard.command_lines` spells it out), and
:meth:`~annotated.analysis.comparison.Comparison.from_sweep` reads the folder
back as the table and the figure. So the dashboard and the command line give
the same numbers for the same choice, the sweep folder has its own summary.csv
and report.md, and every run can be re-rendered or resumed like any other.

Training runs synchronously in the kernel (the controls wait).
:meth:`ComparisonDashboard.train` does the same from code or tests. Where no
widget front end exists (the rendered book, a terminal), the dashboard shows
the table and a static summary figure (PNG) once it has trained.
"""

from __future__ import annotations

import base64
import html
import shlex
from pathlib import Path

import ipywidgets as widgets

from annotated import lab
from annotated.analysis.comparison import Comparison
from annotated.figures.attention_explorer import AttentionExplorer
from annotated.figures.dashboard_controls import (
    DEFAULT_ENCODINGS,
    comparison_controls,
    comparison_sweep,
    controls_box,
)
from annotated.figures.viz import figure_png


class ComparisonDashboard:
    """Controls → one sweep over encodings and seeds → table and figures.

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
        self.controls = comparison_controls(
            task=task,
            encodings=encodings,
            steps=steps,
            d_model=d_model,
            n_layers=n_layers,
            train_length=train_length,
            eval_lengths=eval_lengths,
            seeds=seeds,
        )
        self.button = widgets.Button(
            description="Train", button_style="primary", icon="play"
        )
        self.progress = widgets.IntProgress(
            value=0, min=0, max=1, description="idle"
        )
        self.status, self.commands, self.table = (
            widgets.HTML() for _ in range(3)
        )
        self.image = widgets.Image(format="png")
        self.result: Comparison | None = None
        self._png: bytes | None = None
        self.button.on_click(lambda _button: self.train_clicked())
        for control in self.controls.values():
            control.observe(
                lambda _change: self.show_commands(), names="value"
            )
        self.widget = widgets.VBox(
            [
                controls_box(self.controls),
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
        """The controls as one sweep config.

        A grid over the chosen encodings and seeds 0..seeds-1; ValueError if
        the choice cannot be trained."""
        return comparison_sweep(
            self.values, fixed=self.fixed, eval_every=self.eval_every
        )

    def configs(self) -> list[lab.ExperimentConfig]:
        """One checked ExperimentConfig per run of the sweep.

        The points of :meth:`sweep_config`'s grid."""
        points = lab.expand_grid(self.sweep_config())
        for point in points:
            lab.resolve(point)  # raises ValueError saying what to change
        return points

    def command_lines(self) -> list[str]:
        """The same sweep from a shell.

        Its config written to a YAML file, then ``python -m annotated sweep``.
        """
        config = self.sweep_config()
        path = f"{config.name}.yaml"
        argv = ["python", "-m", "annotated", "sweep", path]
        command = shlex.join([*argv, "--out", str(self.out_dir)])
        return [
            f"cat > {path} <<'EOF'",
            *config.to_yaml().splitlines(),
            "EOF",
            command,
        ]

    def train(self, *, progress: bool = False) -> Comparison:
        """Run the sweep (:func:`~annotated.lab.sweeps.sweep`); show it.

        ``progress``: a tqdm bar per run as well. RuntimeError if a run failed
        (its report.md says why)."""
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
                f"{len(failed)} run(s) failed ({reasons}); "
                f"see their report.md in {folder}"
            )
        self.progress.description = "done"
        self.result = result
        self._png = figure_png(result.figure())
        self.table.value, self.image.value = result.table_html(), self._png
        self.status.value = (
            f"trained {len(result.runs)} run(s) into "
            f"<code>{html.escape(str(folder))}</code>"
        )
        return result

    def train_clicked(self) -> None:
        """The button: train, or say in the status line why not."""
        self.button.disabled = True
        self.status.value = "<i>training…</i>"
        try:
            self.train()
        except Exception as error:
            # a bad choice (ValueError) or a failed run (its folder says more)
            self.status.value = (
                '<span style="color:#b00020"><b>cannot train:</b> '
                f"{html.escape(str(error))}</span>"
            )
        finally:
            self.button.disabled = False

    def show_commands(self) -> None:
        """Show the choice's command lines, or the reason it is refused."""
        try:
            lines = "\n".join(self.command_lines())
            self.commands.value = (
                "<details><summary>the same runs from the command line"
                f"</summary><pre>{html.escape(lines)}</pre></details>"
            )
        except ValueError as error:
            self.commands.value = (
                '<span style="color:#b00020">'
                f"{html.escape(str(error))}</span>"
            )

    def explorer(
        self,
        encoding: str,
        *,
        seed: int | None = None,
        length: int | None = None,
    ) -> AttentionExplorer:
        """Browse one trained run's attention on one held-out example.

        Every layer and head of the run of ``encoding`` (and ``seed``)."""
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
        encodings = ", ".join(v["encodings"])
        bundle["text/plain"] = (
            f"<comparison dashboard: {v['task']}, {encodings}; {trained}>"
        )
        if self._png is not None:
            png = base64.b64encode(self._png).decode("ascii")
            bundle["image/png"] = png
            bundle["text/html"] = (
                self.result.table_html()
                + f'<img src="data:image/png;base64,{png}">'
            )
        return bundle
