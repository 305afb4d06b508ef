"""Run folders: a new dated folder that never overwrites another, what
produced a run (its environment), and the lock a training process holds.

While a run trains, ``run.lock`` holds its process id, host and start time,
so a second process cannot train in the same folder at the same time; a lock
whose process is gone (a ``kill -9``) is stale and is taken over with a
notice.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import torch

import annotated
from annotated.core.atomic import pid_alive, write_atomic

# {"pid", "host", "since"} of the process training in this folder
LOCK = "run.lock"


def new_folder(parent: Path, name: str, *, stamp: bool = True) -> Path:
    """Create ``parent/<stamp>_<name>`` (or ``parent/name``); a taken name
    gets ``-2``, ``-3``…"""
    parent.mkdir(parents=True, exist_ok=True)
    base = f"{datetime.now():%Y%m%d-%H%M%S}_{name}" if stamp else name
    for i in itertools.count(1):
        folder = parent / (base if i == 1 else f"{base}-{i}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue


def environment(device) -> dict:
    """What produced a run: library, torch and python versions, the CPU
    capability and threads torch computes with, device, git commit and
    whether the tree differed from it (with the diff's SHA-256), time."""
    commit, diff = _git("rev-parse", "HEAD"), _git("diff", "HEAD")
    return {
        "annotated": annotated.__version__,
        "torch": str(torch.__version__),
        "python": sys.version.split()[0],
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "device": str(device),
        "git_commit": commit.strip() or None if commit is not None else None,
        # None when git could not tell; then the tree is not known clean
        "git_dirty": None if diff is None else bool(diff),
        "git_diff_sha256": hashlib.sha256(diff.encode()).hexdigest()
        if diff
        else None,
        "created": datetime.now().isoformat(timespec="seconds"),
    }


def unclean_provenance(environments: list[dict]) -> str | None:
    """Why results from runs with these environments cannot be stored as
    made by one clean commit, or None: a tree that differed from its commit,
    one git could not read, or runs from different commits."""
    dirty = [e for e in environments if e.get("git_dirty") is not False]
    commits = {e.get("git_commit") for e in environments}
    if dirty:
        hashes = sorted({str(e.get("git_diff_sha256")) for e in dirty})
        return (
            f"{len(dirty)} of {len(environments)} runs ran from a tree that "
            "differed from its commit, or git could not tell (diff SHA-256 "
            f"{', '.join(h[:12] for h in hashes)}); commit, re-run, or pass "
            "--allow-dirty to store them with that hash"
        )
    if len(commits) > 1:
        return (
            f"the runs come from {len(commits)} commits "
            f"({', '.join(sorted(str(c)[:10] for c in commits))}); re-run "
            "them from one, or pass --allow-dirty"
        )
    return None


def require_clean(env: dict, allow_dirty: bool = False) -> None:
    """Stop a script that stores results (exit with a sentence) when
    ``env``, an :func:`environment`, was not made from a clean commit —
    unless ``allow_dirty``, which stores the diff's SHA-256 with them."""
    problem = unclean_provenance([env])
    if problem and not allow_dirty:
        raise SystemExit(f"error: {problem}")


def _git(*args: str) -> str | None:
    """The output of ``git ARGS`` in the library's folder, or None."""
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=Path(annotated.__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def lock_holder(folder) -> dict | None:
    """``{"pid", "host", …}`` of the live process training in ``folder``, or
    None. A lock left by a process that is gone (killed) is stale: it is
    removed, with a notice on stderr."""
    path = Path(folder) / LOCK
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
        pid, host = int(holder["pid"]), str(holder["host"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        # a lock cut short by a kill: nobody holds it
        holder, pid, host = {}, 0, socket.gethostname()
    if host != socket.gethostname() or (
        pid != os.getpid() and pid_alive(pid)
    ):
        return {**holder, "pid": pid, "host": host}
    gone = (
        f"names process {pid}, which is no longer running"
        if pid
        else "cannot be read (cut short by a kill)"
    )
    print(
        f"notice: {path} {gone}; the run stopped without cleaning up; "
        "taking it over",
        file=sys.stderr,
    )
    path.unlink(missing_ok=True)
    return None


def refuse_if_locked(folder) -> None:
    """ValueError when another live process trains in ``folder``."""
    holder = lock_holder(folder)
    if holder is not None and holder["pid"] != os.getpid():
        raise ValueError(
            f"{folder} is being trained by process {holder['pid']} on "
            f"{holder['host']}; not starting"
        )


@contextmanager
def run_lock(folder: Path) -> Iterator[None]:
    """Hold ``folder/run.lock`` while the block runs (refusing a folder a
    live process holds)."""
    refuse_if_locked(folder)
    mine = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": datetime.now().isoformat(timespec="seconds"),
    }
    write_atomic(folder / LOCK, json.dumps(mine))
    try:
        yield
    finally:
        (folder / LOCK).unlink(missing_ok=True)
