"""Admission (policy -> pre-flight -> lanes) as a service: it returns the plan to submit with warnings, notes and
refusals, and prints nothing. The cluster is the recorded real output of tests/unit/data/preflight/."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from slurmdag.backends import cluster_parse
from slurmdag.backends.cluster_info import ClusterInfo
from slurmdag.compiler.compile import compile_text
from slurmdag.model.errors import InputError, PreflightError, SlurmUnavailableError
from slurmdag.policy import admission

DATA = Path(__file__).parent / "data" / "preflight"


def recorded_cluster(**config: str) -> ClusterInfo:
    info = ClusterInfo(
        user="alice",
        config=cluster_parse.parse_config((DATA / "scontrol_show_config.txt").read_text()),
        partitions=cluster_parse.parse_partitions((DATA / "scontrol_show_partition.txt").read_text()),
        nodes=cluster_parse.parse_nodes((DATA / "scontrol_show_node.txt").read_text()),
        sbatch_options=cluster_parse.parse_sbatch_help((DATA / "sbatch_help.txt").read_text()),
    )
    return dataclasses.replace(info, config={**info.config, **config})


class ClusterReader:
    """Only what admission asks of a backend: one read of the cluster (or an unreachable controller)."""

    def __init__(self, cluster: ClusterInfo | None):
        self.cluster = cluster
        self.reads = 0

    def read_cluster(self) -> ClusterInfo:
        self.reads += 1
        if self.cluster is None:
            raise SlurmUnavailableError(["scontrol", "show", "config"], 1, "", "Unable to contact slurm controller")
        return self.cluster


@pytest.fixture
def policy_files(tmp_path, monkeypatch):
    """Site file and user config in tmp_path (never the machine's own); returns a writer for each."""
    site, user = tmp_path / "policy.yaml", tmp_path / "config.yaml"
    monkeypatch.setattr(admission, "site_policy_path", lambda: site)
    monkeypatch.setattr(admission, "user_config_path", lambda: user)
    return site, user


def plan_of(text: str):
    return compile_text("name: w\n" + text, file="w.yaml")


def test_admitted_plan_is_split_and_laned_and_nothing_is_printed(policy_files, capsys):
    plan = plan_of("max_concurrent: 3\nallocations:\n  - {name: shards, entrypoint: x, tasks: 25}\n")
    backend = ClusterReader(recorded_cluster(MaxArraySize="11"))
    got = admission.admit(plan, backend)  # type: ignore[arg-type]
    assert got.admitted and backend.reads == 1
    assert [j.array for j in got.plan.jobs] == ["0-10%3", "0-10%3", "0-2%3"]  # split for MaxArraySize, throttled
    assert any(n.startswith("max_concurrent = 3 (set by the workflow)") for n in got.verdict.notes)
    got.raise_if_refused()
    assert capsys.readouterr() == ("", "")


def test_policy_refusal_and_loosening_warning_are_returned_not_printed(policy_files, capsys):
    site, user = policy_files
    site.write_text("max_allocations: 1\n")
    user.write_text("policy:\n  max_allocations: 5\n")
    plan = plan_of("allocations:\n  - {name: a, entrypoint: x}\n  - {name: b, entrypoint: x}\n")
    got = admission.admit(plan, ClusterReader(recorded_cluster()))  # type: ignore[arg-type]
    assert not got.admitted and got.verdict is None  # pre-flight is not run for a plan the policy refuses
    assert ["max_allocations = 1" in p.message for p in got.policy.problems] == [True]
    assert ["would loosen max_allocations" in w.message for w in got.warnings] == [True]
    with pytest.raises(InputError, match="max_allocations = 1"):
        got.raise_if_refused()
    assert capsys.readouterr() == ("", "")


def test_preflight_refusal_is_a_preflight_error(policy_files):
    plan = plan_of("allocations:\n  - {name: fat, entrypoint: x, cpus_per_task: 64}\n")
    got = admission.admit(plan, ClusterReader(recorded_cluster()))  # type: ignore[arg-type]
    assert not got.admitted and got.verdict is not None
    with pytest.raises(PreflightError, match="allocation 'fat' cannot run"):
        got.raise_if_refused()


def test_unreachable_slurm_fails_a_submit_but_a_dry_run_still_shows_the_plan(policy_files):
    plan = plan_of("allocations:\n  - {name: a, entrypoint: x}\n")
    with pytest.raises(SlurmUnavailableError):
        admission.admit(plan, ClusterReader(None))  # type: ignore[arg-type]
    dry = admission.admit(plan, ClusterReader(None), dry_run=True)  # type: ignore[arg-type]
    assert dry.plan is plan and dry.verdict is None
    assert dry.notes and dry.notes[0].startswith("pre-flight: not done, Slurm could not be read")
