"""Data-parallel training on the CPU (gloo): N ranks × batch b train as one process × batch N·b.

The ranks are real processes: ``torch.multiprocessing`` spawns them for the library's ``train``,
``torchrun`` launches them for the lab's command line. Float summation order differs between the
two (sums split across ranks and micro-batches), so numbers agree to float tolerance.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from conftest import TINY_MODEL

from annotated.models.checkpoints import read_checkpoint
from annotated.models.config import ModelConfig
from annotated.models.transformer import build_model
from annotated.tasks import Batch
from annotated.tasks.sequences import SortTask
from annotated.training.config import TrainConfig
from annotated.training.distributed import (
    Ranks,
    check_examples_per_step,
)
from annotated.training.loop import train
from annotated.training.torchrun import process_group

pytestmark = pytest.mark.usefixtures("one_thread")


class RaggedSort(SortTask):
    """Sort whose sequences score a random number of answer tokens: the shards of a batch then hold
    different numbers of scored tokens, the case where a mean loss per shard would be wrong."""

    def sample(self, batch_size, length, generator, *, split="train"):
        batch = super().sample(batch_size, length, generator, split=split)
        kept = torch.rand(batch.target_mask.shape, generator=generator) < 0.6
        return Batch(batch.inputs, batch.targets, batch.target_mask & kept)


RAGGED = RaggedSort()


def train_small(batch_size, grad_accum=1, steps=20):
    """Losses and final weights of a tiny randomized-RoPE model trained on ragged sort."""
    torch.manual_seed(0)
    config = ModelConfig(**TINY_MODEL, vocab_size=RAGGED.vocab_size, positional="randomized")
    model = build_model(config)
    history = train(
        model,
        RAGGED,
        train_length=[3, 6],
        config=TrainConfig(
            steps=steps,
            batch_size=batch_size,
            grad_accum=grad_accum,
            warmup_steps=2,
            eval_every=10,
            eval_batches=1,
            device="cpu",
        ),
    )
    return {"losses": [r["loss"] for r in history.steps], "weights": model.state_dict()}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_rank(rank, size, port, fn, args):
    """What torchrun does for a rank: say where it stands, then join the others."""
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    with process_group():
        fn(rank, *args)


def spawn(fn, *args, size=2):
    mp.start_processes(as_rank, args=(size, free_port(), fn, args), nprocs=size, start_method="spawn")


def two_ranks_train(rank, out):
    for grad_accum in (1, 2):
        torch.save(train_small(4, grad_accum), out / f"rank{rank}_accum{grad_accum}.pt")


def assert_same_training(got, want):
    assert len(got["losses"]) == len(want["losses"]) == 20
    assert got["losses"] == pytest.approx(want["losses"], rel=1e-5)
    for name, value in want["weights"].items():
        torch.testing.assert_close(got["weights"][name], value, rtol=1e-4, atol=1e-5)


def test_the_shards_of_a_ragged_batch_score_different_numbers_of_tokens():
    batch = RAGGED.sample(8, 5, torch.Generator().manual_seed(0))
    halves = [batch.target_mask[rows].sum() for rows in (Ranks(0, 2).rows(8, 0, 1), Ranks(1, 2).rows(8, 0, 1))]
    assert halves[0] != halves[1]


def test_rows_cut_the_whole_batch_into_ranks_then_micro_batches():
    cut = [Ranks(r, 2).rows(12, m, 3) for r in range(2) for m in range(3)]
    assert [(s.start, s.stop) for s in cut] == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10), (10, 12)]


def test_resuming_with_another_number_of_examples_per_step_is_refused():
    state = {"train_config": {"batch_size": 4, "grad_accum": 1}, "history": {"meta": {"ranks": 2}}}
    check_examples_per_step(state, TrainConfig(batch_size=4, grad_accum=2), Ranks())  # 1 × 4 × 2 = 2 × 4 × 1
    with pytest.raises(ValueError, match=r"took 8 examples per step .*1 rank\(s\) × 4 × 1 would take 4.*--nproc_per_node 2"):
        check_examples_per_step(state, TrainConfig(batch_size=4), Ranks())


def test_grad_accum_two_trains_as_the_doubled_batch():
    assert_same_training(train_small(4, grad_accum=2), train_small(8))


@pytest.mark.slow
def test_two_ranks_train_as_one_process_with_twice_the_batch(tmp_path):
    spawn(two_ranks_train, tmp_path)
    for grad_accum in (1, 2):
        ranks = [torch.load(tmp_path / f"rank{r}_accum{grad_accum}.pt") for r in (0, 1)]
        assert_same_training(ranks[0], train_small(8 * grad_accum))
        # every rank holds the same model, digit for digit
        for name, value in ranks[0]["weights"].items():
            assert torch.equal(ranks[1]["weights"][name], value)
        assert ranks[1]["losses"] == ranks[0]["losses"]


# a plugin task: sort, whose rank 1, while it draws step 7's batch, gets SIGTERM (STOP_RANK_1=term)
# or dies (STOP_RANK_1=die); once: a marker file
STOPPING_TASK = """
import os, signal
from pathlib import Path
from annotated.tasks import register_task
from annotated.tasks.sequences import SortTask

MARKER = Path(__file__).with_name("rank_1_stopped")

@register_task("sort_stopping")
class SortStopping(SortTask):
    steps = 0

    def sample(self, batch_size, length, generator, *, split="train"):
        if split == "train":
            self.steps += 1
            how = os.environ.get("STOP_RANK_1") if os.environ["RANK"] == "1" else None
            if how and self.steps == 7 and not MARKER.exists():
                MARKER.touch()
                if how == "die":
                    os._exit(9)
                os.kill(os.getpid(), signal.SIGTERM)
        return super().sample(batch_size, length, generator, split=split)
"""

FLAGS = ["--task", "sort_stopping", "--train-length", "4", "--steps", "12", "--batch-size", "4",
         "--d-model", "32", "--n-heads", "4", "--n-layers", "2", "--dropout", "0.1",
         "--eval-every", "6", "--eval-batches", "1", "--snapshot-every", "5", "--no-progress"]  # fmt: skip


def torchrun(*args, cwd, stop=""):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    env |= {"OMP_NUM_THREADS": "1", "STOP_RANK_1": stop}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    return subprocess.run(
        [*command, "-m", "annotated", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def only_run(out: Path) -> Path:
    (folder,) = out.iterdir()
    return folder


def losses_and_weights(folder: Path):
    lines = (folder / "metrics.csv").read_text().splitlines()
    column = lines[0].split(",").index("loss")
    losses = [float(line.split(",")[column]) for line in lines[1:]]
    return losses, read_checkpoint(folder / "model.pt")["state_dict"]


@pytest.mark.slow
def test_torchrun_writes_one_run_and_an_interrupted_run_resumes_to_the_same_result(tmp_path):
    plugin = stopping_task(tmp_path)

    whole = torchrun("train", *FLAGS, *plugin, "--out", "whole", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stopping_task.py", "whole"]
    folder = only_run(tmp_path / "whole")  # one run folder, one checkpoint
    assert sorted(p.name for p in folder.glob("*.pt")) == ["model.pt"]
    report = json.loads((folder / "report.json").read_text())
    assert report["status"] == "completed"
    assert not (folder / "run.lock").exists()

    stopped = torchrun("train", *FLAGS, *plugin, "--out", "stopped", cwd=tmp_path, stop="term")
    assert stopped.returncode != 0
    broken = only_run(tmp_path / "stopped")
    assert json.loads((broken / "report.json").read_text())["status"] == "interrupted"
    state = read_checkpoint(broken / "model.pt")["training_state"]
    assert (state["status"], state["step"]) == ("interrupted", 5)  # the last snapshot
    assert "torchrun --nproc_per_node 2 -m annotated resume" in stopped.stderr

    resumed = torchrun("resume", str(broken), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((broken / "report.json").read_text())["status"] == "completed"
    losses, weights = losses_and_weights(broken)
    whole_losses, whole_weights = losses_and_weights(folder)
    assert losses == pytest.approx(whole_losses, rel=1e-6)
    for name, value in whole_weights.items():
        torch.testing.assert_close(weights[name], value, rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_a_rank_that_dies_ends_the_others_with_a_message_and_a_checkpoint(tmp_path):
    dead = torchrun("train", *FLAGS, *stopping_task(tmp_path), "--out", "dead", cwd=tmp_path, stop="die")
    assert dead.returncode != 0
    assert "RankLost: rank 0 of 2 lost the other ranks after step 6" in dead.stderr
    folder = only_run(tmp_path / "dead")
    report = json.loads((folder / "report.json").read_text())
    assert report["status"] == "failed" and "RankLost" in report["error"]
    assert read_checkpoint(folder / "model.pt")["training_state"]["step"] == 5


def stopping_task(folder: Path) -> list[str]:
    """The ``--plugins`` flag that registers ``sort_stopping``."""
    (folder / "stopping_task.py").write_text(STOPPING_TASK)
    return ["--plugins", str(folder / "stopping_task.py")]
