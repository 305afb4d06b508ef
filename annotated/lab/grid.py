"""A sweep's grid: the cross product of the values of each key, one
experiment per point.

``grid`` maps a key (``seed``, ``task``, ``train_length``, … or
``model.X`` / ``train.X``) to its values, e.g.
``{"model.positional": ["rope", "alibi"], "seed": [0, 1]}``; ``overrides``
change the settings of the points that match, e.g. a larger ``max_len`` for
one encoding::

    overrides: [{when: {model.positional: learned}, set: {model.max_len: 90}}]

A grid over ``variant`` names recipes that differ in several fields at
once, each set by its override::

    grid: {variant: [base, modern]}
    overrides: [{when: {variant: modern}, set: {model.norm_type: rmsnorm,
                                                model.activation: swiglu}}]

Every grid point has its own name, ``<name>-<key>=<value>-…``, which names
its run folder; a grid that repeats a value (``seed: [0, 0]``) gives its equal
points the suffix ``-p<index>`` (the point's index in the cross product), so
no two points share a folder.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from pathlib import Path

from annotated.lab.config import ExperimentConfig

GRID_KEYS = (
    "task",
    "task_kwargs",
    "train_length",
    "eval_lengths",
    "seed",
    "variant",
    "model",
    "train",
)
OVERRIDE_EXAMPLE = (
    "overrides: [{when: {model.positional: learned}, "
    "set: {model.max_len: 90}}]"
)


def check_key(key: str, where: str) -> None:
    """A grid or override key names a sweepable field: one of
    :data:`GRID_KEYS`, with a dot exactly for ``model.X`` / ``train.X``."""
    head = key.split(".")[0]
    if head not in GRID_KEYS or (head in ("model", "train")) != ("." in key):
        raise ValueError(
            f"{where} key {key!r} is not sweepable; use one of "
            f"{list(GRID_KEYS)} or model.X / train.X"
        )


def check_overrides(overrides) -> None:
    """``overrides``: a list of
    ``{"when": {key: value, …}, "set": {key: value, …}}`` with grid-style
    keys."""
    if not isinstance(overrides, list):
        raise ValueError(
            f"overrides must be a list, e.g. {OVERRIDE_EXAMPLE}; got "
            f"{overrides!r}"
        )
    for item in overrides:
        if not (
            isinstance(item, dict)
            and set(item) == {"when", "set"}
            and all(isinstance(item[k], dict) for k in item)
        ):
            raise ValueError(
                "each override is a mapping with 'when' and 'set' mappings, "
                f"e.g. {OVERRIDE_EXAMPLE}; got {item!r}"
            )
        for key in [*item["when"], *item["set"]]:
            check_key(key, "override")


def _get(values: dict, key: str):
    head, _, rest = key.partition(".")
    return values[head].get(rest) if rest else values.get(head)


def _set(values: dict, key: str, value) -> None:
    head, _, rest = key.partition(".")
    if rest:
        values[head][rest] = value
    else:
        values[head] = value


def expand_grid(config: ExperimentConfig) -> list[ExperimentConfig]:
    """One config per point of the grid's cross product, named
    ``<name>-<key>=<value>-…`` (and ``-p<index>`` where a repeated value
    would give two points one name)."""
    if not config.grid:
        raise ValueError(
            "a sweep needs a grid, e.g. grid: {model.positional: "
            "[rope, alibi], seed: [0, 1]}"
        )
    for key, values in config.grid.items():
        check_key(key, "grid")
        if not isinstance(values, list) or not values:
            raise ValueError(
                f"grid[{key!r}] must be a non-empty list of values, got "
                f"{values!r}"
            )
    check_overrides(config.overrides)
    points = []
    for point in itertools.product(*config.grid.values()):
        values = config.to_dict() | {"grid": {}, "overrides": []}
        values["model"] = dict(values["model"])
        values["train"] = dict(values["train"])
        parts = []
        for key, value in zip(config.grid, point):
            _set(values, key, value)
            text = re.sub(r"[^A-Za-z0-9_.]+", "_", str(value))
            parts.append(f"{key.partition('.')[2] or key}={text}")
        # per-point settings, e.g. a larger max_len for one encoding
        for override in config.overrides:
            if all(_get(values, k) == v for k, v in override["when"].items()):
                for key, value in override["set"].items():
                    _set(values, key, value)
        values["name"] = "-".join([config.name, *parts])
        points.append(values)
    taken = Counter(values["name"] for values in points)
    # equal names (a repeated value): each point's index makes its own; it
    # cannot meet another point's name, which ends in key=value
    for index, values in enumerate(points):
        if taken[values["name"]] > 1:
            values["name"] += f"-p{index}"
    return [
        ExperimentConfig.from_dict(values, base_dir=config.base_dir)
        for values in points
    ]


def sweep_runs(folder) -> list[tuple[ExperimentConfig, Path]]:
    """Each point of the sweep in ``folder`` (from its sweep.yaml) and that
    point's run folder."""
    folder = Path(folder)
    if not (folder / "sweep.yaml").is_file():
        raise ValueError(
            f"{folder} is not a sweep folder (it has no sweep.yaml); give "
            "the folder a sweep wrote"
        )
    config = ExperimentConfig.from_file(folder / "sweep.yaml")
    return [(point, folder / point.name) for point in expand_grid(config)]
