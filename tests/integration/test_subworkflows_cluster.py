"""Sub-workflows on the real cluster: examples/subworkflows/pipeline.yaml uses prep.yaml twice with different
params; Slurm runs both copies, by name (sd-<dag>-prep-a.clean ...), in the right order relative to the rest."""

from __future__ import annotations

import json
import shutil
from datetime import datetime

import pytest

from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration

NAMES = ["fetch", "prep-a.clean", "prep-a.split", "prep-b.clean", "prep-b.split", "train"]
ORDER = [  # (parent, child): the child started only after the parent ended
    ("fetch", "prep-a.clean"),
    ("fetch", "prep-b.clean"),
    ("prep-a.clean", "prep-a.split"),
    ("prep-b.clean", "prep-b.split"),
    ("prep-a.split", "train"),
    ("prep-b.split", "train"),
]


def test_one_sub_workflow_used_twice_runs_both_copies_in_order(slurm, run_slurmdag, shared_tmp):
    folder = shared_tmp / "subworkflows"
    shutil.copytree(REPO / "examples" / "subworkflows", folder)
    proc = run_slurmdag("submit", folder / "pipeline.yaml", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    dag_id, jobs = doc["dag_id"], doc["jobs"]
    assert set(NAMES) <= set(jobs), jobs

    rows = {r["JobIDRaw"]: r for r in slurm.wait_until_done([jobs[n] for n in NAMES], timeout=240)}
    by = {n: rows[jobs[n]] for n in NAMES}
    for name, row in by.items():
        assert row["JobName"] == f"sd-{dag_id}-{name}", row  # visible by name in sacct
        assert row["State"] == "COMPLETED" and row["NodeList"] != "None assigned", row
    for parent, child in ORDER:
        ended, started = datetime.fromisoformat(by[parent]["End"]), datetime.fromisoformat(by[child]["Start"])
        assert started >= ended, f"{child} started at {started}, before {parent} ended at {ended}"

    logs = run_slurmdag("logs", dag_id, "prep-b.clean")
    assert "cleaning imagenet" in logs.stdout, logs.stdout + logs.stderr
    logs = run_slurmdag("logs", dag_id, "prep-a.clean")
    assert "cleaning cifar" in logs.stdout, logs.stdout + logs.stderr

    status = run_slurmdag("status", dag_id, "--graph")
    assert status.returncode == 0, status.stderr
    assert "prep-a.split" in status.stdout and "prep-b.split" in status.stdout
    assert "prep-b  (" in status.stdout.split("sub-workflows:", 1)[1], status.stdout
