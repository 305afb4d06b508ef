"""How big a model is: its parameter count and a table of the modules that own
parameters.

:func:`count_parameters` counts every tensor once, so a tied output head
(Press & Wolf 2017) or a positional table shared by every layer is not counted
twice; :func:`summary` lists each module's parameter shapes and marks a shared
tensor as ``shared``. Both take any ``nn.Module``, not only the models of
:mod:`annotated.models.transformer`.
"""

from __future__ import annotations

import torch.nn as nn


def count_parameters(
    model: nn.Module, *, trainable_only: bool = False
) -> int:
    """Number of parameters, tied (shared) tensors counted once."""
    return sum(
        p.numel()
        for p in model.parameters()
        if p.requires_grad or not trainable_only
    )


def summary(model: nn.Module, *, depth: int | None = None) -> str:
    """A table of the modules that own parameters: name, type, parameter
    shapes, count.

    A tensor shared with an earlier module (tied output head, one positional
    table used by every layer) is listed as ``shared`` and not counted again.
    ``depth=3`` merges every module into its ancestor three names deep
    (``decoder.blocks.0``), one row per block.
    """
    named = dict(model.named_modules())
    rows, seen = {}, {}
    for name, module in named.items():
        own = list(module.named_parameters(recurse=False))
        if not own:
            continue
        key = name if depth is None else ".".join(name.split(".")[:depth])
        kind, shapes, count = rows.get(
            key, (type(named[key]).__name__, [], 0)
        )
        for pname, p in own:
            full = f"{name}.{pname}"
            if id(p) in seen:
                shapes.append(
                    f"{full[len(key) + 1 :] if depth else pname} shared with "
                    f"{seen[id(p)]}"
                )
                continue
            seen[id(p)] = full
            shapes.append(
                f"{full[len(key) + 1 :] if depth else pname} {tuple(p.shape)}"
            )
            count += p.numel()
        rows[key] = (kind, shapes, count)
    table = [("module", "type", "parameters", "count")]
    for key, (kind, shapes, count) in rows.items():
        described = (
            ", ".join(shapes)
            if len(shapes) <= 2
            else f"{len(shapes)} tensors"
        )
        table.append((key, kind, described, f"{count:,}"))
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    lines = [
        "  ".join(
            c.ljust(w) if i < 3 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths))
        )
        for r in table
    ]
    lines.insert(1, "-" * len(lines[0]))
    lines.append(f"total: {count_parameters(model):,} parameters")
    return "\n".join(lines)
