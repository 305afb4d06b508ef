"""The API reference (book/api/) documents every public name of the library.

A public name is one a module defines (a top-level ``def``, ``class`` or assignment, read from
its source) and does not start with ``_``; where a module has ``__all__``, the names it lists
and defines. book/_ext/api_reference.py assigns each module to one group, and each API page
writes ``.. api-modules:: GROUP``; the last group catches every module no other group
claims, on the index page. When the book is built, every public name must have its entry
(an id ``annotated.module.Name``) on its group's page, and the page a link to its
highlighted source (viewcode).
"""

import functools
import os
import pkgutil
import re
from pathlib import Path

import pytest
import yaml
from _scripts import ROOT, load_module, load_script

import annotated

check_site = load_script("check_site")
API = ROOT / "book" / "api"
BUILT_SITE = Path(os.environ.get("ANNOTATED_BUILT_SITE") or ROOT / "_build" / "html")
DIRECTIVE = re.compile(r"^\.\. api-modules::\s+(\S+)\s*$", re.M)
api_reference = load_module(ROOT / "book" / "_ext" / "api_reference.py")


def library_modules() -> list[str]:
    return ["annotated"] + sorted(m.name for m in pkgutil.walk_packages(annotated.__path__, "annotated."))


defined_names = api_reference.defined_names  # the public names the extension documents (one definition)


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
    return {module: pages[api_reference.group_of(module)][0] for module in library_modules()}


def test_defined_names_reads_the_source():
    names = defined_names("annotated.attention.masks")
    assert "causal" in names and "and_masks" in names
    assert all(not n.startswith("_") for n in names)
    assert "torch" not in names, "an imported module is not a name the module defines"


def test_every_group_is_on_exactly_one_page():
    pages = group_pages()
    groups = [group for group, _ in api_reference.GROUPS]
    missing = [group for group in groups if group not in pages]
    assert not missing, f"API groups no page shows: {missing}; add ```{{eval-rst}} .. api-modules:: GROUP``` to a page"
    twice = {group: on for group, on in pages.items() if len(on) > 1}
    assert not twice, f"API groups on more than one page (Sphinx warns of duplicates): {twice}"
    unknown = sorted(set(pages) - set(groups))
    assert not unknown, f"book/api/ names groups that book/_ext/api_reference.py does not define: {unknown}"


def test_the_extension_documents_what_a_module_defines():
    for module in library_modules():
        assert api_reference.defined_names(module) == defined_names(module), module
    assert api_reference.group_of("annotated.attention.attend") == "attention"
    assert api_reference.group_of("annotated.positional.rope") == "positional"
    assert api_reference.group_of("annotated.a_module_written_tomorrow") == "other"


def test_every_api_page_is_in_the_table_of_contents():
    toc = set(check_site.toc_files(ROOT / "_toc.yml"))
    pages = {f"book/api/{p.stem}" for p in API.glob("*.md")}
    assert pages <= toc, f"API pages not in _toc.yml: {sorted(pages - toc)}"


def test_autodoc_documents_members_and_links_source():
    sphinx = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["sphinx"]
    assert {"sphinx.ext.autodoc", "sphinx.ext.viewcode"} <= set(sphinx["extra_extensions"])
    options = sphinx["config"]["autodoc_default_options"]
    assert options.get("members") and options.get("undoc-members"), "autodoc must document every public name"


def test_built_api_reference_has_an_entry_and_source_link_for_every_public_name():
    missing, unlinked = [], []
    for module, docname in module_pages().items():
        path = BUILT_SITE / f"{docname}.html"
        if not path.is_file():
            if os.environ.get("ANNOTATED_BUILT_SITE"):
                pytest.fail(f"no built page {path}: build the book with `make book-strict` first")
            pytest.skip(f"{path} is not built: `make book-strict` builds it")
        page, ids = _read(path)
        missing += [f"{module}.{name}" for name in defined_names(module) if f"{module}.{name}" not in ids]
        if defined_names(module) and f"_modules/{module.replace('.', '/')}.html" not in page:
            unlinked.append(module)
    assert not missing, f"public names without an entry in the built API reference: {missing}"
    assert not unlinked, f"API pages without a [source] link to these modules: {unlinked}"


@functools.cache
def _read(path: Path) -> tuple[str, frozenset[str]]:
    """A built page's HTML and its ids, read once."""
    page = path.read_text(encoding="utf-8")
    return page, frozenset(check_site.html_ids(page))
