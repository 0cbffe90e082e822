"""`retries: N` on the real cluster: a failing run is retried inside the job, dependents wait for the final outcome
and are never cancelled, and `status` shows how many runs it took."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration

WORKFLOW = """\
name: retries-demo
defaults: {{partition: debug, walltime: 2}}
allocations:
  - name: flaky
    retries: 2
    entrypoint: |
      echo run >> {d}/flaky.runs
      [ "$(wc -l < {d}/flaky.runs)" -ge 3 ]
  - name: after
    entrypoint: "echo run >> {d}/after.runs"
    depends_on: [flaky]
"""


def test_retries_two_failures_then_success(slurm, run_slurmdag, shared_tmp):
    wf = shared_tmp / "retries.yaml"
    wf.write_text(WORKFLOW.format(d=shared_tmp))
    proc = run_slurmdag("submit", wf, "--json", "--watch")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    dag_id = json.loads(proc.stdout.split("\n}\n", 1)[0] + "\n}")["dag_id"]
    jobs = json.loads(proc.stdout.split("\n}\n", 1)[0] + "\n}")["jobs"]

    rows = {r["JobIDRaw"]: r for r in slurm.wait_until_done([jobs["flaky"], jobs["after"]])}
    # Slurm's view: one job each, both completed; the dependent ran and was never cancelled
    assert rows[jobs["flaky"]]["State"] == "COMPLETED"
    assert rows[jobs["after"]]["State"] == "COMPLETED" and rows[jobs["after"]]["NodeList"] != "None assigned"
    assert (shared_tmp / "flaky.runs").read_text().count("run") == 3
    assert (shared_tmp / "after.runs").read_text().count("run") == 1

    status = run_slurmdag("status", dag_id, "--json")
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["state"] == "Completed"
    flaky = next(a for a in doc["allocations"] if a["name"] == "flaky")
    assert flaky["retry"] == {"attempt": 3, "of": 3, "exit_code": 0}
    table = run_slurmdag("status", dag_id).stdout
    assert "attempt 3 of 3" in table
