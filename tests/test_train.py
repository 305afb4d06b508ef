"""Training loop: schedule, metrics against hand-computed references, learning, divergence, resume."""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
import torch.nn as nn
from conftest import tiny_model

from annotated.models.transformer import ModelOutput
from annotated.tasks import get_task
from annotated.training.config import TrainConfig
from annotated.training.evaluation import (
    EVAL_SEED_OFFSET,
    check_lengths,
    evaluate,
    length_range,
)
from annotated.training.history import History, layer_groups
from annotated.training.loop import (
    TrainingDiverged,
    resolve_device,
    stop_rule,
    train,
)
from annotated.training.optim import (
    decay_groups,
    learning_rate,
    make_optimizer,
)

SORT = get_task("sort")
pytestmark = pytest.mark.usefixtures("one_thread")


def small_model(positional="rope", seed=0, **kwargs):
    return tiny_model(
        seed,
        vocab_size=SORT.vocab_size,
        n_heads=2,
        positional=positional,
        **kwargs,
    )


# --- schedule and config ---------------------------------------------------------------------


def test_learning_rate_warmup_then_cosine():
    config = TrainConfig(steps=110, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert [learning_rate(s, config) for s in (0, 4, 9)] == pytest.approx(
        [0.1, 0.5, 1.0]
    )
    assert learning_rate(10, config) == pytest.approx(
        1.0
    )  # cosine starts at the peak
    assert learning_rate(60, config) == pytest.approx(
        0.55
    )  # half-way: (1 + 0.1) / 2
    assert learning_rate(110, config) == pytest.approx(0.1)
    lrs = [learning_rate(s, config) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))  # monotone decay


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"steps": -5}, "steps"),
        ({"steps": 0}, "steps"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": 0}, "lr"),
        ({"warmup_steps": 50, "steps": 10}, "warmup_steps"),
        ({"grad_clip": -1.0}, "grad_clip"),
        ({"device": "gpu"}, "device"),
        ({"min_lr_ratio": 2}, "min_lr_ratio"),
    ],
)
def test_bad_train_config_is_refused(kwargs, words):
    with pytest.raises(ValueError, match=words):
        TrainConfig(**{"warmup_steps": 0, **kwargs})


def test_train_config_round_trip_and_unknown_field():
    config = TrainConfig(steps=7, warmup_steps=2, betas=[0.8, 0.9])
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(
        ValueError, match="unknown TrainConfig fields \\['stpes'\\]"
    ):
        TrainConfig.from_dict({"stpes": 3})


def test_public_names_are_reexported_from_their_modules():
    from annotated.training import config as train_config
    from annotated.training import evaluation, optim
    from annotated.training import history as metrics

    assert (TrainConfig, History, evaluate) == (
        train_config.TrainConfig,
        metrics.History,
        evaluation.evaluate,
    )
    assert (check_lengths, length_range, learning_rate) == (evaluation.check_lengths, evaluation.length_range,
                                                             optim.learning_rate)  # fmt: skip
    assert resolve_device("cpu") == torch.device("cpu")


# --- weight decay by module type (minGPT's configure_optimizers) -------------------------------------


def decay_names(model):
    decay, no_decay = decay_groups(model)
    return set(decay), set(no_decay)


@pytest.mark.parametrize(
    "positional", ["learned", "t5", "rope", "randomized"]
)
@pytest.mark.parametrize("tie_weights", [True, False])
def test_only_linear_weights_decay(positional, tie_weights):
    model = small_model(positional, tie_weights=tie_weights)
    decay, no_decay = decay_names(model)
    modules = dict(model.named_modules())
    for name in decay:
        owner, _, leaf = name.rpartition(".")
        assert leaf == "weight" and isinstance(modules[owner], nn.Linear), (
            name
        )
    linear_weights = {
        f"{n}.weight" for n, m in modules.items() if isinstance(m, nn.Linear)
    }
    assert decay == linear_weights - (
        {"lm_head.weight"} if tie_weights else set()
    )
    assert all(
        name.endswith("bias")
        or "norm" in name
        or "emb" in name
        or "positional" in name
        for name in no_decay
    )
    assert "tok_emb.weight" in no_decay
    assert (
        "lm_head.weight" in decay
    ) is not tie_weights  # a tied head is the embedding: not decayed
    tables = {
        "learned": "decoder.positional.table.weight",
        "t5": "decoder.positional.bucket_bias.weight",
    }
    if positional in tables:
        assert tables[positional] in no_decay


def test_every_parameter_in_exactly_one_group_and_counts_add_up():
    model = small_model("t5", bias=True)
    decay, no_decay = decay_groups(model)
    assert not set(decay) & set(no_decay)
    assert set(decay) | set(no_decay) == {
        name for name, _ in model.named_parameters()
    }
    assert sum(
        p.numel() for p in [*decay.values(), *no_decay.values()]
    ) == sum(p.numel() for p in model.parameters())
    assert {n for n in no_decay if n.endswith("bias")} and {
        n for n in no_decay if ".norm" in n
    }  # biases, LayerNorms
    optimizer = make_optimizer(
        model, TrainConfig(weight_decay=0.1, warmup_steps=0)
    )
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.1, 0.0]
    grouped = [list(g["params"]) for g in optimizer.param_groups]
    assert [len(g) for g in grouped] == [len(decay), len(no_decay)]
    assert len({id(p) for g in grouped for p in g}) == len(
        list(model.parameters())
    )


class TablesHere(nn.Module):
    """A position table as a bare ``nn.Parameter`` on a positional encoding, next to a Linear."""

    def __init__(self):
        super().__init__()
        from annotated.positional import PositionalEncoding

        self.positional = PositionalEncoding()
        self.positional.table = nn.Parameter(torch.zeros(8, 4))
        self.proj = nn.Linear(4, 4)
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)


def test_bare_position_table_is_not_decayed_and_frozen_parameters_are_left_out():
    decay, no_decay = decay_names(TablesHere())
    assert decay == {"proj.weight"} and no_decay == {
        "positional.table",
        "proj.bias",
    }


def test_a_parameter_without_a_rule_is_refused_by_name():
    model = TablesHere()
    model.scale = nn.Parameter(
        torch.ones(4)
    )  # a bare parameter on a plain module: decay it or not?
    with pytest.raises(
        ValueError,
        match="no weight-decay rule for parameter 'scale' of a TablesHere",
    ):
        make_optimizer(model, TrainConfig(warmup_steps=0))


def test_length_range():
    assert length_range(8) == (8, 8)
    assert length_range([3, 8]) == (3, 8)
    for bad in (0, [8, 3], "8", [1, 2, 3]):
        with pytest.raises(ValueError, match="train_length"):
            length_range(bad)


# --- metrics against independent references ----------------------------------------------------


class SortOracle(nn.Module):
    """Knows the sort answer: logit ``margin`` on the right next token, except on the last answer
    token of sequences whose first prompt item is 0; attention is uniform over the visible keys."""

    def __init__(self, n: int, margin: float = 5.0):
        super().__init__()
        self.n, self.margin = n, margin
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, idx, *, need_weights=False):
        b, t = idx.shape
        prompt = idx[:, : self.n]
        s = torch.cat(
            [prompt, torch.full((b, 1), SORT.sep_id), prompt.sort(1).values],
            1,
        )  # (B, 2n + 1)
        right = s[:, 1:].clone()  # (B, T)
        wrong = prompt[:, 0] == 0
        right[wrong, -1] = (right[wrong, -1] + 1) % 10
        logits = (
            torch.zeros(b, t, SORT.vocab_size).scatter(
                2, right[..., None], self.margin
            )
            + self.dummy
        )
        causal = torch.tril(torch.ones(t, t))
        weights = (
            (causal / causal.sum(1, keepdim=True)).expand(b, 3, t, t)
            if need_weights
            else None
        )
        return ModelOutput(
            logits, [weights, weights] if need_weights else None
        )


def test_evaluate_matches_hand_computed_metrics():
    n, config = (
        5,
        TrainConfig(
            steps=1,
            warmup_steps=0,
            eval_batches=2,
            eval_batch_size=64,
            seed=3,
        ),
    )
    row = evaluate(SortOracle(n), SORT, n, config, torch.device("cpu"))
    generator = torch.Generator().manual_seed(
        3 * EVAL_SEED_OFFSET + n
    )  # the documented held-out stream
    prompts = torch.cat(
        [SORT.draw(64, n, generator) for _ in range(2)]
    )  # (128, n)
    n_wrong = int((prompts[:, 0] == 0).sum())
    assert 0 < n_wrong < 128
    assert row["exact_match"] == pytest.approx(1 - n_wrong / 128)
    assert row["token_accuracy"] == pytest.approx(
        1 - n_wrong / (128 * n)
    )  # the n answer tokens are scored
    v = SORT.vocab_size
    right_loss, wrong_loss = (
        math.log(math.exp(5) + v - 1) - 5,
        math.log(math.exp(5) + v - 1),
    )
    expected = ((128 * n - n_wrong) * right_loss + n_wrong * wrong_loss) / (
        128 * n
    )
    assert row["loss"] == pytest.approx(expected, rel=1e-5)
    assert row["perplexity"] == pytest.approx(math.exp(expected), rel=1e-5)
    # uniform causal attention: query i sees i + 1 keys → entropy log(i + 1); scored queries are i = n … 2n − 1
    uniform = sum(math.log(i + 1) for i in range(n, 2 * n)) / n
    assert {k for k in row if k.startswith("entropy/")} == {
        f"entropy/L{i}H{h}" for i in range(2) for h in range(3)
    }
    assert row["entropy/L1H2"] == pytest.approx(uniform, rel=1e-5)


def test_grad_norms_per_layer_add_up_to_the_total():
    model = small_model()
    history = train(
        model,
        SORT,
        train_length=4,
        config=TrainConfig(steps=3, warmup_steps=0, batch_size=8),
    )
    names = {
        k.split("/", 1)[1]
        for k in history.steps[0]
        if k.startswith("grad_norm/")
    }
    assert names == set(layer_groups(model))
    assert {"decoder.blocks.0", "decoder.blocks.1", "tok_emb"} <= names
    for row in history.steps:
        parts = [row[f"grad_norm/{k}"] for k in names]
        assert math.sqrt(sum(p * p for p in parts)) == pytest.approx(
            row["grad_norm"], rel=1e-5
        )
        assert row["tokens_per_s"] > 0 and row["length"] == 4


def test_history_records_and_helpers():
    model = small_model()
    config = TrainConfig(
        steps=6,
        warmup_steps=2,
        batch_size=8,
        eval_every=3,
        log_every=2,
        eval_batches=1,
    )
    seen = []
    history = train(model, SORT, train_length=[2, 4], eval_lengths=[6], config=config,
                    callback=lambda kind, row: seen.append((kind, row["step"])))  # fmt: skip
    assert [r["step"] for r in history.steps] == [2, 4, 6]
    assert {r["length"] for r in history.steps} <= {2, 3, 4}
    assert [(r["step"], r["length"]) for r in history.evals] == [
        (3, 4),
        (3, 6),
        (6, 4),
        (6, 6),
    ]
    assert history.lengths == [4, 6] and set(history.final_evals()) == {4, 6}
    assert history.series("exact_match", length=6)[0] == [3, 6]
    assert history.series("lr") == (
        [2, 4, 6],
        [learning_rate(s - 1, config) for s in (2, 4, 6)],
    )
    assert seen[:3] == [("step", 2), ("eval", 3), ("eval", 3)]
    assert all(r["peak_memory_bytes"] > 0 for r in history.evals)
    assert (
        history.meta["status"] == "completed"
        and history.meta["steps_done"] == 6
    )
    assert History.from_dict(history.to_dict()) == history


def test_global_rng_is_left_alone_and_runs_repeat():
    runs = [train(small_model(dropout=0.1), SORT, train_length=4, config=TrainConfig(steps=4, warmup_steps=0, batch_size=8))
            for _ in range(2)]  # fmt: skip
    assert [r["loss"] for r in runs[0].steps] == [
        r["loss"] for r in runs[1].steps
    ]
    model = small_model(dropout=0.1)
    before = torch.get_rng_state()
    train(
        model,
        SORT,
        train_length=4,
        config=TrainConfig(steps=2, warmup_steps=0, batch_size=4),
    )
    assert torch.equal(
        before, torch.get_rng_state()
    )  # dropout drew from a forked RNG


def test_stop_rule_learns_after_patience_and_stops_from_min_steps():
    config = TrainConfig(steps=100, warmup_steps=0, eval_every=10, stop_accuracy=0.9, stop_patience=2,
                         min_steps=50)  # fmt: skip
    history = History()

    def judge(step, *exact_matches):
        rows = {n: {"exact_match": e} for n, e in enumerate(exact_matches)}
        return stop_rule(history, config, step, rows)

    assert not judge(10, 1.0, 0.7)  # mean 0.85: below the target
    assert not judge(20, 0.9, 0.9) and "learned" not in history.meta  # once
    assert not judge(
        30, 1.0, 0.95
    )  # twice in a row: learned, before min_steps
    assert history.meta["learned"] and history.meta["steps_to_learn"] == 30
    assert not judge(40, 0.0, 0.0) and history.meta["stop_streak"] == 0
    assert judge(50, 0.0, 0.0)  # learned stays learned; min_steps reached
    assert history.meta["steps_to_learn"] == 30


# --- learning -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_sort_length_8_reaches_99_percent_exact_match():
    """A fixed step budget (not a time): 250 AdamW steps of a 2-layer, d=64 model with a learned table."""
    model = tiny_model(
        0,
        vocab_size=SORT.vocab_size,
        d_model=64,
        n_layers=2,
        n_heads=4,
        max_len=16,
        positional="learned",
    )
    config = TrainConfig(steps=250, batch_size=128, lr=3e-3, warmup_steps=20, weight_decay=0.0,
                         eval_batches=4, eval_batch_size=256, device="cpu")  # fmt: skip
    history = train(model, SORT, train_length=8, config=config)
    final = history.final_evals()[8]
    assert final["exact_match"] >= 0.99, final
    assert history.steps[-1]["loss"] < history.steps[0]["loss"] / 10


# --- failure and resume ----------------------------------------------------------------------------


class PoisonAt(nn.Module):
    """Wraps a model; its ``k``-th training forward returns NaN logits."""

    def __init__(self, model, k):
        super().__init__()
        self.model, self.k, self.calls = model, k, 0

    def forward(self, idx, **kwargs):
        out = self.model(idx, **kwargs)
        if self.training:
            self.calls += 1
            if self.calls == self.k:
                return ModelOutput(out.logits * float("nan"), out.attentions)
        return out


def test_nan_loss_stops_with_last_good_weights():
    model = PoisonAt(small_model(), k=5)
    after_step = {}

    def callback(kind, row):
        after_step.setdefault(row["step"], copy.deepcopy(model.state_dict()))

    with pytest.raises(
        TrainingDiverged,
        match="diverged at step 5: the loss is nan.*lower lr",
    ) as caught:
        train(
            model,
            SORT,
            train_length=4,
            config=TrainConfig(
                steps=10, warmup_steps=0, batch_size=8, snapshot_every=3
            ),
            callback=callback,
        )
    assert caught.value.step == 5
    assert [r["step"] for r in caught.value.history.steps] == [1, 2, 3, 4]
    assert caught.value.history.meta["status"] == "diverged"
    # the weights after step 4 gave the NaN; the last finite loss came from the weights after step 3
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, after_step[3][name], rtol=0, atol=0)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_resume_from_a_checkpoint_ends_like_an_uninterrupted_run():
    config = TrainConfig(
        steps=12,
        warmup_steps=3,
        batch_size=8,
        eval_every=6,
        checkpoint_every=4,
        eval_batches=1,
    )
    whole = small_model(
        dropout=0.1
    )  # dropout: the resumed run must also continue the dropout RNG
    full = train(whole, SORT, train_length=[2, 5], config=config)

    saved = []

    def interrupt(kind, row):
        if row["step"] == 10:
            raise KeyboardInterrupt

    broken = small_model(dropout=0.1)
    with pytest.raises(KeyboardInterrupt):
        train(broken, SORT, train_length=[2, 5], config=config, callback=interrupt,
              checkpoint=lambda state: saved.append(copy.deepcopy(state)))  # fmt: skip
    # checkpoints at 4 and 8, then on the interrupt the last snapshot (step 8) once more, marked
    assert [s["step"] for s in saved] == [4, 8, 8]
    assert saved[-1]["status"] == "interrupted" and "status" not in saved[1]
    fresh = small_model(
        dropout=0.1, seed=123
    )  # different init: everything must come from the checkpoint
    resumed = train(
        fresh,
        SORT,
        train_length=[2, 5],
        config=config,
        resume_state=saved[-1],
    )
    for name, value in whole.state_dict().items():
        torch.testing.assert_close(
            fresh.state_dict()[name], value, rtol=1e-6, atol=1e-7
        )
    assert [r["loss"] for r in resumed.steps] == pytest.approx(
        [r["loss"] for r in full.steps], rel=1e-6
    )
    assert resumed.final_evals()[5]["loss"] == pytest.approx(
        full.final_evals()[5]["loss"], rel=1e-6
    )


def test_a_slice_is_the_start_of_the_full_run_and_resumes_to_its_end():
    """stop_after ends training early on the full run's schedule: its steps
    are the full run's first steps, and resuming its last state with
    stop_after unset ends where the uninterrupted run ends."""
    config = TrainConfig(
        steps=12, warmup_steps=3, batch_size=8, eval_every=6, eval_batches=1
    )
    whole = small_model(dropout=0.1)
    full = train(whole, SORT, train_length=[2, 5], config=config)
    saved = []
    cut = small_model(dropout=0.1)
    part = train(
        cut,
        SORT,
        train_length=[2, 5],
        config=dataclasses.replace(config, stop_after=7),
        checkpoint=saved.append,
    )
    assert [r["step"] for r in part.steps] == list(range(1, 8))
    assert [r["lr"] for r in part.steps] == [r["lr"] for r in full.steps[:7]]
    assert [r["loss"] for r in part.steps] == pytest.approx(
        [r["loss"] for r in full.steps[:7]], rel=1e-6
    )
    assert saved[-1]["step"] == 7 and set(part.final_evals()) == {5}
    resumed = train(
        small_model(dropout=0.1, seed=123),
        SORT,
        train_length=[2, 5],
        config=config,
        resume_state=saved[-1],
    )
    assert [r["loss"] for r in resumed.steps] == pytest.approx(
        [r["loss"] for r in full.steps], rel=1e-6
    )


def test_stop_after_past_the_last_step_is_refused():
    with pytest.raises(ValueError, match="stop_after=13 exceeds steps=12"):
        TrainConfig(steps=12, warmup_steps=3, stop_after=13)


def test_learned_table_too_short_is_refused_before_training():
    model = small_model(
        positional="learned"
    )  # max_len=32; sort length 20 needs 40 positions
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(
        ValueError, match="length 20 needs 40 positions.*max_len=32"
    ):
        train(
            model,
            SORT,
            train_length=8,
            eval_lengths=[20],
            config=TrainConfig(steps=2, warmup_steps=0),
        )
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name])
