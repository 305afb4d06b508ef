"""Command-line flags generated from config dataclasses, so ``--help`` cannot
drift from the configs.

Each field of a dataclass becomes one flag, ``--d-model`` for ``d_model``.
Its help is the field's ``metadata["help"]``, else its comment (the one after
it on its line, or the comment lines right above it), else the clause of the
class docstring that names it, and it ends with the default. The field's type
decides how the flag reads its value:

- ``int``, ``float``, ``str``: one value of that type (``choices`` from a
  registry when given)
- ``bool``: ``--x`` / ``--no-x``
- ``X | None``: one value of X, or ``none``
- ``int | list[int]``: ``N`` or ``LOW:HIGH`` (a length, or a range drawn
  from)
- ``list[int]``: one or more numbers after the flag
  (``--eval-lengths 12 16``)
- ``list[str]``: one name per flag, repeatable
  (``--plugins a.py --plugins b.py``)
- ``tuple[X, X]``: two values
- ``dict``: ``KEY=VALUE`` or a YAML mapping, repeatable; merged

A flag that is not given leaves nothing in the namespace
(``argparse.SUPPRESS``), so :func:`apply_flags` writes only what was typed and
a config file underneath keeps the rest.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import io
import re
import textwrap
import tokenize
import types
import typing
from dataclasses import MISSING, dataclass

import yaml


@dataclass(frozen=True)
class Flag:
    """One generated flag: the field it sets, in which section of the
    config, and how."""

    section: str  # the dict of the config the value goes to (e.g. "model")
    name: str  # the field's name
    dest: str  # the argparse attribute
    kind: str  # "value" replaces, "merge" merges a dict, "extend" a list


def field_docs(cls) -> dict[str, str]:
    """One line per field of a dataclass: ``metadata["help"]``, the field's
    comment, or the clause of the class docstring that names it
    (``eval_every=0`` …)."""
    names = [f.name for f in dataclasses.fields(cls)]
    docs = {}
    doc = " ".join((inspect.getdoc(cls) or "").split())
    for clause in re.split(r"(?<=[.;])\s+", doc):
        for name in re.findall(r"``(\w+)(?:=[^`]*)?``", clause):
            if name in names:
                docs.setdefault(name, clause.rstrip(".;").replace("``", ""))
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass):
            docs |= {
                k: v for k, v in _field_comments(klass).items() if k in names
            }
    docs |= {
        f.name: f.metadata["help"]
        for f in dataclasses.fields(cls)
        if "help" in f.metadata
    }
    return docs


def _field_comments(cls) -> dict[str, str]:
    """Each field's comment: the one after it on its line, else the comment
    lines right above it."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # no source (a frozen install)
        return {}
    comments = {
        tok.start[0]: tok.string.lstrip("#").strip()
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    }
    lines = source.splitlines()
    skip = ("fmt:", "noqa", "type:")
    found = {}
    for node in ast.parse(source).body[0].body:
        if not (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
        ):
            continue
        text = comments.get(node.end_lineno, "")
        if not text:  # the comment lines above the field
            above, n = [], node.lineno - 1
            while n >= 1 and lines[n - 1].lstrip().startswith("#"):
                above.insert(0, comments.get(n, ""))
                n -= 1
            text = " ".join(above)
        if text and not text.startswith(skip):
            found[node.target.id] = text
    return found


def parse_mapping(text: str) -> dict:
    """``"window=4"`` → ``{"window": 4}``; ``"{window: 4, top_k: 8}"`` → that
    mapping (values read as YAML)."""
    key, sep, value = text.partition("=")
    if sep and key and not text.lstrip().startswith("{"):
        return {key.strip(): yaml.safe_load(value)}
    try:
        mapping = yaml.safe_load(text)
    except yaml.YAMLError:
        mapping = None
    if not isinstance(mapping, dict):
        raise argparse.ArgumentTypeError(
            "takes KEY=VALUE or a YAML mapping such as '{window: 4}', "
            f"got {text!r}"
        )
    return mapping


def parse_range(text: str) -> int | list[int]:
    """``"8"`` → 8; ``"4:8"`` (or ``"[4, 8]"``) → ``[4, 8]``."""
    low, sep, high = text.strip().strip("[]").replace(",", ":").partition(":")
    try:
        return [int(low), int(high)] if sep else int(low)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"takes N or LOW:HIGH, got {text!r}"
        ) from None


def _or_none(convert):
    def read(text: str):
        return (
            None
            if text.strip().lower() in ("none", "null")
            else convert(text)
        )

    read.__name__ = convert.__name__  # argparse says "invalid int value"
    return read


def _reading(annotation, name: str) -> tuple[dict, str, str]:
    """argparse keywords, the flag's kind and a note for the help, from a
    field's type."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    metavar = name.upper()
    if annotation is bool:
        return {"action": argparse.BooleanOptionalAction}, "value", ""
    if annotation in (int, float, str):
        return {"type": annotation, "metavar": metavar}, "value", ""
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and type(None) in args:
            keywords, kind, note = _reading(rest[0], name)
            if keywords.get("type") is None or "nargs" in keywords:
                raise TypeError(
                    f"no flag for the optional field {name}: {annotation}"
                )
            return (
                keywords | {"type": _or_none(keywords["type"])},
                kind,
                note + "; 'none' for None",
            )
        if set(rest) == {int, list[int]}:
            return {"type": parse_range, "metavar": "N|LOW:HIGH"}, "value", ""
    if origin is list and args and args[0] in (int, float):
        numbers = {
            "type": args[0],
            "nargs": "+",
            "action": "extend",
            "metavar": "N" if args[0] is int else "X",
        }
        return numbers, "value", ""
    if origin is list and args and args[0] is str:
        return (
            {"type": str, "action": "append", "metavar": metavar},
            "extend",
            "; repeatable",
        )
    if origin is tuple and args and len(set(args)) == 1 and ... not in args:
        return (
            {"type": args[0], "nargs": len(args), "metavar": metavar},
            "value",
            "",
        )
    if annotation is dict or origin is dict:
        note = "; KEY=VALUE or a YAML mapping, repeatable"
        return (
            {
                "type": parse_mapping,
                "action": "append",
                "metavar": "KEY=VALUE",
            },
            "merge",
            note,
        )
    raise TypeError(
        f"no flag for field {name} of type {annotation}; teach "
        "annotated.lab.flags._reading that type"
    )


def _show(value) -> str:
    if isinstance(value, list | tuple):
        return " ".join(map(str, value)) or "none"
    return "none" if value == {} else str(value)


def add_flags(
    group,
    cls,
    section: str,
    *,
    skip=(),
    only=None,
    choices=None,
    notes=None,
    defaults=None,
) -> list[Flag]:
    """Add one flag per field of dataclass ``cls`` to ``group`` (a parser or
    an argument group).

    ``skip`` / ``only``: fields left out / the only ones added;
    ``choices``: allowed values per field (a registry's names; else a
    field's ``metadata["choices"]``); ``notes``:
    text appended to a field's help; ``defaults``: what the default is, where
    something other than the dataclass sets it."""
    choices, notes, defaults = choices or {}, notes or {}, defaults or {}
    hints, docs, flags = typing.get_type_hints(cls), field_docs(cls), []
    for field in dataclasses.fields(cls):
        if field.name in skip or (
            only is not None and field.name not in only
        ):
            continue
        keywords, kind, how = _reading(hints[field.name], field.name)
        allowed = choices.get(field.name, field.metadata.get("choices"))
        if allowed is not None:  # an optional field also takes 'none'
            optional = type(None) in typing.get_args(hints[field.name])
            keywords = {
                k: v for k, v in keywords.items() if k != "metavar"
            } | {"choices": [*allowed] + [None] * optional}
        if field.name in defaults:
            default = defaults[field.name]
        elif field.default is not MISSING:
            default = _show(field.default)
        else:
            default = (
                _show(field.default_factory())
                if field.default_factory is not MISSING
                else "required"
            )
        text = (
            docs.get(field.name, f"{cls.__name__}.{field.name}")
            + notes.get(field.name, "")
            + how
        )
        dest = f"{section}.{field.name}"
        group.add_argument(
            "--" + field.name.replace("_", "-"),
            dest=dest,
            default=argparse.SUPPRESS,
            help=f"{text} (default: {default})".replace("%", "%%"),
            **keywords,
        )
        flags.append(Flag(section, field.name, dest, kind))
    return flags


def apply_flags(
    args: argparse.Namespace, flags: list[Flag], sections: dict[str, dict]
) -> None:
    """Write every flag that was given into ``sections[flag.section]``: a
    value replaces what is there, a mapping is merged into it, a repeatable
    list is added to it."""
    given = vars(args)
    for flag in flags:
        if flag.dest not in given:
            continue
        value, target = given[flag.dest], sections[flag.section]
        if flag.kind == "merge":
            merged = dict(target.get(flag.name) or {})
            for mapping in value:
                merged |= mapping
            target[flag.name] = merged
        elif flag.kind == "extend":
            target[flag.name] = [*(target.get(flag.name) or []), *value]
        else:
            target[flag.name] = value
