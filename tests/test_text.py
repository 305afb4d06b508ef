"""Character-level text: tokenizer, Tiny Shakespeare resolution/download (no network), text windows."""

from __future__ import annotations

import doctest
import hashlib
import io
import urllib.error
from pathlib import Path

import pytest
import torch

from annotated.tasks import TASKS, Batch, corpus, text
from annotated.tasks.corpus import (
    CACHE_FILENAME,
    TINY_SHAKESPEARE_SHA256,
    ChecksumMismatchError,
    CorpusUnavailableError,
    load_tiny_shakespeare,
)
from annotated.tasks.text import CharTokenizer, TextDataset

SAMPLE = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"
    * 20
)
REAL_FETCH = corpus._fetch  # kept before the autouse fixture replaces it
SHARED_COPY = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "tinyshakespeare.txt"
)


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No network, no real cache: every test gets its own cache dir and a failing downloader."""
    monkeypatch.delenv(corpus.PATH_ENV, raising=False)
    monkeypatch.setenv(corpus.CACHE_ENV, str(tmp_path / "cache"))

    def no_network(url, out, timeout=30.0):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(corpus, "_fetch", no_network)


@pytest.fixture
def served(monkeypatch):
    """A fake server holding SAMPLE, published with SAMPLE's checksum; records the calls."""
    payload = SAMPLE.encode()
    monkeypatch.setattr(
        corpus, "TINY_SHAKESPEARE_SHA256", hashlib.sha256(payload).hexdigest()
    )
    calls = []

    def fetch(url, out, timeout=30.0):
        calls.append(url)
        out.write(payload)

    monkeypatch.setattr(corpus, "_fetch", fetch)
    return calls


# --- tokenizer -------------------------------------------------------------------------


def test_tokenizer_round_trip_and_dict():
    tok = CharTokenizer(SAMPLE)
    assert tok.vocab_size == len(set(SAMPLE)) and tok.chars == "".join(
        sorted(set(SAMPLE))
    )
    ids = tok.encode(SAMPLE)
    assert ids.dtype == torch.long and ids.shape == (len(SAMPLE),)
    assert tok.decode(ids) == SAMPLE
    restored = CharTokenizer.from_dict(tok.to_dict())
    assert restored == tok and torch.equal(
        restored.encode("Speak"), tok.encode("Speak")
    )
    assert tok.to_dict() == {"kind": "char", "chars": tok.chars}
    assert (
        tok.token_names[tok.chars.index("\n")] == "\\n"
        and tok.token_names[tok.chars.index(" ")] == "␣"
    )


def test_tokenizer_by_hand_and_errors():
    tok = CharTokenizer("hello")
    assert (
        tok.chars == "ehlo"
        and tok.encode("hole").tolist() == [1, 3, 2, 0]
        and tok.decode([3, 1]) == "oh"
    )
    with pytest.raises(ValueError, match=r"not in the vocabulary: \['z'\]"):
        tok.encode("hez")
    with pytest.raises(ValueError, match="ids must lie in"):
        tok.decode([4])
    with pytest.raises(ValueError, match="non-empty"):
        CharTokenizer("")
    with pytest.raises(ValueError, match="to_dict"):
        CharTokenizer.from_dict({"chars": ["a"]})


def test_docstring_examples():
    assert doctest.testmod(text).failed == 0


# --- where the corpus comes from -------------------------------------------------------


def test_explicit_path_wins_and_is_not_checked(tmp_path, monkeypatch):
    mine, other = tmp_path / "mine.txt", tmp_path / "other.txt"
    mine.write_text("my own corpus", encoding="utf-8")
    other.write_text("from the environment", encoding="utf-8")
    monkeypatch.setenv(corpus.PATH_ENV, str(other))
    # checksum differs: accepted as is
    assert load_tiny_shakespeare(path=mine) == "my own corpus"


def test_environment_variable_then_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / CACHE_FILENAME).write_text("cached", encoding="utf-8")
    env_file = tmp_path / "env.txt"
    env_file.write_text("from the environment", encoding="utf-8")
    monkeypatch.setenv(corpus.PATH_ENV, str(env_file))
    assert load_tiny_shakespeare() == "from the environment"
    monkeypatch.delenv(corpus.PATH_ENV)
    # $ANNOTATED_CACHE set by the fixture
    assert load_tiny_shakespeare() == "cached"


def test_missing_given_files_raise(tmp_path, monkeypatch):
    with pytest.raises(
        CorpusUnavailableError, match="the path argument points at"
    ):
        load_tiny_shakespeare(path=tmp_path / "nope.txt")
    monkeypatch.setenv(corpus.PATH_ENV, str(tmp_path / "nope.txt"))
    with pytest.raises(
        CorpusUnavailableError, match=r"\$ANNOTATED_TINYSHAKESPEARE points at"
    ):
        load_tiny_shakespeare()


def test_no_network_no_copy_says_how_to_provide(tmp_path):
    with pytest.raises(CorpusUnavailableError) as info:
        load_tiny_shakespeare(cache_dir=tmp_path / "c")
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    for hint in (
        "network disabled",
        "path=",
        "ANNOTATED_TINYSHAKESPEARE",
        corpus.TINY_SHAKESPEARE_URL,
        "ANNOTATED_CACHE",
    ):
        assert hint in message
    assert str(tmp_path / "c" / CACHE_FILENAME) in message
    # no temporary file left behind
    assert list((tmp_path / "c").iterdir()) == []
    with pytest.raises(CorpusUnavailableError, match="download=False"):
        load_tiny_shakespeare(cache_dir=tmp_path / "d", download=False)


def test_download_once_into_the_cache(served, tmp_path):
    cache = tmp_path / "explicit"
    assert load_tiny_shakespeare(cache_dir=cache) == SAMPLE
    assert load_tiny_shakespeare(cache_dir=cache) == SAMPLE
    # fetched once, then read from the cache
    assert served == [corpus.TINY_SHAKESPEARE_URL]
    assert sorted(p.name for p in cache.iterdir()) == [CACHE_FILENAME]


def test_default_cache_dir_follows_environment(served, tmp_path, monkeypatch):
    monkeypatch.setenv(corpus.CACHE_ENV, str(tmp_path / "elsewhere"))
    load_tiny_shakespeare()
    assert (tmp_path / "elsewhere" / CACHE_FILENAME).read_text(
        encoding="utf-8"
    ) == SAMPLE
    monkeypatch.delenv(corpus.CACHE_ENV)
    assert corpus.default_cache_dir() == Path.home() / ".cache" / "annotated"


def test_checksum_mismatch_leaves_nothing(served, tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "TINY_SHAKESPEARE_SHA256", "0" * 64)
    with pytest.raises(ChecksumMismatchError, match="expected 0000"):
        load_tiny_shakespeare(cache_dir=tmp_path / "c")
    assert list((tmp_path / "c").iterdir()) == []


def test_interrupted_download_leaves_no_partial_file(tmp_path, monkeypatch):
    def half_then_fail(url, out, timeout=30.0):
        out.write(SAMPLE.encode()[:100])
        out.flush()
        raise ConnectionResetError("connection dropped")

    monkeypatch.setattr(corpus, "_fetch", half_then_fail)
    with pytest.raises(CorpusUnavailableError, match="connection dropped"):
        load_tiny_shakespeare(cache_dir=tmp_path / "c")
    assert list((tmp_path / "c").iterdir()) == []


def test_interrupt_during_download_is_not_swallowed(tmp_path, monkeypatch):
    def interrupted(url, out, timeout=30.0):
        out.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(corpus, "_fetch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_tiny_shakespeare(cache_dir=tmp_path / "c")
    assert list((tmp_path / "c").iterdir()) == []


def test_real_fetch_streams_the_response(monkeypatch):
    opened = []

    def urlopen(url, timeout):
        opened.append((url, timeout))
        return io.BytesIO(b"To be, or not to be")

    monkeypatch.setattr(corpus.urllib.request, "urlopen", urlopen)
    out = io.BytesIO()
    REAL_FETCH(corpus.TINY_SHAKESPEARE_URL, out)
    assert out.getvalue() == b"To be, or not to be" and opened == [
        (corpus.TINY_SHAKESPEARE_URL, 30.0)
    ]


@pytest.mark.skipif(
    not SHARED_COPY.is_file(),
    reason="no shared copy of Tiny Shakespeare here",
)
def test_shared_copy_matches_published_checksum():
    assert (
        hashlib.sha256(SHARED_COPY.read_bytes()).hexdigest()
        == TINY_SHAKESPEARE_SHA256
    )
    corpus = load_tiny_shakespeare(path=SHARED_COPY)
    assert len(corpus) == 1_115_394 and CharTokenizer(corpus).vocab_size == 65


# --- text windows ----------------------------------------------------------------------


def test_windows_are_shifted_substrings_of_their_split():
    data = TextDataset(SAMPLE)
    cut = int(len(SAMPLE) * 0.9)
    assert (
        len(data.splits["train"]) == cut
        and len(data.splits["val"]) == len(SAMPLE) - cut
    )
    for split, part in (("train", SAMPLE[:cut]), ("val", SAMPLE[cut:])):
        batch = data.sample(16, 12, 0, split=split)
        assert (
            isinstance(batch, Batch)
            and batch.inputs.shape == (16, 12)
            and batch.target_mask.all()
        )
        assert torch.equal(batch.inputs[:, 1:], batch.targets[:, :-1])
        for x, y in zip(batch.inputs, batch.targets):
            assert data.decode(x) + data.decode(y)[-1] in part
    assert data.seq_len(12) == 12 and data.vocab_size == len(set(SAMPLE))


def test_windows_by_hand_and_seeded():
    # train "hello", val " world"
    data = TextDataset("hello world", val_fraction=0.5)
    batch = data.sample(8, 4, 0)
    assert {data.decode(row) for row in batch.inputs} <= {"hell"}
    assert {data.decode(row) for row in batch.targets} <= {"ello"}
    val = data.sample(50, 4, 0, split="val")
    assert {data.decode(row) for row in val.inputs} == {" wor", "worl"}
    assert torch.equal(
        data.sample(4, 3, 7).inputs,
        data.sample(4, 3, torch.Generator().manual_seed(7)).inputs,
    )


def test_window_errors_and_lazy_source():
    data = TextDataset("hello world", val_fraction=0.5)
    with pytest.raises(
        ValueError,
        match="val split has 6 characters, a window of length 6 needs 7",
    ):
        data.sample(2, 6, 0, split="val")
    with pytest.raises(ValueError, match="split must be one of"):
        data.sample(2, 3, 0, split="test")
    with pytest.raises(ValueError, match="val_fraction"):
        TextDataset("abc", val_fraction=1.0)
    calls = []
    lazy = TextDataset(lambda: calls.append(1) or SAMPLE)
    assert calls == []
    assert lazy.vocab_size == len(set(SAMPLE)) and lazy.sample(
        2, 5, 0
    ).inputs.shape == (2, 5)
    assert calls == [1]


def test_tiny_shakespeare_is_registered_lazily(served):
    registered = TASKS["tiny_shakespeare"]
    assert (
        isinstance(registered, TextDataset)
        and registered.source == "load_tiny_shakespeare"
    )
    # the same loader, resolved through the fake server
    fresh = TextDataset(load_tiny_shakespeare)
    assert fresh.text == SAMPLE and served == [corpus.TINY_SHAKESPEARE_URL]
