"""Property: any wrong value in any config field — from a YAML file or on the command line — ends in exit
status 2, one ``error:`` line, no traceback, and no folder.

The wrong values are wrong by construction, from a reference written here rather than read from
the library: a value of a kind the field's type does not take (text for a number, a number for a
name, a list for a mapping…), a negative number or NaN / infinity for a numeric field (no field
of the three configs takes one), or text no registry or folder name accepts (``x/…``). A new
field whose type or range breaks those rules must say so in ``EXEMPT``. Few examples per
run (hypothesis varies them from run to run); each is one in-process ``main()`` call that stops
before training.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import tempfile
import types
import typing
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotated.lab import ExperimentConfig
from annotated.lab.cli import NOT_FLAGS, main
from annotated.models.config import ModelConfig
from annotated.training.config import TrainConfig

BASE = {"name": "fuzz", "task": "sort", "train_length": 4, "eval_lengths": [6],
        "model": {"d_model": 16, "n_layers": 1, "n_heads": 2},
        "train": {"steps": 4, "warmup_steps": 1, "batch_size": 4, "eval_batches": 1, "device": "cpu"}}  # fmt: skip
CONFIGS = {
    "experiment": ExperimentConfig,
    "model": ModelConfig,
    "train": TrainConfig,
}
EXEMPT = {("experiment", "base_dir")}  # internal (never read from a file)
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

ODD_TEXT = st.text(max_size=6).map(
    lambda s: "x/" + s
)  # no task, encoding, kernel, device, folder or plugin name
KINDS = {  # a value of each kind, in YAML's and JSON's types
    "none": st.none(),
    "bool": st.booleans(),
    "int": st.integers(-(10**6), 10**6),
    "negative": st.integers(-(10**6), -1)
    | st.floats(max_value=-1e-9, allow_nan=False),
    "fraction": st.floats(-1e6, 1e6).filter(lambda x: not x.is_integer()),
    "special": st.sampled_from([math.nan, math.inf, -math.inf]),
    "text": ODD_TEXT,
    "number_as_text": st.sampled_from(["3e-4", "0.1", "2", "1e3", "none"]),
    "list": st.lists(ODD_TEXT, min_size=1, max_size=2),
    "dict": st.dictionaries(
        st.sampled_from(["a", "b"]), st.integers(0, 9), min_size=1, max_size=2
    ),
}


def wrong_kinds(hint) -> list[str]:
    """The kinds of value that can never be right for a field of type ``hint``."""
    parts = (
        typing.get_args(hint)
        if typing.get_origin(hint) in (typing.Union, types.UnionType)
        else (hint,)
    )
    right: set[str] = set()
    for part in parts:
        origin = typing.get_origin(part) or part
        right |= {
            type(None): {"none"},
            bool: {"bool"},
            int: {
                "int"
            },  # a negative int is wrong: no count, length, size or seed is negative
            float: {"int", "fraction"},
            str: {
                "text",
                "number_as_text",
            },  # "x/…" is still wrong: no name has a slash
            dict: {"dict"},
            list: set()
            if typing.get_args(part)
            else {"list"},  # list[int] / list[str]: ["x/…"] is wrong
            tuple: set(),  # betas: two numbers; ["x/…"] is wrong
        }.get(origin, set(KINDS))
    return [kind for kind in KINDS if kind not in right]


FIELDS = [(section, f.name, typing.get_type_hints(cls)[f.name])
          for section, cls in CONFIGS.items() for f in dataclasses.fields(cls)
          if (section, f.name) not in EXEMPT and not (section == "experiment" and f.name in ("model", "train"))]  # fmt: skip
FIELDS += [
    ("experiment", "model", dict),
    ("experiment", "train", dict),
]  # the sections themselves


@st.composite
def wrong_field(draw):
    section, name, hint = draw(st.sampled_from(FIELDS))
    value = draw(KINDS[draw(st.sampled_from(wrong_kinds(hint)))])
    return section, name, value


def call(argv) -> tuple[int, str]:
    err = io.StringIO()
    with (
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code
    return code, err.getvalue()


def assert_refused(code: int, err: str, out: Path, what) -> None:
    assert code == 2, (what, code, err)
    assert "Traceback" not in err, (what, err)
    assert sum("error:" in line for line in err.splitlines()) == 1, (
        what,
        err,
    )
    assert not out.exists(), what


@SETTINGS
@given(wrong_field(), st.sampled_from([".yaml", ".json"]))
def test_any_wrong_value_in_a_config_file_exits_2_with_one_message(
    case, suffix
):
    section, name, value = case
    config = json.loads(json.dumps(BASE))
    (config if section == "experiment" else config[section])[name] = value
    with tempfile.TemporaryDirectory() as folder:
        path, out = Path(folder) / f"config{suffix}", Path(folder) / "out"
        text = (
            json.dumps(config)
            if suffix == ".json"
            else yaml.safe_dump(config)
        )
        path.write_text(text)
        code, err = call(["train", "--config", path, "--out", out])
        assert_refused(code, err, out, (section, name, value))


def flag_values(hint) -> st.SearchStrategy:
    """Wrong text for a flag of type ``hint`` (what a user could type)."""
    parts = (
        typing.get_args(hint)
        if typing.get_origin(hint) in (typing.Union, types.UnionType)
        else (hint,)
    )
    numeric = any(
        p in (int, float) or typing.get_origin(p) in (list, tuple)
        for p in parts
    )
    words = ODD_TEXT
    if numeric:
        integral = all(
            p is not float and float not in typing.get_args(p)
            for p in parts
            if p is not type(None)
        )
        numbers = [KINDS["negative"], KINDS["special"]] + (
            [KINDS["fraction"]] if integral else []
        )
        words = words | st.one_of(numbers).map(
            repr
        )  # "-3", "2.5", "nan", "-inf", "-1e-09"
    return words


CLI_FIELDS = [
    (s, n, h)
    for s, n, h in FIELDS
    if n not in NOT_FLAGS.get(s, ()) and h is not bool
]  # bools take no value


@SETTINGS
@given(st.data())
def test_any_wrong_value_on_the_command_line_exits_2_with_one_message(data):
    section, name, hint = data.draw(st.sampled_from(CLI_FIELDS))
    value = data.draw(flag_values(hint))
    flag = "--" + name.replace("_", "-")
    values = (
        [value, "0.9"] if typing.get_origin(hint) is tuple else [value]
    )  # two numbers: one of them wrong
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out"
        base = ["--task", "sort", "--train-length", "4", "--d-model", "16", "--layers", "1", "--heads", "2",
                "--steps", "4", "--device", "cpu"]  # fmt: skip
        code, err = call(
            ["train", *base, f"{flag}={values[0]}", *values[1:], "--out", out]
        )
        assert_refused(code, err, out, (flag, values))


def test_every_field_is_fuzzed():
    fuzzed = {(s, n) for s, n, _ in FIELDS}
    for section, cls in CONFIGS.items():
        for field in dataclasses.fields(cls):
            assert (section, field.name) in fuzzed | EXEMPT, (
                section,
                field.name,
            )
    assert all(wrong_kinds(hint) for _, _, hint in FIELDS)
