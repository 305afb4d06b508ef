"""The words of a config error: what a field takes, and what to write
instead of the value given.

:func:`expected` says a type hint and range in words (``"a positive integer
or None"``); :func:`advice` reads the wrong value for the likely slip behind
it: a number in quotes, a YAML float without a dot (PyYAML follows YAML 1.1,
whose floats need a dot and a signed exponent, so ``3e-4`` arrives as the
string ``'3e-4'``), ``"none"`` for null, a float for an integer, a numpy
integer. Imports nothing else from :mod:`annotated` but :mod:`.ranges` and
:mod:`.type_checks`.
"""

from __future__ import annotations

import math
import numbers
import re
import typing

from annotated.core.ranges import Interval
from annotated.core.type_checks import fits_type, hint_parts, in_range

__all__ = ["advice", "article", "expected"]

NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def article(name: str) -> str:
    """``"int"`` → ``"an int"``; ``"float"`` → ``"a float"``."""
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def expected(hint, interval: Interval | None) -> str:
    """What a field takes, in words: ``"a positive integer or None"``."""
    parts = hint_parts(hint)
    words = [
        _expected_one(part, interval)
        for part in parts
        if part is not type(None)
    ]
    if type(None) in parts:
        words.append("None")
    return " or ".join(dict.fromkeys(words))


def _expected_one(hint, interval: Interval | None) -> str:
    origin, args = typing.get_origin(hint) or hint, typing.get_args(hint)
    if hint is bool:
        return "true or false"
    if hint is int:
        if interval is None:
            return "an integer"
        return interval.describe("integer")
    if hint is float:
        if interval is None:
            return "a number (not NaN)"
        return interval.describe("number")
    if hint is str:
        return "a string"
    if origin is list:
        inner = _expected_one(args[0], interval) if args else "values"
        return f"a list of {_plural(inner)}"
    if origin is tuple and args and args[-1] is not Ellipsis:
        inner = {_expected_one(a, interval) for a in args}
        count = {2: "two", 3: "three"}.get(len(args), str(len(args)))
        if len(inner) == 1:
            return f"{count} {_plural(inner.pop())}"
        return f"a list like {list(args)}"
    if origin is dict:
        return "a mapping"
    return getattr(hint, "__name__", str(hint))


def _plural(words: str) -> str:
    words = re.sub(r"^(a|an) ", "", words)
    return re.sub(r"\b(integer|number|string)\b", r"\1s", words, count=1)


def advice(value, hint, interval: Interval | None, example) -> str:
    """What to write instead of ``value`` ("" when there is nothing better to
    say than the expected type)."""
    parts = hint_parts(hint)
    wants_number = any(p in (int, float) for p in parts)
    wants_number |= typing.get_origin(hint) in (list, tuple)
    text = value.strip() if isinstance(value, str) else None
    if text is not None and wants_number and NUMBER.fullmatch(text):
        return _quoted_number(text)
    if text is not None:
        word = text.lower()
        if word in ("none", "null", "~") and type(None) in parts:
            return (
                "write null in YAML, none on the command line, None in "
                "Python (unquoted)"
            )
        if word in ("true", "false", "yes", "no") and bool in parts:
            meant = "true" if word in ("true", "yes") else "false"
            return f"the value is quoted; write {meant} unquoted"
    if (
        isinstance(value, numbers.Integral)
        and not isinstance(value, bool | int)
        and int in parts
    ):
        # e.g. a numpy integer
        return f"write {int(value)} (a Python int: int(value))"
    if isinstance(value, float) and math.isfinite(value) and int in parts:
        whole = round(value)
        if in_range(whole, int, interval):
            if value.is_integer():
                return f"write {whole}"
            return f"write a whole number, e.g. {whole}"
    if any(p is dict or typing.get_origin(p) is dict for p in parts):
        return (
            "write a mapping of names to values, e.g. {name: value} in YAML "
            "or KEY=VALUE on the command line"
        )
    if (
        example is not None
        and not isinstance(example, bool)
        and fits_type(example, hint)
        and in_range(example, hint, interval)
    ):
        shown = list(example) if isinstance(example, tuple) else example
        if isinstance(shown, str):
            return f"write e.g. {shown!r}"
        return f"write e.g. {shown}"
    if bool in parts:
        return "write true or false (True or False in Python)"
    return ""


def _quoted_number(text: str) -> str:
    """A number that arrived as text: a YAML 1.1 float spelled without a
    dot or a signed exponent, or a number in quotes."""
    mantissa, _, exponent = text.lower().partition("e")
    if exponent and ("." not in mantissa or exponent[0] not in "+-"):
        mantissa = mantissa if "." in mantissa else f"{mantissa}.0"
        sign = "" if exponent[0] in "+-" else "+"
        fixed = f"{mantissa}e{sign}{exponent}"
        return (
            f"YAML reads {text} as a string; write {fixed} (JSON and Python "
            f"read {text} unquoted as a number)"
        )
    return f"write {text} without quotes (quoted, a number is text)"
