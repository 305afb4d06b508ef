"""Beam search: a beam of one is greedy decoding; a beam as wide as the search
space finds the exhaustive best (every sequence scored by a full forward
pass); the cached search equals a plain-Python search without a cache;
finished hypotheses keep their score and are padded; the length penalty
ranks as its formula says; a batch equals its rows one at a time; beam
search beats greedy where the greedy first token is a trap."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import random_ids, tiny_model

from annotated.models.beam import beam_search, length_normalised
from annotated.models.config import ModelConfig
from annotated.models.generate import generate
from annotated.models.transformer import DecoderOnly, ModelOutput

pytestmark = pytest.mark.usefixtures("one_thread")
ARCHS = ["decoder", "encoder-decoder"]


def make(arch="decoder", vocab=7, seed=0, **kw):
    """A tiny model with peaked next-token distributions (an untied output
    head × 20: logits of spread ~2, so near-ties are rare)."""
    model = tiny_model(
        seed, arch=arch, vocab_size=vocab, tie_weights=False, **kw
    ).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(20)
    return model


def token_log_probs(model, prompt, new, src=None):
    """``log p`` of each token of ``new (R, N)`` after ``prompt (R, T0)``,
    ``(R, N)``: one full forward pass, no cache."""
    ids = torch.cat([prompt, new], dim=1)
    logits = model(ids).logits if src is None else model(src, ids).logits
    t0 = prompt.shape[1]
    log_p = logits[:, t0 - 1 : -1].log_softmax(-1)  # (R, N, V)
    return log_p.gather(-1, new[..., None])[..., 0]


def reference_beam(model, prompt, n, k, *, eos_id=None, alpha=1.0, src=None):
    """Beam search over Python lists for one prompt ``(1, T0)``: every
    extension scored by a full forward pass. → [(new tokens, log-prob)]."""
    beams = [((), 0.0, False)]  # (new tokens, log P, finished)
    for _ in range(n):
        candidates = []
        for new, log_p, done in beams:
            if done:  # a finished hypothesis carries over unchanged
                candidates.append((new, log_p, True))
                continue
            ids = torch.cat(
                [prompt, torch.tensor([new], dtype=torch.long)], 1
            )
            out = model(ids) if src is None else model(src, ids)
            step = out.logits[0, -1].log_softmax(-1).tolist()
            candidates += [
                (new + (tok,), log_p + lp, tok == eos_id)
                for tok, lp in enumerate(step)
            ]
        candidates.sort(key=lambda c: -c[1] / max(len(c[0]), 1) ** alpha)
        beams = candidates[:k]
        if all(done for *_, done in beams):
            break
    return [(new, log_p) for new, log_p, _ in beams]


def hypotheses(beams, row, t0):
    """The real hypotheses (score > -inf) of one prompt: [(new tokens,
    log-prob)], best first, each cut at its length."""
    out = []
    for seq, lp, n in zip(
        beams.sequences[row], beams.log_probs[row], beams.lengths[row]
    ):
        if lp > -math.inf:
            out.append((tuple(seq[t0 : t0 + n].tolist()), lp.item()))
    return out


def assert_same_hypotheses(found, expected):
    assert [h for h, _ in found] == [h for h, _ in expected]
    torch.testing.assert_close(
        torch.tensor([lp for _, lp in found]),
        torch.tensor([lp for _, lp in expected], dtype=torch.float32),
        atol=1e-5,
        rtol=1e-5,
    )


# --- beam of one, exhaustive search, uncached reference ---------------------


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("positional", ["rope", "alibi", "learned"])
def test_a_beam_of_one_is_greedy_decoding(arch, positional):
    model = make(arch, positional=positional)
    prompt, src = random_ids(3, 2, high=7, seed=1), random_ids(3, 4, high=7)
    extra = {"src": src} if arch == "encoder-decoder" else {}
    greedy = generate(model, prompt, 8, greedy=True, **extra)
    beams = beam_search(model, prompt, 8, beam_size=1, **extra)
    assert torch.equal(beams.best, greedy)
    # with an end token: the same tokens up to it, then padding
    eos = int(greedy[0, 4])
    beams = beam_search(model, prompt, 8, beam_size=1, eos_id=eos, **extra)
    stop = (greedy[0, 2:] == eos).nonzero()[0, 0].item() + 3
    assert torch.equal(beams.best[0, :stop], greedy[0, :stop])
    assert (beams.best[0, stop:] == eos).all()  # pad_id defaults to eos


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize(
    "eos_id, alpha", [(None, 1.0), (3, 0.0), (3, 0.5), (3, 1.0)]
)
def test_a_beam_as_wide_as_the_search_space_finds_every_hypothesis(
    arch, eos_id, alpha
):
    v, n = 4, 3  # 4 ** 3 = 64 sequences
    model = make(arch, vocab=v, seed=2)
    prompt = torch.tensor([[0, 1]])
    src = random_ids(1, 5, high=v, seed=3) if arch != "decoder" else None
    beams = beam_search(
        model,
        prompt,
        n,
        beam_size=v**n,
        eos_id=eos_id,
        pad_id=0,
        length_penalty=alpha,
        src=src,
    )
    # every sequence, scored by one full forward pass and cut after eos
    every = torch.tensor(list(itertools.product(range(v), repeat=n)))
    log_p = token_log_probs(
        model,
        prompt.expand(len(every), -1),
        every,
        None if src is None else src.expand(len(every), -1),
    )  # (64, N)
    expected = {}
    for seq, lps in zip(every.tolist(), log_p.tolist()):
        stop = seq.index(eos_id) + 1 if eos_id in seq else n
        expected[tuple(seq[:stop])] = sum(lps[:stop])
    ranked = sorted(
        expected.items(), key=lambda h: -h[1] / len(h[0]) ** alpha
    )
    assert len(ranked) == (64 if eos_id is None else 1 + 3 + 36)
    assert_same_hypotheses(hypotheses(beams, 0, 2), ranked)
    # the unused places are placeholders; finished hypotheses are padded
    assert beams.scores[0].isneginf().sum() == 64 - len(ranked)
    for seq, length in zip(beams.sequences[0], beams.lengths[0]):
        assert (seq[2 + length :] == 0).all()


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("positional", ["rope", "t5", "learned"])
def test_the_cached_search_equals_a_reference_without_cache(arch, positional):
    model = make(arch, positional=positional, seed=4)
    prompt, src = random_ids(2, 3, high=7, seed=5), random_ids(2, 4, high=7)
    extra = {"src": src} if arch == "encoder-decoder" else {}
    # the end token: the greedy path's second new token in row 0
    eos = int(generate(model, prompt, 2, greedy=True, **extra)[0, -1])
    settings = {"beam_size": 3, "eos_id": eos, "length_penalty": 0.7}
    cached = beam_search(model, prompt, 6, **settings, **extra)
    uncached = beam_search(
        model, prompt, 6, use_cache=False, **settings, **extra
    )
    assert torch.equal(cached.sequences, uncached.sequences)
    torch.testing.assert_close(cached.scores, uncached.scores)
    for row in range(2):
        expected = reference_beam(
            model,
            prompt[row : row + 1],
            6,
            3,
            eos_id=eos,
            alpha=0.7,
            src=None if not extra else src[row : row + 1],
        )
        assert_same_hypotheses(hypotheses(cached, row, 3), expected)
    assert (cached.lengths < 6).any()  # some hypotheses ended early


# --- end of sequence and the length penalty ---------------------------------


class TableModel(DecoderOnly):
    """A hand-built language model: the next token's probabilities depend
    only on the last token, ``table[last]``; it has no cache to fill."""

    def __init__(self, table):
        config = ModelConfig(
            vocab_size=len(table), d_model=8, n_heads=1, n_layers=1
        )
        super().__init__(config)
        self.register_buffer("log_table", torch.tensor(table).log())

    def forward(self, idx, *, caches=None, **_):
        return ModelOutput(self.log_table[idx])  # (B, T, V)


# tokens: 0 start (and padding), 1 eos, 2 a word
TABLE = [[0.0, 0.4, 0.6], [1 / 3] * 3, [0.0, 0.3, 0.7]]
SHORT, LONG = (1,), (2, 2, 2)  # P = 0.4 and 0.6 · 0.7 · 0.7 = 0.294
# the probabilities of all hypotheses that can happen, by hand
HAND = {SHORT: 0.4, (2, 1): 0.18, (2, 2, 1): 0.126, LONG: 0.294}
# SHORT wins while log 0.4 > log 0.294 / 3 ** alpha: below this alpha
CROSSOVER = math.log(math.log(0.294) / math.log(0.4)) / math.log(3)


def test_length_normalised_is_the_formula_on_hand_numbers():
    log_p = torch.tensor([math.log(0.4), math.log(0.294)])
    lengths = torch.tensor([1, 3])
    for alpha in (0.0, 0.5, 1.0):
        torch.testing.assert_close(
            length_normalised(log_p, lengths, alpha),
            torch.tensor([log_p[0], log_p[1] / 3**alpha]),
        )
    # nothing generated counts as length 1: no division by zero
    assert length_normalised(torch.tensor([0.0]), torch.tensor([0]), 1.0) == 0
    assert 0.26 < CROSSOVER < 0.27


@pytest.mark.parametrize("alpha", [0.0, 0.2, 0.3, 0.5, 1.0])
def test_the_length_penalty_ranks_short_and_long_as_the_formula_says(alpha):
    model = TableModel(TABLE)
    beams = beam_search(
        model,
        torch.tensor([[0]]),
        3,
        beam_size=9,
        eos_id=1,
        pad_id=0,
        length_penalty=alpha,
    )
    # every hypothesis of non-zero probability, ranked by the formula
    ranked = sorted(
        HAND.items(), key=lambda h: -math.log(h[1]) / len(h[0]) ** alpha
    )
    expected = [(h, math.log(p)) for h, p in ranked]
    assert_same_hypotheses(hypotheses(beams, 0, 1), expected)
    winner = SHORT if alpha < CROSSOVER else LONG
    assert expected[0][0] == winner
    assert beams.scores[0, 0].item() == pytest.approx(
        math.log(HAND[winner]) / len(winner) ** alpha, abs=1e-6
    )


def test_a_finished_hypothesis_keeps_its_score_and_is_padded():
    beams = beam_search(
        TableModel(TABLE),
        torch.tensor([[0]]),
        3,
        beam_size=2,
        eos_id=1,
        pad_id=0,
        length_penalty=0.0,
    )
    # [eos] ended at step 1; [2, 2, 2] grew for two more steps and lost
    assert beams.sequences[0].tolist() == [[0, 1, 0, 0], [0, 2, 2, 2]]
    assert beams.lengths[0].tolist() == [1, 3]
    torch.testing.assert_close(
        beams.log_probs[0], torch.tensor([0.4, 0.294]).log()
    )
    # two more steps change nothing about the finished one's score
    longer = beam_search(
        TableModel(TABLE),
        torch.tensor([[0]]),
        5,
        beam_size=2,
        eos_id=1,
        pad_id=0,
        length_penalty=0.0,
    )
    assert longer.best.tolist() == [[0, 1, 0, 0, 0, 0]]
    assert longer.log_probs[0, 0] == beams.log_probs[0, 0]


def test_every_hypothesis_scores_as_a_full_forward_pass_up_to_its_eos():
    model = make(seed=6)
    prompt = random_ids(2, 3, high=7, seed=7)
    eos = int(generate(model, prompt, 2, greedy=True)[0, -1])
    pad = (eos + 1) % 7
    beams = beam_search(model, prompt, 7, beam_size=4, eos_id=eos, pad_id=pad)
    assert (beams.lengths < 7).any()
    for row in range(2):
        for seq, log_p, n in zip(
            beams.sequences[row], beams.log_probs[row], beams.lengths[row]
        ):
            full = token_log_probs(
                model, prompt[row : row + 1], seq[None, 3:]
            )
            torch.testing.assert_close(log_p, full[0, :n].sum())
            assert seq[3 + n - 1] == eos or n == 7
            assert (seq[3 + n :] == pad).all()
            assert (seq[3 : 3 + n - 1] != eos).all()  # eos only at the end


# --- batches, a trap for greedy decoding, errors ----------------------------


@pytest.mark.parametrize("arch", ARCHS)
def test_a_batch_equals_its_rows_one_at_a_time(arch):
    model = make(arch, seed=8, pad_id=0)
    prompt, src = random_ids(3, 2, high=7, seed=9), random_ids(3, 5, high=7)
    src[1, 3:] = 0  # padding in one source row: the memory mask follows it
    settings = {"beam_size": 3, "eos_id": 4, "length_penalty": 0.6}
    extra = {"src": src} if arch == "encoder-decoder" else {}
    batch = beam_search(model, prompt, 6, **settings, **extra)
    for row in range(3):
        one = {"src": src[row : row + 1]} if extra else {}
        alone = beam_search(
            model, prompt[row : row + 1], 6, **settings, **one
        )
        assert torch.equal(batch.sequences[row], alone.sequences[0])
        torch.testing.assert_close(batch.scores[row], alone.scores[0])


def trap_model(steps=60):
    """A tiny GPT trained on exact next-token distributions after start
    token 0: token 1 (p 0.55) then any of 4 tokens (p 0.25 each), or token
    2 (p 0.45) then always 3. Greedy takes 1 (total p ≈ 0.14); the best
    sequence is 2, 3 (p ≈ 0.45)."""
    model = tiny_model(
        10, vocab_size=4, d_model=16, n_heads=2, n_layers=1, tie_weights=False
    )
    ids = torch.tensor([[0, 1], [0, 2]])
    first = torch.tensor([0.0, 0.55, 0.45, 0.0])
    target = torch.stack(
        [
            torch.stack([first, torch.full((4,), 0.25)]),
            torch.stack([first, torch.tensor([0.0, 0.0, 0.0, 1.0])]),
        ]
    )  # (2, 2, V): soft targets
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = F.cross_entropy(
            model(ids).logits.flatten(0, 1), target.flatten(0, 1)
        )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


def test_beam_search_finds_a_better_sequence_than_greedy_decoding():
    model = trap_model()
    start = torch.tensor([[0]])
    greedy = generate(model, start, 2, greedy=True)
    beams = beam_search(model, start, 2, beam_size=2)
    greedy_lp = token_log_probs(model, start, greedy[:, 1:]).sum().item()
    beam_lp = token_log_probs(model, start, beams.best[:, 1:]).sum().item()
    assert greedy[0, 1] == 1 and beams.best[0].tolist() == [0, 2, 3]
    assert beams.log_probs[0, 0].item() == pytest.approx(beam_lp, abs=1e-5)
    # near log 0.45 = -0.80 and log 0.1375 = -1.98
    assert beam_lp > -1.0 and greedy_lp < -1.7
    assert beam_lp > greedy_lp + 0.6


def test_restores_training_mode_and_refuses_bad_settings():
    model = make(dropout=0.1).train()
    prompt = random_ids(1, 2, high=7)
    beam_search(model, prompt, 2, beam_size=2)
    assert model.training
    for bad, message in [
        ({"beam_size": 0}, "beam_size must be an integer >= 1"),
        ({"beam_size": 2.0}, "beam_size must be an integer"),
        ({"max_new_tokens": -1}, "max_new_tokens must be an integer >= 0"),
        ({"eos_id": 7}, r"eos_id must be .* < 7"),
        ({"eos_id": -1}, "eos_id must be an integer >= 0"),
        ({"pad_id": 7}, r"pad_id must be .* < 7"),
        ({"length_penalty": math.nan}, "length_penalty must be a finite"),
    ]:
        settings = {"beam_size": 2, "max_new_tokens": 3} | bad
        with pytest.raises(ValueError, match=message):
            beam_search(model, prompt, **settings)
    with pytest.raises(ValueError, match="pass src"):
        beam_search(make("encoder-decoder"), prompt, 3, beam_size=2)
    with pytest.raises(ValueError, match="DecoderOnly or EncoderDecoder"):
        beam_search(make("encoder"), prompt, 3, beam_size=2)
    with pytest.raises(ValueError, match="prompt"):
        beam_search(model, prompt[0], 3, beam_size=2)
    # nothing to generate: the prompt itself, at score 0
    empty = beam_search(model, prompt, 0, beam_size=2)
    assert torch.equal(empty.best, prompt) and empty.scores[0, 0] == 0
