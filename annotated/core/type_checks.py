"""Whether a value fits a field's type hint and range.

The hints are the ones config dataclasses use: ``int``, ``float``, ``bool``,
``str``, ``list[...]``, ``tuple[...]``, ``dict[...]``, unions with ``None``.
A bool is never taken for a number, an integral float (``2.0``) never for an
integer, and a list stands for a tuple (YAML and JSON have no tuples). A range
applies to a number and to each number in a list or tuple; NaN lies in no
range. Imports nothing else from :mod:`annotated` but :mod:`.ranges`.
"""

from __future__ import annotations

import math
import types
import typing

from annotated.core.ranges import Interval

__all__ = ["fits_type", "hint_parts", "in_range", "is_int", "is_number"]


def hint_parts(hint) -> tuple:
    """The members of a union (``int | None`` → ``(int, NoneType)``), or the
    hint alone."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def is_int(x) -> bool:
    """A Python int that is not a bool."""
    return isinstance(x, int) and not isinstance(x, bool)


def is_number(x) -> bool:
    """A Python int or float that is not a bool."""
    return isinstance(x, int | float) and not isinstance(x, bool)


def fits_type(value, hint) -> bool:
    """Whether ``value`` is of the type ``hint`` says, containers item by
    item."""
    if hint is typing.Any:
        return True
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(fits_type(value, part) for part in typing.get_args(hint))
    origin, args = typing.get_origin(hint) or hint, typing.get_args(hint)
    if hint is type(None) or hint is None:
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return is_int(value)
    if hint is float:
        return is_number(value)
    if hint is str:
        return isinstance(value, str)
    if origin is list:
        if not isinstance(value, list):
            return False
        return not args or all(fits_type(v, args[0]) for v in value)
    if origin is tuple:
        # YAML and JSON give a list where Python writes a tuple
        if not isinstance(value, list | tuple):
            return False
        if not args:
            return True
        if len(args) == 2 and args[1] is Ellipsis:
            return all(fits_type(v, args[0]) for v in value)
        return len(value) == len(args) and all(
            fits_type(v, a) for v, a in zip(value, args)
        )
    if origin is dict:
        if not isinstance(value, dict):
            return False
        return not args or all(
            fits_type(k, args[0]) and fits_type(v, args[1])
            for k, v in value.items()
        )
    return isinstance(value, origin) if isinstance(origin, type) else True


def in_range(value, hint, interval: Interval | None) -> bool:
    """Whether a number (or each number of a list or tuple) lies in
    ``interval``; a number is never NaN. Other values pass."""
    if is_number(value):
        return not math.isnan(value) and (
            interval is None or value in interval
        )
    if isinstance(value, list | tuple):
        return all(in_range(v, hint, interval) for v in value)
    return True
