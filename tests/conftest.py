"""What several test files share: one-thread torch, seeded random inputs, a tiny model.

Fixtures are found by pytest; the plain helpers are imported (``from conftest import tiny_model``),
as the tests import ``_scripts`` (pytest puts this folder on ``sys.path``).
"""

import dataclasses
import math
import shutil
from pathlib import Path

import pytest
import torch

from annotated.models.config import ModelConfig
from annotated.models.transformer import build_model

TINY_MODEL = {
    "d_model": 32,
    "n_heads": 4,
    "n_layers": 2,
    "max_len": 32,
}  # a model that trains in seconds on a CPU


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest on one intra-op thread; two spin against each other on a busy machine.
    A module opts in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def seeded(seed: int = 0) -> torch.Generator:
    """A fresh CPU generator: explicit randomness that never touches the global RNG."""
    return torch.Generator().manual_seed(seed)


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    """Standard-normal floats of ``shape``, the same for the same ``seed``."""
    return torch.randn(*shape, generator=seeded(seed))


def random_ids(*shape: int, high: int, seed: int = 0) -> torch.Tensor:
    """Token ids in ``[0, high)`` of ``shape``, the same for the same ``seed``."""
    return torch.randint(0, high, shape, generator=seeded(seed))


def qkv(
    b=2,
    h=3,
    t_q=13,
    t_k=None,
    d=8,
    d_v=None,
    *,
    seed=0,
    dtype=torch.float64,
    grad=False,
):
    """Seeded queries (B, H, Tq, D), keys (B, H, Tk, D) and values (B, H, Tk, Dv);
    Tk defaults to Tq and Dv to D + 1 (a value size unlike the key size on purpose)."""
    g = seeded(seed)
    t_k = t_q if t_k is None else t_k
    d_v = d + 1 if d_v is None else d_v
    q = torch.randn(b, h, t_q, d, generator=g, dtype=dtype)
    k = torch.randn(b, h, t_k, d, generator=g, dtype=dtype)
    v = torch.randn(b, h, t_k, d_v, generator=g, dtype=dtype)
    return tuple(x.requires_grad_(grad) for x in (q, k, v))


# A lab experiment that trains in about a second: sort at length 4, tested at 6.
TINY_EXPERIMENT = {
    "name": "tiny",
    "task": "sort",
    "train_length": 4,
    "eval_lengths": [6],
    "model": {"d_model": 16, "n_layers": 1, "n_heads": 2},
    "train": {
        "steps": 12,
        "warmup_steps": 2,
        "batch_size": 8,
        "eval_every": 6,
        "eval_batches": 1,
        "device": "cpu",
    },
}


def tiny_experiment(*, model=None, train=None, drop=(), **fields) -> dict:
    """A fresh copy of TINY_EXPERIMENT with ``fields`` replaced, ``model`` and
    ``train`` merged into their sections and the train fields in ``drop`` left out."""
    config = {**TINY_EXPERIMENT, **fields}
    config["model"] = {**TINY_EXPERIMENT["model"], **(model or {})}
    merged = {**TINY_EXPERIMENT["train"], **(train or {})}
    config["train"] = {k: v for k, v in merged.items() if k not in drop}
    return config


def tiny_model(seed: int = 0, **config):
    """A model built from ``ModelConfig(**TINY_MODEL | config)`` (``vocab_size`` is required), its
    initialisation seeded with ``torch.manual_seed(seed)``; in training mode, as built."""
    torch.manual_seed(seed)
    return build_model(ModelConfig(**{**TINY_MODEL, **config}))


# A run that snapshots every 5 steps and is evaluated only at its end.
STOPPABLE = tiny_experiment(train={"snapshot_every": 5}, drop=("eval_every",))


def stop_at(step: int):
    """A run callback that raises KeyboardInterrupt (Ctrl-C) after ``step``."""

    def callback(kind, row):
        if kind == "step" and row["step"] == step:
            raise KeyboardInterrupt

    return callback


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """A run interrupted (as by Ctrl-C) after step 7; its last snapshot is step 5."""
    from annotated.lab import run  # the lab only where a test asks for it

    out = tmp_path_factory.mktemp("stopped")
    with pytest.raises(KeyboardInterrupt):
        run(STOPPABLE, out, callback=stop_at(7))
    (folder,) = out.iterdir()
    return folder


def copy_of(folder: Path, tmp_path: Path) -> Path:
    """A copy of a run folder under ``tmp_path``, to change without touching the original."""
    return Path(shutil.copytree(folder, tmp_path / folder.name))


def poison_after(monkeypatch, calls: int) -> None:
    """Models the lab builds from now on give NaN logits from their
    ``calls``-th training forward on (a run that diverges)."""
    from annotated.lab import Resolved

    build = Resolved.build_model

    def poisoned(self):
        model, seen = build(self), [0]

        def hook(module, args, out):
            seen[0] += module.training
            return (
                dataclasses.replace(out, logits=out.logits * math.nan)
                if seen[0] >= calls
                else out
            )

        model.register_forward_hook(hook)
        return model

    monkeypatch.setattr(Resolved, "build_model", poisoned)
