"""`on_failure: stop` on the real cluster (Slurm's view): one allocation fails while two siblings run and three
jobs wait; the failing job itself cancels the rest of its DAG before it ends, so the siblings end CANCELLED within
5 s of the failure, nothing waiting ever starts, and no failure handler runs. `status` says Failed and names it."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

pytestmark = pytest.mark.integration

WORKFLOW = """\
name: stop-demo
on_failure: stop
defaults: {{partition: debug, walltime: 3}}
allocations:
  - name: start
    entrypoint: "true"
  - name: bad
    depends_on: [start]
    entrypoint: |
      while [ ! -e {d}/fail-now ]; do sleep 0.2; done
      exit 3
  - name: sib1
    depends_on: [start]
    entrypoint: "sleep 120"
  - name: sib2
    depends_on: [start]
    entrypoint: "sleep 120"
  - name: wait1
    depends_on: [sib1]
    entrypoint: "echo ran >> {d}/ran"
  - name: wait2
    depends_on: [sib2, bad]
    entrypoint: "echo ran >> {d}/ran"
  - name: wait3
    depends_on: [{{sib1: any}}]
    entrypoint: "echo ran >> {d}/ran"
  - name: on-bad-failure
    depends_on: [{{bad: failure}}]
    entrypoint: "echo ran >> {d}/ran"
  - name: on-sib1-failure
    depends_on: [{{sib1: failure}}]
    entrypoint: "echo ran >> {d}/ran"
"""

WAITING = ("wait1", "wait2", "wait3", "on-bad-failure", "on-sib1-failure")


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_a_failure_with_on_failure_stop_cancels_the_whole_dag(slurm, run_slurmdag, shared_tmp):
    wf = shared_tmp / "stop.yaml"
    wf.write_text(WORKFLOW.format(d=shared_tmp))
    proc = run_slurmdag("submit", wf, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    dag_id, jobs = doc["dag_id"], doc["jobs"]

    def both_running():
        rows = {r["JobIDRaw"]: r for r in slurm.squeue([jobs["sib1"], jobs["sib2"], jobs["bad"]])}
        return all(rows.get(jobs[n], {}).get("State") == "RUNNING" for n in ("sib1", "sib2", "bad"))

    slurm.wait_for(both_running, timeout=180, what="bad, sib1 and sib2 running")
    (shared_tmp / "fail-now").write_text("")

    names = ["start", "bad", "sib1", "sib2", *WAITING]
    rows = {r["JobIDRaw"]: r for r in slurm.wait_until_done([jobs[n] for n in names], timeout=180)}
    by = {n: rows[jobs[n]] for n in names}
    assert by["bad"]["State"] == "FAILED" and by["bad"]["ExitCode"] == "3:0", by["bad"]
    failed_at = _time(by["bad"]["End"])
    for sib in ("sib1", "sib2"):
        row = by[sib]
        assert row["State"].startswith("CANCELLED"), row
        assert row["NodeList"] != "None assigned", row  # it was running
        late = (_time(row["End"]) - failed_at).total_seconds()
        print(f"{sib} ended {late} s after the failure (sacct End)")
        assert late <= 5, f"{sib} ended {late} s after the failure"
    for name in WAITING:
        row = by[name]
        assert row["State"].startswith("CANCELLED"), row
        assert row["NodeList"] == "None assigned", f"{name} started: {row}"  # never ran
    assert not (shared_tmp / "ran").exists(), "a waiting job or a failure handler ran"

    status = run_slurmdag("status", dag_id, "--json")
    assert status.returncode == 0, status.stderr
    st = json.loads(status.stdout)
    assert st["state"] == "Failed" and st["stopped_by"] == "bad", st
    states = {a["name"]: a["state"] for a in st["allocations"]}
    assert states["bad"] == "Failed" and states["start"] == "Completed"
    assert all(states[n] == "Cancelled" for n in ("sib1", "sib2", *WAITING)), states
    table = run_slurmdag("status", dag_id).stdout
    assert "Failed (stopped by bad)" in table, table
