"""A DAG with success edges, a task group and a failure handler runs to completion on the real cluster in
dependency order, and `status` (table, --json, --graph) agrees with Slurm's own accounting."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime

import pytest

pytestmark = pytest.mark.integration


# --- small helpers: talk to Slurm directly, so assertions rest on Slurm's view, not on slurmdag's ---


@pytest.fixture
def cluster(slurm):
    """The environment for Slurm commands on the local test cluster (conftest brings it up)."""
    return slurm.env()


def sd(env, home, *args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "slurmdag", *args],
        env={**env, "SLURMDAG_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def sacct(env, prefix, since):
    out = subprocess.run(
        [
            "sacct",
            "-X",
            "-n",
            "-P",
            "-o",
            "JobID,State,ExitCode,Start,End,NodeList,JobName",
            "-S",
            since,
            "-E",
            "now",
            "-s",
            "BF,CA,CD,DL,F,NF,OOM,PD,PR,R,RQ,RS,RV,S,TO",
        ],  # -s: else never-eligible jobs are left out
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = []
    for line in out.splitlines():
        job_id, state, exit_code, start, end, nodes, name = line.split("|", 6)
        if name.startswith(prefix):
            rows.append(
                dict(
                    job_id=job_id,
                    state=state,
                    exit_code=exit_code,
                    start=start,
                    end=end,
                    nodes=nodes,
                    name=name[len(prefix) :],
                )
            )
    return rows


def squeue(env, prefix):
    out = subprocess.run(
        ["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T|%j"], env=env, capture_output=True, text=True, check=True
    ).stdout
    return [
        dict(job_id=i, state=s, name=n[len(prefix) :])
        for i, s, n in (ln.split("|", 2) for ln in out.splitlines())
        if n.startswith(prefix)
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


def slurm_now(env):
    return datetime.now().strftime("%Y-%m-%dT%H:%M:%S")


WORKFLOW = """\
name: status-demo
defaults:
  partition: debug
  walltime: 5
allocations:
  - name: prep
    entrypoint: "sleep 1"
  - name: shards
    tasks: 4
    entrypoint: "sleep 1; echo shard $SLURM_ARRAY_TASK_ID"
    depends_on: [prep]
  - name: merge
    entrypoint: "sleep 1"
    depends_on: [shards]
  - name: report
    entrypoint: "exit 0"
    depends_on: [prep, merge]
  - name: on-failure
    entrypoint: "echo prep failed"
    depends_on: [{prep: failure}]
"""

FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL"}
NODE_STATE = {"COMPLETED": "Completed", "FAILED": "Failed", "TIMEOUT": "Timeout", "CANCELLED": "Cancelled"}


def test_dag_runs_in_dependency_order_and_status_matches_sacct(cluster, tmp_path):
    env, home = cluster, tmp_path / "home"
    wf = tmp_path / "wf.yaml"
    wf.write_text(WORKFLOW)
    since = slurm_now(env)
    sub = sd(env, home, "submit", str(wf), "--json")
    assert sub.returncode == 0, sub.stderr
    submitted = json.loads(sub.stdout)
    dag, jobs = submitted["dag_id"], submitted["jobs"]
    assert sorted(jobs) == ["merge", "on-failure", "prep", "report", "shards"]
    prefix = f"sd-{dag}-"

    # Slurm's view: the tags are on every job, and the DAG drains.
    wait_for(
        lambda: all(j["state"] in FINAL for j in squeue(env, prefix)) and len(squeue(env, prefix)) >= 9,
        180,
        "the DAG to finish in squeue",
    )
    rows = wait_for(
        lambda: (
            (r := sacct(env, prefix, since)) and all(x["state"].split()[0] in FINAL for x in r) and len(r) == 9 and r
        ),
        60,
        "sacct to catch up",
    )
    by_name = {}
    for r in rows:
        by_name.setdefault(r["name"], []).append(r)
    assert set(by_name) == {"+gate", "prep", "shards", "merge", "report", "on-failure"}
    assert len(by_name["shards"]) == 4 and {r["job_id"] for r in by_name["shards"]} == {
        f"{jobs['shards']}_{i}" for i in range(4)
    }
    for name in ("+gate", "prep", "shards", "merge", "report"):
        assert all(r["state"] == "COMPLETED" and r["exit_code"] == "0:0" for r in by_name[name]), by_name[name]
    handler = by_name["on-failure"][0]
    assert handler["state"] == "CANCELLED" and handler["nodes"] == "None assigned"  # never ran

    # Dependency order from sacct's own Start/End (second resolution: equal is fine).
    def start(n):
        return min(r["start"] for r in by_name[n])

    def end(n):
        return max(r["end"] for r in by_name[n])

    for parent, child in [
        ("+gate", "prep"),
        ("prep", "shards"),
        ("shards", "merge"),
        ("merge", "report"),
        ("prep", "report"),
    ]:
        assert start(child) >= end(parent), (parent, child, end(parent), start(child))

    # status --json agrees with sacct for every job and every task.
    st = sd(env, home, "status", dag, "--json")
    assert st.returncode == 0, st.stderr
    doc = json.loads(st.stdout)
    assert doc["dag_id"] == dag and doc["name"] == "status-demo" and doc["state"] == "Completed"
    allocs = {a["name"]: a for a in doc["allocations"]}
    for name in ("prep", "merge", "report"):
        acct = by_name[name][0]
        assert allocs[name]["job_id"] == acct["job_id"]
        assert allocs[name]["slurm_state"] == acct["state"] and allocs[name]["state"] == NODE_STATE[acct["state"]]
        assert allocs[name]["exit_code"] == int(acct["exit_code"].split(":")[0])
    assert allocs["on-failure"]["state"] == "Skipped" and allocs["on-failure"]["slurm_state"] == "CANCELLED"
    tasks = {t["job_id"]: t["state"] for t in allocs["shards"]["tasks"]}
    assert tasks == {r["job_id"]: NODE_STATE[r["state"]] for r in by_name["shards"]}
    assert [t["index"] for t in allocs["shards"]["tasks"]] == [0, 1, 2, 3]

    # --graph: each node under each parent; report has two parents, so it appears twice, once "(see above)".
    graph = sd(env, home, "status", dag, "--graph")
    assert graph.returncode == 0, graph.stderr
    lines = graph.stdout.splitlines()
    assert lines[0] == f"DAG {dag} (status-demo): Completed"
    assert lines[1].startswith(f"prep  Completed  #{jobs['prep']}")
    assert any(ln.strip("│ ├└─").startswith("shards  Completed (4 Completed)") for ln in lines)
    report = [ln for ln in lines if "report" in ln]
    assert len(report) == 2 and sum(ln.endswith("(see above)") for ln in report) == 1
    assert any("on-failure [failure]  Skipped" in ln for ln in lines)

    table = sd(env, home, "status", dag, "--tasks")
    assert table.returncode == 0 and f"{jobs['shards']}_3" in table.stdout

    listed = sd(env, home, "list", "--json")
    assert listed.returncode == 0
    assert [(d["dag_id"], d["state"]) for d in json.loads(listed.stdout)] == [(dag, "Completed")]


def test_status_of_unknown_dag_is_a_usage_error_with_a_hint(cluster, tmp_path):
    res = sd(cluster, tmp_path / "home", "status", "0badc0de")
    assert res.returncode == 2
    assert "unknown DAG '0badc0de'" in res.stderr and "slurmdag list" in res.stderr
    res = sd(cluster, tmp_path / "home", "cancel", "not-an-id")
    assert res.returncode == 2 and "not a DAG id" in res.stderr


def test_status_rebuilds_a_dag_whose_local_record_is_gone(cluster, tmp_path):
    env, home = cluster, tmp_path / "home"
    wf = tmp_path / "wf.yaml"
    wf.write_text(WORKFLOW)
    sub = sd(env, home, "submit", str(wf), "--json")
    assert sub.returncode == 0, sub.stderr
    submitted = json.loads(sub.stdout)
    dag = submitted["dag_id"]
    # Lose the store entirely (another login node, a wiped home).
    other_home = tmp_path / "other"
    st = sd(env, other_home, "status", dag, "--json")
    assert st.returncode == 0, st.stderr
    doc = json.loads(st.stdout)
    assert {a["name"]: a["job_id"] for a in doc["allocations"]} == submitted["jobs"]
    assert "rebuilt" in st.stderr
    cancel = sd(env, other_home, "cancel", dag)
    assert cancel.returncode == 0, cancel.stderr
    assert all(j["state"] in FINAL for j in squeue(env, f"sd-{dag}-"))


def test_watch_follows_until_the_end_and_exits_by_outcome(cluster, tmp_path):
    env, home = cluster, tmp_path / "home"
    wf = tmp_path / "fails.yaml"
    wf.write_text(
        "name: watch-me\ndefaults: {partition: debug, walltime: 5}\nallocations:\n"
        "  - name: ok\n    entrypoint: 'exit 0'\n"
        "  - name: bad\n    entrypoint: 'exit 3'\n    depends_on: [ok]\n"
        "  - name: after\n    entrypoint: 'exit 0'\n    depends_on: [bad]\n"
    )
    res = sd(env, home, "submit", str(wf), "--watch")
    assert res.returncode == 1, res.stdout + res.stderr
    dag = res.stdout.split()[2]
    assert res.stdout.startswith(f"Submitted DAG {dag} with 3 allocations")
    final = res.stdout.strip().split("\n\n")[-1]
    assert final.startswith(f"DAG {dag} (watch-me): Failed")
    rows = wait_for(lambda: (r := sacct(env, f"sd-{dag}-", "now-1hour")) and len(r) == 4 and r, 30, "sacct")
    acct = {r["name"]: r for r in rows}
    assert acct["bad"]["state"] == "FAILED" and acct["bad"]["exit_code"] == "3:0"
    assert acct["after"]["state"] == "CANCELLED" and acct["after"]["nodes"] == "None assigned"
    doc = json.loads(sd(env, home, "status", dag, "--json").stdout)
    assert {a["name"]: (a["state"], a["exit_code"]) for a in doc["allocations"]} == {
        "ok": ("Completed", 0),
        "bad": ("Failed", 3),
        "after": ("Cancelled", 0),
    }
    assert sd(env, home, "status", dag, "--watch").returncode == 1  # already terminal: answers at once
