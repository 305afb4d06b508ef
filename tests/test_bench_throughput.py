"""The training-throughput benchmark on a tiny size: the reference is the library's network, the
rows and files are complete, the command line runs it. Never timings."""

import csv

import pytest
import torch

from annotated.bench.__main__ import main
from annotated.bench.throughput import run_throughput
from annotated.bench.throughput_models import (
    THROUGHPUT_SIZES,
    ReferenceDecoder,
    ThroughputSize,
    copy_library_weights,
    library_decoder,
)
from annotated.bench.throughput_report import throughput_table

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = ThroughputSize(
    "tiny",
    n_layers=2,
    n_heads=2,
    d_model=16,
    context=8,
    batch=3,
    vocab_size=11,
)


def test_the_sizes_are_nanogpts_cpu_recipe_and_the_small_model():
    shapes = [
        (s.n_layers, s.n_heads, s.d_model, s.context, s.batch, s.vocab_size)
        for s in THROUGHPUT_SIZES
    ]
    assert shapes == [(4, 4, 128, 64, 12, 65), (2, 4, 64, 32, 64, 65)]
    assert THROUGHPUT_SIZES[0].tokens == 12 * 64


@pytest.mark.parametrize("positional", ["learned", "nope"])
def test_the_reference_with_copied_weights_is_the_library_decoder(positional):
    """Same parameter count, same logits and same loss gradient on the embeddings: the two time one network."""
    torch.manual_seed(0)
    library = library_decoder(TINY, positional)
    reference = copy_library_weights(
        ReferenceDecoder(TINY, positions=positional == "learned"), library
    )
    assert sum(p.numel() for p in reference.parameters()) == sum(
        p.numel() for p in library.parameters()
    )
    idx = torch.randint(
        0,
        TINY.vocab_size,
        (TINY.batch, TINY.context),
        generator=torch.Generator().manual_seed(1),
    )
    ours, theirs = library(idx).logits, reference(idx)
    torch.testing.assert_close(theirs, ours, rtol=1e-5, atol=1e-5)
    (ours.square().mean()).backward()
    (theirs.square().mean()).backward()
    torch.testing.assert_close(
        reference.tok_emb.weight.grad,
        library.tok_emb.weight.grad,
        rtol=1e-4,
        atol=1e-6,
    )
    # Causal: changing the last token changes no earlier logit of the reference either.
    later = idx.clone()
    later[:, -1] = (later[:, -1] + 1) % TINY.vocab_size
    torch.testing.assert_close(
        reference(later)[:, :-1], theirs[:, :-1].detach()
    )


def test_run_throughput_writes_rows_table_and_csv(tmp_path):
    threads = torch.get_num_threads()
    rows = run_throughput(
        [TINY],
        repeats=2,
        steps=1,
        warmup=1,
        timer="cpu",
        out_dir=tmp_path,
        progress=False,
    )
    assert torch.get_num_threads() == threads  # restored
    (row,) = rows
    assert (
        row["size"] == "tiny"
        and row["parameters"] > 0
        and row["timer"] == "cpu"
    )
    for name in ("reference", "library", "train_loop"):
        assert row[f"{name}_ms"] >= 0 and row[f"{name}_tokens_per_s"] > 0
    assert (
        row["library_vs_reference"] > 0 and row["train_loop_vs_reference"] > 0
    )
    assert {p.name for p in tmp_path.iterdir()} == {
        "throughput.csv",
        "throughput.md",
    }
    with open(tmp_path / "throughput.csv") as fh:
        (stored,) = list(csv.DictReader(fh))
    assert stored["size"] == "tiny" and float(
        stored["library_ms"]
    ) == pytest.approx(row["library_ms"])
    table = (tmp_path / "throughput.md").read_text()
    assert (
        "| tiny | 2 × 16 × 8 × 3 |" in table
        and "Median of 2 runs of 1 steps" in table
    )


def test_without_the_loop_its_columns_are_empty():
    (row,) = run_throughput(
        [TINY],
        repeats=1,
        steps=1,
        warmup=0,
        loop=False,
        positional="nope",
        progress=False,
    )
    assert row["train_loop_ms"] is None and row["library_ms"] > 0
    assert "| — |" in throughput_table([row])


def test_bad_arguments_say_what_to_change():
    with pytest.raises(ValueError, match="timer must be"):
        run_throughput([TINY], timer="gpu", progress=False)
    with pytest.raises(ValueError, match="positional must be one of"):
        run_throughput([TINY], positional="rope", progress=False)
    with pytest.raises(ValueError, match="repeats and steps"):
        run_throughput([TINY], repeats=0, progress=False)


def test_command_line_throughput_only(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("annotated.bench.__main__.THROUGHPUT_SIZES", (TINY,))
    rows = main(
        [
            "--throughput-only",
            "--throughput-repeats",
            "1",
            "--timer",
            "cpu",
            "--out",
            str(tmp_path),
        ]
    )
    assert [r["size"] for r in rows] == ["tiny"]
    assert "| tiny |" in capsys.readouterr().out
    assert {p.name for p in tmp_path.iterdir()} == {
        "throughput.csv",
        "throughput.md",
    }


def test_command_line_profile_names_the_operators(monkeypatch, capsys):
    monkeypatch.setattr("annotated.bench.__main__.THROUGHPUT_SIZES", (TINY,))
    (table,) = main(["--profile", "reference"])
    assert "aten::" in table and "Self CPU" in table
    assert (
        "reference, tiny: operators by self CPU time"
        in capsys.readouterr().out
    )
