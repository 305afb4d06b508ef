"""The Tiny Shakespeare corpus: where it comes from, and a checked download.

Karpathy's char-rnn corpus (2015).

Where the corpus comes from (:func:`load_tiny_shakespeare`), first match wins:

1. the ``path`` argument;
2. the environment variable ``ANNOTATED_TINYSHAKESPEARE`` (a file path);
3. ``tinyshakespeare.txt`` in the cache directory (the ``cache_dir``
   argument, else ``$ANNOTATED_CACHE``, else ``~/.cache/annotated/``);
4. a download from :data:`TINY_SHAKESPEARE_URL` into that cache, once:
   written to a temporary file, checked against
   :data:`TINY_SHAKESPEARE_SHA256`, then moved into place with
   ``os.replace``, so a failed or corrupt download never leaves a file
   behind.

Only downloads are checked: a file you point at (1–3) is used as it is, so an
edited or different corpus works. With no local copy and no network the error
says how to provide one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

TINY_SHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
    "tinyshakespeare/input.txt"
)
TINY_SHAKESPEARE_SHA256 = (
    "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
)
PATH_ENV, CACHE_ENV = "ANNOTATED_TINYSHAKESPEARE", "ANNOTATED_CACHE"
CACHE_FILENAME = "tinyshakespeare.txt"


class CorpusUnavailableError(FileNotFoundError):
    """The corpus is neither on disk nor downloadable.

    The message says how to provide it."""


class ChecksumMismatchError(RuntimeError):
    """A download's sha256 differs from the published one; nothing saved."""


def default_cache_dir() -> Path:
    """``$ANNOTATED_CACHE``, else ``~/.cache/annotated/``."""
    return Path(
        os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "annotated"
    ).expanduser()


def _how_to_provide(cache_file: Path) -> str:
    """The sentence an error ends with: the ways to give the corpus."""
    return (
        "Provide the file in one of these ways: pass "
        "load_tiny_shakespeare(path='/path/to/input.txt'); "
        f"or set the environment variable {PATH_ENV}=/path/to/input.txt; "
        f"or download {TINY_SHAKESPEARE_URL} "
        f"(sha256 {TINY_SHAKESPEARE_SHA256}) and save it as {cache_file} "
        f"(the cache directory can be changed with {CACHE_ENV})."
    )


def _fetch(url: str, out, timeout: float = 30.0) -> None:
    """Stream ``url`` into the open binary file ``out``; tests replace it."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        shutil.copyfileobj(response, out)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_tiny_shakespeare(dest: Path) -> Path:
    """Download to ``dest`` atomically, verifying the sha256.

    No file is left on failure."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=dest.parent, prefix=dest.name + ".", suffix=".part"
    )
    try:
        try:
            with os.fdopen(fd, "wb") as out:
                _fetch(TINY_SHAKESPEARE_URL, out)
        except (urllib.error.URLError, OSError) as error:
            raise CorpusUnavailableError(
                f"Tiny Shakespeare could not be downloaded ({error}). "
                + _how_to_provide(dest)
            ) from error
        digest = _sha256(Path(tmp))
        if digest != TINY_SHAKESPEARE_SHA256:
            raise ChecksumMismatchError(
                f"the download from {TINY_SHAKESPEARE_URL} has sha256 "
                f"{digest}, expected {TINY_SHAKESPEARE_SHA256}; nothing was "
                "saved. Retry later, or " + _how_to_provide(dest)
            )
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def tiny_shakespeare_path(
    path=None, cache_dir=None, *, download: bool = True
) -> Path:
    """Where the corpus is, downloading it if needed.

    The places are tried in the order of the module docstring."""
    cache_file = (
        Path(cache_dir).expanduser() / CACHE_FILENAME
        if cache_dir is not None
        else default_cache_dir() / CACHE_FILENAME
    )
    for given, origin in (
        (path, "the path argument"),
        (os.environ.get(PATH_ENV) or None, f"${PATH_ENV}"),
    ):
        if given is not None:
            if not Path(given).expanduser().is_file():
                raise CorpusUnavailableError(
                    f"{origin} points at {given}, which is not a file. "
                    + _how_to_provide(cache_file)
                )
            return Path(given).expanduser()
    if cache_file.is_file():
        return cache_file
    if not download:
        raise CorpusUnavailableError(
            f"Tiny Shakespeare is not at {cache_file} and download=False. "
            + _how_to_provide(cache_file)
        )
    return download_tiny_shakespeare(cache_file)


def load_tiny_shakespeare(
    path=None, cache_dir=None, *, download: bool = True
) -> str:
    """The Tiny Shakespeare text (Karpathy 2015).

    1,115,394 characters, 65 distinct."""
    return tiny_shakespeare_path(
        path, cache_dir, download=download
    ).read_text(encoding="utf-8")
