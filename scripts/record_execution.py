"""Record in an executed notebook what produced its outputs.

    python scripts/record_execution.py notebooks/01_attention.ipynb ...

Writes ``metadata["annotated"]["executed_with"]``: the torch version, the CPU
capability PyTorch dispatched to (``ATEN_CPU_CAPABILITY`` picks another), the
thread count, the platform and the date. Run it in the environment that
executed the notebook (``make execute`` does): a fresh process with the same
environment variables dispatches to the same kernels. Training numbers differ
in their later digits between capabilities and thread counts; this says which
ones the stored outputs come from.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform

import nbformat
import torch


def execution_record() -> dict:
    """What this process's torch would run a notebook with."""
    return {
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "aten_cpu_capability": os.environ.get("ATEN_CPU_CAPABILITY"),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "date": datetime.date.today().isoformat(),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+")
    args = parser.parse_args(argv)
    record = execution_record()
    for path in args.notebooks:
        nb = nbformat.read(path, as_version=4)
        nb.metadata.setdefault("annotated", {})["executed_with"] = record
        nbformat.write(nb, path)


if __name__ == "__main__":
    main()
