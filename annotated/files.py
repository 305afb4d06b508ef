"""Files written atomically: a temporary file beside the target, moved into place with ``os.replace``.

``os.replace`` within one folder is atomic on POSIX and Windows, so a reader (or a run resumed
after a crash) sees the old file or the new one, never half of one. On any error the temporary
file is removed and the target is left as it was. Imports nothing else from :mod:`annotated`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; write to it inside the ``with`` block.

    On a clean exit the file is moved onto ``path``; on an exception it is deleted and ``path``
    is untouched. Example: ``with atomic_path("model.pt") as tmp: torch.save(state, tmp)``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")  # same folder: os.replace cannot cross file systems
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
