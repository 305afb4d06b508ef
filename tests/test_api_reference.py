"""The API reference (book/api/) documents every public name of the library, folder by folder.

A public name is one a module defines (a top-level ``def``, ``class`` or assignment, read from
its source) and does not start with ``_``; where a module has ``__all__``, the names it lists
and defines. book/_ext/api_reference.py reads a module's group from the layout: its folder
(``annotated.models.transformer`` -> ``models``), or ``package`` for ``annotated`` and its
``__main__`` (on the index page). Each folder has its page, book/api/FOLDER.md, which writes
``.. api-modules:: FOLDER``. When the book is built, every public name must have its entry (an
id ``annotated.module.Name``) on its folder's page, and the page a link to its highlighted
source (viewcode).
"""

import functools
import importlib.util
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from _scripts import ROOT, load_module, load_script

import annotated

check_site = load_script("check_site")
API = ROOT / "book" / "api"
BUILT_SITE = Path(
    os.environ.get("ANNOTATED_BUILT_SITE") or ROOT / "_build" / "html"
)
DIRECTIVE = re.compile(r"^\.\. api-modules::\s+(\S+)\s*$", re.M)
api_reference = load_module(ROOT / "book" / "_ext" / "api_reference.py")


def library_modules() -> list[str]:
    return ["annotated"] + sorted(
        m.name
        for m in pkgutil.walk_packages(annotated.__path__, "annotated.")
    )


defined_names = (
    api_reference.defined_names
)  # the public names the extension documents (one definition)


def group_pages() -> dict[str, list[str]]:
    """API group -> the pages (docnames) whose ``api-modules`` directive names it."""
    found: dict[str, list[str]] = {}
    for page in sorted(API.glob("*.md")):
        for group in DIRECTIVE.findall(page.read_text(encoding="utf-8")):
            found.setdefault(group, []).append(f"book/api/{page.stem}")
    return found


def module_pages() -> dict[str, str]:
    """Module -> the page that documents it."""
    pages = group_pages()
    return {
        module: pages[api_reference.group_of(module)][0]
        for module in library_modules()
    }


def test_defined_names_reads_the_source():
    names = defined_names("annotated.attention.masks")
    assert "causal" in names and "and_masks" in names
    assert all(not n.startswith("_") for n in names)
    assert "torch" not in names, (
        "an imported module is not a name the module defines"
    )


def folders() -> list[str]:
    """The first-level subpackages of annotated/: its folders with an ``__init__.py``."""
    root = Path(annotated.__file__).parent
    return sorted(p.parent.name for p in root.glob("*/__init__.py"))


def test_group_of_reads_the_layout():
    group_of = api_reference.group_of
    assert group_of("annotated.models.transformer") == "models"
    assert group_of("annotated.models") == "models"
    assert group_of("annotated.lab.cli") == "lab"
    assert group_of("annotated.bench.__main__") == "bench"
    assert group_of("annotated.figures.showcode") == "figures"
    assert group_of("annotated") == "package"
    assert group_of("annotated.__main__") == "package"
    assert group_of("annotated.a_folder_made_tomorrow.x") == (
        "a_folder_made_tomorrow"
    )
    with pytest.raises(ValueError, match="not a module of annotated"):
        group_of("torch.nn")


def test_the_groups_are_the_package_and_its_folders():
    assert api_reference.groups() == ["package", *folders()]
    assert {
        "attention", "kernels", "positional", "models", "training", "tasks",
        "lab", "analysis", "figures", "bench", "core",
    } <= set(folders())  # fmt: skip
    with pytest.raises(ValueError, match="unknown API group 'other'"):
        api_reference.modules_of("other")


def test_every_folder_has_its_own_page():
    pages = group_pages()
    assert pages.get("package") == ["book/api/index"]
    wrong = {
        folder: pages.get(folder)
        for folder in folders()
        if pages.get(folder) != [f"book/api/{folder}"]
    }
    assert not wrong, (
        f"each folder of annotated/ has one page book/api/FOLDER.md writing "
        f"``.. api-modules:: FOLDER``; not so for: {wrong}"
    )


def test_every_module_lands_on_exactly_one_page_whose_file_exists():
    pages = group_pages()
    unknown = sorted(set(pages) - set(api_reference.groups()))
    assert not unknown, (
        f"book/api/ names groups that are no folder of annotated/: {unknown}"
    )
    for module in library_modules():
        on = pages.get(api_reference.group_of(module), [])
        assert len(on) == 1, f"{module} is documented on {on}, not one page"
        assert (ROOT / f"{on[0]}.md").is_file(), (module, on)
    assert (
        api_reference.unplaced_groups(
            {group: set(on) for group, on in pages.items()}
        )
        == []
    )


def test_a_module_without_a_page_fails_the_build_with_a_sentence_that_says_what_to_do(
    monkeypatch,
):
    pages = {group: set(on) for group, on in group_pages().items()}
    del pages["core"]
    core = sorted(api_reference.modules_of("core"))
    assert api_reference.unplaced_groups(pages) == [
        f"no API page documents the folder annotated/core/ ({', '.join(core)}): "
        "add book/api/core.md with ``.. api-modules:: core`` and list it in _toc.yml"
    ]
    monkeypatch.setattr(
        api_reference,
        "library_modules",
        lambda: [*library_modules(), "annotated.helpers"],
    )
    assert api_reference.unplaced_groups(pages)[1:] == [
        "annotated.helpers sits flat at the top of annotated/ and belongs to no "
        "API page: move it into the folder of its part of the library"
    ]
    pages["core"] = {"book/api/core", "book/api/index"}
    assert (
        "written on more than one page"
        in (api_reference.unplaced_groups(pages)[0])
    )


def test_a_sphinx_build_documents_a_folder_and_warns_of_every_folder_without_a_page(
    tmp_path,
):
    """A two-page Sphinx project (not the book): one page writes ``core``, the other the
    package and a group that does not exist. The core page has an entry for what core
    defines; the build reports the unknown group as an error and warns once for each other
    folder, naming the page to add."""
    (tmp_path / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT / 'book' / '_ext')!r})\n"
        "extensions = ['sphinx.ext.autodoc', 'sphinx.ext.napoleon', 'api_reference']\n"
    )
    (tmp_path / "index.rst").write_text(
        "Index\n=====\n\n.. toctree::\n\n   core\n\n"
        ".. api-modules:: package\n\n.. api-modules:: other\n"
    )
    (tmp_path / "core.rst").write_text(
        "Core\n====\n\n.. api-modules:: core\n"
    )
    build = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-E"]
        + [str(tmp_path), str(tmp_path / "_build")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    warnings = [
        line
        for line in build.stderr.splitlines()
        if "API reference: no API page documents" in line
    ]
    others = [f for f in folders() if f != "core"]
    assert len(warnings) == len(others), build.stderr
    for folder, warning in zip(others, warnings):
        assert f"the folder annotated/{folder}/" in warning
        assert f"add book/api/{folder}.md" in warning
    assert "ERROR: unknown API group 'other'" in build.stderr
    page, ids = _read(tmp_path / "_build" / "core.html")
    defined = {
        f"{module}.{name}"
        for module in api_reference.modules_of("core")
        for name in defined_names(module)
    }
    assert defined and defined <= ids, sorted(defined - ids)


def test_the_extension_documents_what_a_module_defines():
    for module in library_modules():
        assert api_reference.defined_names(module) == defined_names(module), (
            module
        )


def test_every_api_page_is_in_the_table_of_contents():
    toc = set(check_site.toc_files(ROOT / "_toc.yml"))
    pages = {f"book/api/{p.stem}" for p in API.glob("*.md")}
    assert pages <= toc, f"API pages not in _toc.yml: {sorted(pages - toc)}"


def test_autodoc_documents_members_and_links_source():
    sphinx = yaml.safe_load(
        (ROOT / "_config.yml").read_text(encoding="utf-8")
    )["sphinx"]
    assert {"sphinx.ext.autodoc", "sphinx.ext.viewcode"} <= set(
        sphinx["extra_extensions"]
    )
    options = sphinx["config"]["autodoc_default_options"]
    assert options.get("members") and options.get("undoc-members"), (
        "autodoc must document every public name"
    )


def test_built_api_reference_has_an_entry_and_source_link_for_every_public_name():
    missing, unlinked = [], []
    for module, docname in module_pages().items():
        path = BUILT_SITE / f"{docname}.html"
        if not path.is_file():
            if os.environ.get("ANNOTATED_BUILT_SITE"):
                pytest.fail(
                    f"no built page {path}: build the book with `make book-strict` first"
                )
            pytest.skip(f"{path} is not built: `make book-strict` builds it")
        source = importlib.util.find_spec(module).origin
        if not os.environ.get("ANNOTATED_BUILT_SITE") and (
            path.stat().st_mtime < Path(source).stat().st_mtime
        ):
            pytest.skip(f"{path} is older than {module}: `make book-strict`")
        page, ids = _read(path)
        missing += [
            f"{module}.{name}"
            for name in defined_names(module)
            if f"{module}.{name}" not in ids
        ]
        if (
            defined_names(module)
            and f"_modules/{module.replace('.', '/')}.html" not in page
        ):
            unlinked.append(module)
    assert not missing, (
        f"public names without an entry in the built API reference: {missing}"
    )
    assert not unlinked, (
        f"API pages without a [source] link to these modules: {unlinked}"
    )


@functools.cache
def _read(path: Path) -> tuple[str, frozenset[str]]:
    """A built page's HTML and its ids, read once."""
    page = path.read_text(encoding="utf-8")
    return page, frozenset(check_site.html_ids(page))
