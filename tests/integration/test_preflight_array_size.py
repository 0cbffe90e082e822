"""A task group larger than the cluster's MaxArraySize is split into several arrays with `corresponding` still exact.

The ONE test that restarts the cluster (MaxArraySize=11, so array indexes 0..10 only); the default knob is restored
afterwards, whatever happens."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

# Restarts the shared cluster with MaxArraySize=11: runs after every other test (tests/conftest.py).
pytestmark = pytest.mark.restarts_cluster

UP = Path(__file__).resolve().parents[2] / "docker-slurm" / "up"


@pytest.fixture
def max_array_size_11(slurm):
    def up(size: int) -> None:
        subprocess.run(
            [str(UP)],
            env={**os.environ, "SLURM_MAX_ARRAY_SIZE": str(size)},
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
        slurm.wait_for(
            lambda: f"MaxArraySize            = {size}" in slurm.run("scontrol", "show", "config").stdout,
            timeout=60,
            what=f"MaxArraySize={size}",
        )

    up(11)
    try:
        yield up
    finally:
        up(1001)


def test_25_task_group_with_corresponding_child_on_max_array_size_11(
    max_array_size_11, run_slurmdag, slurm, shared_tmp
):
    wf = shared_tmp / "split.yaml"
    wf.write_text(
        "name: sd6-split\ndefaults: {walltime: 2}\nallocations:\n"
        f"  - {{name: parent, tasks: 25, entrypoint: 'echo $SLURMDAG_TASK_INDEX > "
        f"{shared_tmp}/p.$SLURMDAG_TASK_INDEX'}}\n"
        f"  - {{name: child, tasks: 25, depends_on: [{{parent: corresponding}}],\n"
        f"      entrypoint: 'cat {shared_tmp}/p.$SLURMDAG_TASK_INDEX > {shared_tmp}/c.$SLURMDAG_TASK_INDEX'}}\n"
    )
    dry = run_slurmdag("submit", "--dry-run", wf)
    assert dry.returncode == 0, dry.stderr
    assert "'parent' (0-24) is split into 3 arrays: the cluster's MaxArraySize is 11" in dry.stdout

    # Another pytest session starting meanwhile runs docker-slurm/up with the default knobs (MaxArraySize=1001);
    # then pre-flight rightly does not split. Set the knob again and retry (twice at most).
    for _ in range(3):
        max_array_size_11(11)
        proc = run_slurmdag("submit", "--json", wf)
        assert proc.returncode == 0, proc.stderr
        jobs = json.loads(proc.stdout)["jobs"]
        if len(jobs) > 2:
            break
        run_slurmdag("cancel", json.loads(proc.stdout)["dag_id"])
    assert set(jobs) == {"parent", "parent+part2", "parent+part3", "child", "child+part2", "child+part3"}
    rows = slurm.wait_until_done(list(jobs.values()), timeout=300)
    assert len(rows) == 50 and {r["State"] for r in rows} == {"COMPLETED"}, rows

    status = json.loads(run_slurmdag("status", "--json", json.loads(proc.stdout)["dag_id"]).stdout)
    assert status["state"] == "Completed"
    groups = {a["name"]: a for a in status["allocations"]}
    assert set(groups) == {"parent", "child"}  # one allocation per group, whatever the number of arrays
    by_id = {r["JobID"]: r for r in rows}
    fmt = "%Y-%m-%dT%H:%M:%S"
    for index in range(25):
        p = next(t for t in groups["parent"]["tasks"] if t["index"] == index)
        c = next(t for t in groups["child"]["tasks"] if t["index"] == index)
        assert p["state"] == c["state"] == "Completed"
        # task N of the child started after task N of the parent ended (Slurm's own times)
        assert datetime.strptime(by_id[c["job_id"]]["Start"], fmt) >= datetime.strptime(by_id[p["job_id"]]["End"], fmt)
        # and each saw the group's own index: child N read parent N's file
        assert (shared_tmp / f"c.{index}").read_text().strip() == str(index)
    assert sorted(int(t["job_id"].split("_")[1]) for t in groups["parent"]["tasks"]) == sorted(
        list(range(11)) * 2 + list(range(3))
    )
