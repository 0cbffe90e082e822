"""Resume of a DAG whose finished jobs are gone from slurmctld's memory (MinJobAge=2): Slurm 22.05 would silently
drop a dependency on such an id and start the child at once (slurm-facts.md §2 #20). The resume depends on no old
id, so nothing runs before its real parents complete. The tests share one MinJobAge=2 window: the module restarts the
shared cluster twice."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime

import pytest

from tests.integration.conftest import DOCKER_SLURM

pytestmark = [pytest.mark.integration, pytest.mark.restarts_cluster]

WORKFLOW = """\
name: resume-purged
defaults: {{partition: debug, walltime: 2}}
allocations:
  - name: a
    entrypoint: "echo run >> {d}/a.runs"
  - name: b
    entrypoint: |
      echo run >> {d}/b.runs
      if [ ! -e {d}/b.failed-once ]; then touch {d}/b.failed-once; exit 5; fi
      sleep 4
    depends_on: [a]
  - name: c
    entrypoint: "echo run >> {d}/c.runs"
    depends_on: [b]
"""


@pytest.fixture(scope="module")
def short_min_job_age(slurm):
    def up(age: str) -> None:
        proc = subprocess.run(
            [str(DOCKER_SLURM / "up")],
            env={**os.environ, "SLURM_MIN_JOB_AGE": age},
            text=True,
            capture_output=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        slurm.wait_for(lambda: slurm.run("scontrol", "ping", check=False).returncode == 0, 60, "slurmctld up")

    up("2")
    try:
        yield
    finally:
        up("300")


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_resume_after_purge_runs_nothing_before_its_parents(slurm, run_slurmdag, shared_tmp, short_min_job_age):
    assert "MinJobAge               = 2 sec" in slurm.run("scontrol", "show", "config").stdout
    wf = shared_tmp / "purged.yaml"
    wf.write_text(WORKFLOW.format(d=shared_tmp))
    proc = run_slurmdag("submit", wf, "--json")
    assert proc.returncode == 0, proc.stderr
    sub = json.loads(proc.stdout)
    dag_id, first = sub["dag_id"], sub["jobs"]
    slurm.wait_for(lambda: (shared_tmp / "b.failed-once").exists(), 60, "b to fail once")
    # every job of the first attempt ends, then disappears from slurmctld's memory
    slurm.wait_for(lambda: not slurm.squeue([sub["jobs"][n] for n in "abc"]), 90, "the first attempt to be purged")

    proc = run_slurmdag("resume", dag_id, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    resumed = json.loads(proc.stdout)
    assert sorted(resumed["jobs"]) == ["b", "c"]  # a completed: kept, and depended on by nobody new
    new_ids = [resumed["jobs"]["b"], resumed["jobs"]["c"]]
    slurm.wait_until_done(new_ids)
    # slurmdbd may record the final state a moment before the times
    rows = slurm.wait_for(
        lambda: (
            lambda got: (
                got if len(got) == 2 and all("None" not in (r["Start"], r["End"]) for r in got.values()) else None
            )
        )({r["JobIDRaw"]: r for r in slurm.sacct(new_ids)}),
        30,
        "start/end times in accounting",
    )
    b, c = rows[resumed["jobs"]["b"]], rows[resumed["jobs"]["c"]]
    assert b["State"] == c["State"] == "COMPLETED"
    assert when(c["Start"]) >= when(b["End"]), (b, c)  # c waited for the re-run b (which slept 4 s)
    assert [(shared_tmp / f"{n}.runs").read_text().count("run") for n in "abc"] == [1, 2, 1]
    old = {r["JobIDRaw"]: r for r in slurm.sacct([first[n] for n in "abc"])}
    assert old[first["a"]]["State"] == "COMPLETED" and old[first["b"]]["State"] == "FAILED"
    assert old[first["c"]]["NodeList"] == "None assigned"  # the old c never ran

    status = json.loads(run_slurmdag("status", dag_id, "--json").stdout)
    assert status["state"] == "Completed" and status["attempts"] == 2, status


CASCADE = """\
name: purged-split-task
defaults: {partition: debug, walltime: 2}
allocations:
  - {name: p-fail, entrypoint: "exit 3"}
  - {name: g, entrypoint: "true", tasks: 2, depends_on: [p-fail]}
  - {name: c, entrypoint: "true", tasks: 2, depends_on: [{g: corresponding}]}
"""


def test_status_after_purge_shows_never_started_tasks_cancelled(slurm, run_slurmdag, tmp_path, short_min_job_age):
    """Slurm 24.11+ keeps no accounting row for an array task split off while pending (here by `corresponding`) and
    cancelled before it started; once slurmctld has purged it, status must still call it Cancelled, not Unknown."""
    wf = tmp_path / "cascade.yaml"
    wf.write_text(CASCADE)
    proc = run_slurmdag("submit", wf, "--json")
    assert proc.returncode == 0, proc.stderr
    sub = json.loads(proc.stdout)
    ids = list(sub["jobs"].values())
    slurm.wait_for(lambda: not slurm.squeue(ids), 90, "the DAG to end and be purged from slurmctld")
    # Slurm's own view: nothing of g and c ever ran
    acct = slurm.wait_for(lambda: [r for r in slurm.sacct(ids) if r["JobIDRaw"] != sub["jobs"]["p-fail"]], 30, "sacct")
    assert all(r["NodeList"] == "None assigned" for r in acct), acct

    status = json.loads(run_slurmdag("status", sub["dag_id"], "--json").stdout)
    allocs = {a["name"]: a for a in status["allocations"]}
    for name in ("g", "c"):
        assert allocs[name]["state"] == "Cancelled", allocs[name]
        assert [t["state"] for t in allocs[name]["tasks"]] == ["Cancelled", "Cancelled"], allocs[name]
    assert status["state"] == "Failed" and not any("unknown" in n for n in status.get("notes", [])), status
