"""Atomic writes: the new file appears whole, and a failure leaves the old one and no temporary file."""

import pytest
import torch

from annotated.core.atomic import atomic_path, write_atomic


def test_write_atomic_text_and_bytes(tmp_path):
    path = tmp_path / "report.md"
    write_atomic(path, "héllo\n")
    assert path.read_bytes() == "héllo\n".encode()
    write_atomic(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01" and [
        p.name for p in tmp_path.iterdir()
    ] == ["report.md"]


def test_temporary_file_sits_beside_the_target_and_is_moved_into_place(
    tmp_path,
):
    path = tmp_path / "model.pt"
    with atomic_path(path) as tmp:
        assert tmp.parent == path.parent and tmp != path
        torch.save({"x": 1}, tmp)
        assert not path.exists()  # nothing visible until the block ends
    assert torch.load(path, weights_only=True) == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_a_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "eval.csv"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(path) as tmp:
            tmp.write_text("half a fi")
            raise RuntimeError("disk full")
    assert path.read_text() == "old" and [
        p.name for p in tmp_path.iterdir()
    ] == ["eval.csv"]
