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


TIMEOUT_WORKFLOW = """\
name: stop-timeout
on_failure: stop
defaults: {{partition: debug, walltime: 5}}
allocations:
  - name: slow
    walltime: 1
    entrypoint: "sleep 300"
  - name: sib
    entrypoint: "sleep 300"
  - name: after-slow
    depends_on: [{{slow: any}}]
    entrypoint: "echo ran >> {d}/ran-timeout"
  - name: on-slow-failure
    depends_on: [{{slow: failure}}]
    entrypoint: "echo ran >> {d}/ran-timeout"
"""


def test_a_timeout_with_on_failure_stop_cancels_the_whole_dag(slurm, run_slurmdag, shared_tmp):
    """Slurm's SIGTERM at the time limit runs the job's trap with a stale exit status; the job asks Slurm how it is
    ending (Reason=TimeLimit) and stops the DAG all the same."""
    wf = shared_tmp / "stop-timeout.yaml"
    wf.write_text(TIMEOUT_WORKFLOW.format(d=shared_tmp))
    proc = run_slurmdag("submit", wf, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    names = ["slow", "sib", "after-slow", "on-slow-failure"]
    rows = {r["JobIDRaw"]: r for r in slurm.wait_until_done([doc["jobs"][n] for n in names], timeout=300)}
    by = {n: rows[doc["jobs"][n]] for n in names}
    assert by["slow"]["State"] == "TIMEOUT", by["slow"]
    assert by["sib"]["State"].startswith("CANCELLED") and by["sib"]["NodeList"] != "None assigned", by["sib"]
    late = (_time(by["sib"]["End"]) - _time(by["slow"]["End"])).total_seconds()
    print(f"sib ended {late} s after slow timed out (sacct End)")
    assert late <= 5, f"sib ended {late} s after the timeout"
    for name in ("after-slow", "on-slow-failure"):
        assert by[name]["State"].startswith("CANCELLED") and by[name]["NodeList"] == "None assigned", by[name]
    assert not (shared_tmp / "ran-timeout").exists()
    st = json.loads(run_slurmdag("status", doc["dag_id"], "--json").stdout)
    assert st["state"] == "Failed" and st["stopped_by"] == "slow", st


CANCEL_WORKFLOW = """\
name: stop-cancel-one
on_failure: stop
defaults: {partition: debug, walltime: 3}
allocations:
  - name: long
    entrypoint: "sleep 300"
  - name: other
    entrypoint: "sleep 15"
"""


def test_cancelling_one_stop_allocation_does_not_stop_the_dag(slurm, run_slurmdag, shared_tmp):
    wf = shared_tmp / "stop-cancel-one.yaml"
    wf.write_text(CANCEL_WORKFLOW)
    proc = run_slurmdag("submit", wf, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    jobs = doc["jobs"]

    def running():
        rows = {r["JobIDRaw"]: r["State"] for r in slurm.squeue([jobs["long"], jobs["other"]])}
        return rows.get(jobs["long"]) == "RUNNING" and rows.get(jobs["other"]) == "RUNNING"

    slurm.wait_for(running, timeout=180, what="long and other running")
    cancel = run_slurmdag("cancel", doc["dag_id"], "--allocation", "long")
    assert cancel.returncode == 0, cancel.stdout + cancel.stderr
    rows = {r["JobIDRaw"]: r for r in slurm.wait_until_done([jobs["long"], jobs["other"]], timeout=180)}
    assert rows[jobs["long"]]["State"].startswith("CANCELLED"), rows
    assert rows[jobs["other"]]["State"] == "COMPLETED", rows  # a user's cancel is not a failure: nothing stopped
