"""Groups (issue 16) on the real cluster, asserted on Slurm's own view: a `fuse: auto` chain is one Slurm job whose
job steps are named after the allocations (sacct), a failure inside it ends the rest as unfused, its handler runs,
and `resume` runs only what did not complete (docs/semantics.md, "Groups")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slurmdag.model.states import SACCT_ALL_STATES

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ACTIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING"}


def chain(n: int, entry: str, extra: str = "") -> str:
    """`n` allocations a01..aNN in a chain, `fuse: auto`; `entry` may use {name}."""
    lines = ["name: fused-chain", "fuse: auto", "defaults: {partition: debug, walltime: 2, ntasks: 1}", "allocations:"]
    for i in range(1, n + 1):
        name = f"a{i:02d}"
        dep = f", depends_on: [a{i - 1:02d}]" if i > 1 else ""
        lines.append(f"  - {{name: {name}, entrypoint: {json.dumps(entry.format(name=name))}{dep}}}")
    return "\n".join(lines) + "\n" + extra


def dag_jobs(slurm, dag_id: str, since) -> list[dict[str, str]]:
    """Every job (not step) Slurm's accounting has for the DAG, by its name prefix `sd-<dag id>-`."""
    # -s: without it, sacct leaves out jobs that were cancelled before they became eligible
    fields = "JobID,JobName,State,ExitCode,NodeList"
    out = slurm.run("sacct", "-X", "-n", "-P", "-o", fields, "-S", since, "-E", "now", "-s", SACCT_ALL_STATES).stdout
    rows = [
        dict(zip(("JobID", "JobName", "State", "ExitCode", "NodeList"), line.split("|"), strict=False))
        for line in out.splitlines()
        if line.strip()
    ]
    return [r for r in rows if r["JobName"].startswith(f"sd-{dag_id}-")]


def steps(slurm, job_id: str) -> list[dict[str, str]]:
    """The numbered job steps of one job, in step order (sacct without -X)."""
    out = slurm.run("sacct", "-n", "-P", "-o", "JobID,JobName,State,ExitCode", "-j", job_id).stdout
    rows = [
        dict(zip(("JobID", "JobName", "State", "ExitCode"), line.split("|"), strict=False))
        for line in out.splitlines()
        if line.strip()
    ]
    numbered = [r for r in rows if r["JobID"].partition(".")[2].isdigit()]
    return sorted(numbered, key=lambda r: int(r["JobID"].partition(".")[2]))


def wait_finished(slurm, dag_id: str, since, count: int, timeout: float = 300) -> list[dict[str, str]]:
    def done():
        rows = dag_jobs(slurm, dag_id, since)
        gate = [r for r in rows if r["JobName"].endswith("-+gate")]
        others = [r for r in rows if r not in gate]
        if len(others) >= count and not any(r["State"].split()[0] in ACTIVE for r in others):
            return others
        return None

    return slurm.wait_for(done, timeout, f"the jobs of DAG {dag_id} to finish in accounting")


def status(run_slurmdag, dag_id: str) -> dict:
    proc = run_slurmdag("status", dag_id, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def since_now(slurm) -> str:
    return slurm.run("date", "+%Y-%m-%dT%H:%M:%S").stdout.strip()


def test_fused_chain_of_30_is_one_job_with_30_named_steps(slurm, run_slurmdag, tmp_path):
    wf = tmp_path / "chain.yaml"
    wf.write_text(chain(30, "true"))
    since = since_now(slurm)
    sub = run_slurmdag("submit", str(wf), "--json")
    assert sub.returncode == 0, sub.stderr
    dag = json.loads(sub.stdout)["dag_id"]
    jobs = wait_finished(slurm, dag, since, 1)
    everything = dag_jobs(slurm, dag, since)
    # Slurm's view: the gate and ONE job for the 30 allocations
    assert sorted(r["JobName"] for r in everything) == sorted([f"sd-{dag}-+gate", f"sd-{dag}-a01..a30+group"])
    (group,) = jobs
    assert group["State"] == "COMPLETED"
    got = steps(slurm, group["JobID"])
    assert [s["JobName"] for s in got] == [f"a{i:02d}" for i in range(1, 31)]
    assert {(s["State"], s["ExitCode"]) for s in got} == {("COMPLETED", "0:0")}
    st = slurm.wait_for(lambda: (s := status(run_slurmdag, dag))["state"] == "Completed" and s, 60, "status")
    assert [(a["name"], a["state"], a["exit_code"]) for a in st["allocations"]] == [
        (f"a{i:02d}", "Completed", 0) for i in range(1, 31)
    ]


def test_fused_chain_failing_at_7_then_resume_runs_only_7_to_30(slurm, run_slurmdag, shared_tmp):
    d = shared_tmp
    # every allocation appends a line to <d>/<name>.runs; a07 fails until <d>/fixed exists
    entry = "echo run >> " + str(d) + "/{name}.runs"
    handler = f'  - {{name: notify, entrypoint: "echo run >> {d}/notify.runs", depends_on: [{{a07: failure}}]}}\n'
    text = chain(30, entry, handler).replace(
        json.dumps(entry.format(name="a07")),
        json.dumps(f"echo run >> {d}/a07.runs; test -e {d}/fixed || exit 3"),
    )
    wf = d / "chain.yaml"
    wf.write_text(text)
    since = since_now(slurm)
    sub = run_slurmdag("submit", str(wf), "--json")
    assert sub.returncode == 0, sub.stderr
    dag = json.loads(sub.stdout)["dag_id"]
    jobs = {r["JobName"].removeprefix(f"sd-{dag}-"): r for r in wait_finished(slurm, dag, since, 4)}
    # fuse: auto left a07 out (its failure is handled outside): a01..a06 | a07 | a08..a30, and the handler
    assert set(jobs) == {"a01..a06+group", "a07", "a08..a30+group", "notify"}
    assert jobs["a07"]["State"] == "FAILED" and jobs["a07"]["ExitCode"] == "3:0"
    assert jobs["notify"]["State"] == "COMPLETED" and jobs["notify"]["NodeList"] != "None assigned"
    rest = jobs["a08..a30+group"]
    assert rest["State"].split()[0] == "CANCELLED" and rest["NodeList"] == "None assigned"  # as unfused: never ran
    assert steps(slurm, rest["JobID"]) == []
    assert [s["JobName"] for s in steps(slurm, jobs["a01..a06+group"]["JobID"])] == [f"a{i:02d}" for i in range(1, 7)]
    st = status(run_slurmdag, dag)
    states = {a["name"]: a["state"] for a in st["allocations"]}
    assert states == {
        **{f"a{i:02d}": "Completed" for i in range(1, 7)},
        "a07": "Failed",
        **{f"a{i:02d}": "Cancelled" for i in range(8, 31)},
        "notify": "Completed",
    }

    (d / "fixed").touch()
    since2 = since_now(slurm)
    res = run_slurmdag("resume", dag, "--json")
    assert res.returncode == 0, res.stderr
    again = json.loads(res.stdout)["jobs"]
    assert set(again) == {f"a{i:02d}" for i in range(7, 31)} | {"a08..a30+group"}
    new = {r["JobName"].removeprefix(f"sd-{dag}-"): r for r in wait_finished(slurm, dag, since2, 2)}
    new = {k: v for k, v in new.items() if v["JobID"] not in {j["JobID"] for j in jobs.values()}}
    assert set(new) == {"a07", "a08..a30+group"}  # Slurm ran only these again
    assert new["a07"]["State"] == "COMPLETED" and new["a08..a30+group"]["State"] == "COMPLETED"
    assert [s["JobName"] for s in steps(slurm, new["a08..a30+group"]["JobID"])] == [f"a{i:02d}" for i in range(8, 31)]
    runs = {p.stem: len(p.read_text().splitlines()) for p in d.glob("*.runs")}
    assert runs == {**{f"a{i:02d}": 1 for i in range(1, 31)}, "a07": 2, "notify": 1}
    st = slurm.wait_for(lambda: (s := status(run_slurmdag, dag))["state"] == "Completed" and s, 60, "status")
    assert {a["name"] for a in st["allocations"] if a["state"] != "Completed"} == set()


def test_the_groups_example_runs_as_two_jobs(slurm, run_slurmdag, tmp_path):
    since = since_now(slurm)
    sub = run_slurmdag("submit", str(REPO / "examples" / "groups.yaml"), "--json", cwd=tmp_path)
    assert sub.returncode == 0, sub.stderr
    dag = json.loads(sub.stdout)["dag_id"]
    jobs = {r["JobName"].removeprefix(f"sd-{dag}-"): r for r in wait_finished(slurm, dag, since, 2)}
    assert set(jobs) == {"prepare+group", "train..report+group"}
    assert {r["State"] for r in jobs.values()} == {"COMPLETED"}
    assert [s["JobName"] for s in steps(slurm, jobs["prepare+group"]["JobID"])] == ["fetch", "check"]
    assert [s["JobName"] for s in steps(slurm, jobs["train..report+group"]["JobID"])] == ["train", "evaluate", "report"]
    st = slurm.wait_for(lambda: (s := status(run_slurmdag, dag))["state"] == "Completed" and s, 60, "status")
    assert {a["name"]: a["state"] for a in st["allocations"]} == {
        "fetch": "Completed",
        "check": "Completed",
        "on-check-failed": "Skipped",
        "train": "Completed",
        "evaluate": "Completed",
        "report": "Completed",
    }


def test_resume_reruns_only_the_failed_part_of_a_group(slurm, run_slurmdag, shared_tmp):
    """One group job a01..a05 where a03 fails: resume submits the group job again, and Slurm runs steps a03-a05 only
    (a01, a02 keep their earlier outcome inside the new job)."""
    d = shared_tmp
    entry = "echo run >> " + str(d) + "/{name}.runs"
    text = chain(5, entry).replace(
        json.dumps(entry.format(name="a03")), json.dumps(f"echo run >> {d}/a03.runs; test -e {d}/fixed || exit 3")
    )
    wf = d / "chain.yaml"
    wf.write_text(text)
    since = since_now(slurm)
    sub = run_slurmdag("submit", str(wf), "--json")
    assert sub.returncode == 0, sub.stderr
    dag = json.loads(sub.stdout)["dag_id"]
    (first,) = wait_finished(slurm, dag, since, 1)
    assert first["State"] == "FAILED"  # no outcome member: the group job fails when a member failed
    assert [(s["JobName"], s["State"]) for s in steps(slurm, first["JobID"])] == [
        ("a01", "COMPLETED"),
        ("a02", "COMPLETED"),
        ("a03", "FAILED"),
    ]
    states = {a["name"]: a["state"] for a in status(run_slurmdag, dag)["allocations"]}
    assert states == {"a01": "Completed", "a02": "Completed", "a03": "Failed", "a04": "Cancelled", "a05": "Cancelled"}

    (d / "fixed").touch()
    res = run_slurmdag("resume", dag, "--json")
    assert res.returncode == 0, res.stderr
    slurm.wait_for(
        lambda: [r for r in wait_finished(slurm, dag, since, 2) if r["JobID"] != first["JobID"]], 300, "the new job"
    )
    (again,) = [r for r in dag_jobs(slurm, dag, since) if r["JobID"] != first["JobID"] and "+gate" not in r["JobName"]]
    assert again["State"] == "COMPLETED"
    assert [s["JobName"] for s in steps(slurm, again["JobID"])] == ["a03", "a04", "a05"]
    runs = {p.stem: len(p.read_text().splitlines()) for p in d.glob("*.runs")}
    assert runs == {"a01": 1, "a02": 1, "a03": 2, "a04": 1, "a05": 1}
    st = slurm.wait_for(lambda: (s := status(run_slurmdag, dag))["state"] == "Completed" and s, 60, "status")
    assert {a["name"]: a["state"] for a in st["allocations"]} == {f"a0{i}": "Completed" for i in range(1, 6)}


def test_an_output_passes_between_members_of_a_group(slurm, run_slurmdag, tmp_path):
    """Members run in the group job's DAG run folder (its bound location, inherited by every step), so an output one
    member publishes is what the next one reads."""
    wf = tmp_path / "outputs.yaml"
    wf.write_text(
        "name: group-outputs\nfuse: auto\ndefaults: {partition: debug, walltime: 1, ntasks: 1}\nallocations:\n"
        "  - {name: search, entrypoint: 'slurmdag-output best_lr 0.5', outputs: [best_lr]}\n"
        "  - name: train\n"
        "    entrypoint: 'test \"{{ outputs.search.best_lr }}\" = 0.5'\n"
        "    depends_on: [search]\n"
    )
    since = since_now(slurm)
    sub = run_slurmdag("submit", str(wf), "--json")
    assert sub.returncode == 0, sub.stderr
    dag = json.loads(sub.stdout)["dag_id"]
    (job,) = wait_finished(slurm, dag, since, 1)
    assert job["JobName"].endswith("search..train+group") and job["State"] == "COMPLETED"
    assert [(s["JobName"], s["State"]) for s in steps(slurm, job["JobID"])] == [
        ("search", "COMPLETED"),
        ("train", "COMPLETED"),
    ]
