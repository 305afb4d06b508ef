"""Every chapter source notebooks/NN_topic.py is paired with, and in sync with, its
executed NN_topic.ipynb, and listed in _toc.yml; the stored notebooks are fully executed."""

import jupytext
import nbformat
import pytest
from _scripts import ROOT, load_script

check_site = load_script(
    "check_site"
)  # the table-of-contents reader lives with the site check
SOURCES = sorted((ROOT / "notebooks").glob("*.py"))
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _toc_files() -> set[str]:
    return set(check_site.toc_files(ROOT / "_toc.yml"))


def test_there_are_chapters():
    assert SOURCES, "no notebooks/*.py found"


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.name)
def test_source_is_paired_and_in_sync(src):
    nb_path = src.with_suffix(".ipynb")
    assert nb_path.exists(), (
        f"{src.name} has no paired {nb_path.name}: run make sync && make execute"
    )
    py_cells = [
        (c.cell_type, c.source.strip()) for c in jupytext.read(src).cells
    ]
    nb_cells = [
        (c.cell_type, c.source.strip()) for c in jupytext.read(nb_path).cells
    ]
    assert py_cells == nb_cells, (
        f"{src.name} and {nb_path.name} differ: run make sync, then make execute"
    )
    formats = (
        nbformat.read(nb_path, as_version=4)
        .metadata.get("jupytext", {})
        .get("formats", "")
    )
    assert "py:percent" in formats, (
        f"{nb_path.name} is not paired with py:percent (run make sync)"
    )


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_source_is_listed_and_executed(nb_path):
    assert nb_path.with_suffix(".py").exists(), (
        f"{nb_path.name} has no .py source"
    )
    rel = str(nb_path.relative_to(ROOT).with_suffix(""))
    assert rel in _toc_files(), f"{rel} is not listed in _toc.yml"
    nb = nbformat.read(nb_path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), (
        f"{nb_path.name} has unexecuted cells: make execute"
    )
    counts = [c.execution_count for c in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"{nb_path.name} was not executed top to bottom in one run"
    )
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{nb_path.name} stores an error output"
    warnings = [
        o.text.splitlines()[0]
        for c in code
        for o in c.outputs
        if o.output_type == "stream" and o.name == "stderr"
    ]
    # a stored warning names this computer's paths and is compared by nbval
    assert not warnings, f"{nb_path.name} stores stderr: {warnings}"
    first = code[0]
    assert (
        "import annotated" in first.source and "pip install" in first.source
    ), (
        f"{nb_path.name}: the first code cell must install the package when it is missing (Colab)"
    )


def test_every_toc_entry_exists():
    for entry in _toc_files():
        candidates = [ROOT / f"{entry}{ext}" for ext in (".md", ".ipynb")]
        assert any(p.exists() for p in candidates), (
            f"_toc.yml lists {entry}, which does not exist"
        )


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_records_what_produced_its_outputs(nb_path):
    """make execute records the torch version, CPU capability and threads."""
    record = (
        nbformat.read(nb_path, as_version=4)
        .metadata.get("annotated", {})
        .get("executed_with", {})
    )
    missing = {"torch", "cpu_capability", "threads"} - set(record)
    assert not missing, (
        f"{nb_path.name} does not record {sorted(missing)}: make execute"
    )
