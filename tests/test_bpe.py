"""Byte-level BPE: hand-checked merges, Hugging Face parity, round trips.

References: Wikipedia's worked example ("aaabdaaabac"); Hugging Face
``tokenizers``' ``BpeTrainer`` and GPT-2 ``ByteLevel`` pre-tokenizer; a
naive trainer written here (recounts every pair after every merge).
"""

from __future__ import annotations

import doctest
import json
import os
from collections import Counter
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from annotated.tasks import bpe
from annotated.tasks.bpe import (
    BPETokenizer,
    decode,
    encode,
    split_words,
    train_bpe,
    vocab_bytes,
)
from annotated.tasks.text import TextDataset

hf = pytest.importorskip("tokenizers")

SAMPLE = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
    "All:\nSpeak, speak.\n\nFirst Citizen:\nYou are all resolved rather "
    "to die than to famish?\n\nAll:\nResolved. resolved.\n\n"
    "It's 1603; we'll see_you  there, 42 times!\t(Exeunt.)\n"
) * 4
SHARED_COPY = (
    Path(__file__).resolve().parents[2] / "shared/data/tinyshakespeare.txt"
)
GPT2_PATTERN = (
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+"
    r"|\s+(?!\S)|\s+"
)
FAST = settings(max_examples=60, deadline=None)
Pair = tuple[int, int]


@pytest.fixture(scope="module")
def shakespeare() -> str:
    """The first 16 KB of Tiny Shakespeare (skip when no copy is here)."""
    path = Path(os.environ.get("ANNOTATED_TINYSHAKESPEARE") or SHARED_COPY)
    if not path.is_file():
        pytest.skip("no local copy of Tiny Shakespeare")
    return path.read_text(encoding="utf-8")[:16_000]


@pytest.fixture(scope="module")
def tokenizer(shakespeare) -> BPETokenizer:
    return BPETokenizer.from_text(shakespeare[:4000], 400)


# --- hand-checked ----------------------------------------------------------


def test_wikipedia_example():
    # aaabdaaabac -> ZabdZabac (Z=aa) -> ZYdZYac (Y=ab) -> XdXac (X=ZY);
    # after Z, "Za" and "ab" both occur twice: the smaller ids (a, b) win
    merges = train_bpe("aaabdaaabac", 259)
    assert merges == [(97, 97), (97, 98), (256, 257)]
    ids = encode("aaabdaaabac", merges)
    assert ids == [258, ord("d"), 258, ord("a"), ord("c")]
    assert decode(ids, merges) == "aaabdaaabac"
    assert vocab_bytes(merges)[256:] == [b"aa", b"ab", b"aaab"]


def test_pairs_are_counted_with_overlaps_and_merged_left_to_right():
    # "aaa" holds two (a, a) pairs; merging leaves (aa, a), not (a, aa)
    assert train_bpe("aaa aaa b", 257) == [(97, 97)]
    assert encode("aaa", [(97, 97)]) == [256, 97]
    assert bpe.merge((1, 1, 1, 1, 1), (1, 1), 9) == (9, 9, 1)


def test_merges_never_cross_chunks():
    assert split_words("Hello, it's  me\n") == [
        "Hello",
        ",",
        " it",
        "'s",
        " ",
        " me",
        "\n",
    ]
    # " b" twice beats " a" once; "a " and "b " are never pairs
    assert train_bpe("a b a b", 257) == [(32, 98)]
    for token in vocab_bytes(train_bpe(SAMPLE, 400))[256:]:
        assert token.isspace() or b" " not in token[1:], token


def test_training_stops_when_every_chunk_is_one_token():
    merges = train_bpe("ab ab", 1000)
    assert merges == [(97, 98), (32, 256)]  # "ab", then " ab"
    assert BPETokenizer(merges).vocab_size == 258


def test_module_doctests():
    assert doctest.testmod(bpe).failed == 0


# --- an independent naive trainer and Hugging Face -------------------------


def hf_chunks(text: str) -> list[str]:
    """GPT-2's chunks as Hugging Face cuts them (offsets into ``text``)."""
    pre = hf.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    return [text[a:b] for _, (a, b) in pre.pre_tokenize_str(text)]


def naive_bpe(chunks, vocab_size, byte_rank=lambda b: b) -> list[Pair]:
    """Recount all pairs after each merge; ties: smallest ranks."""
    words = Counter(tuple(c.encode("utf-8")) for c in chunks)
    rank = lambda t: byte_rank(t) if t < 256 else 1_000 + t  # noqa: E731
    merges = []
    while 256 + len(merges) < vocab_size:
        counts = Counter()
        for word, n in words.items():
            for pair in zip(word, word[1:]):
                counts[pair] += n
        if not counts:
            break
        best = max(
            counts, key=lambda p: (counts[p], -rank(p[0]), -rank(p[1]))
        )
        merges.append(best)
        words = Counter(
            {
                bpe.merge(w, best, 255 + len(merges)): n
                for w, n in words.items()
            }
        )
    return merges


def gpt2_byte_chars() -> dict[int, str]:
    """GPT-2's bytes_to_unicode: printable bytes stay, others 256 + n."""
    kept = [*range(33, 127), *range(161, 173), *range(174, 256)]
    moved = [b for b in range(256) if b not in kept]
    table = {b: chr(b) for b in kept}
    table.update({b: chr(256 + n) for n, b in enumerate(moved)})
    return table


def hf_train(text: str, vocab_size: int, *, byte_order: bool):
    """Hugging Face's BpeTrainer on GPT-2's chunks of ``text``.

    ``byte_order``: the alphabet is the bytes as chr(0..255) (ASCII text is
    its own bytes), so HF's ids are ours; else HF's ByteLevel, whose ids
    follow GPT-2's byte-to-unicode order. Returns the tokenizer and its
    merges as pairs of bytes."""
    tok = hf.Tokenizer(hf.models.BPE())
    if byte_order:
        tok.pre_tokenizer = hf.pre_tokenizers.Split(
            hf.Regex(GPT2_PATTERN), behavior="isolated"
        )
        alphabet = [chr(b) for b in range(256)]
        to_bytes = {chr(b): b for b in range(256)}
    else:
        tok.pre_tokenizer = hf.pre_tokenizers.ByteLevel(
            add_prefix_space=False, use_regex=True
        )
        alphabet = hf.pre_tokenizers.ByteLevel.alphabet()
        to_bytes = {c: b for b, c in gpt2_byte_chars().items()}
    trainer = hf.trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=alphabet, show_progress=False
    )
    tok.train_from_iterator([text], trainer)
    merges = json.loads(tok.to_str())["model"]["merges"]
    merges = [m.split(" ") if isinstance(m, str) else m for m in merges]
    as_bytes = lambda s: bytes(to_bytes[c] for c in s)  # noqa: E731
    return tok, [(as_bytes(a), as_bytes(b)) for a, b in merges]


def as_byte_pairs(merges: list[Pair]) -> list[tuple[bytes, bytes]]:
    vocab = vocab_bytes(merges)
    return [(vocab[a], vocab[b]) for a, b in merges]


def test_chunks_are_gpt2s(shakespeare):
    for text in (SAMPLE, shakespeare):
        assert split_words(text) == hf_chunks(text)


@pytest.mark.parametrize("n_chars", [4000, 12_000])
@pytest.mark.parametrize("vocab_size", [300, 400])
def test_merges_equal_hugging_face(shakespeare, n_chars, vocab_size):
    text = shakespeare[:n_chars]
    merges = train_bpe(text, vocab_size)
    tok, hf_merges = hf_train(text, vocab_size, byte_order=True)
    assert len(merges) == vocab_size - 256
    assert as_byte_pairs(merges) == hf_merges
    # the same ids, so the same encoding of text never trained on
    held_out = shakespeare[12_000:]
    assert encode(held_out, merges) == tok.encode(held_out).ids


def test_merges_equal_hugging_face_with_many_ties():
    merges = train_bpe(SAMPLE, 400)
    assert as_byte_pairs(merges) == hf_train(SAMPLE, 400, byte_order=True)[1]


def test_incremental_counts_equal_recounting(shakespeare):
    for text in (SAMPLE, shakespeare[:4000]):
        assert train_bpe(text, 400) == naive_bpe(hf_chunks(text), 400)


@pytest.mark.parametrize("vocab_size", [300, 400])
def test_gpt2_byte_level_differs_only_in_ties(shakespeare, vocab_size):
    """HF's ByteLevel alphabet puts printable bytes before space, newline
    and the other control bytes (GPT-2's byte-to-unicode order), so equal
    counts can be broken the other way; a trainer using that order as its
    tie rule gives HF's merges exactly, and ours gives the same first
    merges up to the first tie."""
    text = shakespeare[:4000]
    _, hf_merges = hf_train(text, vocab_size, byte_order=False)
    order = {b: ord(c) for b, c in gpt2_byte_chars().items()}
    gpt2_ties = naive_bpe(hf_chunks(text), vocab_size, order.__getitem__)
    assert as_byte_pairs(gpt2_ties) == hf_merges
    # measured: the first 12 merges agree, then 44 of 44 (300) and 141 of
    # 144 (400) merges are learned by both, in another order
    ours = as_byte_pairs(train_bpe(text, vocab_size))
    assert ours[:12] == hf_merges[:12]
    assert len(set(ours) & set(hf_merges)) >= 0.95 * len(ours)


# --- round trips, sizes, the tokenizer class -------------------------------


@FAST
@given(st.text())
def test_chunks_cover_any_text(text):
    assert "".join(split_words(text)) == text


@FAST
@given(st.text())
def test_round_trip_of_any_text(tokenizer, text):
    ids = tokenizer.encode(text)
    assert ids.dtype == torch.long and ids.dim() == 1
    assert all(0 <= i < tokenizer.vocab_size for i in ids.tolist())
    assert tokenizer.decode(ids) == text
    assert encode(text, tokenizer.merges) == ids.tolist()


def test_every_byte_round_trips(tokenizer):
    vocab = vocab_bytes(tokenizer.merges)
    assert vocab[:256] == [bytes([b]) for b in range(256)]
    unseen = "".join(map(chr, range(256))) + "日本語 🙂 \U0010ffff"
    assert tokenizer.decode(tokenizer.encode(unseen)) == unseen
    # a cut-off character decodes to U+FFFD instead of failing
    assert decode([0xE6], tokenizer.merges) == "\ufffd"


@pytest.mark.parametrize("vocab_size", [256, 300, 400])
def test_vocab_size_is_respected(shakespeare, vocab_size):
    tok = BPETokenizer.from_text(shakespeare[:4000], vocab_size)
    assert tok.vocab_size == vocab_size == len(tok.token_names)
    assert max(tok.encode(shakespeare).tolist()) < vocab_size
    if vocab_size == 256:
        assert tok.encode("ab").tolist() == [97, 98]


def test_encoding_is_shorter_than_bytes(tokenizer, shakespeare):
    held_out = shakespeare[12_000:]
    n_ids, n_bytes = len(tokenizer.encode(held_out)), len(held_out.encode())
    assert n_ids < 0.7 * n_bytes, (n_ids, n_bytes)


def test_tokenizer_dict_names_and_dataset(tokenizer, shakespeare):
    restored = BPETokenizer.from_dict(tokenizer.to_dict())
    assert restored == tokenizer and repr(restored) == (
        "BPETokenizer(vocab_size=400)"
    )
    names = tokenizer.token_names
    assert names[32] == "␣" and names[10] == "\\n" and names[0xE6] == "\\xe6"
    assert "␣the" in names
    # it stands in for the character tokenizer
    data = TextDataset(shakespeare, tokenizer=tokenizer)
    batch = data.sample(2, 16, torch.Generator().manual_seed(0))
    assert batch.inputs.shape == (2, 16)
    assert int(batch.inputs.max()) < tokenizer.vocab_size
    assert data.decode(batch.inputs[0]) in shakespeare


# --- readable errors -------------------------------------------------------


@pytest.mark.parametrize("vocab_size", [255, 0, 300.0, True, "300"])
def test_bad_vocab_size(vocab_size):
    with pytest.raises(ValueError, match="vocab_size must be an int ≥ 256"):
        train_bpe("abc", vocab_size)


@pytest.mark.parametrize("call", [train_bpe, encode])
def test_text_must_be_str(call):
    with pytest.raises(TypeError, match=r"text must be a str.*decode"):
        call(b"abc", 300 if call is train_bpe else [])
    with pytest.raises(TypeError, match="text must be a str"):
        BPETokenizer([]).encode(["abc"])


def test_bad_ids_and_merges():
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 257\)"):
        decode([300], [(97, 98)])
    with pytest.raises(ValueError, match=r"merge 1 is \(97, 258\)"):
        BPETokenizer([(97, 98), (97, 258)])
    with pytest.raises(ValueError, match="BPETokenizer.to_dict"):
        BPETokenizer.from_dict({"kind": "char", "chars": "ab"})


# --- all of Tiny Shakespeare -----------------------------------------------

# The share of merges that Hugging Face's BpeTrainer (byte-ordered alphabet,
# GPT-2's chunks) learns identically, at the same rank, when both train on
# the whole training split: stated here, measured 512 of 512 ids.
HF_AGREEMENT = 1.0


@pytest.fixture(scope="module")
def full_text() -> str:
    path = Path(os.environ.get("ANNOTATED_TINYSHAKESPEARE") or SHARED_COPY)
    if not path.is_file():
        pytest.skip("no local copy of Tiny Shakespeare")
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def full_merges(full_text) -> list[Pair]:
    """512 ids trained on the first 90 % (the book's training split)."""
    return train_bpe(full_text[: int(len(full_text) * 0.9)], 512)


def agreement(ours, theirs) -> float:
    """The share of merges equal at the same rank."""
    same = sum(a == b for a, b in zip(ours, theirs))
    return same / max(len(ours), len(theirs))


def test_agreement_helper():
    assert agreement([1, 2, 3, 4], [1, 2, 4, 3]) == 0.5
    assert agreement([1, 2], [1, 2, 3, 4]) == 0.5


def test_round_trip_of_all_of_tiny_shakespeare(full_text, full_merges):
    tok = BPETokenizer(full_merges)
    ids = tok.encode(full_text)
    assert tok.decode(ids) == full_text
    assert set(ids.tolist()) <= set(range(512))
    # about two characters per id (measured 1.94 on the validation split)
    val = full_text[int(len(full_text) * 0.9) :]
    assert 1.8 < len(val) / len(tok.encode(val)) < 2.1


def test_agreement_with_hugging_face_on_all_of_tiny_shakespeare(
    full_text, full_merges
):
    train_text = full_text[: int(len(full_text) * 0.9)]
    tok, hf_merges = hf_train(train_text, 512, byte_order=True)
    assert len(full_merges) == 256
    share = agreement(as_byte_pairs(full_merges), hf_merges)
    assert share >= HF_AGREEMENT, f"agreement {share:.3f} < {HF_AGREEMENT}"
    val = full_text[len(train_text) :]
    assert encode(val, full_merges) == tok.encode(val).ids
