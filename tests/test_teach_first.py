"""Chapters 1–4 teach before they show: the reader writes the idea from
scratch, checks it against the library, and only then meets the library's
version, folded.

A chapter's from-scratch cells carry the cell tag ``from-scratch``: they
import nothing from ``annotated`` and the first of them comes before the
first ``show_source`` on the page; a later cell compares the reader's
version with the library's (``assert_close``/``allclose``/``equal``) before
the library's source is shown; every ``show_source`` cell is folded
(``hide-output``: the page shows a "Show code cell output" button).
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = [
    "01_attention",
    "02_multi_head",
    "03_positional_encodings",
    "04_architectures",
    "04c_vision_transformer",
]
FROM_THE_LIBRARY = re.compile(r"^\s*(from|import)\s+annotated\b", re.M)
COMPARES = re.compile(r"assert_close|allclose|torch\.equal")


def cells(chapter: str):
    nb = jupytext.read(ROOT / "notebooks" / f"{chapter}.py")
    return [c for c in nb.cells if c.cell_type == "code"]


def tags(cell) -> list[str]:
    return cell.metadata.get("tags", [])


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_reader_writes_it_before_the_library_shows_it(chapter):
    code = cells(chapter)
    scratch = [i for i, c in enumerate(code) if "from-scratch" in tags(c)]
    shown = [i for i, c in enumerate(code) if "show_source(" in c.source]
    assert scratch, f"{chapter} has no cell tagged from-scratch"
    assert shown, f"{chapter} shows no library source"
    assert scratch[0] < shown[0], (
        f"{chapter}: the first from-scratch cell must come before the first "
        "show_source"
    )
    for i in scratch:
        assert not FROM_THE_LIBRARY.search(code[i].source), (
            f"{chapter}: a from-scratch cell imports from annotated:\n"
            f"{code[i].source[:200]}"
        )
    checks = [
        i
        for i, c in enumerate(code)
        if scratch[0] < i < shown[0] and COMPARES.search(c.source)
    ]
    assert checks, (
        f"{chapter}: no cell between the from-scratch version and the first "
        "show_source checks it against the library"
    )


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_library_source_is_folded(chapter):
    unfolded = [
        c.source.strip().splitlines()[-1]
        for c in cells(chapter)
        if "show_source(" in c.source and "hide-output" not in tags(c)
    ]
    assert not unfolded, (
        f"{chapter}: tag these show_source cells hide-output: {unfolded}"
    )


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_from_scratch_versions_stay_short(chapter):
    """Each from-scratch cell fits on a screen (about 15 lines of code)."""
    for cell in cells(chapter):
        if "from-scratch" in tags(cell):
            lines = [
                ln
                for ln in cell.source.splitlines()
                if ln.strip() and not ln.strip().startswith("#")
            ]
            assert len(lines) <= 20, (
                f"{chapter}: a from-scratch cell has {len(lines)} lines of "
                f"code:\n{cell.source[:200]}"
            )
