"""A chapter's checks fail when its conclusion does.

Each chapter backs the sentences it draws from trained models with checks
(annotated.analysis.expect) that run with the notebook. Here a chapter runs
from its source with one cell injected right after a training cell — the two
models of a comparison swapped, or a mask removed — and must stop at the check
of that conclusion with ConclusionFailed, not run through. The notebook is cut
after that check, so each case costs only the cells before it.
"""

from __future__ import annotations

import os
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]

# (chapter source, a line of the cell after which the broken cell goes — the
# first after its imports, or one of its lines; the injected cell; a
# fragment of the claim whose check cell must stop the run)
CASES = {
    "two heads vs one, swapped": (
        "02_multi_head.py",
        "SEEDS = ",
        "runs = {(3 - h, s): v for (h, s), v in runs.items()}",
        "two heads",
    ),
    # chapter 4: the GPT's causal mask removed before it trains on sort: it
    # learns to read the next answer token instead of computing it, and
    # teacher forcing no longer tells how it generates
    "GPT on sort, mask removed": (
        "04_architectures.py",
        "gpt_config = ModelConfig(",
        "for block in gpt.modules():\n"
        "    if hasattr(block, 'causal'):\n"
        "        block.causal = False",
        "greedy decoding gets the same share of whole answers",
    ),
    # chapter 8: the ablation table read with its layers reversed (layer 0's
    # heads labelled as layer 3's): the previous-token head L0H1 moves
    "head ablations, layers swapped": (
        "08_inside_the_model.py",
        "by_head = {(r[",
        "by_head = {(3 - l, h, m): r for (l, h, m), r in by_head.items()}",
        "the previous-token head L0H1 matters most",
    ),
}


def first_line(source: str) -> str:
    lines = [ln for ln in source.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(("import ", "from "))]
    return lines[0] if lines else ""


def broken_notebook(chapter: str, anchor: str, inject: str, claim: str):
    nb = jupytext.read(ROOT / "notebooks" / chapter)
    cells = nb.cells
    (at,) = [
        i
        for i, c in enumerate(cells)
        if c.cell_type == "code"
        and (first_line(c.source).startswith(anchor)
             or any(ln.startswith(anchor) for ln in c.source.splitlines()))
    ]  # fmt: skip
    checks = [
        i
        for i, c in enumerate(cells)
        if i > at and c.cell_type == "code" and claim in c.source
        and "expect" in c.source
    ]  # fmt: skip
    assert checks, f"{chapter}: no check of {claim!r} after the training"
    nb.cells = [
        *cells[: at + 1],
        nbformat.v4.new_code_cell(inject),
        *cells[at + 1 : checks[0] + 1],
    ]
    return nb


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_a_broken_conclusion_fails_its_check(case):
    chapter, anchor, inject, claim = CASES[case]
    nb = broken_notebook(chapter, anchor, inject, claim)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=600,
        resources={"metadata": {"path": str(ROOT / "notebooks")}},
    )
    os.environ.setdefault("MPLBACKEND", "Agg")
    with pytest.raises(CellExecutionError) as failure:
        client.execute()
    # the check cell of the claim (or an earlier check in it) stops the run
    assert failure.value.ename == "ConclusionFailed", failure.value
    assert "the numbers do not bear it out" in str(failure.value)


def test_expect_takes_tensors_that_require_grad_without_a_warning():
    import warnings

    import torch

    from annotated.analysis.expect import ConclusionFailed, expect_above

    moved = torch.tensor([0.2, 0.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        expect_above("the rows moved", moved.max(), 0.01)
        with pytest.raises(ConclusionFailed, match="value=0, bound=0.01"):
            expect_above("the rows moved", moved.min(), 0.01)
