"""One validation path for the config dataclasses: each field's type, read
from its type hint, and its range, declared beside the check, tested before
any value is used.

:func:`check_fields` is what :class:`~annotated.models.config.ModelConfig`,
:class:`~annotated.training.config.TrainConfig` and the lab's experiment
config call first in their checks, so a value typed in Python, read from YAML
/ JSON or given on the command line meets the same rule and the same
sentence. The sentence names the field, the value and its type, and says what
to write instead::

    ModelConfig.d_ff must be a positive integer or None, got 2.5 (a float);
        write a whole number, e.g. 2
    TrainConfig.lr must be a positive finite number, got '3e-4' (a str);
        YAML reads 3e-4 as a string; write 3.0e-4 (JSON and Python read
        3e-4 unquoted as a number)

The pieces live beside this module: the ranges (:mod:`.ranges`, written
``"[0, 1)"``, ``"[1, inf)"``, ``"positive"``), whether a value fits a type
hint (:mod:`.type_checks`), and the words of the sentence (:mod:`.advice`).
Imports nothing else from :mod:`annotated`.
"""

from __future__ import annotations

import dataclasses
import functools
import typing

import torch

from annotated.core.advice import advice, article, expected
from annotated.core.ranges import Interval
from annotated.core.type_checks import fits_type, in_range, is_number

__all__ = [
    "ConfigError",
    "check_choice",
    "check_fields",
    "check_token_ids",
    "check_value",
]


class ConfigError(ValueError):
    """A config value of the wrong type or out of its range (a ValueError, so
    callers catching those still do)."""


@functools.cache
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def check_fields(config, ranges: dict[str, str] | None = None) -> None:
    """Check every field of the dataclass instance ``config`` against its type
    hint and its range in ``ranges`` (``{field: "[0, 1)"}``); raise
    :class:`ConfigError` for the first one that does not fit. A range for a
    name that is not a field is ignored (tests check that every name is
    one)."""
    cls = type(config)
    for field in dataclasses.fields(cls):
        if field.name.startswith("_"):
            continue
        interval = None
        if ranges and field.name in ranges:
            interval = Interval.parse(ranges[field.name])
        example = field.default
        if example is dataclasses.MISSING:
            example = None
        check_value(
            f"{cls.__name__}.{field.name}",
            getattr(config, field.name),
            _hints(cls)[field.name],
            interval,
            example=example,
        )


def check_value(
    label: str, value, hint, interval: Interval | None = None, *, example=None
) -> None:
    """Raise :class:`ConfigError` unless ``value`` fits the type ``hint`` and
    lies in ``interval``; the message says what to write instead."""
    fits = fits_type(value, hint)
    if fits and in_range(value, hint, interval):
        return
    bounded = interval is not None and interval.bounded()
    if fits and is_number(value) and bounded:
        message = f"{label} must lie in {interval}"
    else:
        message = f"{label} must be {expected(hint, interval)}"
    message += f", got {value!r} ({article(type(value).__name__)})"
    instead = advice(value, hint, interval, example)
    raise ConfigError(message + (f"; {instead}" if instead else ""))


def check_choice(name: str, value, choices) -> None:
    """Refuse a ``value`` not among ``choices``, listing the valid ones."""
    if value not in choices:
        raise ValueError(
            f"unknown {name} {value!r}; choose one of {sorted(choices)}"
        )


def check_token_ids(
    idx: torch.Tensor, vocab_size: int, name: str = "idx"
) -> None:
    """Refuse a model input that is not a (B, T) torch.long tensor of ids in
    [0, vocab_size)."""
    if idx.dim() != 2 or idx.dtype != torch.long:
        raise ValueError(
            f"{name} must be a (B, T) tensor of token ids (torch.long), got "
            f"{idx.dtype} {tuple(idx.shape)}"
        )
    if idx.numel() and (idx.min() < 0 or idx.max() >= vocab_size):
        raise ValueError(
            f"{name} holds ids outside [0, vocab_size={vocab_size}): "
            f"min {int(idx.min())}, max {int(idx.max())}"
        )
