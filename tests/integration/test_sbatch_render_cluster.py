"""One renderer for a job's sbatch options, checked against Slurm itself: the batch script Slurm stored for each job
(`scontrol write batch_script`) names the job as Slurm shows it and asks for the time limit Slurm applied; join jobs
and the gate write to /dev/null, so a DAG with a join job leaves nothing in the directory it was submitted from."""

from __future__ import annotations

import json
import os
import re

import pytest

pytestmark = pytest.mark.integration

WORKFLOW = """\
name: render-check
defaults: {partition: debug, walltime: 7}
allocations:
  - {name: a, entrypoint: 'true'}
  - {name: b, entrypoint: 'false'}
  - {name: c, entrypoint: 'true', walltime: 1d2h}
  - {name: m, entrypoint: 'true', depends_on: [c], depends_on_any: [a, b]}
"""


def _show(slurm, job_id: str) -> dict[str, str]:
    out = slurm.run("scontrol", "show", "job", "-o", job_id).stdout
    return dict(word.split("=", 1) for word in out.split() if "=" in word)


def _stored_block(slurm, job_id: str) -> dict[str, str]:
    """The #SBATCH block of the script Slurm keeps for a job (what was submitted, as Slurm received it)."""
    text = slurm.run("scontrol", "write", "batch_script", job_id, "-").stdout
    block = {}
    for line in text.splitlines()[1:]:
        if not line.startswith("#"):
            break
        m = re.match(r"#SBATCH --([a-z-]+)(?:=(.*))?$", line)
        if m:
            block[m.group(1)] = m.group(2)
    return block


def test_a_dag_with_a_join_job_leaves_nothing_in_the_submit_dir(slurm, run_slurmdag, tmp_path):
    submit_dir = tmp_path / "submit-here"
    submit_dir.mkdir()
    wf = tmp_path / "wf.yaml"
    wf.write_text(WORKFLOW, encoding="utf-8")
    sub = run_slurmdag("submit", wf, "--json", cwd=submit_dir)
    assert sub.returncode == 0, sub.stderr
    doc = json.loads(sub.stdout)
    dag, jobs = doc["dag_id"], doc["jobs"]
    assert "m+any" in jobs  # depends_on + depends_on_any: the OR goes through a join job

    # while Slurm still holds them: what it applied, and the script it stored, agree for every job
    for name, job_id in jobs.items():
        shown = _show(slurm, job_id)
        block = _stored_block(slurm, job_id)
        assert shown["JobName"] == block["job-name"] == f"sd-{dag}-{name}", (name, shown["JobName"], block)
        assert block["comment"] == f"slurmdag:{dag}:{name}"
        assert shown["TimeLimit"] == {"c": "1-02:00:00", "m+any": "00:01:00"}.get(name, "00:07:00")
        assert block["time"] == {"c": "1-02:00:00", "m+any": "00:01:00"}.get(name, "00:07:00")
        if name == "m+any":
            assert shown["StdOut"] == shown["StdErr"] == block["output"] == block["error"] == "/dev/null"
        else:
            assert block["output"].endswith(f"/logs/{name}_%j.out")  # the DAG's log folder, not the submit dir
            assert shown["StdOut"] == block["output"].replace("%j", job_id)  # Slurm expands %j itself

    rows = slurm.wait_until_done(list(jobs.values()))
    states = {r["JobID"]: r["State"] for r in rows}
    assert states[jobs["m+any"]] == "COMPLETED" and states[jobs["m"]] == "COMPLETED", states
    assert os.listdir(submit_dir) == []  # no slurm-<id>.out from the join job (or anything else)
