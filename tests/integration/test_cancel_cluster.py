"""`slurmdag cancel` of a running DAG on the real cluster: everything ends CANCELLED quickly and neither the
`failure` nor the `any` handler ever starts (Slurm's view: sacct NodeList "None assigned")."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime

import pytest

pytestmark = pytest.mark.integration

ALL_STATES = "BF,CA,CD,DL,F,NF,OOM,PD,PR,R,RQ,RS,RV,S,TO"
ACTIVE = {"PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "REQUEUED"}


@pytest.fixture
def cluster(slurm):
    """The environment for Slurm commands on the local test cluster (conftest brings it up)."""
    return slurm.env()


def sd(env, home, *args):
    return subprocess.run(
        [sys.executable, "-m", "slurmdag", *args],
        env={**env, "SLURMDAG_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def squeue(env, prefix):
    out = subprocess.run(
        ["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T|%j"], env=env, capture_output=True, text=True, check=True
    ).stdout
    return [
        dict(job_id=i, state=s, name=n[len(prefix) :])
        for i, s, n in (ln.split("|", 2) for ln in out.splitlines())
        if n.startswith(prefix)
    ]


def sacct(env, prefix, since):
    out = subprocess.run(
        [
            "sacct",
            "-X",
            "-n",
            "-P",
            "-o",
            "JobID,State,NodeList,End,JobName",
            "-S",
            since,
            "-E",
            "now",
            "-s",
            ALL_STATES,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [
        dict(job_id=i, state=s, nodes=n, end=e, name=name[len(prefix) :])
        for i, s, n, e, name in (ln.split("|", 4) for ln in out.splitlines())
        if name.startswith(prefix)
    ]


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    delay = 0.2
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 2)


WORKFLOW = """\
name: cancel-me
defaults:
  partition: debug
  walltime: 5
allocations:
  - name: train
    entrypoint: "sleep 120"
  - name: shards
    tasks: 3
    entrypoint: "sleep 120"
  - name: evaluate
    entrypoint: "sleep 120"
    depends_on: [train, shards]
  - name: on-failure
    entrypoint: "echo failed"
    depends_on: [{train: failure}]
  - name: always
    entrypoint: "echo cleanup"
    depends_on: [{train: any}]
"""


def test_cancel_running_dag_stops_everything_and_no_handler_starts(cluster, tmp_path):
    env, home = cluster, tmp_path / "home"
    wf = tmp_path / "wf.yaml"
    wf.write_text(WORKFLOW)
    since = datetime.now().strftime("%Y-%m-%dT%H:%M:%S")
    sub = sd(env, home, "submit", str(wf), "--json")
    assert sub.returncode == 0, sub.stderr
    dag, jobs = json.loads(sub.stdout)["dag_id"], json.loads(sub.stdout)["jobs"]
    prefix = f"sd-{dag}-"
    wait_for(
        lambda: {j["name"] for j in squeue(env, prefix) if j["state"] == "RUNNING"} >= {"train", "shards"},
        120,
        "train and the shards to run",
    )

    dry = sd(env, home, "cancel", dag, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    would = {j["name"]: j["job_id"] for j in json.loads(dry.stdout)["jobs"]}
    assert would == {n: jobs[n] for n in ("train", "shards", "evaluate", "on-failure", "always")}
    assert {j["state"] for j in squeue(env, prefix) if j["name"] != "+gate"} <= {"RUNNING", "PENDING"}  # untouched

    started = datetime.now().replace(microsecond=0)
    res = sd(env, home, "cancel", dag)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"Cancelled 5 job(s) of DAG {dag}" in res.stdout

    # Slurm's view right after the command returned: nothing of the DAG is pending or running any more.
    live = squeue(env, prefix)
    assert not [j for j in live if j["state"] in ACTIVE]
    assert {j["state"] for j in live if j["name"] != "+gate"} == {"CANCELLED"}
    acct = wait_for(
        lambda: (
            (r := sacct(env, prefix, since))
            and len(r) == 8
            and all(x["state"].startswith("CANCELLED") for x in r if x["name"] != "+gate")
            and r
        ),
        30,
        "sacct to show every job cancelled",
    )
    by_name = {}
    for row in acct:
        by_name.setdefault(row["name"], []).append(row)
    for handler in ("on-failure", "always", "evaluate"):
        assert by_name[handler][0]["nodes"] == "None assigned", by_name[handler]  # never started
    for row in acct:
        if row["name"] != "+gate":
            ended = datetime.fromisoformat(row["end"])
            assert (ended - started).total_seconds() <= 5, row

    st = sd(env, home, "status", dag, "--json")
    assert json.loads(st.stdout)["state"] == "Cancelled"
    again = sd(env, home, "cancel", dag)
    assert again.returncode == 0 and "nothing to cancel" in again.stdout


PACKED = """\
name: cancel-one-packed
auto_array: true
defaults: {partition: debug, walltime: 2}
allocations:
  - {name: first, entrypoint: "sleep 60"}
  - {name: s1, entrypoint: "true", depends_on: [first]}
  - {name: s2, entrypoint: "true", depends_on: [first]}
  - {name: s3, entrypoint: "true", depends_on: [first]}
"""


def test_cancelling_one_pending_packed_allocation_cancels_that_array_task_only(cluster, tmp_path):
    """docs/compatibility.md row 14: s1-s3 are packed into one array job whose tasks wait, not yet split off, on
    `first`; `cancel --allocation s2` must cancel task `<array>_1` alone (pyslurm 25.11 has no call that takes such
    an id: Job(id).cancel() would take the whole array, and the task has no job id of its own yet)."""
    env, home = cluster, tmp_path / "home"
    wf = tmp_path / "wf.yaml"
    wf.write_text(PACKED)
    sub = sd(env, home, "submit", str(wf), "--json")
    assert sub.returncode == 0, sub.stderr
    dag, jobs = json.loads(sub.stdout)["dag_id"], json.loads(sub.stdout)["jobs"]
    prefix = f"sd-{dag}-"
    array = jobs["s1"].split("_")[0]
    assert [jobs[n] for n in ("s1", "s2", "s3")] == [f"{array}_{i}" for i in range(3)], jobs  # packed
    try:
        pending = lambda: {j["job_id"] for j in squeue(env, prefix) if j["state"] == "PENDING"}  # noqa: E731
        wait_for(lambda: {jobs["s1"], jobs["s2"], jobs["s3"]} <= pending(), 60, "the packed tasks to wait")
        res = sd(env, home, "cancel", dag, "--allocation", "s2")
        assert res.returncode == 0, res.stdout + res.stderr
        # Slurm's view: s2's task is no longer waiting (24.11+ drop such a task from squeue), its siblings still are
        live = {j["job_id"]: j["state"] for j in squeue(env, prefix)}
        assert live.get(jobs["s2"], "CANCELLED") == "CANCELLED", live
        assert live[jobs["s1"]] == live[jobs["s3"]] == "PENDING", live
        assert live[jobs["first"]] in ("PENDING", "RUNNING"), live
    finally:
        sd(env, home, "cancel", dag)
