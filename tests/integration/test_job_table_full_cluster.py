"""A full job table (MaxJobCount) on the real cluster is recognised for what it is, never "Slurm unreachable"
(issue 17, defect 9; docs/policy.md, "Slurm's job table"). ONE test: it restarts the shared cluster with a small
table (SLURM_MAX_JOB_COUNT=60, SLURM_MIN_JOB_AGE=30) and back to the defaults afterwards, so every other test
running at the time would see a full table: run it alone, at the end: `python3 -m pytest -m restarts_cluster
tests/integration/test_job_table_full_cluster.py`.

1. pre-flight counts the table and waits (submitting nothing) until finished jobs leave it, then submits;
2. a table full of pending jobs: refused at once, exit 1, nothing submitted;
3. the table fills up while a DAG is being submitted: sbatch's "temporarily unable to accept job" (through pyslurm:
   slurmctld's EAGAIN, which pyslurm does not retry) is waited out and the DAG is submitted whole once room comes back.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.conftest import BACKEND, DOCKER_SLURM, REPO

pytestmark = [pytest.mark.integration, pytest.mark.restarts_cluster]

MAX_JOB_COUNT = 60  # 59 jobs fit
MIN_JOB_AGE = 30


def up(slurm, **knobs: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("SLURM_MAX_JOB_COUNT", "SLURM_MIN_JOB_AGE")}
    proc = subprocess.run([str(DOCKER_SLURM / "up")], env={**env, **knobs}, text=True, capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    slurm.wait_for(lambda: slurm.run("scontrol", "ping", check=False).returncode == 0, 60, "slurmctld up")


@pytest.fixture
def small_job_table(slurm):
    up(slurm, SLURM_MAX_JOB_COUNT=str(MAX_JOB_COUNT), SLURM_MIN_JOB_AGE=str(MIN_JOB_AGE))
    try:
        yield
    finally:
        up(slurm)  # the defaults: MaxJobCount 10000, MinJobAge 300


def held(slurm) -> int:
    return len(slurm.run("squeue", "-h", "-r", "-t", "all", "-o", "%i").stdout.split())


def ctld_refusals(slurm) -> int:
    log = slurm.run_dir / "log" / "slurmctld.log"
    return log.read_text(errors="replace").count("MaxJobCount limit from slurm.conf reached")


def jobs_in_slurm(slurm, dag_id: str) -> int:
    """How many jobs of the DAG (job names sd-<dag>-...) slurmctld holds."""
    names = slurm.run("squeue", "-h", "-r", "-t", "all", "-o", "%j").stdout.split()
    return sum(name.startswith(f"sd-{dag_id}-") for name in names)


def slow_submissions(slurm, tmp_path: Path) -> dict[str, str]:
    """Environment for a slurmdag process whose every submission takes 0.3 s longer: an sbatch that sleeps first
    (CLI backend), or, through pyslurm (no sbatch process), the backend's submit sleeping first (a sitecustomize on
    the child's PYTHONPATH). Slurm itself is untouched."""
    if BACKEND == "pyslurm":
        hook = tmp_path / "slow-hook"
        hook.mkdir()
        (hook / "sitecustomize.py").write_text(
            "import time\n"
            "from slurmdag.backends import pyslurm_backend\n"
            "_submit = pyslurm_backend.PyslurmBackend.submit\n"
            "def submit(self, script, options, directives=None):\n"
            "    time.sleep(0.3)\n"
            "    return _submit(self, script, options, directives)\n"
            "pyslurm_backend.PyslurmBackend.submit = submit\n"
        )
        return {"PYTHONPATH": os.pathsep.join([str(hook), sd_env(slurm, tmp_path)["PYTHONPATH"]])}
    slow = tmp_path / "bin"
    slow.mkdir()
    real = shutil.which("sbatch", path=slurm.env()["PATH"])
    (slow / "sbatch").write_text(f'#!/bin/sh\nsleep 0.3\nexec {real} "$@"\n')
    (slow / "sbatch").chmod(0o755)
    return {"PATH": f"{slow}:{slurm.env()['PATH']}"}


def workflow(name: str, n: int) -> str:
    lines = [f"name: {name}", "defaults: {partition: debug, walltime: 2}", "allocations:"]
    lines += [f'  - {{name: j{i:02d}, entrypoint: "true"}}' for i in range(n)]
    return "\n".join(lines) + "\n"


def sd_env(slurm, home: Path, **extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**slurm.env(), "SLURMDAG_HOME": str(home), "PYTHONPATH": path, **extra}


def sd(slurm, home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "slurmdag", *args],
        env=sd_env(slurm, home, **extra),
        capture_output=True,
        text=True,
        timeout=900,
        cwd=home.parent,
    )


def test_a_full_job_table_is_waited_for_or_refused_never_called_unreachable(slurm, tmp_path, small_job_table):
    home = tmp_path / "home"
    config = slurm.run("scontrol", "show", "config").stdout
    assert f"MaxJobCount             = {MAX_JOB_COUNT}" in config
    slurm.wait_for(lambda: held(slurm) <= 5, 300, "the job table to empty (finished jobs leave after MinJobAge)")

    # 1. 41 finished jobs in the table; a 31-job DAG needs 13 of them to leave first (59 fit)
    for name, n in (("fill", 40), ("after", 30)):
        (tmp_path / f"{name}.yaml").write_text(workflow(name, n))
    fill = sd(slurm, home, "submit", str(tmp_path / "fill.yaml"), "--json")
    assert fill.returncode == 0, fill.stderr
    slurm.wait_until_done(list(json.loads(fill.stdout)["jobs"].values()), timeout=300)
    refusals = ctld_refusals(slurm)
    after = sd(slurm, home, "submit", str(tmp_path / "after.yaml"), "--json")
    assert after.returncode == 0, after.stderr
    assert "has no room for this DAG yet: waiting about" in after.stderr, after.stderr
    assert "unreachable" not in after.stderr and "not answering" not in after.stderr
    done = slurm.wait_until_done(list(json.loads(after.stdout)["jobs"].values()), timeout=300)
    assert len(done) == 30 and {r["State"] for r in done} == {"COMPLETED"}
    assert ctld_refusals(slurm) == refusals  # it waited before submitting: slurmctld never had to refuse a job

    # 2. the table full of pending jobs: nothing will leave it by itself
    slurm.wait_for(lambda: held(slurm) <= 5, 300, "the job table to empty again")
    # one held array of 50 tasks: 50 entries of the table in one RPC
    blockers = slurm.submit("--hold", "--array=0-49", "-o/dev/null", "-Jfaults-table-blocker", "--wrap=true")
    try:
        refused = sd(slurm, home, "submit", str(tmp_path / "after.yaml"))
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "room frees up only as running and pending jobs end" in refused.stderr, refused.stderr
        assert "nothing was submitted" in refused.stderr
        assert len(list((home / "dags").iterdir())) == 2  # no third DAG was even recorded
    finally:
        slurm.run("scancel", blockers)

    # 3. room at pre-flight, gone in the middle of the submission (another user fills the table), back later
    slurm.wait_for(lambda: held(slurm) <= 5, 300, "the job table to empty again")
    slow_env = slow_submissions(slurm, tmp_path)  # a slow login node: time to fill the table meanwhile
    (tmp_path / "mid.yaml").write_text(workflow("mid", 20))
    refusals = ctld_refusals(slurm)
    earlier = set((home / "dags").iterdir())
    proc = subprocess.Popen(
        [sys.executable, "-m", "slurmdag", "submit", str(tmp_path / "mid.yaml"), "--json"],
        env=sd_env(slurm, home, **slow_env, SLURMDAG_SUBMIT_WORKERS="1"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # this DAG's own record (iterdir's order is arbitrary: the two earlier DAGs already hold their job ids)
    mid = slurm.wait_for(lambda: sorted(set((home / "dags").iterdir()) - earlier), 60, "the DAG's record")
    fillers: list[str] = []
    try:
        # Slurm's view: the record gets a wave's ids only when the whole wave is in
        slurm.wait_for(lambda: jobs_in_slurm(slurm, mid[0].name) >= 3, 120, "3 jobs in")
        # Take the room in one RPC (a held array: one entry per task), leaving the submission 3 more jobs at most.
        room = MAX_JOB_COUNT - 1 - held(slurm) - 3
        fillers = [
            slurm.submit("--hold", f"--array=0-{room - 1}", "-o/dev/null", "-Jfaults-table-filler", "--wrap=true")
        ]
        time.sleep(10)  # the submission now waits for room (in sbatch's own retry loop, or in slurmdag's)
        assert proc.poll() is None, proc.communicate()[1]
        slurm.run("scancel", *fillers)  # they leave the table MinJobAge after they end: room comes back
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
        if fillers:
            slurm.run("scancel", *fillers, check=False)
    assert proc.returncode == 0, err
    assert ctld_refusals(slurm) > refusals  # slurmctld did refuse while the fillers held the table
    assert "unreachable" not in err and "not answering" not in err, err
    jobs = json.loads(out)["jobs"]
    done = slurm.wait_until_done(list(jobs.values()), timeout=300)
    assert len(done) == 20 and {r["State"] for r in done} == {"COMPLETED"}
