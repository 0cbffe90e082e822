"""`slurmdag resume` on the real cluster: only what did not complete runs again, counted by the jobs' own marker
files and by Slurm's accounting (sacct), and the DAG keeps its id and shows its attempts."""

from __future__ import annotations

import json
from collections import Counter

import pytest

pytestmark = pytest.mark.integration

# Every allocation appends one line to <dir>/<name>.runs when it runs; `c` fails on its first run only.
CHAIN = """\
name: resume-chain
defaults: {{partition: debug, walltime: 2}}
allocations:
  - name: a
    entrypoint: "echo run >> {d}/a.runs"
  - name: b
    entrypoint: "echo run >> {d}/b.runs"
    depends_on: [a]
  - name: f
    entrypoint: "echo run >> {d}/f.runs"
    depends_on: [a]
  - name: c
    entrypoint: "echo run >> {d}/c.runs; if [ ! -e {d}/c.failed-once ]; then touch {d}/c.failed-once; exit 3; fi"
    depends_on: [b]
  - name: d
    entrypoint: "echo run >> {d}/d.runs"
    depends_on: [c]
  - name: e
    entrypoint: "echo run >> {d}/e.runs"
    depends_on: [d, f]
"""

GROUP = """\
name: resume-group
defaults: {{partition: debug, walltime: 2}}
allocations:
  - name: shards
    tasks: 10
    entrypoint: >-
      echo run >> {d}/shards.$SLURM_ARRAY_TASK_ID.runs;
      if [ "$SLURM_ARRAY_TASK_ID" = 7 ] && [ ! -e {d}/t7.failed-once ]; then touch {d}/t7.failed-once; exit 4; fi
  - name: post
    tasks: 10
    entrypoint: "echo run >> {d}/post.$SLURM_ARRAY_TASK_ID.runs"
    depends_on: [{{shards: corresponding}}]
"""


def runs(path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def status_json(run_slurmdag, dag_id):
    proc = run_slurmdag("status", dag_id, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def wait_terminal(slurm, run_slurmdag, dag_id, timeout=180):
    terminal = {"Completed", "Failed", "Cancelled", "Unknown"}
    return slurm.wait_for(
        lambda: (lambda d: d if d["state"] in terminal else None)(status_json(run_slurmdag, dag_id)),
        timeout=timeout,
        what=f"DAG {dag_id} to end",
    )


def sacct_by_name(slurm, prefix):
    """Every allocation record (array tasks included) of this DAG, from accounting, by node name."""
    out = slurm.run(
        "sacct",
        "-X",
        "-n",
        "-P",
        "-o",
        "JobID,State,NodeList,JobName",
        "-S",
        slurm.started.strftime("%Y-%m-%dT%H:%M:%S"),
        "-E",
        "now",
        "-s",
        "BF,CA,CD,DL,F,NF,OOM,PD,PR,R,RQ,RS,RV,S,TO",
    ).stdout
    rows = {}
    for line in out.splitlines():
        job_id, state, nodes, name = line.split("|", 3)
        if name.startswith(prefix):
            rows.setdefault(name[len(prefix) :], []).append((job_id, state.split()[0], nodes != "None assigned"))
    return rows


def submit(run_slurmdag, path):
    proc = run_slurmdag("submit", path, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["dag_id"]


def test_resume_reruns_only_the_failed_allocation_and_its_downstream(slurm, run_slurmdag, shared_tmp):
    wf = shared_tmp / "chain.yaml"
    wf.write_text(CHAIN.format(d=shared_tmp))
    dag_id = submit(run_slurmdag, wf)
    first = wait_terminal(slurm, run_slurmdag, dag_id)
    states = {a["name"]: a["state"] for a in first["allocations"]}
    assert first["state"] == "Failed" and states["c"] == "Failed", first
    assert states["d"] == states["e"] == "Cancelled"

    proc = run_slurmdag("resume", dag_id, "--json")
    assert proc.returncode == 0, proc.stderr
    resumed = json.loads(proc.stdout)
    assert resumed["dag_id"] == dag_id and resumed["attempt"] == 2
    assert sorted(resumed["jobs"]) == ["c", "d", "e"]
    final = wait_terminal(slurm, run_slurmdag, dag_id)
    assert final["state"] == "Completed", final
    assert final["attempt"] == 2 and final["attempts"] == 2

    # the jobs' own marker files
    assert {n: runs(shared_tmp / f"{n}.runs") for n in "abcdef"} == {"a": 1, "b": 1, "f": 1, "c": 2, "d": 1, "e": 1}
    # Slurm's accounting: one job each for a, b, f; c ran twice; d and e never ran in attempt 1
    slurm.wait_until_done(list(resumed["jobs"].values()))  # accounting lags slurmctld a little
    acct = sacct_by_name(slurm, f"sd-{dag_id}-")
    ran = {n: sum(1 for _, _, r in rows if r) for n, rows in acct.items() if "+" not in n}
    assert ran == {"a": 1, "b": 1, "f": 1, "c": 2, "d": 1, "e": 1}, acct
    assert sorted(s for _, s, _ in acct["c"]) == ["COMPLETED", "FAILED"]
    assert len(acct["a"]) == len(acct["b"]) == len(acct["f"]) == 1
    # the second attempt's jobs are the ones status shows now
    now = {a["name"]: a["job_id"] for a in final["allocations"]}
    assert now["c"] == resumed["jobs"]["c"] and now["a"] == first_ids(first)["a"]

    # nothing left to resume
    again = run_slurmdag("resume", dag_id)
    assert again.returncode == 2 and "nothing to resume" in again.stderr


def first_ids(doc):
    return {a["name"]: a["job_id"] for a in doc["allocations"]}


def test_resume_of_a_task_group_reruns_only_the_failed_task(slurm, run_slurmdag, shared_tmp):
    wf = shared_tmp / "group.yaml"
    wf.write_text(GROUP.format(d=shared_tmp))
    dag_id = submit(run_slurmdag, wf)
    first = wait_terminal(slurm, run_slurmdag, dag_id)
    assert first["state"] == "Failed", first
    post = next(a for a in first["allocations"] if a["name"] == "post")
    assert [t["index"] for t in post["tasks"] if t["state"] != "Completed"] == [7]

    proc = run_slurmdag("resume", dag_id, "--json")
    assert proc.returncode == 0, proc.stderr
    resumed = json.loads(proc.stdout)
    assert resumed["subsets"] == {"shards": "7", "post": "7"}
    final = wait_terminal(slurm, run_slurmdag, dag_id)
    assert final["state"] == "Completed", final
    for alloc in final["allocations"]:
        assert [t["state"] for t in alloc["tasks"]] == ["Completed"] * 10
        # task 7 comes from the new attempt's array job, the others from the first one
        assert {t["job_id"].split("_")[0] for t in alloc["tasks"] if t["index"] != 7} == {
            first_ids(first)[alloc["name"]]
        }
        assert next(t for t in alloc["tasks"] if t["index"] == 7)["job_id"] == f"{resumed['jobs'][alloc['name']]}_7"

    assert [runs(shared_tmp / f"shards.{i}.runs") for i in range(10)] == [1] * 7 + [2] + [1] * 2
    assert [runs(shared_tmp / f"post.{i}.runs") for i in range(10)] == [1] * 10
    # Slurm's accounting: the new attempt's arrays hold task 7 only, and it ran
    new_rows = slurm.wait_until_done([resumed["jobs"]["shards"], resumed["jobs"]["post"]])
    assert sorted((r["JobID"], r["State"]) for r in new_rows) == sorted(
        [(f"{resumed['jobs']['shards']}_7", "COMPLETED"), (f"{resumed['jobs']['post']}_7", "COMPLETED")]
    )
    assert all(r["NodeList"] != "None assigned" for r in new_rows)
    acct = sacct_by_name(slurm, f"sd-{dag_id}-")
    ran = Counter(name for name, rows in acct.items() if "+" not in name for _, _, did_run in rows if did_run)
    assert ran == {"shards": 11, "post": 10}, acct


def ran_counts(slurm, dag_id):
    acct = sacct_by_name(slurm, f"sd-{dag_id}-")
    return {name: sum(1 for _, _, did_run in rows if did_run) for name, rows in acct.items() if "+" not in name}


@pytest.mark.parametrize("cascade", [False, True], ids=["alone", "cascade"])
def test_redo_reruns_a_completed_allocation_and_with_cascade_its_downstream(slurm, run_slurmdag, shared_tmp, cascade):
    wf = shared_tmp / "chain.yaml"
    wf.write_text(CHAIN.format(d=shared_tmp))
    (shared_tmp / "c.failed-once").touch()  # c succeeds at once: the whole DAG completes
    dag_id = submit(run_slurmdag, wf)
    assert wait_terminal(slurm, run_slurmdag, dag_id)["state"] == "Completed"

    proc = run_slurmdag("redo", dag_id, "b", *(["--cascade"] if cascade else []), "--json")
    assert proc.returncode == 0, proc.stderr
    redone = json.loads(proc.stdout)
    expected = ["b", "c", "d", "e"] if cascade else ["b"]
    assert sorted(redone["jobs"]) == expected
    final = wait_terminal(slurm, run_slurmdag, dag_id)
    assert final["state"] == "Completed" and final["attempts"] == 2, final
    slurm.wait_until_done(list(redone["jobs"].values()))

    again = {n: 2 if n in expected else 1 for n in "abcdef"}
    assert {n: runs(shared_tmp / f"{n}.runs") for n in "abcdef"} == again
    assert ran_counts(slurm, dag_id) == again
    # the re-run b started only after the earlier attempt had ended: it depends on no old job id
    acct = sacct_by_name(slurm, f"sd-{dag_id}-")
    assert len(acct["a"]) == 1


def test_resume_from_a_changed_workflow_refuses_changes_to_completed_allocations(slurm, run_slurmdag, shared_tmp):
    wf = shared_tmp / "chain.yaml"
    wf.write_text(CHAIN.format(d=shared_tmp))
    dag_id = submit(run_slurmdag, wf)
    assert wait_terminal(slurm, run_slurmdag, dag_id)["state"] == "Failed"

    changed = shared_tmp / "changed.yaml"
    changed.write_text(
        CHAIN.format(d=shared_tmp).replace(f"echo run >> {shared_tmp}/b.runs", f"echo changed >> {shared_tmp}/b.runs")
    )
    refused = run_slurmdag("resume", dag_id, "--from", changed)
    assert refused.returncode == 2 and "b" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr

    # a fix to the failed allocation itself is what --from is for
    fixed = shared_tmp / "fixed.yaml"
    fixed.write_text(CHAIN.format(d=shared_tmp).replace("exit 3", "exit 0"))
    proc = run_slurmdag("resume", dag_id, "--from", fixed, "--json")
    assert proc.returncode == 0, proc.stderr
    assert sorted(json.loads(proc.stdout)["jobs"]) == ["c", "d", "e"]
    assert wait_terminal(slurm, run_slurmdag, dag_id)["state"] == "Completed"
    assert {n: runs(shared_tmp / f"{n}.runs") for n in "abcdef"} == {"a": 1, "b": 1, "f": 1, "c": 2, "d": 1, "e": 1}
