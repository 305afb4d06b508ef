"""What several test files share: one-thread torch, seeded random inputs, a tiny model.

Fixtures are found by pytest; the plain helpers are imported (``from conftest import tiny_model``),
as the tests import ``_scripts`` (pytest puts this folder on ``sys.path``).
"""

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


def tiny_model(seed: int = 0, **config):
    """A model built from ``ModelConfig(**TINY_MODEL | config)`` (``vocab_size`` is required), its
    initialisation seeded with ``torch.manual_seed(seed)``; in training mode, as built."""
    torch.manual_seed(seed)
    return build_model(ModelConfig(**{**TINY_MODEL, **config}))
