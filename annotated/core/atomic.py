"""Files written atomically: a temporary file beside the target, moved into
place with ``os.replace``.

``os.replace`` within one folder is atomic on POSIX and Windows, so a reader
(or a run resumed after a crash) sees the old file or the new one, never half
of one. On any error the temporary file is removed and the target is left as
it was. A process killed mid-write (``kill -9``) cannot remove its temporary
file; the next write into that folder does (:func:`remove_stale_temporaries`:
every ``.<name>.tmp<pid>`` whose process is gone). Several files that
belong together (a run's report) are written inside :func:`stops_held`, so
Ctrl-C or SIGTERM cannot leave some of them old. Imports nothing else from
:mod:`annotated`.
"""

from __future__ import annotations

import os
import re
import signal
import threading
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


@contextmanager
def stops_held() -> Iterator[None]:
    """Within the block, SIGINT (Ctrl-C) and SIGTERM wait: each is sent
    again once the block ends, to whatever handles it then (usually a
    KeyboardInterrupt right after the block). Only the main thread handles
    signals; elsewhere the block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = []
    names = (signal.SIGINT, signal.SIGTERM)
    previous = {
        name: signal.signal(name, lambda signum, frame: held.append(signum))
        for name in names
    }
    try:
        yield
    finally:
        for name, handler in previous.items():
            signal.signal(name, handler)
        for signum in dict.fromkeys(held):  # each signal once, in order
            signal.raise_signal(signum)
