"""A checkpoint keeps the config with the weights, so a file alone rebuilds
its model.

A checkpoint is a ``torch.save`` dict
``{"format", "format_version", "config", "state_dict", "sha256"}`` (plus any
extra entries a caller adds, e.g. a run's optimizer and RNG state). ``sha256``
is :func:`payload_digest` of everything else: a torch archive does not check
its own bytes, so a file damaged inside a tensor would otherwise load with
other weights; a checkpoint written before the checksum existed loads
unchecked. :func:`write_checkpoint` writes it atomically — a temporary file
beside the target is moved into place, so a crash leaves the old file intact —
and :func:`read_checkpoint` loads it with ``weights_only=True`` and says what
is wrong with a file that is missing, truncated, damaged (checksum), not a
torch file, or of another format version. :func:`load_state` puts weights into
a model with an error that names the file. Building the model from the config
is :func:`annotated.models.transformer.load_model`'s job; this module needs no
model class.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn as nn

from annotated.core.atomic import atomic_path
from annotated.models.config import ModelConfig
from annotated.positional import POSITIONAL_ENCODINGS

FORMAT_VERSION = 1
CHECKPOINT_KIND = "annotated-model"


def write_checkpoint(
    path, config: ModelConfig, state_dict: dict, **extra
) -> None:
    """Write a checkpoint (config + weights + any ``extra`` entries) to
    ``path`` atomically: a temporary file beside it is moved into place, so a
    crash leaves the old file intact."""
    path = Path(path)
    payload = {
        "format": CHECKPOINT_KIND,
        "format_version": FORMAT_VERSION,
        "config": config.to_dict(),
        "state_dict": state_dict,
        **extra,
    }
    payload["sha256"] = payload_digest(payload)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def read_checkpoint(path) -> dict:
    """Load and check a checkpoint dict; an error says what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    with open(path, "rb") as f:
        magic = f.read(4)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        # torch raises RuntimeError, EOFError, UnpicklingError, … by damage;
        # a torch.save zip archive that no longer reads is cut or damaged
        if magic == b"PK\x03\x04":
            raise ValueError(
                f"{path} is truncated or corrupt (a torch.save archive that "
                f"cannot be read: {err})"
            ) from err
        raise ValueError(
            f"{path} is not an annotated checkpoint (not a file written by "
            "torch.save)"
        ) from err
    if (
        not isinstance(checkpoint, dict)
        or checkpoint.get("format") != CHECKPOINT_KIND
    ):
        raise ValueError(
            f"{path} is not an annotated checkpoint (a torch file holding a "
            f"{type(checkpoint).__name__}, not one written by model.save)"
        )
    version = checkpoint.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{path} has checkpoint format_version {version!r}; this library "
            f"reads {FORMAT_VERSION}"
        )
    if "sha256" in checkpoint:
        stored = checkpoint.pop("sha256")
        if stored != payload_digest(checkpoint):
            raise ValueError(
                f"{path} is damaged: its contents no longer match the sha256 "
                "checksum written with it (bytes were changed on disk or in "
                "a copy); use another copy of the file, or train again"
            )
    if not isinstance(checkpoint.get("config"), dict) or not isinstance(
        checkpoint.get("state_dict"), dict
    ):
        raise ValueError(
            f"{path} is damaged: its 'config' or 'state_dict' entry is "
            "missing"
        )
    config = checkpoint["config"]
    encoding = POSITIONAL_ENCODINGS.get(config.get("positional", "rope"))
    # saved before embedding_scale existed: the weights were trained unscaled
    if "embedding_scale" not in config and encoding and encoding.fixed_signal:
        config["embedding_scale"] = 1.0
    # saved with a field random_positions: 0 (positions 0…T−1) is what a
    # model does unless its encoding randomizes them
    if config.pop("random_positions", 0):
        raise ValueError(
            f"{path} was trained on random positions set by a config field "
            "random_positions; this library randomizes positions with "
            "positional='randomized' only"
        )
    return checkpoint


def payload_digest(payload) -> str:
    """sha256 over a checkpoint's contents — tensors by dtype, shape and
    bytes; dicts in key order; other values by type and ``repr`` — so the same
    contents give the same digest whatever the file layout."""
    digest = hashlib.sha256()
    _feed(digest, payload)
    return digest.hexdigest()


def _feed(digest, value) -> None:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"tensor {tensor.dtype} {tuple(value.shape)}:".encode())
        digest.update(
            tensor.view(torch.uint8).numpy().tobytes()
            if tensor.numel()
            else b""
        )
    elif isinstance(value, dict):
        digest.update(b"{")
        for key in sorted(value, key=lambda k: (type(k).__name__, repr(k))):
            _feed(digest, key)
            _feed(digest, value[key])
        digest.update(b"}")
    elif isinstance(value, list | tuple):
        digest.update(f"{type(value).__name__}[".encode())
        for item in value:
            _feed(digest, item)
        digest.update(b"]")
    else:
        digest.update(f"{type(value).__name__} {value!r};".encode())


def describe_differences(differ: dict) -> str:
    """``ModelConfig.diff`` output as one sentence: every field, the
    checkpoint's value and the expected one."""
    return "; ".join(
        f"{k}: checkpoint {a!r} vs expected {b!r}"
        for k, (a, b) in differ.items()
    )


def load_state(model: nn.Module, state_dict: dict, path) -> None:
    """``model.load_state_dict(state_dict)``, with an error that names
    ``path`` when the weights do not fit."""
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as err:
        raise ValueError(
            f"{path}: the weights do not fit the model its config describes: "
            f"{err}"
        ) from err
