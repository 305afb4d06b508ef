"""The benchmark on tiny sizes: files, tables, skips and the memory counter. Never timings."""

import csv
import math

import pytest
import torch

from annotated.bench import (
    BenchmarkResult,
    encoding_exponents,
    encoding_memory,
    encoding_table,
    fit_exponent,
    main,
    markdown_table,
    peak_forward_bytes,
    plot_scaling,
    run_benchmark,
)

KINDS = ["reference", "full", "blockwise", "linear", "local", "topk"]


def test_fit_exponent_recovers_known_powers():
    lengths = [64, 128, 256, 512]
    assert fit_exponent(
        lengths, [3.0 * t**2 for t in lengths]
    ) == pytest.approx(2.0)
    assert fit_exponent(lengths, [0.5 * t for t in lengths]) == pytest.approx(
        1.0
    )
    # one usable point: no slope
    assert math.isnan(fit_exponent([64, 128], [1.0, None]))


def test_peak_forward_bytes_counts_the_score_matrix_on_cpu():
    """Dense scores of a (1, 2, 512, 512) float32 problem are 2 MiB; blockwise tiles are far smaller."""
    from annotated.attention.attend import attend
    from annotated.kernels import blockwise_attention

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 512, 16, generator=g) for _ in range(3))
    scores_bytes = 2 * 512 * 512 * 4
    with torch.no_grad():
        dense = peak_forward_bytes(lambda: attend(q, k, v, causal=True))
        block = peak_forward_bytes(
            lambda: blockwise_attention(q, k, v, causal=True, block_size=32)
        )
    # scores and weights are alive together at some point
    assert dense >= 2 * scores_bytes
    assert block < scores_bytes / 4


def test_peak_forward_bytes_is_the_peak_not_the_total():
    def two_buffers_one_at_a_time():
        a = torch.empty(1000)  # 4000 bytes
        del a
        # 4000 bytes, after the first was freed
        return torch.empty(500, dtype=torch.float64)

    assert peak_forward_bytes(lambda: None) == 0
    assert peak_forward_bytes(lambda: torch.empty(1000)) == 4000
    assert peak_forward_bytes(two_buffers_one_at_a_time) == 4000
    assert (
        peak_forward_bytes(lambda: (torch.empty(1000), torch.empty(1000)))
        == 8000
    )


def test_run_benchmark_writes_csv_markdown_and_plot(tmp_path):
    result = run_benchmark(
        KINDS, [32, 64], d_head=8, n_heads=2, repeats=1,
        device="cpu", out_dir=tmp_path, progress=False,
    )  # fmt: skip
    assert isinstance(result, BenchmarkResult)
    assert {p.name for p in tmp_path.iterdir()} == {
        "results.csv",
        "results.md",
        "scaling.png",
    }
    with open(tmp_path / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["kind"], int(r["T"])) for r in rows] == [
        (k, t) for k in KINDS for t in (32, 64)
    ]
    for r in rows:
        assert r["status"] == "ok" and r["device"] == "cpu"
        assert (
            float(r["forward_ms"]) > 0
            and float(r["forward_backward_ms"]) > 0
            and float(r["peak_forward_mib"]) > 0
        )
    text = (tmp_path / "results.md").read_text()
    assert text.count("\n| ") >= 10 + 5 and "Fitted exponents" in text
    assert set(result.exponents) == set(KINDS) and all(
        set(f) == {"forward_ms", "forward_backward_ms", "peak_forward_mib"}
        for f in result.exponents.values()
    )
    assert (tmp_path / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # one log-log panel per metric, one line per kind, slopes in the legend
    fig = plot_scaling(result)
    assert [len(ax.lines) for ax in fig.axes] == [len(KINDS)] * 3
    legend = [t.get_text() for t in fig.axes[2].get_legend().get_texts()]
    assert (
        legend[0]
        == f"reference (slope {result.exponents['reference']['peak_forward_mib']:.2f})"
    )


def test_points_over_the_memory_budget_are_skipped_and_recorded(tmp_path):
    result = run_benchmark(
        ["full", "blockwise"], [16, 256], d_head=8, n_heads=1, backward=False, repeats=1, device="cpu",
        memory_budget_bytes=600_000, progress=False,
    )  # fmt: skip
    status = {(r["kind"], r["T"]): r["status"] for r in result.rows}
    assert status[("full", 16)] == "ok" and status[("blockwise", 16)] == "ok"
    # 256² scores (~0.8 MB estimated) do not fit 600 kB
    assert status[("full", 256)].startswith("skipped: estimated")
    skipped = next(
        r for r in result.rows if r["kind"] == "full" and r["T"] == 256
    )
    assert (
        skipped["forward_ms"] is None
        and skipped["forward_backward_ms"] is None
    )
    # one measured point: no slope
    assert math.isnan(result.exponents["full"]["forward_ms"])
    assert "skipped" in markdown_table(result) and "—" in markdown_table(
        result
    )


def test_main_command_line_and_bad_arguments(tmp_path, capsys):
    result = main(["--lengths", "16", "32", "--kinds", "linear", "--out", str(tmp_path), "--repeats", "1",
                   "--encoding-lengths", "64", "128", "--skip-throughput",
                   "--no-backward", "--d-head", "8", "--heads", "1", "--device", "cpu", "--timer", "cpu"])  # fmt: skip
    assert [r["T"] for r in result.rows] == [16, 32] and result.rows[0][
        "forward_backward_ms"
    ] is None
    assert result.rows[0]["timer"] == "cpu"
    assert "| linear | 16 |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--kinds", "nonsense"])
    with pytest.raises(ValueError, match="unknown attention kinds"):
        run_benchmark(["dense"], [16], progress=False)
    with pytest.raises(ValueError, match="timer must be"):
        run_benchmark(
            ["full"], [16], timer="gpu", device="cpu", progress=False
        )
    with pytest.raises(ValueError, match="positive"):
        run_benchmark(["full"], [0], progress=False)


def test_score_mods_keep_blockwise_memory_near_ropes_and_a_bias_tensor_does_not():
    """Memory, not time: at T=512 the (H, T, T) ALiBi tensor alone is 4 MiB; the mods cost a tile."""
    rows = encoding_memory(lengths=(256, 512), block_size=32, progress=False)
    at = {(r["variant"], r["T"]): r for r in rows}
    for variant in ("alibi", "t5"):
        assert at[(variant, 512)]["vs_rope"] <= 2.0
    assert (
        at[("alibi (bias tensor)", 512)]["peak_forward_mib"]
        >= 4.0
        > 2 * at[("alibi", 512)]["peak_forward_mib"]
    )
    assert encoding_exponents(rows)["alibi (bias tensor)"] > 1.5
    assert "| alibi |" in encoding_table(
        rows
    ) and "exponent" in encoding_table(rows)
