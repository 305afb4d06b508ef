"""Character-level text: a tokenizer, the Tiny Shakespeare corpus, and random
training windows.

A character-level language model (Karpathy's char-rnn, 2015; nanoGPT) predicts
the next
character: the vocabulary is the set of characters in the corpus, ids in
sorted order. :class:`TextDataset` is a :class:`~annotated.tasks.base.Task`
whose ``length`` is the context length, so the training loop treats text like
any algorithmic task; the registry (:mod:`annotated.tasks.registry`) names it
``"tiny_shakespeare"``, and it reads the corpus on first use (not at import).

Where the corpus comes from (:func:`load_tiny_shakespeare`), first match wins:

1. the ``path`` argument;
2. the environment variable ``ANNOTATED_TINYSHAKESPEARE`` (a file path);
3. ``tinyshakespeare.txt`` in the cache directory (the ``cache_dir`` argument,
   else ``$ANNOTATED_CACHE``, else ``~/.cache/annotated/``);
4. a download from :data:`TINY_SHAKESPEARE_URL` into that cache, once: written
   to a temporary file, checked against :data:`TINY_SHAKESPEARE_SHA256`, then
   moved into place with ``os.replace``, so a failed or corrupt download never
   leaves a file behind.

Only downloads are checked: a file you point at (1–3) is used as it is, so an
edited or different corpus works. With no local copy and no network the error
says how to provide one.

Legend: B batch, T context length, N characters in a split.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import torch

from annotated.tasks.base import (
    SPLITS,
    Batch,
    Task,
    as_generator,
    check_count,
)

TINY_SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
TINY_SHAKESPEARE_SHA256 = (
    "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
)
PATH_ENV, CACHE_ENV = "ANNOTATED_TINYSHAKESPEARE", "ANNOTATED_CACHE"
CACHE_FILENAME = "tinyshakespeare.txt"


class CorpusUnavailableError(FileNotFoundError):
    """The corpus is neither on disk nor downloadable; the message says how to
    provide it."""


class ChecksumMismatchError(RuntimeError):
    """A download's sha256 differs from the published one (nothing was
    written)."""


class CharTokenizer:
    """Characters ↔ ids; the vocabulary is ``sorted(set(text))``.

    >>> tok = CharTokenizer("hello")
    >>> tok.vocab_size, tok.encode("hole").tolist(), tok.decode([3, 1])
    (4, [1, 3, 2, 0], 'oh')
    """

    def __init__(self, text: str):
        if not isinstance(text, str) or not text:
            raise ValueError(
                "CharTokenizer needs a non-empty string to take its characters from"
            )
        self.chars = "".join(sorted(set(text)))
        self._ids = {c: i for i, c in enumerate(self.chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    @property
    def token_names(self) -> tuple[str, ...]:
        """Printable names for plots: newline → ``\\n``, space → ``␣``."""
        readable = {"\n": "\\n", " ": "␣", "\t": "\\t"}
        return tuple(readable.get(c, c) for c in self.chars)

    def encode(self, text: str) -> torch.Tensor:
        unknown = sorted(set(text) - self._ids.keys())
        if unknown:
            raise ValueError(
                f"characters not in the vocabulary: {unknown[:10]!r}; build the tokenizer from a text holding them"
            )
        # (N,)
        return torch.tensor([self._ids[c] for c in text], dtype=torch.long)

    def decode(self, ids) -> str:
        ids = torch.as_tensor(ids).reshape(-1).tolist()
        if any(i < 0 or i >= self.vocab_size for i in ids):
            raise ValueError(f"ids must lie in [0, {self.vocab_size})")
        return "".join(self.chars[i] for i in ids)

    def to_dict(self) -> dict:
        return {"kind": "char", "chars": self.chars}

    @classmethod
    def from_dict(cls, state: dict) -> CharTokenizer:
        if state.get("kind") != "char" or not isinstance(
            state.get("chars"), str
        ):
            raise ValueError(
                "expected a dict made by CharTokenizer.to_dict(): {'kind': 'char', 'chars': ...}"
            )
        return cls(state["chars"])

    def __eq__(self, other) -> bool:
        return isinstance(other, CharTokenizer) and self.chars == other.chars

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


def default_cache_dir() -> Path:
    return Path(
        os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "annotated"
    ).expanduser()


def _how_to_provide(cache_file: Path) -> str:
    return (
        "Provide the file in one of these ways: pass load_tiny_shakespeare(path='/path/to/input.txt'); "
        f"or set the environment variable {PATH_ENV}=/path/to/input.txt; "
        f"or download {TINY_SHAKESPEARE_URL} (sha256 {TINY_SHAKESPEARE_SHA256}) and save it as {cache_file} "
        f"(the cache directory can be changed with {CACHE_ENV})."
    )


def _fetch(url: str, out, timeout: float = 30.0) -> None:
    """Stream ``url`` into the open binary file ``out`` (tests replace
    this)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        shutil.copyfileobj(response, out)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_tiny_shakespeare(dest: Path) -> Path:
    """Download to ``dest`` atomically, verifying the sha256; no file is left
    on failure."""
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
                f"the download from {TINY_SHAKESPEARE_URL} has sha256 {digest}, expected {TINY_SHAKESPEARE_SHA256}; "
                "nothing was saved. Retry later, or " + _how_to_provide(dest)
            )
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def tiny_shakespeare_path(
    path=None, cache_dir=None, *, download: bool = True
) -> Path:
    """Where the corpus is, in the order of the module docstring (downloading
    if needed)."""
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
    """The Tiny Shakespeare text (Karpathy 2015; 1,115,394 characters, 65
    distinct)."""
    return tiny_shakespeare_path(
        path, cache_dir, download=download
    ).read_text(encoding="utf-8")


class TextDataset(Task):
    """Random windows of a text for next-character prediction, from a
    contiguous train/val split.

    ``sample(batch_size, length, generator, split="train")`` takes
    ``batch_size`` windows of ``length + 1`` characters at uniform random
    offsets of the split: ``inputs`` are the first ``length``, ``targets`` the
    last ``length`` (every position scored). The first ``1 - val_fraction`` of
    the text is ``"train"``, the rest ``"val"``. ``source`` is the text or a
    zero-argument function returning it, called on first use (e.g.
    :func:`load_tiny_shakespeare`). Text "hello world", length 4: a window
    ``o wo`` + ``r`` gives inputs ``o␣wo``, targets ``␣wor``.
    """

    def __init__(
        self,
        source,
        *,
        val_fraction: float = 0.1,
        tokenizer: CharTokenizer | None = None,
    ):
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(
                f"val_fraction must lie strictly between 0 and 1, got {val_fraction}"
            )
        self.source = (
            getattr(source, "__name__", "<callable>")
            if callable(source)
            else "<text>"
        )
        self.val_fraction = val_fraction
        self._text = None if callable(source) else source
        self._load = source if callable(source) else None
        self._tokenizer = tokenizer
        self._splits: dict[str, torch.Tensor] | None = None

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self._load()
        return self._text

    @property
    def tokenizer(self) -> CharTokenizer:
        if self._tokenizer is None:
            self._tokenizer = CharTokenizer(self.text)
        return self._tokenizer

    @property
    def splits(self) -> dict[str, torch.Tensor]:
        """Token ids of each split:
        ``{"train": (N_train,), "val": (N_val,)}``."""
        if self._splits is None:
            ids = self.tokenizer.encode(self.text)
            cut = int(len(ids) * (1 - self.val_fraction))
            self._splits = {"train": ids[:cut], "val": ids[cut:]}
        return self._splits

    @property
    def token_names(self) -> tuple[str, ...]:
        return self.tokenizer.token_names

    def seq_len(self, length: int) -> int:
        self.check_length(length)
        return length

    def encode(self, tokens: str) -> torch.Tensor:
        return self.tokenizer.encode(tokens)

    def decode(self, ids) -> str:
        return self.tokenizer.decode(ids)

    def sample(
        self, batch_size: int, length: int, generator, *, split: str = "train"
    ) -> Batch:
        check_count("batch_size", batch_size, 1)
        self.check_length(length)
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        ids = self.splits[split]  # (N,)
        if len(ids) < length + 1:
            raise ValueError(
                f"the {split} split has {len(ids)} characters, a window of length {length} needs {length + 1}; "
                "use a shorter length or a longer text"
            )
        # (B, 1)
        starts = torch.randint(
            0,
            len(ids) - length,
            (batch_size, 1),
            generator=as_generator(generator),
        )
        windows = ids[starts + torch.arange(length + 1)]  # (B, T + 1)
        inputs, targets = windows[:, :-1], windows[:, 1:]  # (B, T) each
        return Batch(
            inputs, targets, torch.ones_like(inputs, dtype=torch.bool)
        )
