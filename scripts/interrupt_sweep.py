"""Interrupt a sweep as a user would, then finish it: the check behind issue 13's "stopped sweeps resume".

    python scripts/interrupt_sweep.py CONFIG --after-completed 2 --out DIR [--jobs 2]
    python scripts/interrupt_sweep.py SWEEP_FOLDER --after-completed 4 --out DIR   (a stopped sweep: resume, stop again)

Starts ``python -m annotated sweep CONFIG --jobs N`` in its own process group with SIGINT at its
default (a shell's background job ignores it), waits until ``--after-completed`` runs have
finished, sends SIGINT to the group (Ctrl-C in a terminal does the same), records a checksum of
every file of the finished runs, runs ``sweep --resume`` on the folder, and checks that the
finished runs' files are byte for byte unchanged and that every run ends completed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def statuses(folder: Path) -> dict[str, str]:
    out = {}
    for report in sorted(folder.glob("*/report.json")):
        try:
            out[report.parent.name] = json.loads(report.read_text())["status"]
        except (OSError, ValueError, KeyError):
            out[report.parent.name] = "unreadable"
    return out


def digest(run: Path) -> dict[str, str]:
    return {str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run.rglob("*"))
            if p.is_file()}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config")
    parser.add_argument("--after-completed", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    before = set(args.out.iterdir())
    existing = Path(args.config).is_dir()
    target = (
        ["--resume", args.config]
        if existing
        else [args.config, "--out", str(args.out)]
    )
    command = [
        sys.executable,
        "-m",
        "annotated",
        "sweep",
        *target,
        "--jobs",
        str(args.jobs),
        "--no-progress",
    ]
    default_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    first = subprocess.Popen(
        command, start_new_session=True, preexec_fn=default_sigint
    )
    while not existing and not (set(args.out.iterdir()) - before):
        time.sleep(2)
    (folder,) = (
        [Path(args.config)] if existing else set(args.out.iterdir()) - before
    )
    while (
        sum(s == "completed" for s in statuses(folder).values())
        < args.after_completed
    ):
        if first.poll() is not None:
            print(
                f"the sweep ended (exit {first.returncode}) before {args.after_completed} runs completed"
            )
            return 1
        time.sleep(5)
    os.killpg(first.pid, signal.SIGINT)
    code = first.wait()
    stopped = statuses(folder)
    finished = {
        name: digest(folder / name)
        for name, status in stopped.items()
        if status == "completed"
    }
    print(f"SIGINT: exit {code}; {json.dumps(stopped, indent=1)}")
    started = time.time()
    code = subprocess.run([sys.executable, "-m", "annotated", "sweep", "--resume", str(folder), "--jobs",
                           str(args.jobs), "--no-progress"]).returncode  # fmt: skip
    after = statuses(folder)
    unchanged = all(
        digest(folder / name) == files for name, files in finished.items()
    )
    print(
        f"resume: exit {code} after {time.time() - started:.0f} s; {json.dumps(after, indent=1)}"
    )
    print(
        f"{len(finished)} runs finished before the stop; their files unchanged by the resume: {unchanged}"
    )
    return (
        0
        if code == 0
        and unchanged
        and all(s == "completed" for s in after.values())
        else 1
    )


if __name__ == "__main__":
    sys.exit(main())
