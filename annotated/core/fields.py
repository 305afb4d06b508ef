"""One validation path for the config dataclasses: each field's type, read
from its type hint, and its range, declared beside the check, tested before
any value is used.

:func:`check_fields` is what :class:`~annotated.models.config.ModelConfig`,
:class:`~annotated.training.config.TrainConfig` and the lab's experiment
config call first in their checks, so a value typed in Python, read from YAML
/ JSON or given on the command line meets the same rule and the same sentence.
The sentence names the field, the value and its type, and says what to write
instead::

    ModelConfig.d_ff must be a positive integer or None, got 2.5 (a float); write a whole number, e.g. 2
    TrainConfig.lr must be a positive finite number, got '3e-4' (a str); YAML reads 3e-4 as a string;
        write 3.0e-4 (JSON and Python read 3e-4 unquoted as a number)

The YAML case deserves its sentence: PyYAML follows YAML 1.1, whose floats
need a dot and a signed exponent, so ``3e-4`` arrives as the string ``'3e-4'``
while ``3.0e-4`` is a float.

Ranges are written as intervals (``"[0, 1)"``, ``"[1, inf)"``) or as
``"positive"`` / ``"non-negative"``; a range applies to a number and to each
number in a list or tuple. A bool is never taken for a number, an integral
float (``2.0``) never for an integer, and NaN lies in no range. Imports
nothing else from :mod:`annotated`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import re
import types
import typing
from dataclasses import dataclass

import torch

__all__ = [
    "ConfigError",
    "Interval",
    "check_fields",
    "check_token_ids",
    "check_value",
]

NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class ConfigError(ValueError):
    """A config value of the wrong type or out of its range (a ValueError, so
    callers catching those still do)."""


@dataclass(frozen=True)
class Interval:
    """The numbers a field accepts: ``low``…``high``, each end closed or
    open."""

    low: float = -math.inf
    high: float = math.inf
    low_closed: bool = True
    high_closed: bool = True

    @classmethod
    def parse(cls, text: str) -> Interval:
        """``"[0, 1)"``, ``"(0, inf)"``, ``"positive"`` (> 0) or
        ``"non-negative"`` (≥ 0)."""
        named = {"positive": "(0, inf)", "non-negative": "[0, inf)"}
        match = re.fullmatch(
            r"\s*([\[(])\s*(\S+?)\s*,\s*(\S+?)\s*([\])])\s*",
            named.get(text, text),
        )
        if not match:
            raise ValueError(
                f"a range is written like '[0, 1)', '(0, inf)', 'positive' or 'non-negative', not {text!r}"
            )
        return cls(
            float(match[2]), float(match[3]), match[1] == "[", match[4] == "]"
        )

    def __contains__(self, x) -> bool:
        above = x >= self.low if self.low_closed else x > self.low
        below = x <= self.high if self.high_closed else x < self.high
        return bool(above and below)

    def describe(self, noun: str) -> str:
        """``"a positive integer"``, ``"an integer ≥ 1"``,
        ``"a number in [0, 1)"``…"""
        low = _show_bound(self.low)
        article = "an" if noun[0] in "aeiou" else "a"
        if self.high == math.inf and not self.high_closed:
            if self.low == 0 and not self.low_closed:
                return f"a positive {'finite ' if noun == 'number' else ''}{noun}"
            if self.low == 0:
                return f"a non-negative {noun}"
            if self.low == -math.inf:
                return f"{article} {noun}"
            return f"{article} {noun} {'≥' if self.low_closed else '>'} {low}"
        return f"{article} {noun} in {self}"

    def __str__(self) -> str:
        low, high = _show_bound(self.low), _show_bound(self.high)
        return f"{'[' if self.low_closed else '('}{low}, {high}{']' if self.high_closed else ')'}"

    def bounded(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)


def _show_bound(x: float) -> str:
    return str(int(x)) if math.isfinite(x) and x == int(x) else str(x)


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
        interval = (
            Interval.parse(ranges[field.name])
            if ranges and field.name in ranges
            else None
        )
        example = (
            field.default
            if field.default is not dataclasses.MISSING
            else None
        )
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
    lies in ``interval``."""
    if _fits_type(value, hint) and _in_range(value, hint, interval):
        return
    if (
        _fits_type(value, hint)
        and _is_number(value)
        and interval is not None
        and interval.bounded()
    ):
        message = f"{label} must lie in {interval}"
    else:
        message = f"{label} must be {_expected(hint, interval)}"
    message += f", got {value!r} ({_article(type(value).__name__)})"
    advice = _advice(value, hint, interval, example)
    raise ConfigError(message + (f"; {advice}" if advice else ""))


def _article(name: str) -> str:
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _parts(hint) -> tuple:
    origin = typing.get_origin(hint)
    return (
        typing.get_args(hint)
        if origin in (typing.Union, types.UnionType)
        else (hint,)
    )


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _fits_type(value, hint) -> bool:
    if hint is typing.Any:
        return True
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_fits_type(value, part) for part in typing.get_args(hint))
    origin, args = typing.get_origin(hint) or hint, typing.get_args(hint)
    if hint is type(None) or hint is None:
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return _is_int(value)
    if hint is float:
        return _is_number(value)
    if hint is str:
        return isinstance(value, str)
    if origin is list:
        return (
            isinstance(value, list)
            and all(_fits_type(v, args[0]) for v in value)
            if args
            else isinstance(value, list)
        )
    if origin is tuple:
        # YAML and JSON give a list where Python writes a tuple
        if not isinstance(value, list | tuple):
            return False
        if not args:
            return True
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_fits_type(v, args[0]) for v in value)
        return len(value) == len(args) and all(
            _fits_type(v, a) for v, a in zip(value, args)
        )
    if origin is dict:
        if not isinstance(value, dict):
            return False
        return not args or all(
            _fits_type(k, args[0]) and _fits_type(v, args[1])
            for k, v in value.items()
        )
    return isinstance(value, origin) if isinstance(origin, type) else True


def _in_range(value, hint, interval: Interval | None) -> bool:
    if _is_number(value):
        return not math.isnan(value) and (
            interval is None or value in interval
        )
    if isinstance(value, list | tuple):
        return all(_in_range(v, hint, interval) for v in value)
    return True


def _expected(hint, interval: Interval | None) -> str:
    """What a field takes, in words: ``"a positive integer or None"``."""
    words = [
        _expected_one(part, interval)
        for part in _parts(hint)
        if part is not type(None)
    ]
    if type(None) in _parts(hint):
        words.append("None")
    return " or ".join(dict.fromkeys(words))


def _expected_one(hint, interval: Interval | None) -> str:
    origin, args = typing.get_origin(hint) or hint, typing.get_args(hint)
    if hint is bool:
        return "true or false"
    if hint in (int, float):
        noun = "integer" if hint is int else "number"
        if interval is None:
            return f"{'an' if hint is int else 'a'} {noun}{'' if hint is int else ' (not NaN)'}"
        return interval.describe(noun)
    if hint is str:
        return "a string"
    if origin is list:
        inner = _expected_one(args[0], interval) if args else "values"
        return f"a list of {_plural(inner)}"
    if origin is tuple and args and args[-1] is not Ellipsis:
        inner = {_expected_one(a, interval) for a in args}
        count = {2: "two", 3: "three"}.get(len(args), str(len(args)))
        return (
            f"{count} {_plural(inner.pop())}"
            if len(inner) == 1
            else f"a list like {list(args)}"
        )
    if origin is dict:
        return "a mapping"
    return getattr(hint, "__name__", str(hint))


def _plural(words: str) -> str:
    words = re.sub(r"^(a|an) ", "", words)
    return re.sub(r"\b(integer|number|string)\b", r"\1s", words, count=1)


def _advice(value, hint, interval: Interval | None, example) -> str:
    """What to write instead of ``value``."""
    wants_number = any(
        p in (int, float) for p in _parts(hint)
    ) or typing.get_origin(hint) in (list, tuple)
    if (
        isinstance(value, str)
        and wants_number
        and NUMBER.fullmatch(value.strip())
    ):
        text = value.strip()
        mantissa, _, exponent = text.lower().partition("e")
        if exponent and ("." not in mantissa or exponent[0] not in "+-"):
            mantissa = mantissa if "." in mantissa else f"{mantissa}.0"
            fixed = f"{mantissa}e{exponent if exponent[0] in '+-' else '+' + exponent}"
            return f"YAML reads {text} as a string; write {fixed} (JSON and Python read {text} unquoted as a number)"
        return f"write {text} without quotes (quoted, a number is text)"
    if (
        isinstance(value, str)
        and value.strip().lower() in ("none", "null", "~")
        and type(None) in _parts(hint)
    ):
        return "write null in YAML, none on the command line, None in Python (unquoted)"
    if (
        isinstance(value, str)
        and value.strip().lower() in ("true", "false", "yes", "no")
        and bool in _parts(hint)
    ):
        return f"the value is quoted; write {value.strip().lower() in ('true', 'yes') and 'true' or 'false'} unquoted"
    if (
        isinstance(value, numbers.Integral)
        and not isinstance(value, bool | int)
        and int in _parts(hint)
    ):
        # e.g. a numpy integer
        return f"write {int(value)} (a Python int: int(value))"
    if (
        isinstance(value, float)
        and math.isfinite(value)
        and int in _parts(hint)
    ):
        whole = round(value)
        if _in_range(whole, int, interval):
            return (
                f"write {whole}"
                if value.is_integer()
                else f"write a whole number, e.g. {whole}"
            )
    if dict in _parts(hint) or any(
        typing.get_origin(p) is dict for p in _parts(hint)
    ):
        return "write a mapping of names to values, e.g. {name: value} in YAML or KEY=VALUE on the command line"
    if (
        example is not None
        and not isinstance(example, bool)
        and _fits_type(example, hint)
        and _in_range(example, hint, interval)
    ):
        shown = list(example) if isinstance(example, tuple) else example
        return (
            f"write e.g. {shown!r}"
            if isinstance(shown, str)
            else f"write e.g. {shown}"
        )
    if hint is bool or bool in _parts(hint):
        return "write true or false (True or False in Python)"
    return ""


def check_token_ids(
    idx: torch.Tensor, vocab_size: int, name: str = "idx"
) -> None:
    """Refuse a model input that is not a (B, T) torch.long tensor of ids in
    [0, vocab_size)."""
    if idx.dim() != 2 or idx.dtype != torch.long:
        raise ValueError(
            f"{name} must be a (B, T) tensor of token ids (torch.long), got {idx.dtype} {tuple(idx.shape)}"
        )
    if idx.numel() and (idx.min() < 0 or idx.max() >= vocab_size):
        raise ValueError(
            f"{name} holds ids outside [0, vocab_size={vocab_size}): min {int(idx.min())}, max {int(idx.max())}"
        )
