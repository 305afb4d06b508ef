"""The book as readers meet it: the repository address is set once (_config.yml), every
notebook's first cell installs from it (or from ANNOTATED_PIP_SPEC when a test sets it),
the landing page shows a figure from the lab, and the download check finds the notebook
a chapter page offers. The download itself runs in `make check-download`."""

import re
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml
from _scripts import ROOT, load_script

check_download = load_script("check_download")
NOTEBOOK_FILES = sorted((ROOT / "notebooks").glob("*.py")) + sorted(
    (ROOT / "notebooks").glob("*.ipynb")
)
GIT_ADDRESS = re.compile(r"git\+(?P<url>https?://[^\s\"'@]+)")


def _repository_url() -> str:
    config = yaml.safe_load(
        (ROOT / "_config.yml").read_text(encoding="utf-8")
    )
    return config["repository"]["url"]


def _first_code_cell(path: Path) -> str:
    cells = (
        jupytext.read(path).cells
        if path.suffix == ".py"
        else nbformat.read(path, as_version=4).cells
    )
    return next(c.source for c in cells if c.cell_type == "code")


def _normalised(url: str) -> str:
    return url.rstrip("/").removesuffix(".git")


def test_there_are_notebooks():
    assert NOTEBOOK_FILES, "no notebooks/*.py or *.ipynb found"


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.name)
def test_first_cell_installs_from_the_configured_repository(path):
    url = _repository_url()
    found = [m["url"] for m in GIT_ADDRESS.finditer(_first_code_cell(path))]
    assert found, (
        f"{path.name}: the first code cell installs from no git+https address; it must install from {url}"
    )
    wrong = [u for u in found if _normalised(u) != _normalised(url)]
    assert not wrong, (
        f"{path.name}: the first code cell installs from {wrong[0]}, but _config.yml's repository.url is {url} "
        f"(the one source of truth): change the address in notebooks/{path.stem}.py, then run make sync"
    )


def _run_first_cell(
    path: Path, monkeypatch, pip_spec: str | None
) -> list[str]:
    """Run the first cell in a real IPython shell where `annotated` is not importable; return
    the lines given to %pip (a stand-in magic records them instead of installing)."""
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.setitem(
        sys.modules, "annotated", None
    )  # None in sys.modules: `import annotated` raises ImportError
    if pip_spec is None:
        monkeypatch.delenv("ANNOTATED_PIP_SPEC", raising=False)
    else:
        monkeypatch.setenv("ANNOTATED_PIP_SPEC", pip_spec)
    shell = InteractiveShell.instance()
    try:
        pip_lines: list[str] = []
        shell.register_magic_function(pip_lines.append, "line", "pip")
        result = shell.run_cell(
            _first_code_cell(path), store_history=False, silent=True
        )
        result.raise_error()
        return pip_lines
    finally:
        InteractiveShell.clear_instance()


@pytest.mark.parametrize(
    "path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name
)
def test_first_cell_installs_the_repository_or_the_override(
    path, monkeypatch
):
    url = _repository_url()
    assert _run_first_cell(path, monkeypatch, None) == [
        f'install -q "annotated @ git+{url}"'
    ], (
        f"{path.name}: without ANNOTATED_PIP_SPEC the first cell must run %pip install of git+{url}"
    )
    local = "annotated @ file:///tmp/a copy/annotated-attention"
    assert _run_first_cell(path, monkeypatch, local) == [
        f'install -q "{local}"'
    ], (
        f"{path.name}: the first cell must %pip install the spec ANNOTATED_PIP_SPEC names (scripts/check_download.py)"
    )


def test_landing_page_figure_names_the_script_that_draws_it():
    intro = (ROOT / "book" / "intro.md").read_text(encoding="utf-8")
    figures = re.findall(r"```\{figure\}\s+(\S+\.png)", intro)
    assert figures, "book/intro.md shows no PNG figure (a {figure} directive)"
    for figure in figures:
        png = (ROOT / "book" / figure).resolve()
        assert png.is_file(), (
            f"book/intro.md shows {figure}, which does not exist"
        )
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", (
            f"{figure} is not a PNG"
        )
        assert png.stat().st_size < 200_000, (
            f"{figure} is {png.stat().st_size} bytes: keep it under 200 KB"
        )
    scripts = re.findall(r"`python (scripts/\S+\.py)`", intro)
    assert scripts and all((ROOT / s).is_file() for s in scripts), (
        "the caption must give the command that drew the figure"
    )


def test_downloaded_notebook_follows_the_download_button(tmp_path):
    (tmp_path / "_sources" / "notebooks").mkdir(parents=True)
    (tmp_path / "_sources" / "notebooks" / "01_x.ipynb").write_text("{}")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01_x.html").write_text(
        '<a href="../_sources/notebooks/01_x.md" class="btn btn-download-source-button">.md</a>'
        '<a href="../_sources/notebooks/01_x.ipynb" target="_blank" class="btn btn-sm btn-download-source-button">'
        "source</a><a href='../other.ipynb'>not the button</a>"
    )
    found = check_download.downloaded_notebook(tmp_path, "notebooks/01_x")
    assert (
        found
        == (tmp_path / "_sources" / "notebooks" / "01_x.ipynb").resolve()
    )


def test_downloaded_notebook_fails_without_a_button_or_file(tmp_path):
    (tmp_path / "page.html").write_text("<a href='x.ipynb'>a plain link</a>")
    with pytest.raises(ValueError, match="no download button"):
        check_download.downloaded_notebook(tmp_path, "page")
    (tmp_path / "page.html").write_text(
        '<a class="btn-download-source-button" href="_sources/gone.ipynb">x</a>'
    )
    with pytest.raises(FileNotFoundError, match="not in the built site"):
        check_download.downloaded_notebook(tmp_path, "page")
    with pytest.raises(FileNotFoundError, match="build the book first"):
        check_download.downloaded_notebook(tmp_path, "missing")


def test_copy_package_holds_what_pip_needs_and_no_caches(tmp_path):
    copy = check_download.copy_package(tmp_path / "copy")
    assert (copy / "pyproject.toml").read_text() == (
        ROOT / "pyproject.toml"
    ).read_text()
    assert (copy / "annotated" / "__init__.py").is_file()
    assert not list(copy.rglob("__pycache__")), (
        "the copy must not carry __pycache__ folders"
    )
