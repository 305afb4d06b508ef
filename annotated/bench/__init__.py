"""Benchmarks: how time and memory grow with T, measured.

What they measure is reported, never asserted by a test.

* :mod:`annotated.bench.kernels` — time and peak memory of every attention
  kernel against T, with :mod:`annotated.bench.kernel_results` for the
  fitted exponents, the table and the plot;
* :mod:`annotated.bench.encodings` — peak memory of block-wise attention with
  RoPE, ALiBi and T5 (score mods against a materialised bias);
* :mod:`annotated.bench.throughput` — training tokens/s of the library's
  decoder against the same network built from
  ``torch.nn.TransformerEncoderLayer``
  (:mod:`annotated.bench.throughput_models`), and of the ``train`` loop,
  with :mod:`annotated.bench.throughput_report` for the table;
* :mod:`annotated.bench.measure` — the meters (peak allocator bytes, fastest
  of n runs, fitted slope).

``python -m annotated.bench --help``; ``make bench`` writes everything to
``_build/bench``.
"""

from __future__ import annotations

from annotated.bench.encodings import (
    encoding_exponents,
    encoding_memory,
    encoding_table,
)
from annotated.bench.kernel_results import (
    BenchmarkResult,
    fit_exponents,
    markdown_table,
    plot_scaling,
    write_outputs,
)
from annotated.bench.kernels import (
    DEFAULT_LENGTHS,
    KERNEL_PARAMS,
    QUICK_LENGTHS,
    estimate_forward_bytes,
    run_benchmark,
)
from annotated.bench.measure import (
    fastest_seconds,
    fit_exponent,
    peak_forward_bytes,
)
from annotated.bench.throughput import run_throughput
from annotated.bench.throughput_models import (
    THROUGHPUT_SIZES,
    ReferenceDecoder,
)
from annotated.bench.throughput_report import throughput_table

__all__ = [
    "DEFAULT_LENGTHS",
    "KERNEL_PARAMS",
    "QUICK_LENGTHS",
    "THROUGHPUT_SIZES",
    "BenchmarkResult",
    "ReferenceDecoder",
    "encoding_exponents",
    "encoding_memory",
    "encoding_table",
    "estimate_forward_bytes",
    "fastest_seconds",
    "fit_exponent",
    "fit_exponents",
    "main",
    "markdown_table",
    "peak_forward_bytes",
    "plot_scaling",
    "run_benchmark",
    "run_throughput",
    "throughput_table",
    "write_outputs",
]


def main(argv=None):
    from annotated.bench.__main__ import main as _main

    return _main(argv)
