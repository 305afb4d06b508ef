"""The same sweep through Ray: a local Ray instance (2 CPUs) started here, one task per grid point,
the runs gathered into the sweep folder with the local executor's summary rows; a re-run through
Ray finishes only the run that is missing."""

from __future__ import annotations

import pytest
from test_sweep_jobs import TINY, eval_rows, files, summary_rows, tiny

from annotated.lab import resume_sweep, sweep

ray = pytest.importorskip(
    "ray",
    reason="Ray is not installed: pip install 'annotated[cluster]' (make install does)",
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance with 2 CPUs. Its raylet gives its agents 15 s to start and aborts otherwise,
    which a busy 2-core machine can miss; a second or third start (warm caches) gets through."""
    for attempt in range(1, 4):
        try:
            ray.init(
                num_cpus=2,
                include_dashboard=False,
                logging_level="WARNING",
                log_to_driver=False,
            )
            break
        except Exception as error:  # ray raises a plain Exception when its node times out during startup
            ray.shutdown()
            if attempt == 3:
                raise RuntimeError(
                    f"a local Ray instance did not start in 3 tries: {error}"
                ) from error
    yield
    ray.shutdown()


@pytest.mark.slow
def test_a_sweep_through_ray_gives_the_local_rows(tmp_path, local_ray):
    config = tiny(
        grid={"model.positional": ["rope", "sinusoidal"]},
        train=TINY["train"] | {"checkpoint_every": 10},
    )
    local = sweep(config, tmp_path / "local")
    remote = sweep(config, tmp_path / "ray", executor="ray")
    assert summary_rows(remote) == summary_rows(local)
    runs = ["tiny-positional=rope", "tiny-positional=sinusoidal"]
    for run in runs:
        assert set(files(remote / run)) == set(
            files(local / run)
        )  # the same folder layout
        assert eval_rows(remote / run) == eval_rows(local / run)

    kept, lost = (remote / run for run in runs)
    before = files(kept)
    for name in ("report.json", "model.pt"):
        (lost / name).unlink()
    assert resume_sweep(remote, executor="ray") == remote
    assert files(kept) == before
    assert summary_rows(remote) == summary_rows(local) and eval_rows(
        lost
    ) == eval_rows(local / lost.name)
