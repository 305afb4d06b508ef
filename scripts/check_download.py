"""A notebook downloaded from the built site runs in a fresh Python environment with only
its first cell as set-up.

The idea: a reader who presses the download button (or opens the chapter in Colab) gets
the stored ``.ipynb`` and nothing else; its first cell must install the library. This
check reproduces that offline:

1. find the notebook the chapter's page links from its download button
   (``_build/html/_sources/notebooks/NN_topic.ipynb`` for Jupyter Book 1.x) — the file as
   the built site serves it;
2. copy the library's sources from the working tree (``pyproject.toml``, ``README.md``,
   ``annotated/``) to a temporary directory: a stand-in for the git repository that the
   first cell installs from;
3. create a fresh virtual environment (``python -m venv``: nothing from ``.venv``) and
   install the *harness* into it: ``nbclient`` and ``ipykernel`` to run the notebook,
   and ``torch==2.13.0`` first — the library asks for ``torch>=2.4``, which on a machine
   without a local CPU wheel would pull CUDA torch from PyPI (gigabytes); Colab already
   has torch, so pre-installing it changes nothing about the notebook's own set-up;
4. execute the notebook in that environment, in an empty working directory, with
   ``ANNOTATED_PIP_SPEC=annotated @ file://<copy>``: the first cell finds no ``annotated``
   and ``%pip install``-s it from the copy, with the rest of its dependencies; fail on
   any cell error, and check afterwards that the library is installed in the fresh
   environment (so the first cell, not a path on ``sys.path``, provided it).

Timings of each step are printed. Usage::

    python scripts/check_download.py [--html _build/html] [--page notebooks/01_attention] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What the first cell's ``pip install`` needs to build the library (a git checkout holds at least this).
PACKAGE_FILES = ["pyproject.toml", "README.md", "annotated"]
HARNESS = ["torch==2.13.0", "nbclient", "ipykernel"]
KERNEL_NAME = "annotated-download-check"  # installed into the fresh venv only, so no other python3 kernel is used

# Runs inside the fresh environment: execute the notebook, report the first failing cell.
RUNNER = """
import sys
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

path, kernel = sys.argv[1], sys.argv[2]
nb = nbformat.read(path, as_version=4)
try:
    NotebookClient(nb, kernel_name=kernel, timeout=600, resources={"metadata": {"path": "."}}).execute()
except CellExecutionError as error:
    print(error, file=sys.stderr)
    sys.exit(1)
code = [c for c in nb.cells if c.cell_type == "code"]
print(f"executed {len(code)} code cells without error")
"""


class _DownloadLink(HTMLParser):
    """Collects the ``href`` of the page's "download source file" button."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(
        self, tag: str, attrs: list[tuple[str, str | None]]
    ) -> None:
        attributes = dict(attrs)
        if (
            tag == "a"
            and "btn-download-source-button"
            in (attributes.get("class") or "").split()
        ):
            self.hrefs.append(attributes.get("href") or "")


def downloaded_notebook(html_dir: Path, page: str) -> Path:
    """The ``.ipynb`` file that the built ``page`` (e.g. ``notebooks/01_attention``) offers for download."""
    page_file = html_dir / f"{page}.html"
    if not page_file.exists():
        raise FileNotFoundError(
            f"{page_file} does not exist: build the book first (make book-strict)"
        )
    parser = _DownloadLink()
    parser.feed(page_file.read_text(encoding="utf-8"))
    notebooks = [
        h
        for h in parser.hrefs
        if urllib.parse.urlsplit(h).path.endswith(".ipynb")
    ]
    if not notebooks:
        raise ValueError(
            f"{page_file} has no download button for an .ipynb (found {parser.hrefs}): "
            "keep use_download_button (the default) in _config.yml's html section"
        )
    target = (
        page_file.parent
        / urllib.parse.unquote(urllib.parse.urlsplit(notebooks[0]).path)
    ).resolve()
    if not target.is_file():
        raise FileNotFoundError(
            f"{page_file} links {notebooks[0]}, but {target} is not in the built site"
        )
    return target


def copy_package(dest: Path) -> Path:
    """Copy the library's sources from the working tree to ``dest`` (no caches, no build outputs)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    dest.mkdir(parents=True)
    for name in PACKAGE_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=ignore)
        else:
            shutil.copy2(source, dest / name)
    return dest


def _run(
    cmd: list[str], *, env: dict[str, str], cwd: Path | None = None
) -> None:
    """Run ``cmd``; its output (pip is chatty) is shown only when it fails."""
    print("  $", " ".join(str(c) for c in cmd), flush=True)
    done = subprocess.run(
        cmd,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if done.returncode != 0:
        print(done.stdout[-20_000:], file=sys.stderr)
        raise subprocess.CalledProcessError(done.returncode, cmd)


def _fresh_env(venv: Path, tmp: Path) -> dict[str, str]:
    """The environment of a reader's shell: the fresh venv first on PATH, nothing of ours on sys.path."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["PYTHONNOUSERSITE"] = "1"
    env["JUPYTER_DATA_DIR"] = str(
        tmp / "jupyter-data"
    )  # no kernels from the user's own Jupyter
    env["JUPYTER_CONFIG_DIR"] = str(tmp / "jupyter-config")
    env["MPLCONFIGDIR"] = str(tmp / "matplotlib")
    return env


def check_download(
    html_dir: Path, page: str, workdir: Path
) -> dict[str, float]:
    """Run the check in ``workdir``; return the seconds each step took. Raises on failure."""
    timings: dict[str, float] = {}
    start = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal start
        timings[step] = time.perf_counter() - start
        print(f"  {step}: {timings[step]:.1f} s", flush=True)
        start = time.perf_counter()

    notebook = downloaded_notebook(html_dir, page)
    print(f"notebook as the site serves it: {notebook}")
    package = copy_package(workdir / "annotated-attention")
    run_dir = workdir / "reader"
    run_dir.mkdir()
    shutil.copy2(notebook, run_dir / notebook.name)

    venv = workdir / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], env=dict(os.environ))
    python = str(venv / "bin" / "python")
    env = _fresh_env(venv, workdir)
    lap("fresh venv")

    _run(
        [python, "-m", "pip", "install", "-q", "--no-compile", *HARNESS],
        env=env,
    )  # no .pyc for torch: faster
    _run(
        [
            python,
            "-m",
            "ipykernel",
            "install",
            "--sys-prefix",
            "--name",
            KERNEL_NAME,
        ],
        env=env,
    )
    probe = subprocess.run(
        [python, "-c", "import annotated"],
        env=env,
        cwd=run_dir,
        capture_output=True,
    )
    if probe.returncode == 0:
        raise RuntimeError(
            "annotated is importable in the fresh venv before the notebook ran: the check proves nothing"
        )
    lap("harness (torch, nbclient, ipykernel)")

    env["ANNOTATED_PIP_SPEC"] = f"annotated @ {package.as_uri()}"
    print(f"  ANNOTATED_PIP_SPEC={env['ANNOTATED_PIP_SPEC']}")
    (workdir / "run_notebook.py").write_text(RUNNER, encoding="utf-8")
    _run(
        [
            python,
            str(workdir / "run_notebook.py"),
            notebook.name,
            KERNEL_NAME,
        ],
        env=env,
        cwd=run_dir,
    )
    print("  executed every cell without error")
    lap("notebook (its first cell installs the library)")

    where = subprocess.run(
        [python, "-c", "import annotated; print(annotated.__file__)"],
        env=env,
        cwd=run_dir,
        capture_output=True,
        text=True,
    )
    installed = Path(where.stdout.strip()) if where.returncode == 0 else None
    if installed is None or venv.resolve() not in installed.resolve().parents:
        raise RuntimeError(
            f"after the run, annotated is not installed in the fresh venv ({where.stdout.strip() or where.stderr}): "
            "the notebook's first cell must %pip install it"
        )
    print(f"  the first cell installed {installed.parent}")
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--html",
        type=Path,
        default=ROOT / "_build" / "html",
        help="the built book",
    )
    parser.add_argument(
        "--page",
        default="notebooks/01_attention",
        help="the chapter page whose notebook to run",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary directory (printed)",
    )
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="check-download-"))
    began = time.perf_counter()
    try:
        timings = check_download(args.html, args.page, workdir)
    except (
        subprocess.CalledProcessError,
        RuntimeError,
        ValueError,
        FileNotFoundError,
    ) as error:
        print(f"check-download FAILED: {error}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    steps = ", ".join(
        f"{step} {seconds:.0f} s" for step, seconds in timings.items()
    )
    print(
        f"check-download: {args.page} ran in a fresh venv from its first cell ({steps}; total {time.perf_counter() - began:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
