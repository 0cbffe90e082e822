"""auto_array on the real cluster (issue 16): siblings packed into one array job, read from Slurm's own view.

* 1 -> 100 -> 1 with 100 distinct allocations of identical options: sacct holds exactly 3 jobs plus the gate for the
  DAG (the 100 are the tasks of one array), every task ran its own command, `status` names each allocation.
* The same fan-out where member 42 fails: exactly its own children are cancelled (its `success` child and the sink),
  its `failure` handler runs, its siblings' children run; `cancel --allocation` stops one packed member alone.
The RPC count (sdiag REQUEST_SUBMIT_BATCH_JOB, packed vs not) is measured cleanly in benchmarks/bench_auto_array.py:
other tests submit to the same cluster at the same time, so here the DAG's own jobs are counted in sacct instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

N = 100
REPO = Path(__file__).resolve().parents[2]


def fan_workflow(name: str, out_dir: str, fail: int | None = None, handlers: bool = False) -> str:
    lines = [
        f"name: {name}",
        "auto_array: true",
        "defaults: {partition: debug, walltime: 5, cpus_per_task: 1}",
        "allocations:",
        "  - {name: first, entrypoint: 'true'}",
    ]
    for i in range(N):
        command = f"echo {i} > {out_dir}/m{i:03d}.txt"
        if i == fail:  # fails the first time only: `resume` then completes it
            command = f"if [ -e {out_dir}/again ]; then {command}; else touch {out_dir}/again; exit 42; fi"
        lines.append(f"  - {{name: m{i:03d}, entrypoint: '{command}', depends_on: [first]}}")
    lines.append("  - name: last\n    entrypoint: 'true'\n    depends_on:")
    lines += [f"      - m{i:03d}" for i in range(N)]
    if handlers:
        for i in (41, 42, 43):
            lines.append(f"  - {{name: k{i:03d}, entrypoint: 'true', depends_on: [m{i:03d}]}}")
        lines.append("  - {name: h042, entrypoint: 'true', depends_on: [{m042: failure}]}")
        lines.append("  - {name: h041, entrypoint: 'true', depends_on: [{m041: failure}]}")
    return "\n".join(lines) + "\n"


def _dag_rows(slurm, dag_id: str) -> list[dict]:
    """Every job and array task sacct holds under the DAG's job-name prefix."""
    out = slurm.run("sacct", "-X", "-n", "-P", "-S", "now-2hours", "-o", "JobID,JobIDRaw,JobName,State,NodeList")
    rows = [
        dict(zip(["JobID", "JobIDRaw", "JobName", "State", "NodeList"], line.split("|"), strict=True))
        for line in out.stdout.splitlines()
        if line.strip()
    ]
    return [r for r in rows if r["JobName"].startswith(f"sd-{dag_id}-")]


def _status(run_slurmdag, dag_id: str) -> dict:
    st = run_slurmdag("status", dag_id, "--json")
    assert st.returncode == 0, st.stderr
    return {a["name"]: a for a in json.loads(st.stdout)["allocations"]}


def _ran(row: dict) -> bool:
    return row["NodeList"] not in ("None assigned", "")


def test_one_hundred_siblings_are_one_array_job(slurm, run_slurmdag, tmp_path, shared_tmp):
    wf = tmp_path / "fan.yaml"
    wf.write_text(fan_workflow("fan-100", str(shared_tmp)))
    compiled = run_slurmdag("compile", str(wf), "-o", str(tmp_path / "build"))
    assert compiled.returncode == 0, compiled.stderr
    assert "packed 100 allocations into array job m000+array" in compiled.stdout

    sub = run_slurmdag("submit", str(wf), "--json")
    assert sub.returncode == 0, sub.stderr
    submitted = json.loads(sub.stdout)
    dag_id, jobs = submitted["dag_id"], submitted["jobs"]
    array_id = jobs["m000+array"]
    assert jobs["m042"] == f"{array_id}_42"
    slurm.wait_until_done([jobs["first"], array_id, jobs["last"]], timeout=300)

    # Slurm's own view: the DAG is 3 jobs (first, the array, last) plus the gate; the array has 100 tasks.
    rows = slurm.wait_for(
        lambda: (r := _dag_rows(slurm, dag_id)) and len(r) == 3 + N and all(x["State"] == "COMPLETED" for x in r) and r,
        120,
        "sacct to record every job of the DAG as COMPLETED",
    )
    jobs_in_slurm = {r["JobID"].split("_")[0] for r in rows}
    assert len(jobs_in_slurm) == 4, sorted(jobs_in_slurm)
    tasks = sorted(int(r["JobID"].split("_")[1]) for r in rows if "_" in r["JobID"])
    assert tasks == list(range(N))
    assert {r["JobName"] for r in rows} == {f"sd-{dag_id}-{n}" for n in ("+gate", "first", "m000+array", "last")}
    # each task ran its own allocation's command
    for i in range(N):
        assert (shared_tmp / f"m{i:03d}.txt").read_text().strip() == str(i)
    # and slurmdag speaks in allocation names
    labels = _status(run_slurmdag, dag_id)
    assert all(labels[f"m{i:03d}"]["state"] == "Completed" for i in range(N))
    assert labels["m042"]["job_id"] == f"{array_id}_42"
    assert "m000+array" not in labels


def test_member_42_failing_cancels_exactly_its_own_children(slurm, run_slurmdag, tmp_path, shared_tmp):
    wf = tmp_path / "fan42.yaml"
    wf.write_text(fan_workflow("fan-42", str(shared_tmp), fail=42, handlers=True))
    sub = run_slurmdag("submit", str(wf), "--json")
    assert sub.returncode == 0, sub.stderr
    submitted = json.loads(sub.stdout)
    dag_id, jobs = submitted["dag_id"], submitted["jobs"]
    array_id = jobs["m000+array"]
    singles = [jobs[n] for n in ("first", "last", "k041", "k042", "k043", "h041", "h042")]
    # children that cannot run are cancelled by Slurm (--kill-on-invalid-dep), so everything ends
    slurm.wait_until_done([array_id, *singles], timeout=300)
    acct = slurm.wait_for(
        lambda: (
            (a := {r["JobID"]: r for r in slurm.sacct([array_id, *singles])})
            and all(j in a for j in [*singles, *(f"{array_id}_{i}" for i in range(N))])
            and a
        ),
        120,
        "sacct to record every job and task",
    )
    state = {jid: r["State"].split()[0] for jid, r in acct.items()}
    assert state[f"{array_id}_42"] == "FAILED"
    assert [i for i in range(N) if state[f"{array_id}_{i}"] != "COMPLETED"] == [42]
    # exactly m042's own children did not run: its success child and the sink; its failure handler ran
    assert state[jobs["k042"]] == "CANCELLED" and not _ran(acct[jobs["k042"]])
    assert state[jobs["last"]] == "CANCELLED" and not _ran(acct[jobs["last"]])
    assert state[jobs["h042"]] == "COMPLETED" and _ran(acct[jobs["h042"]])
    # siblings' children ran; a sibling's failure handler is skipped (its parent completed)
    assert state[jobs["k041"]] == "COMPLETED" and state[jobs["k043"]] == "COMPLETED"
    assert state[jobs["h041"]] == "CANCELLED" and not _ran(acct[jobs["h041"]])

    labels = _status(run_slurmdag, dag_id)
    assert labels["m042"]["state"] == "Failed" and labels["m042"]["exit_code"] == 42
    assert labels["k042"]["state"] == "Cancelled" and labels["last"]["state"] == "Cancelled"
    assert labels["h042"]["state"] == "Completed" and labels["h041"]["state"] == "Skipped"
    assert labels["k041"]["state"] == labels["k043"]["state"] == "Completed"
    assert [n for n, a in labels.items() if n.startswith("m") and a["state"] != "Completed"] == ["m042"]

    # resume re-runs m042 (as a job of its own) and what its failure cancelled; the rest is kept
    resumed = run_slurmdag("resume", dag_id)
    assert resumed.returncode == 0, resumed.stderr
    labels = slurm.wait_for(
        lambda: (a := _status(run_slurmdag, dag_id))["last"]["state"] not in ("Pending", "Running", "Cancelled") and a,
        240,
        "the resumed allocations to end",
    )
    assert labels["m042"]["state"] == "Completed" and "_" not in labels["m042"]["job_id"]
    assert labels["k042"]["state"] == labels["last"]["state"] == "Completed"
    assert labels["m041"]["job_id"] == f"{array_id}_41"  # kept from the first attempt
    # slurmdbd may record a job's end before its name (JobName "allocation" for a few seconds): wait for the name
    rerun = slurm.wait_for(
        lambda: [r["JobName"] for r in slurm.sacct([labels["m042"]["job_id"]]) if r["JobName"] != "allocation"],
        60,
        "sacct to record the re-run's job name",
    )
    assert rerun == [f"sd-{dag_id}-m042"]
    assert (shared_tmp / "m042.txt").read_text().strip() == "42"


def test_cancel_allocation_stops_one_packed_member(slurm, run_slurmdag, tmp_path):
    wf = tmp_path / "three.yaml"
    wf.write_text(
        "name: three\nauto_array: true\ndefaults: {partition: debug, walltime: 5, cpus_per_task: 1}\nallocations:\n"
        "  - {name: a, entrypoint: 'sleep 240'}\n"
        "  - {name: b, entrypoint: 'sleep 240'}\n"
        "  - {name: c, entrypoint: 'sleep 240'}\n"
        "  - {name: b-next, entrypoint: 'true', depends_on: [b]}\n"
        "  - {name: b-failed, entrypoint: 'true', depends_on: [{b: failure}]}\n"
    )
    sub = run_slurmdag("submit", str(wf), "--json")
    assert sub.returncode == 0, sub.stderr
    submitted = json.loads(sub.stdout)
    dag_id, jobs = submitted["dag_id"], submitted["jobs"]
    assert jobs["b"] == f"{jobs['a+array']}_1"
    slurm.wait_for(
        lambda: {r["JobID"]: r["State"] for r in slurm.squeue([jobs["a+array"]])}.get(jobs["b"]) == "RUNNING",
        180,
        "packed member b to run",
    )
    cancel = run_slurmdag("cancel", dag_id, "--allocation", "b")
    assert cancel.returncode == 0, cancel.stderr
    slurm.wait_until_done([jobs["b"], jobs["b-next"], jobs["b-failed"]], timeout=120)
    live = {r["JobID"]: r["State"] for r in slurm.squeue([jobs["a+array"]])}
    assert live[jobs["a"]] == "RUNNING" and live[jobs["c"]] == "RUNNING"  # only task 1 was cancelled
    labels = _status(run_slurmdag, dag_id)
    assert labels["b"]["state"] == "Cancelled"
    assert labels["b-next"]["state"] == "Cancelled" and labels["b-failed"]["state"] == "Cancelled"
    assert labels["a"]["state"] == labels["c"]["state"] == "Running"
    whole = run_slurmdag("cancel", dag_id)
    assert whole.returncode == 0, whole.stderr
    slurm.wait_until_done([jobs["a+array"]], timeout=120)
    labels = _status(run_slurmdag, dag_id)
    assert labels["a"]["state"] == labels["c"]["state"] == "Cancelled"


def test_the_documented_example_runs(slurm, run_slurmdag, tmp_path):
    """examples/auto-array.yaml (docs/workflow-format.md): the four regions as one array job, each its own output."""
    sub = run_slurmdag("submit", str(REPO / "examples" / "auto-array.yaml"), "--json", cwd=str(tmp_path))
    assert sub.returncode == 0, sub.stderr
    submitted = json.loads(sub.stdout)
    jobs = submitted["jobs"]
    assert [jobs[f"region-{r}"] for r in ("eu", "us", "asia", "africa")] == [
        f"{jobs['region-eu+array']}_{i}" for i in range(4)
    ]
    slurm.wait_until_done(sorted({j.split("_")[0] for j in jobs.values()}), timeout=300)
    labels = _status(run_slurmdag, submitted["dag_id"])
    assert {n: a["state"] for n, a in labels.items()} == {
        "prepare": "Completed",
        "region-eu": "Completed",
        "region-us": "Completed",
        "region-asia": "Completed",
        "region-africa": "Completed",
        "region-big": "Completed",
        "us-failed": "Skipped",
        "merge": "Completed",
    }
    assert sorted((tmp_path / "out").iterdir()) == sorted(
        tmp_path / "out" / f"{r}.txt" for r in ("eu", "us", "asia", "africa", "big")
    )
    assert (tmp_path / "out" / "africa.txt").read_text() == "africa\n"
    assert (tmp_path / "out" / "asia.txt").read_text() == "asia\n"
