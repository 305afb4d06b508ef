"""Sphinx extension for the book's API reference (book/api/): which page documents which module.

``.. api-modules:: GROUP`` (inside an ``{eval-rst}`` block) writes one ``automodule`` for every
module of ``annotated`` that belongs to GROUP. The groups are listed once, below, as patterns;
the last group takes every module no other group claims, so a new module is documented the
moment it exists and never twice.

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
import fnmatch
import importlib
import inspect
import pkgutil
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import make_refnode, nested_parse_with_titles

PACKAGE = "annotated"
# (group, patterns): a module belongs to the first group with a matching pattern; "other" takes the rest.
GROUPS: list[tuple[str, list[str]]] = [
    ("package", ["annotated"]),
    ("attention", ["annotated.attention.attend", "annotated.attention.masks", "annotated.attention.multihead", "annotated.figures.showcode"]),
    ("positional", ["annotated.positional", "annotated.positional.*"]),
    (
        "models",
        [
            "annotated.models.blocks",
            "annotated.models.config",
            "annotated.models.transformer",
            "annotated.models.summary",
            "annotated.models.checkpoints",
            "annotated.models.generate",
            "annotated.models.recurrence",
            "annotated.models.hf",
        ],
    ),  # fmt: skip
    ("kernels", ["annotated.kernels", "annotated.kernels.*"]),
    ("tasks", ["annotated.tasks", "annotated.tasks.*"]),
    (
        "training",
        [
            "annotated.training.config",
            "annotated.training.loop",
            "annotated.training.optim",
            "annotated.training.history",
            "annotated.training.evaluation",
            "annotated.core.fields",
            "annotated.analysis.intervals",
            "annotated.lab.trackers",
        ],
    ),  # fmt: skip
    (
        "lab",
        [
            "annotated.lab",
            "annotated.lab.*",
            "annotated.lab.reports",
            "annotated.core.atomic",
            "annotated.lab.flags",
            "annotated.lab.cli",
        ],
    ),  # fmt: skip
    ("analysis", ["annotated.analysis.interpret", "annotated.analysis.interpret.*", "annotated.analysis.scaling", "annotated.analysis.claims",
                  "annotated.analysis.stored_sweeps"]),  # fmt: skip
    (
        "figures",
        [
            "annotated.figures.viz",
            "annotated.figures.diagrams",
            "annotated.figures.widgets",
            "annotated.analysis.comparison",
            "annotated.figures.dashboard",
            "annotated.bench",
            "annotated.bench.*",
        ],
    ),  # fmt: skip
    ("other", ["*"]),
]
MAX_VALUE_CHARS = 60  # a longer constant (a registry, a table of settings) is described by its docstring
REFERENCE_TYPES = {"func", "class", "meth", "attr", "data", "obj", "exc", "mod", "const"}


def library_modules() -> list[str]:
    """Every module of the package, the package first, then in name order."""
    package = importlib.import_module(PACKAGE)
    return [PACKAGE] + sorted(m.name for m in pkgutil.walk_packages(package.__path__, PACKAGE + "."))


def group_of(module: str) -> str:
    return next(group for group, patterns in GROUPS if any(fnmatch.fnmatchcase(module, p) for p in patterns))


def modules_of(group: str) -> list[str]:
    if group not in dict(GROUPS):
        raise ValueError(f"unknown API group {group!r}; the groups are {[g for g, _ in GROUPS]} (book/_ext)")
    return [m for m in library_modules() if group_of(m) == group]


def defined_names(module_name: str) -> list[str]:
    """The public names a module defines at top level, in source order (``__all__`` narrows them)."""
    module = importlib.import_module(module_name)
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [target.id for target in node.targets if isinstance(target, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    public = [name for name in dict.fromkeys(names) if not name.startswith("_")]
    listed = getattr(module, "__all__", None)
    return [name for name in public if name in listed] if listed is not None else public


def directive_for(obj) -> str:
    if inspect.isclass(obj):
        return "autoexception" if issubclass(obj, BaseException) else "autoclass"
    return "autofunction" if inspect.isroutine(obj) else "autodata"


def module_rst(module_name: str) -> list[str]:
    """reST for one module: a heading, its docstring, then one autodoc directive per name it defines.

    A constant whose value would print longer than a line shows its name and type only.
    """
    module = importlib.import_module(module_name)
    title = f"``{module_name}``"
    lines = [title, "-" * len(title), "", f".. automodule:: {module_name}", "   :no-members:", ""]
    for name in defined_names(module_name):
        obj = getattr(module, name)
        lines.append(f".. {directive_for(obj)}:: {module_name}.{name}")
        if directive_for(obj) == "autodata" and len(repr(obj)) > MAX_VALUE_CHARS:
            lines.append("   :no-value:")
        lines.append("")
    return lines


class ApiModules(SphinxDirective):
    """``.. api-modules:: GROUP``: each module of the group, in name order, with the names it defines."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        lines = StringList()
        for module in modules_of(self.arguments[0]):
            for line in module_rst(module):
                lines.append(line, "<api-modules>")
        container = nodes.container()
        nested_parse_with_titles(self.state, lines, container, self.content_offset)
        return container.children


def resolve_short_reference(app, env, node, contnode):
    """Link a Python reference that names no object to the one documented object it must mean.

    A short target (``attend``, ``Batch.positions``), as written inside the library, matches the
    objects whose full name ends with it; a full ``annotated.`` path that names nothing (a name
    moved to another module, or re-exported) matches by its last name. Of several matches, those
    sharing the most leading parts with the target's path (or, for a short target, with the
    docstring's module) win. Only this package's objects are documented, so another package's
    names never match; no match, or a tie: no link.
    """
    if node.get("refdomain") != "py" or node.get("reftype") not in REFERENCE_TYPES:
        return None
    target = node["reftarget"].lstrip("~.")
    suffix = "." + (target.rsplit(".", 1)[-1] if target.startswith(PACKAGE + ".") else target)
    want_module = node["reftype"] == "mod"
    matches = [
        (full, obj)
        for full, obj in env.get_domain("py").objects.items()
        if full.endswith(suffix) and (obj.objtype == "module") == want_module and not obj.aliased
    ]
    if len(matches) > 1:  # several: the ones nearest the target's path, or the docstring's own module
        near = target if target.startswith(PACKAGE + ".") else node.get("py:module") or ""
        closeness = {full: _shared_parts(full, near) for full, _ in matches}
        best = max(closeness.values())
        matches = [(full, obj) for full, obj in matches if closeness[full] == best]
    if len(matches) != 1:
        return None
    full, obj = matches[0]
    return make_refnode(app.builder, node["refdoc"], obj.docname, obj.node_id, contnode, full)


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
    if what == "data" and type_doc and "\n".join(lines).strip() == type_doc.strip():
        lines[:] = []
    elif what in ("attribute", "property", "data") and lines and ":" in lines[0]:
        lines[:0] = ["..", ""]


def setup(app):
    app.add_directive("api-modules", ApiModules)
    app.connect("missing-reference", resolve_short_reference)
    app.connect("autodoc-process-docstring", tidy_docstring, priority=100)  # napoleon: 500
    return {"parallel_read_safe": True, "parallel_write_safe": True}
