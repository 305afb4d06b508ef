"""Sphinx extension for the book's API reference (book/api/): which page documents which module.

The package's folders are its groups: a module belongs to the first-level subpackage it lives
in (``annotated.models.transformer`` and ``annotated.models`` itself to ``models``), and the
package ``annotated`` with its ``__main__`` to ``package``, on the index page. ``.. api-modules::
GROUP`` (inside an ``{eval-rst}`` block) writes one ``automodule`` for every module of GROUP, so
a new module is documented on its folder's page the moment it exists, and never twice. A group
no page writes (a new folder without its page, or a module sitting flat at the top of the
package) is a warning, which fails the strict build.

The extension also resolves the short cross-references the docstrings use (:func:`attend`
written in annotated.attention.multihead, :class:`annotated.models.config.ModelConfig` for a name that models
re-exports from annotated.models.config): a target that names no documented object is looked
up by its last dotted part, and linked when exactly one documented object has that name.

What a module documents is what it defines: a top-level ``def``, ``class`` or assignment in
its source whose name does not start with ``_`` (narrowed to ``__all__`` where a module has
one). Names a module imports (a package's re-exports, shared constants) are documented once,
where they are defined.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import make_refnode, nested_parse_with_titles

PACKAGE = "annotated"
# The group of the package itself and of its command line (``python -m annotated``).
PACKAGE_GROUP = "package"
MAX_VALUE_CHARS = 60  # a longer constant (a registry, a table of settings) is described by its docstring
REFERENCE_TYPES = {
    "func",
    "class",
    "meth",
    "attr",
    "data",
    "obj",
    "exc",
    "mod",
    "const",
}


def library_modules() -> list[str]:
    """Every module of the package, the package first, then in name order."""
    package = importlib.import_module(PACKAGE)
    return [PACKAGE] + sorted(
        m.name for m in pkgutil.walk_packages(package.__path__, PACKAGE + ".")
    )


def group_of(module: str) -> str:
    """The API group of a module: its first-level subpackage, read from its dotted name.

    ``annotated.models.transformer`` -> ``models``; ``annotated.lab`` -> ``lab``;
    ``annotated`` and ``annotated.__main__`` -> ``package``. A module flat at the top
    (``annotated.utils``) is its own group, which no page writes: the build warns.
    """
    parts = module.split(".")
    if parts[0] != PACKAGE:
        raise ValueError(f"{module!r} is not a module of {PACKAGE}")
    if len(parts) == 1 or parts[1] == "__main__":
        return PACKAGE_GROUP
    return parts[1]


def groups() -> list[str]:
    """Every group the package's modules fall in: ``package``, then the folders in name order."""
    return list(dict.fromkeys(group_of(m) for m in library_modules()))


def is_folder(group: str) -> bool:
    """True when ``group`` names a subpackage (a folder with ``__init__.py``) of the package."""
    root = Path(importlib.import_module(PACKAGE).__file__).parent
    return (root / group / "__init__.py").is_file()


def modules_of(group: str) -> list[str]:
    if group not in groups():
        raise ValueError(
            f"unknown API group {group!r}: a group is a folder of {PACKAGE}/ or "
            f"{PACKAGE_GROUP!r}; the groups are {groups()}"
        )
    return [m for m in library_modules() if group_of(m) == group]


def defined_names(module_name: str) -> list[str]:
    """The public names a module defines at top level, in source order (``__all__`` narrows them)."""
    module = importlib.import_module(module_name)
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    names = []
    for node in tree.body:
        if isinstance(
            node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        ):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [
                target.id
                for target in node.targets
                if isinstance(target, ast.Name)
            ]
        elif isinstance(node, ast.AnnAssign) and isinstance(
            node.target, ast.Name
        ):
            names.append(node.target.id)
    public = [
        name for name in dict.fromkeys(names) if not name.startswith("_")
    ]
    listed = getattr(module, "__all__", None)
    return (
        [name for name in public if name in listed]
        if listed is not None
        else public
    )


def directive_for(obj) -> str:
    if inspect.isclass(obj):
        return (
            "autoexception" if issubclass(obj, BaseException) else "autoclass"
        )
    return "autofunction" if inspect.isroutine(obj) else "autodata"


def module_rst(module_name: str) -> list[str]:
    """reST for one module: a heading, its docstring, then one autodoc directive per name it defines.

    A constant whose value would print longer than a line shows its name and type only.
    """
    module = importlib.import_module(module_name)
    title = f"``{module_name}``"
    lines = [
        title,
        "-" * len(title),
        "",
        f".. automodule:: {module_name}",
        "   :no-members:",
        "",
    ]
    for name in defined_names(module_name):
        obj = getattr(module, name)
        lines.append(f".. {directive_for(obj)}:: {module_name}.{name}")
        if (
            directive_for(obj) == "autodata"
            and len(repr(obj)) > MAX_VALUE_CHARS
        ):
            lines.append("   :no-value:")
        lines.append("")
    return lines


class ApiModules(SphinxDirective):
    """``.. api-modules:: GROUP``: each module of the group, in name order, with the names it defines."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        group = self.arguments[0]
        try:
            modules = modules_of(group)
        except ValueError as error:
            raise self.error(str(error)) from None
        _pages(self.env).setdefault(group, set()).add(self.env.docname)
        lines = StringList()
        for module in modules:
            for line in module_rst(module):
                lines.append(line, "<api-modules>")
        container = nodes.container()
        nested_parse_with_titles(
            self.state, lines, container, self.content_offset
        )
        return container.children


def _pages(env) -> dict[str, set[str]]:
    """Group -> the documents whose ``api-modules`` directive writes it (kept in the environment)."""
    if not hasattr(env, "api_module_pages"):
        env.api_module_pages = {}
    return env.api_module_pages


def _purge_doc(app, env, docname):
    for pages in _pages(env).values():
        pages.discard(docname)


def _merge_info(app, env, docnames, other):
    for group, pages in _pages(other).items():
        _pages(env).setdefault(group, set()).update(pages)


def unplaced_groups(pages: dict[str, set[str]]) -> list[str]:
    """One sentence for each group that no page writes, or more than one page does.

    ``pages`` maps a group to the documents whose ``api-modules`` directive writes it.
    """
    problems = []
    for group in groups():
        on = sorted(pages.get(group, ()))
        modules = ", ".join(modules_of(group))
        if len(on) > 1:
            problems.append(
                f"API group {group!r} is written on more than one page: {on}"
            )
        elif on:
            continue
        elif group == PACKAGE_GROUP:
            problems.append(
                f"no API page documents {modules}: book/api/index.md "
                f"writes ``.. api-modules:: {PACKAGE_GROUP}``"
            )
        elif not is_folder(group):
            problems.append(
                f"{modules} sits flat at the top of {PACKAGE}/ and belongs to no "
                "API page: move it into the folder of its part of the library"
            )
        else:
            problems.append(
                f"no API page documents the folder {PACKAGE}/{group}/ ({modules}): "
                f"add book/api/{group}.md with ``.. api-modules:: {group}`` "
                "and list it in _toc.yml"
            )
    return problems


def _outdated_when_modules_change(app, env, added, changed, removed):
    """Re-read every API page when the package's modules changed since the last build."""
    if getattr(env, "api_library_modules", None) == library_modules():
        return []
    return sorted(set().union(*_pages(env).values()))


def _remember_modules(app, env):
    """Keep the module list with the environment (pickled after this event) for the next build."""
    env.api_library_modules = library_modules()
    return []


def _check_every_module_placed(app, env):
    for problem in unplaced_groups(_pages(env)):
        logging.getLogger(__name__).warning(
            "API reference: %s", problem, type="api_reference"
        )


def resolve_short_reference(app, env, node, contnode):
    """Link a Python reference that names no object to the one documented object it must mean.

    A short target (``attend``, ``Batch.positions``), as written inside the library, matches the
    objects whose full name ends with it; a full ``annotated.`` path that names nothing (a name
    moved to another module, or re-exported) matches by its last name. Of several matches, those
    sharing the most leading parts with the target's path (or, for a short target, with the
    docstring's module) win. Only this package's objects are documented, so another package's
    names never match; no match, or a tie: no link.
    """
    if (
        node.get("refdomain") != "py"
        or node.get("reftype") not in REFERENCE_TYPES
    ):
        return None
    target = node["reftarget"].lstrip("~.")
    suffix = "." + (
        target.rsplit(".", 1)[-1]
        if target.startswith(PACKAGE + ".")
        else target
    )
    want_module = node["reftype"] == "mod"
    matches = [
        (full, obj)
        for full, obj in env.get_domain("py").objects.items()
        if full.endswith(suffix)
        and (obj.objtype == "module") == want_module
        and not obj.aliased
    ]
    if (
        len(matches) > 1
    ):  # several: the ones nearest the target's path, or the docstring's own module
        near = (
            target
            if target.startswith(PACKAGE + ".")
            else node.get("py:module") or ""
        )
        closeness = {full: _shared_parts(full, near) for full, _ in matches}
        best = max(closeness.values())
        matches = [
            (full, obj) for full, obj in matches if closeness[full] == best
        ]
    if len(matches) != 1:
        return None
    full, obj = matches[0]
    return make_refnode(
        app.builder, node["refdoc"], obj.docname, obj.node_id, contnode, full
    )


def _shared_parts(a: str, b: str) -> int:
    """How many leading dotted parts two names share: ('annotated.lab.sweeps.sweep', 'annotated.lab') -> 2."""
    shared = 0
    for x, y in zip(a.split("."), b.split(".")):
        if x != y:
            break
        shared += 1
    return shared


def tidy_docstring(app, what, name, obj, options, lines):
    """Two fixes before napoleon (which runs at the default priority, 500) reads a docstring.

    - A constant without a docstring of its own would show its type's (``dict``'s): drop it.
    - Napoleon reads ``X: y`` on the first line of a property's docstring as "type: description";
      ours use the colon as punctuation ("Token ids: each split ..."). An empty reST comment
      first keeps the sentence as written.
    """
    type_doc = inspect.getdoc(type(obj)) or ""
    if (
        what == "data"
        and type_doc
        and "\n".join(lines).strip() == type_doc.strip()
    ):
        lines[:] = []
    elif (
        what in ("attribute", "property", "data")
        and lines
        and ":" in lines[0]
    ):
        lines[:0] = ["..", ""]


def setup(app):
    app.add_directive("api-modules", ApiModules)
    app.connect("env-purge-doc", _purge_doc)
    app.connect("env-merge-info", _merge_info)
    app.connect("env-get-outdated", _outdated_when_modules_change)
    app.connect("env-updated", _remember_modules)
    app.connect("env-check-consistency", _check_every_module_placed)
    app.connect("missing-reference", resolve_short_reference)
    app.connect(
        "autodoc-process-docstring", tidy_docstring, priority=100
    )  # napoleon: 500
    return {"parallel_read_safe": True, "parallel_write_safe": True}
