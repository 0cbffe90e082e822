"""Pre-flight against the live cluster: submit limits from accounting, partitions, plugin options — refused before
anything is submitted. The QOS with MaxSubmitJobsPerUser=20 is this test's own, removed afterwards."""

from __future__ import annotations

import json
import uuid

import pytest


@pytest.fixture
def qos20(slurm):
    name = f"sd6q{uuid.uuid4().hex[:6]}"
    slurm.run("sacctmgr", "-i", "add", "qos", name, "MaxSubmitJobsPerUser=20")
    yield name
    slurm.run("sacctmgr", "-i", "delete", "qos", name, check=False)


def _names_in_slurm(slurm, tag):
    live = slurm.run("squeue", "-h", "-t", "all", "-o", "%j").stdout.split()
    acct = slurm.run("sacct", "-X", "-n", "-P", "-a", "-o", "JobName", "-S", "now-1hour").stdout.split()
    return [n for n in live + acct if tag in n]


def test_dag_over_max_submit_jobs_is_refused_with_numbers(run_slurmdag, slurm, tmp_path, qos20):
    tag = f"msj{uuid.uuid4().hex[:6]}"
    wf = tmp_path / "thirty.yaml"
    wf.write_text(
        f"name: {tag}\ndefaults: {{qos: {qos20}, walltime: 1}}\nallocations:\n"
        + "".join(f"  - {{name: {tag}-{i}, entrypoint: 'true'}}\n" for i in range(30))
    )
    assert slurm.run("sacctmgr", "-n", "-P", "show", "qos", qos20, "format=MaxSubmitPU").stdout.strip() == "20"

    dry = run_slurmdag("submit", "--dry-run", wf)
    assert dry.returncode == 2, dry.stderr
    assert "pre-flight: REFUSED" in dry.stdout
    proc = run_slurmdag("submit", wf)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert (
        f"the DAG needs 31 job slots but MaxSubmitJobsPerUser of QOS {qos20} is 20 and 0 of your jobs are "
        "already queued, leaving 20: 11 too many"
    ) in proc.stderr
    assert _names_in_slurm(slurm, tag) == []


def test_unknown_partition_oversized_request_and_missing_plugin(run_slurmdag, slurm, tmp_path):
    tag = f"res{uuid.uuid4().hex[:6]}"
    wf = tmp_path / "bad.yaml"
    wf.write_text(
        f"name: {tag}\nallocations:\n"
        f"  - {{name: {tag}-a, entrypoint: 'true', partition: nosuch}}\n"
        f"  - {{name: {tag}-b, entrypoint: 'true', cpus_per_task: 64}}\n"
        f"  - {{name: {tag}-c, entrypoint: 'true', uenv: 'prgenv-gnu/24.11:v1'}}\n"
    )
    proc = run_slurmdag("submit", wf)
    assert proc.returncode == 2
    assert "partition 'nosuch' does not exist on this cluster" in proc.stderr
    assert f"allocation '{tag}-b' cannot run: it asks for 1 node(s) with 64 CPUs each" in proc.stderr
    assert f"allocation '{tag}-c' uses --uenv, which this cluster's sbatch does not know" in proc.stderr
    assert _names_in_slurm(slurm, tag) == []


def test_dry_run_shows_verdict_as_json(run_slurmdag, tmp_path):
    wf = tmp_path / "ok.yaml"
    wf.write_text("name: sd6-ok\nallocations:\n  - {name: a, entrypoint: 'true', tasks: 4}\n")
    proc = run_slurmdag("submit", "--dry-run", "--json", wf)
    assert proc.returncode == 0, proc.stderr
    verdict = json.loads(proc.stdout)["preflight"]
    assert verdict["ok"] is True and verdict["problems"] == []
    assert any("puts 5 jobs in the queue" in n for n in verdict["notes"])


def test_an_sbatch_option_newer_than_22_05_is_accepted_exactly_where_the_clusters_sbatch_has_it(
    run_slurmdag, slurm, tmp_path
):
    """--tres-per-task came with Slurm 23.02: slurmdag's verdict follows the running sbatch, not a fixed version."""
    known = "--tres-per-task" in slurm.run("sbatch", "--help").stdout
    assert known == (slurm.version >= (23, 2)), (slurm.version, known)  # docs/compatibility.md row 6
    wf = tmp_path / "newer.yaml"
    wf.write_text(
        "name: sd6-newer\nallocations:\n  - {name: a, entrypoint: 'true', sbatch: ['--tres-per-task=cpu=1']}\n"
    )
    proc = run_slurmdag("submit", "--dry-run", wf)
    if known:
        assert proc.returncode == 0, proc.stderr
        assert "pre-flight: OK" in proc.stdout and "--tres-per-task=cpu=1" in proc.stdout
    else:
        assert proc.returncode == 2, proc.stdout
        assert "uses --tres-per-task, which this cluster's sbatch does not know" in proc.stderr
