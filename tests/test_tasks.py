"""Tasks: hand-checked examples, independent Python references, layout invariants, registry, errors."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from annotated import tasks
from annotated.tasks import (
    TASKS,
    AdditionTask,
    AssociativeRecallTask,
    Batch,
    ContainsPatternTask,
    CopyTask,
    KBackTask,
    LabellingTask,
    LongRangeMatchTask,
    ModularRunningSumTask,
    ParityTask,
    PromptAnswerTask,
    ReverseTask,
    SortTask,
    Task,
    get_task,
    register_task,
)

# dates has one size (length 1) and splits of its own: tests/test_dates.py
ALGORITHMIC = [
    name
    for name, task in TASKS.items()
    if name not in ("tiny_shakespeare", "dates")
]
FAST = settings(max_examples=25, deadline=None)


def laid_out(task: Task, problem: str) -> tuple[str, str, list[int]]:
    batch = task.batch_from(task.encode(problem))
    return (
        task.decode(batch.inputs[0]),
        task.decode(batch.targets[0]),
        batch.target_mask[0].int().tolist(),
    )


def answer(task: PromptAnswerTask, problem: str) -> str:
    return task.decode(task.solve(task.encode(problem)[None])[0])


# --- hand-checked examples -------------------------------------------------------------


def test_copy_layout_by_hand():
    assert laid_out(CopyTask(), "4 1 7") == (
        "4 1 7 SEP 4 1",
        "1 7 SEP 4 1 7",
        [0, 0, 0, 1, 1, 1],
    )


def test_reverse_and_sort_by_hand():
    assert laid_out(ReverseTask(), "4 1 7") == (
        "4 1 7 SEP 7 1",
        "1 7 SEP 7 1 4",
        [0, 0, 0, 1, 1, 1],
    )
    assert answer(SortTask(), "3 0 3 9 1") == "0 1 3 3 9"
    assert answer(SortTask(n_symbols=12), "11 10 0") == "0 10 11"


def test_addition_by_hand():
    plain, reversed_ = AdditionTask(), AdditionTask(reverse_digits=True)
    assert answer(plain, "4 7 2 + 3 5 1") == "0 8 2 3"
    assert answer(plain, "9 9 9 + 0 0 1") == "1 0 0 0"
    assert answer(plain, "5 + 5") == "1 0"
    assert answer(reversed_, "2 7 4 + 1 5 3") == "3 2 8 0"  # 472 + 351 = 823
    assert answer(reversed_, "9 9 9 + 1 0 0") == "0 0 0 1"  # 999 + 1 = 1000
    inputs, targets, mask = laid_out(plain, "4 7 + 3 5")
    assert (inputs, targets) == ("4 7 + 3 5 = 0 8", "7 + 3 5 = 0 8 2")
    assert mask == [0, 0, 0, 0, 0, 1, 1, 1]


def test_running_sum_by_hand():
    assert laid_out(ModularRunningSumTask(), "3 9 4") == (
        "3 9 4",
        "3 2 6",
        [1, 1, 1],
    )
    assert laid_out(ModularRunningSumTask(base=2), "1 1 0 1")[1] == "1 0 0 1"


def test_parity_by_hand():
    assert laid_out(ParityTask(), "1 0 1 1") == (
        "1 0 1 1 SEP",
        "0 1 1 SEP 1",
        [0, 0, 0, 0, 1],
    )
    assert answer(ParityTask(), "1 1 0 0") == "0"


def test_k_back_by_hand():
    assert laid_out(KBackTask(k=2), "a b a b c b") == (
        "a b a b c b",
        "PAD PAD 1 1 0 1",
        [0, 0, 1, 1, 1, 1],
    )
    assert laid_out(KBackTask(k=1), "a a b")[1:] == ("PAD 1 0", [0, 1, 1])


def test_contains_pattern_by_hand():
    task = ContainsPatternTask(pattern="abc")
    assert answer(task, "d a b c a a") == "1"
    assert answer(task, "a b d c a b") == "0"
    assert answer(task, "a b c") == "1"
    assert answer(task, "c b a d a b") == "0"
    assert laid_out(task, "d a b c")[1:] == ("a b c SEP 1", [0, 0, 0, 0, 1])


def test_long_range_match_by_hand():
    assert answer(LongRangeMatchTask(), "c a d b c") == "1"
    assert answer(LongRangeMatchTask(), "c a d b a") == "0"


def test_associative_recall_by_hand():
    task = AssociativeRecallTask()
    assert answer(task, "c 7 a 2 f 7 a") == "2"
    assert answer(task, "c 7 a 2 f 7 f") == "7"
    # a re-bound key answers its latest value
    assert answer(task, "c 7 c 2 c") == "2"
    inputs, targets, mask = laid_out(task, "c 7 a 2 a")
    assert (inputs, targets, mask) == (
        "c 7 a 2 a SEP",
        "7 a 2 a SEP 2",
        [0, 0, 0, 0, 0, 1],
    )


# --- sampled batches against independent Python references ----------------------------


def sampled(
    task: PromptAnswerTask, length: int, seed: int, batch_size: int = 8
):
    source, target = task.seq2seq(batch_size, length, seed)
    return [task.decode(row).split() for row in source], [
        task.decode(row).split() for row in target
    ]


@FAST
@given(seed=st.integers(0, 2**31 - 1), length=st.integers(1, 20))
def test_copy_reverse_sort_match_python(seed, length):
    for task, reference in (
        (CopyTask(), list),
        (ReverseTask(), lambda x: x[::-1]),
        (SortTask(), sorted),
    ):
        for prompt, target in zip(*sampled(task, length, seed)):
            assert [int(t) for t in target] == reference(
                [int(t) for t in prompt]
            )


@FAST
@given(
    seed=st.integers(0, 2**31 - 1),
    length=st.integers(1, 40),
    reverse=st.booleans(),
)
def test_addition_matches_python_integers(seed, length, reverse):
    task = AdditionTask(reverse_digits=reverse)
    order = (lambda s: s[::-1]) if reverse else (lambda s: s)
    for prompt, target in zip(*sampled(task, length, seed)):
        a, b = "".join(prompt[:length]), "".join(prompt[length + 1 :])
        assert prompt[length] == "+" and len(a) == len(b) == length
        expected = str(int(order(a)) + int(order(b))).zfill(length + 1)
        assert "".join(target) == order(expected)


@FAST
@given(
    seed=st.integers(0, 2**31 - 1),
    length=st.integers(1, 30),
    base=st.integers(2, 12),
)
def test_running_sum_matches_python(seed, length, base):
    batch = ModularRunningSumTask(base=base).sample(4, length, seed)
    for x, y in zip(batch.inputs.tolist(), batch.targets.tolist()):
        assert y == [s % base for s in itertools.accumulate(x)]
    assert batch.target_mask.all()


@FAST
@given(
    seed=st.integers(0, 2**31 - 1),
    length=st.integers(4, 30),
    k=st.integers(1, 3),
)
def test_k_back_matches_python(seed, length, k):
    task = KBackTask(k=k)
    batch = task.sample(4, length, seed)
    for x, y, m in zip(
        batch.inputs.tolist(),
        batch.targets.tolist(),
        batch.target_mask.tolist(),
    ):
        expected = [task.pad_id] * k + [
            task.token_id("1" if x[i] == x[i - k] else "0")
            for i in range(k, length)
        ]
        assert y == expected and m == [False] * k + [True] * (length - k)


@FAST
@given(seed=st.integers(0, 2**31 - 1), length=st.integers(3, 30))
def test_parity_pattern_long_range_recall_match_python(seed, length):
    for prompt, target in zip(*sampled(ParityTask(), length, seed)):
        assert target == [str(prompt.count("1") % 2)]
    for prompt, target in zip(
        *sampled(ContainsPatternTask(pattern="abc"), length, seed)
    ):
        assert target == [str(int("abc" in "".join(prompt)))]
    for prompt, target in zip(*sampled(LongRangeMatchTask(), length, seed)):
        assert target == [str(int(prompt[0] == prompt[-1]))]
    for prompt, target in zip(
        *sampled(AssociativeRecallTask(), length, seed)
    ):
        keys, values = prompt[0:-1:2], prompt[1:-1:2]
        assert len(set(keys)) == length and prompt[-1] in keys
        assert target == [dict(zip(keys, values))[prompt[-1]]]


# --- layout, purity and balance for every registered task ------------------------------


@pytest.mark.parametrize("name", ALGORITHMIC)
# 23: beyond a typical training length
@pytest.mark.parametrize("length", [5, 23])
def test_layout_invariants(name, length):
    task = get_task(name)
    batch = task(6, length, 0)
    assert isinstance(batch, Batch)
    assert batch.inputs.shape == (6, task.seq_len(length))
    assert 0 <= batch.inputs.min() and batch.inputs.max() < task.vocab_size
    assert 0 <= batch.targets.min() and batch.targets.max() < task.vocab_size
    assert (
        len(set(task.token_names)) == task.vocab_size
        and task.token_names[task.pad_id] == "PAD"
    )
    assert batch.target_mask.any(dim=1).all()
    if isinstance(task, PromptAnswerTask):
        # next-token layout
        assert torch.equal(batch.targets[:, :-1], batch.inputs[:, 1:])
        assert (batch.target_mask.sum(dim=1) == task.answer_len(length)).all()
        assert (batch.inputs[:, task.prompt_len(length)] == task.sep_id).all()
        assert batch.target_mask[
            :, -task.answer_len(length) :
        ].all()  # scored = the last A positions
        prompt, target = task.seq2seq(6, length, 0)
        same = task.layout(prompt, target)
        assert torch.equal(same.inputs, batch.inputs) and torch.equal(
            same.targets, batch.targets
        )
    else:
        assert isinstance(task, LabellingTask)
        assert (batch.targets[~batch.target_mask] == task.pad_id).all()
        with pytest.raises(ValueError, match="no prompt/answer"):
            task.seq2seq(2, length, 0)


@pytest.mark.parametrize("name", ALGORITHMIC)
def test_pure_function_of_seed(name):
    task = get_task(name)
    a, b = task(4, 9, 123), task(4, 9, torch.Generator().manual_seed(123))
    assert all(
        x is y is None or torch.equal(x, y)
        for x, y in zip(vars(a).values(), vars(b).values())
    )
    g = torch.Generator().manual_seed(5)
    first, second = task(16, 9, g), task(16, 9, g)  # the generator advances
    assert not torch.equal(first.inputs, second.inputs)


@pytest.mark.parametrize(
    ("task", "length"),
    [
        (ParityTask(), 7),
        (ContainsPatternTask(), 12),
        (LongRangeMatchTask(), 9),
        (KBackTask(k=3), 10),
    ],
)
def test_binary_labels_are_balanced(task, length):
    batch = task(4000, length, 0)
    labels = batch.targets[batch.target_mask]
    positive = (labels == task.token_id("1")).float().mean().item()
    assert task.chance_accuracy == 0.5
    assert abs(positive - 0.5) < 0.03, positive


@pytest.mark.parametrize(
    ("task", "length"),
    [
        (CopyTask(), 6),
        (ReverseTask(n_symbols=4), 6),
        (ModularRunningSumTask(base=7), 6),
        (AssociativeRecallTask(), 5),
    ],
)
def test_chance_accuracy_is_best_blind_guess(task, length):
    batch = task(6000, length, 1)
    labels = batch.targets[batch.target_mask]
    # the best input-ignoring constant guess
    majority = torch.bincount(labels).max().item() / len(labels)
    assert abs(majority - task.chance_accuracy) < 0.025


def test_chance_is_none_where_no_simple_baseline():
    assert (
        SortTask().chance_accuracy is None
        and AdditionTask().chance_accuracy is None
    )


# --- registry --------------------------------------------------------------------------


@pytest.fixture
def registry():
    saved = dict(TASKS)
    yield TASKS
    TASKS.clear()
    TASKS.update(saved)


def test_builtin_names():
    expected = {
        "copy",
        "reverse",
        "sort",
        "addition",
        "addition_reversed",
        "running_sum",
        "parity",
        "k_back",
    }
    expected |= {
        "contains_pattern",
        "long_range_match",
        "associative_recall",
        "tiny_shakespeare",
    }
    assert expected <= set(TASKS)


def test_registered_tasks_keep_their_arguments(registry):
    assert (
        get_task("addition_reversed").reverse_digits is True
        and get_task("addition").reverse_digits is False
    )
    assert (get_task("k_back").k, get_task("k_back").n_symbols) == (2, 4)
    mine = KBackTask(k=3, n_symbols=5)
    register_task("k_back_3", mine)
    assert (
        get_task("k_back_3") is mine
        and get_task("k_back_3")(2, 6, 0).target_mask[:, :3].sum() == 0
    )


def test_modules_import_only_modules_below_them():
    """base ← layouts ← families ← registry ← package: no module of annotated.tasks imports one above it."""
    order = [
        "base",
        "layouts",
        "sequences",
        "arithmetic",
        "matching",
        "extrapolation",
        "dates",
        "corpus",
        "text",
        "bpe",
        "digits",
        "registry",
    ]
    families = {
        "sequences",
        "arithmetic",
        "matching",
        "extrapolation",
        "dates",
        "corpus",
        "text",
        "bpe",
        "digits",
    }
    folder = Path(tasks.__file__).parent
    assert sorted(p.stem for p in folder.glob("*.py")) == sorted(
        [*order, "__init__"]
    )
    for name in order:
        tree = ast.parse((folder / f"{name}.py").read_text(encoding="utf-8"))
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (
                node.module or ""
            ).startswith("annotated"):
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported |= {
                    a.name
                    for a in node.names
                    if a.name.startswith("annotated")
                }
        allowed = set()
        if name == "layouts":
            allowed = {"annotated.tasks.base"}
        if name in families:
            allowed = {"annotated.tasks.base", "annotated.tasks.layouts"}
        if name == "dates":  # its answers end with the same EOS token
            allowed.add("annotated.tasks.extrapolation")
        if name == "registry":
            allowed = {f"annotated.tasks.{m}" for m in order[:-1]}
        assert imported <= allowed, (name, imported - allowed)


def test_user_task_registered_from_user_code(registry):
    @register_task("increment")
    class IncrementTask(PromptAnswerTask):
        """Add one to each digit, mod 10."""

        token_names = tuple("0123456789") + ("SEP", "PAD")

        def draw(self, batch_size, length, generator):
            return torch.randint(
                0, 10, (batch_size, length), generator=generator
            )

        def solve(self, prompt):
            return (prompt + 1) % 10

    assert isinstance(get_task("increment"), IncrementTask)
    assert laid_out(get_task("increment"), "0 9") == (
        "0 9 SEP 1",
        "9 SEP 1 0",
        [0, 0, 1, 1],
    )
    assert get_task("increment")(3, 4, 0).inputs.shape == (3, 8)
    register_task("increment_too", IncrementTask())
    assert get_task("increment_too") is not get_task("increment")


def test_duplicate_unknown_and_bad_registrations(registry):
    with pytest.raises(
        ValueError, match=r"already registered.*copy.*replace=True"
    ):
        register_task("copy", CopyTask())
    replacement = CopyTask(n_symbols=3)
    register_task("copy", replacement, replace=True)
    assert get_task("copy") is replacement
    with pytest.raises(
        ValueError, match=r"unknown task 'sorting'; valid names: .*sort"
    ):
        get_task("sorting")
    with pytest.raises(TypeError, match="Task instance or subclass"):
        register_task("f", lambda batch_size, length, generator: None)
    with pytest.raises(ValueError, match="task name"):
        register_task("has space", CopyTask())
    task = ParityTask()
    assert get_task(task) is task


# --- bad inputs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: CopyTask()(0, 4, 0), "batch_size must be an int ≥ 1"),
        (lambda: CopyTask()(2, 0, 0), "length must be an int ≥ 1"),
        (lambda: CopyTask()(2, True, 0), "length must be an int"),
        (lambda: CopyTask()(2, 4.0, 0), "length must be an int"),
        (lambda: KBackTask(k=2)(2, 2, 0), "length must be an int ≥ 3"),
        (lambda: AssociativeRecallTask(n_keys=5)(2, 6, 0), "up to 5"),
        (lambda: CopyTask()(2, 4, 0, split="test"), "split must be one of"),
        (lambda: CopyTask(n_symbols=1), "n_symbols must be an int ≥ 2"),
        (lambda: ContainsPatternTask(pattern="abz"), "pattern must be"),
        (lambda: ContainsPatternTask(pattern=""), "pattern must be"),
        (
            lambda: AdditionTask().batch_from(
                AdditionTask().encode("1 2 3 4")
            ),
            "n digits, '\\+', n digits",
        ),
        (
            lambda: AssociativeRecallTask().batch_from(
                AssociativeRecallTask().encode("a 1 b")
            ),
            "then one of those keys",
        ),
        (
            lambda: CopyTask().batch_from(torch.tensor([[0, 12]])),
            "token ids must lie in",
        ),
        (lambda: CopyTask().encode("1 x"), "'x' is not a token"),
        (
            lambda: Batch(
                torch.zeros(2, 3, dtype=torch.long),
                torch.zeros(2, 4, dtype=torch.long),
                torch.ones(2, 3, dtype=torch.bool),
            ),
            "share one",
        ),
        (
            lambda: Batch(
                torch.zeros(2, 3),
                torch.zeros(2, 3, dtype=torch.long),
                torch.ones(2, 3, dtype=torch.bool),
            ),
            "torch.long",
        ),
    ],
)
def test_bad_inputs_raise_value_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_bad_generator_type():
    with pytest.raises(TypeError, match="torch.Generator or an int seed"):
        CopyTask()(2, 3, None)


def test_batch_to_and_repr():
    batch = CopyTask()(2, 3, 0).to("cpu")
    assert batch.inputs.device.type == "cpu"
    assert (
        repr(AdditionTask(reverse_digits=True))
        == "AdditionTask(reverse_digits=True)"
    )
    assert tasks.SPLITS == ("train", "val")
