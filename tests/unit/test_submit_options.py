"""The pure part of submission: which sbatch options and dependency each job gets (no Slurm needed)."""

from __future__ import annotations

from slurmdag.compiler.render import Submission, command_line
from slurmdag.model.plan import Dependency, DependencyTerm, Plan, PlannedJob
from slurmdag.runs.submit import dependency_expression, describe, gate_options, job_options

SUBMISSION = Submission("abcd1234", log_dir="/logs/abcd1234")


def _plan() -> Plan:
    return Plan(
        workflow="w",
        jobs=[
            PlannedJob("prep", "allocation", {"partition": "debug", "exclusive": None}, "#!/bin/sh\n", walltime=300),
            PlannedJob(
                "shards",
                "allocation",
                {"partition": "debug"},
                "#!/bin/sh\n",
                array="0-7%2",
                tasks=8,
                dependency=Dependency("all", (DependencyTerm("afterok", "prep"),)),
            ),
            PlannedJob(
                "merge",
                "allocation",
                {},
                "#!/bin/sh\n",
                dependency=Dependency("any", (DependencyTerm("afterok", "prep"), DependencyTerm("afterok", "shards"))),
            ),
        ],
    )


def test_roots_wait_on_the_gate_and_others_on_their_parents_ids():
    plan = _plan()
    ids = {"prep": "101", "shards": "102"}
    assert dependency_expression(plan.jobs[0], ids, "100") == "afterok:100"
    assert dependency_expression(plan.jobs[1], ids, "100") == "afterok:101"
    assert dependency_expression(plan.jobs[2], ids, "100") == "afterok:101?afterok:102"


def test_job_options_tag_the_job_and_own_the_slurmdag_flags():
    opts = job_options(_plan().jobs[1], SUBMISSION, "afterok:101")
    assert opts == [
        "--array=0-7%2",
        "--comment=slurmdag:abcd1234:shards",
        "--job-name=sd-abcd1234-shards",
        "--kill-on-invalid-dep=yes",
        "--output=/logs/abcd1234/shards_%A_%a.out",
        "--partition=debug",
        "--dependency=afterok:101",
    ]
    prep = job_options(_plan().jobs[0], SUBMISSION, "afterok:1")
    assert "--exclusive" in prep and "--time=00:05:00" in prep
    reconciled = job_options(_plan().jobs[0], Submission("abcd1234", kill_invalid_dep=False), "afterok:1")
    assert "--kill-on-invalid-dep=no" in reconciled and not any(o.startswith("--output") for o in reconciled)


def test_gate_is_held_tiny_and_runs_where_the_first_job_runs():
    opts = command_line(gate_options(_plan(), SUBMISSION))
    assert "--hold" in opts and "--time=00:01:00" in opts and "--partition=debug" in opts
    assert "--job-name=sd-abcd1234-+gate" in opts and "--output=/dev/null" in opts
    assert not any(o.startswith("--dependency") for o in opts)


def test_dry_run_description_names_parents_not_ids():
    planned = describe(_plan())
    assert [p.dependency for p in planned] == ["afterok:<gate>", "afterok:prep", "afterok:prep?afterok:shards"]
    assert "--dependency=afterok:prep" in planned[1].options


def test_dry_run_cli_needs_no_slurm_and_writes_nothing(tmp_path):
    import os
    import subprocess
    import sys

    wf = tmp_path / "w.yaml"
    wf.write_text(
        "name: w\nallocations:\n  - name: a\n    entrypoint: 'true'\n"
        "  - name: b\n    entrypoint: 'true'\n    depends_on: [{a: failure}]\n"
    )
    empty = tmp_path / "no-slurm-here"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty), "SLURMDAG_HOME": str(tmp_path / "home")}
    res = subprocess.run(
        [sys.executable, "-m", "slurmdag", "submit", str(wf), "--dry-run"], env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert "b: depends on afternotok:a" in res.stdout and "--kill-on-invalid-dep=yes" in res.stdout
    assert not (tmp_path / "home").exists()
    # The same without --dry-run reaches for sbatch, which is missing: exit 1, a clear message, no traceback.
    res = subprocess.run([sys.executable, "-m", "slurmdag", "submit", str(wf)], env=env, capture_output=True, text=True)
    assert res.returncode == 1 and "not found" in res.stderr and "Traceback" not in res.stderr
