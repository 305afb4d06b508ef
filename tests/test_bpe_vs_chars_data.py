"""Bits per character, and the stored character-vs-BPE comparison.

Hand examples for :mod:`annotated.analysis.tokens` (a bigram table whose
NLL is summed by hand), then the files that ``scripts/bpe_vs_chars.py``
wrote: complete (two arms × three seeds), self-consistent (bits per
character = NLL / (characters · ln 2), both arms scored on the same
characters, the same tokens seen).
"""

from __future__ import annotations

import csv
import doctest
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

import annotated
from annotated.analysis import tokens
from annotated.analysis.tokens import (
    SplitText,
    bits_per_character,
    text_nll,
    val_bits_per_character,
)
from annotated.tasks.bpe import BPETokenizer
from annotated.tasks.text import CharTokenizer, TextDataset

DATA = Path(annotated.__file__).parent / "data"
ARMS, SEEDS = ("chars", "bpe"), (0, 1, 2)


class Bigram(torch.nn.Module):
    """p(next | previous) from a fixed table: context beyond one token
    does not matter, so every window cut gives the same total."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.log_p = torch.nn.Parameter(table.log(), requires_grad=False)

    def forward(self, x):  # (B, T) -> logits (B, T, V)
        return SimpleNamespace(logits=self.log_p[x])


def test_bits_per_character_by_hand():
    # one character at probability 1/2 is one bit; 4 chars, 6 bits: 1.5
    assert bits_per_character(math.log(2), 1) == pytest.approx(1.0)
    assert bits_per_character(6 * math.log(2), 4) == pytest.approx(1.5)
    # a character model: bpc = loss per character / ln 2
    loss, n = 1.2, 1000
    expected = loss / 0.6931
    assert bits_per_character(loss * n, n) == pytest.approx(expected, 1e-4)
    # two tokens of 2.5 characters each at 1/8 each: 6 bits over 5 chars
    assert bits_per_character(2 * math.log(8), 5) == pytest.approx(1.2)
    with pytest.raises(ValueError, match="n_chars must be positive"):
        bits_per_character(1.0, 0)
    assert doctest.testmod(tokens).failed == 0


@pytest.mark.parametrize("context", [1, 3, 4, 9, 50])
def test_text_nll_scores_every_id_but_the_first_once(context):
    table = torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [1, 1, 2.0]])
    table = table / table.sum(1, keepdim=True)
    ids = torch.tensor([0, 1, 1, 2, 0, 0, 2, 2, 1, 0])
    by_hand = -sum(
        math.log(table[a, b]) for a, b in zip(ids.tolist(), ids[1:].tolist())
    )
    total, n = text_nll(Bigram(table), ids, context, batch_size=2)
    assert n == len(ids) - 1
    assert total == pytest.approx(by_hand, rel=1e-6)


def test_text_nll_restarts_the_context_every_window():
    seen = []

    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            seen.append(x.tolist())
            return SimpleNamespace(logits=torch.zeros(*x.shape, 10))

    total, n = text_nll(Recorder(), torch.arange(10), 4)
    assert seen == [[[0, 1, 2, 3], [4, 5, 6, 7]], [[8]]]
    assert (total, n) == (pytest.approx(9 * math.log(10)), 9)


def test_split_text_cuts_at_one_character_for_every_tokenizer():
    text = "First Citizen:\nBefore we proceed any further, hear me.\n" * 20
    char = SplitText(text, CharTokenizer(text))
    plain = TextDataset(text, tokenizer=CharTokenizer(text))
    for name in ("train", "val"):
        assert torch.equal(char.splits[name], plain.splits[name])
    bpe = SplitText(text, BPETokenizer.from_text(text, 300))
    assert bpe.split_texts == char.split_texts
    for name, part in bpe.split_texts.items():
        assert bpe.decode(bpe.splits[name]) == part
    assert len(bpe.splits["val"]) < len(char.splits["val"])


def test_both_arms_score_the_same_characters():
    text = "First Citizen:\nBefore we proceed any further, hear me.\n" * 20
    char = SplitText(text, CharTokenizer(text))
    bpe = SplitText(text, BPETokenizer.from_text(text, 300))
    skip = len(bpe.decode(bpe.splits["val"][:1]))
    for task in (char, bpe):
        V = task.tokenizer.vocab_size
        uniform = Bigram(torch.full((V, V), 1.0 / V))
        bpc, nll, n_chars = val_bits_per_character(uniform, task, 8, skip)
        assert n_chars == len(task.split_texts["val"]) - skip
        scored = len(task.splits["val"]) - (1 if task is bpe else skip)
        assert nll == pytest.approx(scored * math.log(V))
        assert bpc == pytest.approx(nll / (n_chars * math.log(2)))
    if skip > 1:
        with pytest.raises(ValueError, match="ends inside a token"):
            val_bits_per_character(uniform, bpe, 8, skip - 1)


# --- the stored comparison -------------------------------------------------


def read(name: str) -> list[dict]:
    with open(DATA / name, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def summary() -> list[dict]:
    return read("bpe_vs_chars_summary.csv")


def test_stored_runs_are_complete(summary):
    assert sorted((r["arm"], int(r["seed"])) for r in summary) == sorted(
        (arm, seed) for arm in ARMS for seed in SEEDS
    )
    curves = read("bpe_vs_chars_curves.csv")
    steps = int(summary[0]["steps"])
    for arm in ARMS:
        for seed in SEEDS:
            points = [
                int(r["step"])
                for r in curves
                if r["arm"] == arm and int(r["seed"]) == seed
            ]
            assert points == list(range(250, steps + 1, 250))
    provenance = yaml.safe_load(
        (DATA / "bpe_vs_chars_provenance.yaml").read_text()
    )
    assert provenance["environments"] and provenance["runs_wall_time_s"]


def test_stored_bpc_is_total_nll_over_characters(summary):
    n_chars = {int(r["val_chars_scored"]) for r in summary}
    assert len(n_chars) == 1  # both arms, the same characters
    for r in summary:
        by_hand = float(r["val_nll_nats"]) / (
            int(r["val_chars_scored"]) * math.log(2)
        )
        assert float(r["val_bpc"]) == pytest.approx(by_hand)
        # equal compute: the same tokens through the same blocks
        assert int(r["train_tokens_seen"]) == 2000 * 12 * 64
        per_token = float(r["val_nll_nats"]) / int(r["val_tokens_scored"])
        assert float(r["val_loss_per_token"]) == pytest.approx(per_token)
    by_arm = {r["arm"]: r for r in summary if r["seed"] == "0"}
    assert by_arm["chars"]["vocab_size"] == "65"
    assert by_arm["bpe"]["vocab_size"] == "512"
    # a BPE token covers about two characters
    assert 1.8 < float(by_arm["bpe"]["train_chars_per_token"]) < 2.1
