"""Plugins: a user's Python file or module, imported before an experiment is
checked.

A plugin registers its own tasks with :func:`~annotated.tasks.register_task`,
so an experiment (or
``python -m annotated train --plugins my_tasks.py --task my_task``) can name
them like a built-in task. Each plugin is imported once per process.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

_LOADED_PLUGINS: dict[str, object] = {}


def load_plugins(plugins, base_dir=None) -> list[str]:
    """Import each plugin once: a ``.py`` file (relative to ``base_dir``, then
    the working directory) or an importable module name. Tasks it registers
    become available by name. Returns the plugins with files as absolute paths
    (what a run's config.yaml records, so it resumes from anywhere)."""
    loaded = []
    for plugin in plugins:
        if not isinstance(plugin, str) or not plugin:
            raise ValueError(
                "a plugin is a .py file path or a module name, got "
                f"{plugin!r}"
            )
        if plugin.endswith(".py"):
            loaded.append(_load_file(plugin, base_dir))
            continue
        if plugin not in _LOADED_PLUGINS:
            try:
                _LOADED_PLUGINS[plugin] = importlib.import_module(plugin)
            except ImportError as error:
                raise ValueError(
                    f"plugin module {plugin!r} could not be imported: {error}"
                ) from error
        loaded.append(plugin)
    return loaded


def _load_file(plugin: str, base_dir) -> str:
    candidates = (
        [Path(base_dir) / plugin]
        if base_dir and not Path(plugin).is_absolute()
        else []
    )
    path = next((p for p in [*candidates, Path(plugin)] if p.is_file()), None)
    if path is None:
        raise ValueError(
            f"plugin file {plugin!r} not found (looked in {base_dir or '.'} "
            "and the working directory)"
        )
    key = str(path.resolve())
    if key in _LOADED_PLUGINS:
        return key
    spec = importlib.util.spec_from_file_location(
        f"annotated_plugin_{len(_LOADED_PLUGINS)}_{path.stem}", path
    )
    module = importlib.util.module_from_spec(spec)
    _LOADED_PLUGINS[key] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del _LOADED_PLUGINS[key]
        raise ValueError(
            f"plugin {plugin} failed to import: "
            f"{type(error).__name__}: {error}"
        ) from error
    return key
