"""Files written atomically: a temporary file beside the target, moved into
place with ``os.replace``.

``os.replace`` within one folder is atomic on POSIX and Windows, so a reader
(or a run resumed after a crash) sees the old file or the new one, never half
of one. On any error the temporary file is removed and the target is left as
it was. A process killed mid-write (``kill -9``) cannot remove its temporary
file; the next write into that folder does (:func:`remove_stale_temporaries`:
every ``.<name>.tmp<pid>`` whose process is gone). Imports nothing else from
:mod:`annotated`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# .model.pt.tmp4242: a write by process 4242
TEMPORARY = re.compile(r"\.(?P<name>.+)\.tmp(?P<pid>\d+)")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (True where that cannot
    be told: Windows)."""
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would send Ctrl-C there, not probe
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(folder) -> list[Path]:
    """Delete the temporary files in ``folder`` left by writers that were
    killed; return them."""
    removed = []
    for path in Path(folder).iterdir():
        match = TEMPORARY.fullmatch(path.name)
        if (
            match
            and int(match["pid"]) != os.getpid()
            and not pid_alive(int(match["pid"]))
        ):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; write to it inside the ``with``
    block.

    On a clean exit the file is moved onto ``path``; on an exception it is
    deleted and ``path`` is untouched. Example:
    ``with atomic_path("model.pt") as tmp: torch.save(state, tmp)``.
    """
    path = Path(path)
    if path.parent.is_dir():
        remove_stale_temporaries(path.parent)
    # same folder: os.replace cannot cross file systems
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` atomically (see
    :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(
            data.encode("utf-8") if isinstance(data, str) else data
        )
