"""Byte-pair encoding (BPE): a subword vocabulary learned from text.

Gage (1994) compressed data by replacing the most frequent pair of
adjacent bytes with a new symbol, again and again; Sennrich et al. (2016)
used the same loop to build a vocabulary of subwords, and GPT-2 (Radford
et al. 2019) started it from the 256 byte values, so every string has an
encoding and no token is ever unknown. Training:

1. cut the text into chunks (pre-tokenization, below) and each chunk into
   its UTF-8 bytes, ids 0…255;
2. count every pair of adjacent ids inside the chunks;
3. give the most frequent pair the next id (256, 257, …) and replace it,
   left to right, wherever it occurs;
4. repeat 2–3 until the vocabulary has ``vocab_size`` ids.

The list of ``merges`` (pairs of ids, in the order learned) is the whole
tokenizer: :func:`encode` replays the merges on new text, earliest first;
:func:`decode` joins each id's bytes and reads them as UTF-8.

Two choices fix the merges, and both are stated here:

* **Pre-tokenization.** :data:`SPLIT_PATTERN` is GPT-2's: contractions
  (``'s``, ``'ll``, …), runs of letters, of digits or of other symbols,
  each with the one space before it, and runs of whitespace. A merge never
  crosses a chunk, so ``" the"`` can become one token but ``"e t"`` cannot.
  The pattern is written with Python's ``re``; on ASCII text its chunks
  are GPT-2's (``\\p{L}`` and ``\\p{N}`` differ from ``re``'s letter and
  digit classes only on some rare Unicode characters).
* **Ties.** Among equally frequent pairs, the smallest pair of ids wins
  (tuples compared: first id, then second), the rule of Hugging Face
  ``tokenizers``' ``BpeTrainer`` when its alphabet is ordered by byte.

Training counts each distinct chunk once, with its frequency, and after a
merge recounts only the chunks that held the merged pair. Left out:
special tokens, a minimum pair frequency, BPE dropout.

Legend: N ids of an encoded text.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import torch

Pair = tuple[int, int]

SPLIT_PATTERN = (
    r"'(?:[sdmt]|ll|ve|re)"  # contractions: 's 'd 'm 't 'll 've 're
    r"| ?[^\W\d_]+"  # letters, with the space before them
    r"| ?\d+"  # digits
    r"| ?(?:[^\s\w]|_)+"  # other symbols: punctuation, _, marks
    r"|\s+(?!\S)"  # whitespace, leaving one space for the next word
    r"|\s+"  # whitespace at the end of the text
)
_SPLIT = re.compile(SPLIT_PATTERN)


def split_words(text: str) -> list[str]:
    """Cut ``text`` into chunks; ``"".join(chunks) == text``.

    >>> split_words("Hello, it's  me")
    ['Hello', ',', ' it', "'s", ' ', ' me']
    """
    return _SPLIT.findall(text)


def merge(ids: tuple[int, ...], pair: Pair, new_id: int) -> tuple[int, ...]:
    """Replace each ``pair`` in ``ids`` by ``new_id``, left to right.

    >>> merge((97, 97, 97, 98), (97, 97), 256)
    (256, 97, 98)
    """
    out, i = [], 0
    while i < len(ids):
        if ids[i : i + 2] == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return tuple(out)


def train_bpe(text: str, vocab_size: int) -> list[Pair]:
    """The merges that grow the 256 bytes to ``vocab_size`` ids.

    Fewer when no adjacent pair is left (every chunk is one token).

    >>> train_bpe("aaabdaaabac", 259)  # Wikipedia's example: aa, ab, ZY
    [(97, 97), (97, 98), (256, 257)]
    """
    _check_text(text)
    _check_vocab_size(vocab_size)
    chunks = Counter(split_words(text))
    words = {tuple(w.encode("utf-8")): n for w, n in chunks.items()}
    counts = Counter()  # pair -> times it occurs in the text
    holders = defaultdict(set)  # pair -> the words that hold it
    for word, n in words.items():
        for pair in zip(word, word[1:]):
            counts[pair] += n
            holders[pair].add(word)
    merges = []
    while 256 + len(merges) < vocab_size and counts:
        # most frequent first; among equals, the smallest pair of ids
        best = min(counts, key=lambda pair: (-counts[pair], pair))
        new_id = 256 + len(merges)
        merges.append(best)
        for word in holders.pop(best):
            n = words.pop(word)
            for pair in zip(word, word[1:]):  # take the word's pairs out
                counts[pair] -= n
                if counts[pair] == 0:
                    del counts[pair]
                holders[pair].discard(word)
            merged = merge(word, best, new_id)
            words[merged] = n
            for pair in zip(merged, merged[1:]):  # and the merged word's in
                counts[pair] += n
                holders[pair].add(merged)
    return merges


def encode(text: str, merges: list[Pair]) -> list[int]:
    """The ids of ``text``: its bytes, merged as in training.

    In each chunk the pair learned earliest is merged first, until no
    learned pair is left.

    >>> encode("aaabdaaabac", [(97, 97), (97, 98), (256, 257)])
    [258, 100, 258, 97, 99]
    """
    _check_text(text)
    ids_of = {pair: 256 + i for i, pair in enumerate(merges)}
    ids = []
    for word in split_words(text):
        ids.extend(_encode_word(word, ids_of))
    return ids


def _encode_word(word: str, ids_of: dict[Pair, int]) -> tuple[int, ...]:
    ids = tuple(word.encode("utf-8"))
    while len(ids) > 1:
        # the pair learned earliest has the smallest new id
        pair = min(zip(ids, ids[1:]), key=lambda p: ids_of.get(p, 1 << 62))
        if pair not in ids_of:
            break
        ids = merge(ids, pair, ids_of[pair])
    return ids


def vocab_bytes(merges: list[Pair]) -> list[bytes]:
    """The bytes of every id: 0…255 themselves, then each merge's two."""
    vocab = [bytes([b]) for b in range(256)]
    for a, b in merges:
        vocab.append(vocab[a] + vocab[b])
    return vocab


def decode(ids, merges_or_vocab) -> str:
    """The text of ``ids``; ``merges_or_vocab``: merges or vocab_bytes().

    Bytes that are not valid UTF-8 (a cut-off character) become ``�``.
    """
    vocab = merges_or_vocab
    if not vocab or not isinstance(vocab[0], bytes):
        vocab = vocab_bytes(merges_or_vocab)
    ids = [int(i) for i in ids]
    bad = [i for i in ids if not 0 <= i < len(vocab)]
    if bad:
        raise ValueError(
            f"ids must lie in [0, {len(vocab)}), got {bad[:5]}; "
            "decode with the merges that encoded them"
        )
    return b"".join(vocab[i] for i in ids).decode("utf-8", "replace")


def _check_text(text) -> None:
    if not isinstance(text, str):
        raise TypeError(
            f"text must be a str, got {type(text).__name__}; "
            "decode bytes first, e.g. data.decode('utf-8')"
        )


def _check_vocab_size(vocab_size) -> None:
    if (
        not isinstance(vocab_size, int)
        or isinstance(vocab_size, bool)
        or vocab_size < 256
    ):
        raise ValueError(
            f"vocab_size must be an int ≥ 256, got {vocab_size!r}: "
            "byte-level BPE starts from the 256 byte values and adds "
            "one id per merge"
        )


class BPETokenizer:
    """Text ↔ ids by byte-level BPE; the char tokenizer's methods.

    ``encode`` gives a (N,) long tensor, ``decode`` takes ids (a tensor or
    a list); every string round-trips, even characters never seen in
    training (they stay as their bytes).

    >>> tok = BPETokenizer.from_text("aaabdaaabac", 259)
    >>> tok.vocab_size, tok.encode("aab").tolist(), tok.decode([258, 99])
    (259, [256, 98], 'aaabc')
    """

    def __init__(self, merges):
        merges = [tuple(pair) for pair in merges]
        for i, pair in enumerate(merges):
            if len(pair) != 2 or not all(
                isinstance(t, int) and 0 <= t < 256 + i for t in pair
            ):
                raise ValueError(
                    f"merge {i} is {pair!r}: each merge must be two ids "
                    f"made before it, in [0, {256 + i}); "
                    "use the output of train_bpe"
                )
        self.merges = merges
        self._ids_of = {pair: 256 + i for i, pair in enumerate(merges)}
        self._vocab = vocab_bytes(merges)
        self._cache: dict[str, tuple[int, ...]] = {}

    @classmethod
    def from_text(cls, text: str, vocab_size: int) -> BPETokenizer:
        """Train on ``text`` (:func:`train_bpe`)."""
        return cls(train_bpe(text, vocab_size))

    @property
    def vocab_size(self) -> int:
        return len(self._vocab)

    @property
    def token_names(self) -> tuple[str, ...]:
        """Printable names for plots: space → ``␣``, newline → ``\\n``."""
        readable = {" ": "␣", "\n": "\\n", "\t": "\\t"}
        return tuple(
            "".join(
                readable.get(c, c)
                for c in token.decode("utf-8", "backslashreplace")
            )
            for token in self._vocab
        )

    def encode(self, text: str) -> torch.Tensor:
        _check_text(text)
        ids = []
        for word in split_words(text):  # repeated words are encoded once
            if word not in self._cache:
                self._cache[word] = _encode_word(word, self._ids_of)
            ids.extend(self._cache[word])
        return torch.tensor(ids, dtype=torch.long)  # (N,)

    def decode(self, ids) -> str:
        return decode(torch.as_tensor(ids).reshape(-1).tolist(), self._vocab)

    def to_dict(self) -> dict:
        return {"kind": "bpe", "merges": [list(p) for p in self.merges]}

    @classmethod
    def from_dict(cls, state: dict) -> BPETokenizer:
        if state.get("kind") != "bpe" or not isinstance(
            state.get("merges"), list
        ):
            raise ValueError(
                "expected a dict made by BPETokenizer.to_dict(): "
                "{'kind': 'bpe', 'merges': [[a, b], ...]}"
            )
        return cls(state["merges"])

    def __eq__(self, other) -> bool:
        return isinstance(other, BPETokenizer) and self.merges == other.merges

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size})"
