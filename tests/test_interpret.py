"""Head scores, ablations and rollout on hand-built attention patterns and tiny models."""

import hashlib
from types import SimpleNamespace

import pytest
import torch
import yaml
from _scripts import ROOT
from conftest import random_ids, seeded, tiny_model

from annotated.analysis.ablation import (
    ablate_head,
    ablation_table,
    attention_layers,
    head_means,
    loss_change,
)
from annotated.analysis.head_scores import (
    character_classes,
    delimiter_mask,
    head_scores,
    induction_scores,
    label_heads,
    window_scores,
)
from annotated.analysis.rollout import attention_rollout
from annotated.models.summary import count_parameters
from annotated.models.transformer import load_model
from annotated.tasks.text import TextDataset

pytestmark = pytest.mark.usefixtures("one_thread")


def previous_token_pattern(t: int) -> torch.Tensor:
    """A[t, t-1] = 1 for t ≥ 1; the first query can only look at itself."""
    a = torch.zeros(t, t)
    a[0, 0] = 1.0
    a[torch.arange(1, t), torch.arange(t - 1)] = 1.0
    return a


def scores_of(
    pattern: torch.Tensor, ids: torch.Tensor, delimiters: torch.Tensor
) -> dict[str, float]:
    # (B=1, L=1, H=1, T, T)
    sums = window_scores(pattern[None, None, None], ids[None], delimiters)
    return {
        k: float(total[0, 0]) / count for k, (total, count) in sums.items()
    }


def test_previous_token_pattern_scores_one_and_its_other_scores_by_hand():
    ids = torch.tensor([0, 1, 2, 1])  # "abcb"
    s = scores_of(
        previous_token_pattern(4), ids, torch.tensor([False, False, True])
    )
    assert s["previous_token"] == 1.0
    # only query 1's previous token is position 0
    assert s["first_position"] == pytest.approx(1 / 3)
    assert s["mean_distance"] == pytest.approx(3 / 4)  # distances 0, 1, 1, 1
    # query 3 reads position 2, the delimiter "c"
    assert s["delimiter"] == pytest.approx(1 / 3)
    # query 3 ("b") reads "c", not the earlier "b" at 1
    assert s["same_character"] == 0.0


def test_same_character_and_sink_patterns():
    # "abab": queries 2 and 3 have an earlier copy, two back
    ids = torch.tensor([0, 1, 0, 1])
    same = torch.zeros(4, 4)
    same[0, 0] = same[1, 1] = 1.0
    same[2, 0] = same[3, 1] = 1.0
    s = scores_of(same, ids, torch.tensor([False, False]))
    # query 1 reads itself, 2 and 3 read t-2
    assert s["same_character"] == 1.0 and s["previous_token"] == 0.0
    sink = torch.zeros(4, 4)
    sink[:, 0] = 1.0
    s = scores_of(sink, ids, torch.tensor([False, False]))
    assert s["first_position"] == 1.0 and s["mean_distance"] == pytest.approx(
        (0 + 1 + 2 + 3) / 4
    )


class InductionOracle(torch.nn.Module):
    """A "model" whose one head attends exactly as an induction head: A[t, t-n+1] in the repeat."""

    def __init__(self, n: int, vocab: int):
        super().__init__()
        self.n, self.vocab = n, vocab

    def forward(self, idx, need_weights=False):
        b, t = idx.shape
        a = torch.eye(t)
        for q in range(self.n, t):
            a[q] = 0.0
            a[q, q - self.n + 1] = 1.0
        logits = torch.zeros(b, t, self.vocab)
        return SimpleNamespace(
            logits=logits, attentions=[a.expand(b, 1, t, t)]
        )


def test_induction_score_of_an_exact_induction_pattern_is_one():
    scores, halves = induction_scores(
        InductionOracle(5, 7),
        torch.arange(7),
        n=5,
        windows=3,
        generator=seeded(),
    )
    assert scores.shape == (1, 1) and float(scores) == pytest.approx(1.0)
    # uniform logits
    assert halves.tolist() == pytest.approx(
        [torch.log(torch.tensor(7.0)).item()] * 2
    )


def test_previous_token_pattern_is_no_induction_head():
    class Previous(InductionOracle):
        def forward(self, idx, need_weights=False):
            out = super().forward(idx)
            out.attentions = [
                previous_token_pattern(idx.shape[1]).expand(
                    idx.shape[0], 1, -1, -1
                )
            ]
            return out

    scores, _ = induction_scores(
        Previous(5, 7), torch.arange(7), n=5, windows=2, generator=seeded()
    )
    assert float(scores) == 0.0


def test_label_heads_uses_the_largest_role_above_the_threshold():
    zeros = torch.zeros(1, 3)
    scores = {
        name: zeros.clone()
        for name in (
            "previous_token",
            "same_character",
            "delimiter",
            "first_position",
        )
    }
    scores["induction"] = zeros.clone()
    scores["previous_token"][0, 0] = 0.9
    scores["induction"][0, 1], scores["delimiter"][0, 1] = 0.5, 0.45
    scores["first_position"][0, 2] = 0.3
    assert label_heads(scores, threshold=0.4) == [
        ["previous_token", "induction", "mixed"]
    ]


def test_character_classes_and_delimiters():
    chars = ["\n", " ", "!", "a", "Z", "3"]
    classes = character_classes(chars)
    assert classes["letter"].tolist() == [
        False,
        False,
        False,
        True,
        True,
        False,
    ]
    assert classes["punctuation"].tolist() == [
        False,
        False,
        True,
        False,
        False,
        True,
    ]
    assert delimiter_mask(chars).tolist() == [
        True,
        True,
        True,
        False,
        False,
        False,
    ]


def test_rollout_of_identity_attention_is_identity():
    eye = torch.eye(5).expand(2, 3, 5, 5)  # (B, H, T, T)
    rolled = attention_rollout([eye, eye, eye])
    assert rolled.shape == (3, 2, 5, 5)
    torch.testing.assert_close(rolled[-1], torch.eye(5).expand(2, 5, 5))


def test_rollout_equals_the_papers_formula_written_out():
    gen = seeded(1)
    # (H, T, T)
    layers = [
        torch.softmax(torch.randn(2, 4, 4, generator=gen), -1)
        for _ in range(2)
    ]
    hat = []
    for a in layers:
        m = 0.5 * a.mean(0) + 0.5 * torch.eye(4)
        hat.append(m / m.sum(-1, keepdim=True))
    rolled = attention_rollout(layers)
    torch.testing.assert_close(rolled[0], hat[0])
    torch.testing.assert_close(rolled[1], hat[1] @ hat[0])
    torch.testing.assert_close(rolled[1].sum(-1), torch.ones(4))
    with pytest.raises(ValueError, match="residual"):
        attention_rollout(layers, residual=1.5)


def test_zero_ablation_equals_zeroing_that_heads_columns_of_w_o():
    model = tiny_model(vocab_size=11).eval()
    x = random_ids(3, 9, high=11)
    with ablate_head(model, 1, 2, mode="zero"):
        ablated = model(x).logits
    # the hook is gone again
    assert all(a.head_hook is None for a in attention_layers(model))
    reference = tiny_model(
        vocab_size=11
    ).eval()  # the same weights, but W_o blind to head 2 of layer 1
    out_proj = attention_layers(reference)[1].out_proj
    d = out_proj.in_features // 4
    with torch.no_grad():
        out_proj.weight[:, 2 * d : 3 * d] = 0.0
    torch.testing.assert_close(ablated, reference(x).logits)
    assert not torch.allclose(ablated, model(x).logits)


def test_ablation_changes_the_output_only_through_that_head():
    model = tiny_model(vocab_size=11).eval()
    x = random_ids(2, 8, high=11)
    base = model(x, need_weights=True)
    with ablate_head(model, 1, 0, mode="zero"):
        ablated = model(x, need_weights=True)
    # layer 0 runs before the ablated head
    torch.testing.assert_close(ablated.attentions[0], base.attentions[0])
    # and layer 1's weights do not change
    torch.testing.assert_close(ablated.attentions[1], base.attentions[1])
    assert not torch.allclose(ablated.logits, base.logits)


def test_mean_ablation_with_the_heads_own_output_changes_nothing():
    model = tiny_model(vocab_size=11).eval()
    x = random_ids(1, 8, high=11)
    means = head_means(model, x)  # over one window: the head's own output
    assert means.shape == (2, 4, 8, 8)
    with ablate_head(model, 0, 3, mode="mean", mean=means[0, 3]):
        torch.testing.assert_close(model(x).logits, model(x).logits)
        ablated = model(x).logits
    torch.testing.assert_close(ablated, model(x).logits)


def test_ablation_refuses_what_does_not_exist():
    model = tiny_model(vocab_size=11)
    with (
        pytest.raises(ValueError, match="no head 4 in layer 0"),
        ablate_head(model, 0, 4),
    ):
        pass
    with (
        pytest.raises(ValueError, match="mode must be"),
        ablate_head(model, 0, 0, mode="noise"),
    ):
        pass
    with (
        pytest.raises(ValueError, match="head_means"),
        ablate_head(model, 0, 0, mode="mean"),
    ):
        pass


def test_loss_change_by_hand():
    base = torch.tensor([[1.0, 1.0], [2.0, 2.0]])
    ablated = torch.tensor([[1.5, 1.0], [2.5, 3.0]])
    mean, half = loss_change(
        base, ablated, torch.ones(2, 2, dtype=torch.bool)
    )
    assert mean == pytest.approx(0.5)  # differences 0.5, 0, 0.5, 1
    assert half == pytest.approx(
        1.96 * torch.tensor([0.25, 0.75]).std().item() / 2**0.5
    )
    only_first = torch.tensor([[True, False], [True, False]])
    assert loss_change(base, ablated, only_first)[0] == pytest.approx(0.5)


def test_head_scores_and_ablation_table_on_a_tiny_text_model():
    text = (
        "to be, or not to be: that is the question.\nwhether 'tis nobler in the mind to suffer\n"
        * 8
    )
    task = TextDataset(text)
    model = tiny_model(vocab_size=task.vocab_size)
    result = head_scores(
        model,
        task,
        windows=20,
        length=16,
        induction_n=6,
        batch_size=8,
        induction_vocab="tobenrs",
    )
    scores = result["scores"]
    for name in (
        "previous_token",
        "same_character",
        "delimiter",
        "first_position",
        "induction",
    ):
        assert (
            scores[name].shape == (2, 4)
            and ((scores[name] >= 0) & (scores[name] <= 1 + 1e-6)).all()
        ), name
    assert (
        (scores["mean_distance"] >= 0) & (scores["mean_distance"] <= 15)
    ).all()
    batch = task.sample(6, 16, seeded(), split="val")
    classes = character_classes(
        [task.decode([i]) for i in range(task.vocab_size)]
    )
    rows = ablation_table(model, batch.inputs, batch.targets, classes)
    assert rows[0]["mode"] == "none" and len(rows) == 1 + 2 * 4 * 2
    assert {"Δ all", "± all", "Δ after space", "Δ after letter"} <= set(
        rows[1]
    )


def test_stored_model_is_the_one_its_provenance_describes():
    data = ROOT / "annotated" / "data"
    provenance = yaml.safe_load(
        (data / "inside_model_provenance.yaml").read_text()
    )
    path = data / provenance["checkpoint"]["file"]
    assert (
        hashlib.sha256(path.read_bytes()).hexdigest()
        == provenance["checkpoint"]["sha256"]
    )
    assert path.stat().st_size < 2_000_000, (
        "keep the stored checkpoint small (float16)"
    )
    model = load_model(path)
    assert count_parameters(model) == provenance["parameters"]
    assert next(model.parameters()).dtype == torch.float32
