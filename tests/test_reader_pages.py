"""Pages speak to the reader: the prose of every chapter is free of words
about how the book is built, tested or was produced — sessions, this machine,
the test suite, nbval, "compared when", "stored sweep", commit hashes. The
front page too."""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9]*.py"))

MAINTAINER_WORDS = {
    "a session": r"\bsessions?\b",
    "this machine": r"\bthis machine\b",
    "the test suite": r"\bthe tests\b|\bthe test suite\b|\bis tested\b",
    "nbval": r"\bnbval\b",
    "what is compared": r"\bcompared when\b|\bnot compared\b",
    "a stored sweep": r"\bstored sweeps?\b",
    "CI": r"\bCI\b",
    "a commit hash": r"\bcommit `?[0-9a-f]{7,40}\b",
    "how the work was sized": r"\bsizing the work\b|\bnot rerun\b",
}


def prose(path: Path) -> list[tuple[int, str]]:
    """(cell number, line) of every markdown line of a chapter."""
    cells = jupytext.read(path).cells
    return [
        (i, line)
        for i, cell in enumerate(cells)
        if cell.cell_type == "markdown"
        for line in cell.source.splitlines()
    ]


def test_there_are_chapters():
    assert len(CHAPTERS) >= 9


def maintainer_words(lines, where: str) -> list[str]:
    """``where`` and a number, the word found and the line, for every line
    of ``(number, line)`` that holds a maintainer word."""
    return [
        f"{where} {i}: {name}: {line.strip()[:70]}"
        for i, line in lines
        for name, pattern in MAINTAINER_WORDS.items()
        if re.search(pattern, line, re.IGNORECASE)
    ]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_prose_speaks_to_the_reader(path):
    found = maintainer_words(prose(path), "cell")
    assert not found, "\n".join(found)


def test_the_front_page_speaks_to_the_reader():
    intro = (ROOT / "book" / "intro.md").read_text(encoding="utf-8")
    found = maintainer_words(enumerate(intro.splitlines(), 1), "line")
    assert not found, "\n".join(found)


def test_the_rule_catches_maintainer_words():
    line = "This cell's output is not compared when the notebook is tested."
    assert any(re.search(p, line, re.I) for p in MAINTAINER_WORDS.values())


# A chapter whose outputs depend on the machine (cells whose outputs are
# not compared byte for byte: training, timings) tells the reader so once:
# re-executed on another CPU the numbers move in their later digits.
MOVES = re.compile(r"later digits|need not agree|\bdiffers?\b")


def moves_with_cpu(markdown: str) -> bool:
    """The text names the CPU and says that numbers move with it."""
    text = " ".join(markdown.split())
    return bool(re.search(r"\bCPU\b", text) and MOVES.search(text))


def says_numbers_move(cells) -> bool:
    """True when no cell's output varies by machine, or a markdown cell says
    that re-executed numbers move with the CPU."""
    varies = any(
        cell.cell_type == "code"
        and "nbval-ignore-output" in cell.metadata.get("tags", [])
        for cell in cells
    )
    return not varies or any(
        cell.cell_type == "markdown" and moves_with_cpu(cell.source)
        for cell in cells
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_a_chapter_says_its_trained_numbers_move_with_the_cpu(path):
    assert says_numbers_move(jupytext.read(path).cells), (
        f"{path.name} has outputs that differ by machine but never tells "
        "the reader that re-executed numbers move with the CPU"
    )


def test_the_rule_catches_a_chapter_that_does_not_say_so():
    text = (
        "# %% [markdown]\n# Training a model.\n\n"
        '# %% tags=["nbval-ignore-output"]\nprint(0.123)\n'
    )
    cells = jupytext.reads(text, fmt="py:percent").cells
    assert not says_numbers_move(cells)
    note = (
        "# %% [markdown]\n# Run again on another CPU, these numbers change"
        "\n# in their later digits.\n\n"
    )
    cells = jupytext.reads(note + text, fmt="py:percent").cells
    assert says_numbers_move(cells)
