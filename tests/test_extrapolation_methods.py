"""Methods that make extrapolation work: their task formats, position ids and encodings.

Each test checks a defining property against numbers written by hand or an independent formula:
Abacus ids are digit places, coupled ids are equal for equal significance, the coupled bias is
``b[clip(p_i - p_j, -R, R), h]``, Abacus shifts only in training, and the addition task trains.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import randn, seeded, tiny_model

from annotated.attention.multihead import MultiHeadAttention
from annotated.positional import (
    AbacusEncoding,
    CoupledRelativeBias,
    FireBias,
    make_positional,
)
from annotated.tasks import (
    CopyEOSTask,
    ReversedAdditionTask,
    digit_places,
    get_task,
)
from annotated.training.config import TrainConfig
from annotated.training.loop import train
from annotated.training.optim import make_optimizer

pytestmark = pytest.mark.usefixtures("one_thread")


def ids_of(task, problem: str) -> list[int]:
    """The position ids of the input tokens of one problem, and those tokens."""
    batch = task.batch_from(task.encode(problem))
    return batch.positions[0].tolist(), task.decode(batch.inputs[0])


# --- task formats, by hand ----------------------------------------------------------------------


def test_reversed_addition_by_hand():
    plain = ReversedAdditionTask(
        position_ids="none"
    )  # 472 + 351 = 823, least significant digit first
    batch = plain.batch_from(plain.encode("2 7 4 + 1 5 3"))
    assert plain.decode(batch.inputs[0]) == "2 7 4 + 1 5 3 = 3 2 8 0"
    assert (
        plain.decode(batch.targets[0][batch.target_mask[0]]) == "3 2 8 0 EOS"
    )
    assert batch.positions is None
    marked = ReversedAdditionTask(
        end_marker=True
    )  # 999 + 1 = 1000: the carry runs into the padded place
    batch = marked.batch_from(marked.encode("9 9 9 0 $ + 1 0 0 0 $"))
    assert (
        marked.decode(batch.targets[0][batch.target_mask[0]]) == "0 0 0 1 EOS"
    )
    assert marked.seq_len(3) == batch.inputs.shape[1] == 16


def test_abacus_ids_are_digit_places_by_hand():
    positions, seq = ids_of(
        ReversedAdditionTask(position_ids="abacus"), "2 7 4 + 1 5 3"
    )
    assert (
        seq == "2 7 4 + 1 5 3 = 3 2 8 0"
    )  # inputs: the sequence without its last token (EOS)
    assert positions == [1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 4]
    positions, _ = ids_of(
        ReversedAdditionTask(end_marker=True, position_ids="abacus"),
        "2 7 4 0 $ + 1 5 3 0 $",
    )
    assert positions == [1, 2, 3, 4, 0, 0, 1, 2, 3, 4, 0, 0, 1, 2, 3, 4]
    is_digit = (
        torch.arange(12) < 10
    )  # any token stream: runs of digits counted from 1
    assert digit_places(
        torch.tensor([[1, 2, 10, 3, 4, 5], [11, 7, 11, 11, 0, 0]]), is_digit
    ).tolist() == [
        [1, 2, 0, 1, 2, 3],
        [0, 1, 0, 0, 1, 2],
    ]


def test_coupled_ids_by_hand():
    positions, _ = ids_of(
        ReversedAdditionTask(position_ids="coupled"), "2 7 4 + 1 5 3"
    )
    assert positions == [
        1,
        2,
        3,
        0,
        1,
        2,
        3,
        0,
        1,
        2,
        3,
        4,
    ]  # EOS (id 5) is the last token: not an input
    positions, seq = ids_of(
        ReversedAdditionTask(end_marker=True), "2 7 4 0 $ + 1 5 3 0 $"
    )
    assert seq == "2 7 4 0 $ + 1 5 3 0 $ = 3 2 8 0"
    assert positions == [1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4]


@pytest.mark.parametrize("end_marker", [False, True])
@pytest.mark.parametrize("length", [1, 4, 23])
def test_coupled_ids_equal_for_digits_of_the_same_significance(
    end_marker, length
):
    task = ReversedAdditionTask(end_marker=end_marker, position_ids="coupled")
    batch = task.sample(3, length, 0)
    ids = torch.cat(
        [batch.positions, batch.positions[:, -1:] + 1], dim=1
    )  # EOS: one above the carry digit
    assert batch.positions.shape == batch.inputs.shape
    width = task.operand_len(length)
    a, b, c = (
        ids[:, :length],
        ids[:, width + 1 : width + 1 + length],
        ids[:, 2 * width + 2 : 2 * width + 3 + length],
    )
    assert torch.equal(a, b) and torch.equal(
        a, c[:, :length]
    )  # significance s: one id in a, b and c
    assert torch.equal(
        a[0], torch.arange(1, length + 1)
    )  # and the ids count the significance
    assert (
        c[:, length] == length + 1
    ).all()  # the carry-out digit: significance n
    sep, plus = 2 * width + 1, width
    assert (
        ids[:, [sep, plus]] == 0
    ).all()  # '=' and '+' sit one place below the least significant digit
    if end_marker:  # the padded 0 shares the carry digit's id, $ shares EOS's
        assert (ids[:, [length, width + 1 + length]] == length + 1).all()
        assert (
            ids[:, [length + 1, width + 1 + length + 1]] == length + 2
        ).all()


@pytest.mark.parametrize("end_marker", [False, True])
def test_reversed_addition_matches_python_integers(end_marker):
    task = ReversedAdditionTask(end_marker=end_marker)
    for length in (1, 7, 30):
        prompt = task.draw(16, length, seeded(length))
        answer = task.solve(prompt)
        a, b = task.operands(prompt)
        for row in range(16):
            number = [
                int("".join(map(str, x[row].flip(0).tolist())))
                for x in (a, b)
            ]
            digits = "".join(map(str, answer[row, :-1].flip(0).tolist()))
            assert int(digits) == sum(number) and len(digits) == length + 1
            assert task.token_names[answer[row, -1]] == "EOS"


def test_counting_copy_and_copy_with_eos_by_hand():
    counting = get_task("counting_copy")
    batch = counting(64, 5, 0)
    prompts = batch.inputs[:, :5]
    assert (prompts == prompts[:, :1]).all() and len(
        prompts[:, 0].unique()
    ) > 1  # one symbol per sequence
    assert (
        counting.decode(counting.solve(counting.encode("3 3 3")[None])[0])
        == "3 3 3 EOS"
    )
    copy = CopyEOSTask()
    batch = copy.batch_from(copy.encode("4 1 7"))
    assert copy.decode(batch.inputs[0]) == "4 1 7 SEP 4 1 7"
    assert copy.decode(batch.targets[0][batch.target_mask[0]]) == "4 1 7 EOS"


def test_bad_formats_raise_clear_errors():
    with pytest.raises(ValueError, match="position_ids must be one of"):
        ReversedAdditionTask(position_ids="sinusoidal")
    with pytest.raises(ValueError, match=r"0, \$, '\+'"):
        ReversedAdditionTask(end_marker=True).solve(
            torch.tensor([[1, 2, 10, 3, 4]])
        )
    with pytest.raises(ValueError, match="max_offset"):
        AbacusEncoding(8, 4, max_offset=8)
    with pytest.raises(ValueError, match="max_distance"):
        CoupledRelativeBias(2, max_distance=-1)


# --- the encodings --------------------------------------------------------------------------


def test_abacus_adds_the_row_of_each_place_and_shifts_only_in_training():
    enc = AbacusEncoding(max_len=40, d_model=8, max_offset=10, seed=0)
    places = torch.tensor(
        [[1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 4]] * 64
    )  # (B, T)
    x = randn(64, 12, 8)
    enc.eval()
    torch.testing.assert_close(
        enc(x, places), x + enc.table.weight[places]
    )  # no offset at evaluation
    enc.train()
    rows = enc.shifted(places, 64)  # (B, T)
    k = (rows - places)[places > 0].view(
        64, -1
    )  # (B, digits): the offset of each digit
    assert (rows[places == 0] == 0).all()  # non-digits keep row 0
    assert (k == k[:, :1]).all()  # one offset per sequence ...
    assert (
        k.min() >= 0 and k.max() < 10 and len(k[:, 0].unique()) > 5
    )  # ... drawn from [0, K)
    out = enc(x, places)
    assert out.shape == x.shape and not torch.allclose(
        out, x + enc.table.weight[places]
    )
    with pytest.raises(ValueError, match="max_len=40 rows"):
        enc.eval()(randn(1, 2, 8), torch.tensor([[39, 40]]))


def test_coupled_score_mod_equals_the_dense_formula():
    enc = CoupledRelativeBias(n_heads=3, max_distance=2, lr_scale=5.0)
    with torch.no_grad():
        enc.theta.copy_(randn(5, 3))
    p = torch.tensor(
        [[1, 2, 3, 0, 1, 2, 3, 0, 1, 2], [4, 0, 9, 9, 1, 5, 2, 7, 3, 3]]
    )  # (B, T) ids
    dense = enc.score_bias(p, p)  # (B, H, T, T), via the score_mod
    clipped = (p[:, :, None] - p[:, None, :]).clamp(
        -2, 2
    ) + 2  # (B, T, T): clip(p_i - p_j, -R, R) + R
    expected = (5.0 * enc.theta)[clipped].permute(0, 3, 1, 2)  # (B, H, T, T)
    assert dense.shape == (2, 3, 10, 10)
    torch.testing.assert_close(dense, expected)
    torch.testing.assert_close(enc.table, 5.0 * enc.theta)


def test_coupled_bias_trains_at_lr_scale_times_the_learning_rate():
    enc = CoupledRelativeBias(n_heads=2, lr_scale=20.0)
    opt = torch.optim.Adam(enc.parameters(), lr=1e-3)
    before = enc.table.detach().clone()
    (
        enc.table * randn(7, 2)
    ).sum().backward()  # any gradient: Adam's first step is lr · sign(grad)
    opt.step()
    torch.testing.assert_close(
        (enc.table - before).abs(), torch.full((7, 2), 20.0 * 1e-3)
    )


def test_coupled_attention_depends_only_on_id_differences_and_kernels_agree():
    x = randn(2, 12, 16)
    p = (
        ReversedAdditionTask(position_ids="coupled").sample(2, 3, 0).positions
    )  # (2, 12)
    outs = {}
    for kernel in ("full", "blockwise"):
        torch.manual_seed(0)
        pe = make_positional(
            "coupled_bias", d_model=16, n_heads=4, max_len=32
        )
        with torch.no_grad():
            pe.theta.copy_(randn(7, 4, seed=1))
        mha = MultiHeadAttention(
            16,
            4,
            positional=pe,
            kernel=kernel,
            kernel_params={"block_size": 4}
            if kernel == "blockwise"
            else None,
        )
        outs[kernel] = mha(x, causal=True, positions=p)[0]
        torch.testing.assert_close(
            mha(x, causal=True, positions=p + 7)[0], outs[kernel]
        )  # shift all ids: same
        assert not torch.allclose(
            mha(x, causal=True)[0], outs[kernel]
        )  # the ids matter
    torch.testing.assert_close(
        outs["full"], outs["blockwise"], atol=1e-5, rtol=1e-5
    )


def test_fire_score_mod_equals_the_paper_formula_and_kernels_agree():
    enc = FireBias(n_heads=3, hidden=8, threshold=4.0)
    with torch.no_grad():
        enc.log_c.fill_(0.3)
    p = torch.arange(9)
    bias = enc.score_bias(p, p)  # (H, T, T)
    c, i, j = torch.tensor(0.3).exp(), p[:, None].float(), p[None, :].float()

    def psi(x):  # the paper's ψ(x) = log(c·x + 1)
        return torch.log(c * x + 1)

    normalised = psi((i - j).clamp(min=0)) / psi(
        i.clamp(min=4.0)
    )  # (T, T): ψ(i − j) / ψ(max(L, i))
    expected = enc.mlp(normalised[..., None]).permute(2, 0, 1)  # (H, T, T)
    causal = j <= i
    torch.testing.assert_close(bias[:, causal], expected[:, causal])
    assert (
        bias.shape == (3, 9, 9) and normalised[causal].max() <= 1.0
    )  # every visible distance maps into [0, 1]
    x = randn(2, 9, 12)
    full = MultiHeadAttention(12, 3, positional=enc)
    block = MultiHeadAttention(
        12,
        3,
        positional=enc,
        kernel="blockwise",
        kernel_params={"block_size": 4},
    )
    block.load_state_dict(full.state_dict())
    out = full(x, causal=True)[0]
    torch.testing.assert_close(
        out, block(x, causal=True)[0], atol=1e-5, rtol=1e-5
    )
    out.sum().backward()
    assert (
        enc.log_c.grad is not None and enc.threshold.grad is not None
    )  # c and L are learned


# --- the task trains --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "positional"),
    [("addition_coupled", "coupled_bias"), ("addition_abacus", "abacus")],
)
def test_addition_trains_with_its_position_ids(task, positional):
    task = get_task(task)
    model = tiny_model(
        0,
        vocab_size=task.vocab_size,
        positional=positional,
        n_layers=1,
        max_len=24,
    ).train()
    optimizer = make_optimizer(model, TrainConfig(lr=3e-3, weight_decay=0.0))
    generator, losses = seeded(0), []
    for _ in range(100):
        batch = task.sample(
            32, int(torch.randint(1, 4, (1,), generator=generator)), generator
        )
        logits = model(
            batch.inputs, positions=batch.positions
        ).logits  # (B, T, V)
        loss = F.cross_entropy(
            logits[batch.target_mask], batch.targets[batch.target_mask]
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.8 * first, (
        first,
        last,
    )  # measured: 2.33 -> 1.16 (coupled), 2.30 -> 1.60 (abacus)


@pytest.mark.parametrize(
    ("task", "positional"),
    [("addition_coupled", "coupled_bias"), ("addition_abacus", "abacus")],
)
def test_the_training_loop_passes_the_task_ids_to_the_model(task, positional):
    task = get_task(task)
    model = tiny_model(
        0,
        vocab_size=task.vocab_size,
        positional=positional,
        n_layers=1,
        max_len=24,
    )
    seen = []
    model.decoder.positional.register_forward_pre_hook(
        lambda module, args: seen.append(args[1])
    )  # (x, positions)
    config = TrainConfig(
        steps=4,
        batch_size=8,
        weight_decay=0.0,
        warmup_steps=1,
        eval_batches=1,
    )
    history = train(
        model, task, train_length=(1, 3), eval_lengths=[6], config=config
    )
    assert sorted({row["length"] for row in history.evals}) == [3, 6]
    assert len(seen) == 4 + 2 and all(
        p is not None for p in seen
    )  # 4 steps, 2 evaluation batches
    last = task.sample(1, 6, 0).positions[0]
    assert torch.equal(
        seen[-1][0], last
    )  # evaluation at n = 6 read the task's ids, not 0…T−1
