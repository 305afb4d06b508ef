"""Every stored result says what made it: each provenance file under
annotated/data names, for every environment it records, the commit, the torch
version, the CPU capability, the thread count and whether the tree was clean,
and it records wall and CPU time. Fields that were not recorded when an old
result was made are present as null, with a note saying so — never guessed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import annotated

DATA = Path(annotated.__file__).parent / "data"
FILES = sorted(DATA.glob("*_provenance.yaml"))
FIELDS = {"torch", "git_commit", "cpu_capability", "threads", "git_dirty"}


def environments(node):
    if isinstance(node, dict):
        if "git_commit" in node:
            yield node
        for value in node.values():
            yield from environments(value)
    elif isinstance(node, list):
        for value in node:
            yield from environments(value)


def keys(node) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {k for v in node.values() for k in keys(v)}
    if isinstance(node, list):
        return {k for v in node for k in keys(v)}
    return set()


def test_there_are_provenance_files():
    assert len(FILES) >= 7


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_provenance_names_commit_torch_capability_threads_and_times(path):
    provenance = yaml.safe_load(path.read_text())
    found = list(environments(provenance))
    assert found, f"{path.name} records no environment"
    for env in found:
        assert FIELDS <= set(env), f"{path.name}: missing {FIELDS - set(env)}"
        assert env["git_commit"] and env["torch"]
        unknown = [k for k in FIELDS if env[k] is None]
        assert not unknown or env.get("unrecorded"), (
            f"{path.name}: {unknown} are null without a note saying why"
        )
        # a result from a tree that differed from its commit keeps the hash
        if env["git_dirty"]:
            assert env.get("git_diff_sha256")
    names = keys(provenance)
    assert names & {"wall_time_s", "total_wall_time_s", "runs_wall_time_s"}
    assert names & {"cpu_time_s", "total_cpu_time_s", "runs_cpu_time_s"}
