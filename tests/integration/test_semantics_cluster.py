"""Design §4 on the real cluster, table-driven: every edge type against every way a parent can end.

One workflow holds every row, so all rows run at once (the Timeout rows take ~60-90 s, the rest seconds). It is
submitted twice in the same test: once with `--cascade native` (Slurm alone holds the graph: between submit and the
final check no slurmdag process runs except the user's own `cancel --allocation`), once with `--cascade reconciler`
(jobs say --kill-on-invalid-dep=no on a cluster without kill_invalid_depend; the test runs `reconcile --once` for
that DAG while it waits). Each child's outcome is checked twice: in Slurm (sacct: did it run?) and in
`slurmdag status --json` (its label).
"""

from __future__ import annotations

import json
import time

import pytest
import yaml

pytestmark = pytest.mark.integration

FAIL = "exit 3"
LONG = "sleep 240"  # parents that the test cancels while they run

# name -> (entrypoint, extra keys). Parents first.
PARENTS = {
    "p-ok": ("true", {}),
    "p-ok2": ("true", {}),
    "p-fail": (FAIL, {}),
    "p-fail2": ("exit 4", {}),
    "p-timeout": ("sleep 300", {"walltime": 1}),
    "p-usercancel": (LONG, {}),  # cancelled with `slurmdag cancel DAG --allocation p-usercancel` while running
    "p-scancel": (LONG, {}),  # cancelled with plain `scancel` while running (the documented limit)
    "p-cascade": ("true", {"depends_on": ["p-fail"]}),  # never runs: cancelled by the cascade from p-fail
    "g-ok": ("true", {"tasks": 2}),
    "g-fail": ('test "$SLURM_ARRAY_TASK_ID" != 1', {"tasks": 2}),  # task 1 fails
    "g-timeout": ('if [ "$SLURM_ARRAY_TASK_ID" = 1 ]; then sleep 300; fi', {"tasks": 2, "walltime": 1}),
    "g-cascade": ("true", {"tasks": 2, "depends_on": ["p-fail"]}),
}

# One row per (edge, parent outcome): child name, its keys, whether it runs, its label.
#   ran: True / False for a single job, or a tuple per task for a task group.
ROWS = [
    # success
    ("s-ok", {"depends_on": ["p-ok"]}, True, "Completed"),
    ("s-fail", {"depends_on": ["p-fail"]}, False, "Cancelled"),
    ("s-timeout", {"depends_on": ["p-timeout"]}, False, "Cancelled"),
    ("s-usercancel", {"depends_on": ["p-usercancel"]}, False, "Cancelled"),
    ("s-cascade", {"depends_on": ["p-cascade"]}, False, "Cancelled"),
    ("s-fail-grandchild", {"depends_on": ["s-fail"]}, False, "Cancelled"),  # cascading cancellation
    # failure
    ("f-ok", {"depends_on": [{"p-ok": "failure"}]}, False, "Skipped"),
    ("f-fail", {"depends_on": [{"p-fail": "failure"}]}, True, "Completed"),
    ("f-timeout", {"depends_on": [{"p-timeout": "failure"}]}, True, "Completed"),
    ("f-usercancel", {"depends_on": [{"p-usercancel": "failure"}]}, False, "Cancelled"),
    ("f-cascade", {"depends_on": [{"p-cascade": "failure"}]}, False, "Cancelled"),
    # known limit: a plain scancel of a running parent is indistinguishable from a failure to Slurm
    ("f-scancel", {"depends_on": [{"p-scancel": "failure"}]}, True, "Completed"),
    # any
    ("a-ok", {"depends_on": [{"p-ok": "any"}]}, True, "Completed"),
    ("a-fail", {"depends_on": [{"p-fail": "any"}]}, True, "Completed"),
    ("a-timeout", {"depends_on": [{"p-timeout": "any"}]}, True, "Completed"),
    ("a-usercancel", {"depends_on": [{"p-usercancel": "any"}]}, True, "Completed"),
    ("a-cascade", {"depends_on": [{"p-cascade": "any"}]}, True, "Completed"),
    # corresponding: task N after task N
    ("c-ok", {"tasks": 2, "depends_on": [{"g-ok": "corresponding"}]}, (True, True), "Completed"),
    ("c-fail", {"tasks": 2, "depends_on": [{"g-fail": "corresponding"}]}, (True, False), "Cancelled"),
    ("c-timeout", {"tasks": 2, "depends_on": [{"g-timeout": "corresponding"}]}, (True, False), "Cancelled"),
    ("c-cascade", {"tasks": 2, "depends_on": [{"g-cascade": "corresponding"}]}, (False, False), "Cancelled"),
    # depends_on_any
    ("or-one-fails", {"depends_on_any": ["p-fail", "p-ok"]}, True, "Completed"),
    ("or-all-fail", {"depends_on_any": ["p-fail", "p-fail2"]}, False, "Cancelled"),
    # depends_on + depends_on_any (lowered through a join job; a mixed expression would wrongly be all-OR)
    ("mix-runs", {"depends_on": ["p-ok"], "depends_on_any": ["p-fail", "p-ok2"]}, True, "Completed"),
    ("mix-or-fails", {"depends_on": ["p-ok"], "depends_on_any": ["p-fail", "p-fail2"]}, False, "Cancelled"),
    ("mix-and-fails", {"depends_on": ["p-fail"], "depends_on_any": ["p-ok", "p-ok2"]}, False, "Cancelled"),
    # skip propagation
    ("skip-child", {"depends_on": ["f-ok"]}, False, "Skipped"),
    ("skip-grandchild", {"depends_on": ["skip-child"]}, False, "Skipped"),
    ("skip-any", {"depends_on": [{"f-ok": "any"}]}, True, "Completed"),
]

PARENT_LABELS = {
    "p-ok": "Completed",
    "p-fail": "Failed",
    "p-timeout": "Timeout",
    "p-usercancel": "Cancelled",
    "p-scancel": "Cancelled",
    "p-cascade": "Cancelled",
    "g-ok": "Completed",
    "g-fail": "Failed",
    "g-timeout": "Timeout",
    "g-cascade": "Cancelled",
}
ACTIVE = {
    "PENDING",
    "RUNNING",
    "CONFIGURING",
    "COMPLETING",
    "SUSPENDED",
    "REQUEUED",
    "RESIZING",
    "SIGNALING",
    "STAGE_OUT",
    "STOPPED",
}


def workflow(name: str, auto_array: bool = False) -> str:
    allocations = []
    for alloc, (entry, extra) in PARENTS.items():
        allocations.append({"name": alloc, "entrypoint": entry, **extra})
    for alloc, extra, _, _ in ROWS:
        allocations.append({"name": alloc, "entrypoint": "true", **extra})
    doc = {
        "name": name,
        "defaults": {"partition": "debug", "walltime": 5, "cpus_per_task": 1},
        "allocations": allocations,
    }
    if auto_array:  # siblings with equal options and dependencies run as tasks of one array job (issue 16)
        doc = {"name": name, "auto_array": True, **{k: v for k, v in doc.items() if k != "name"}}
    return yaml.safe_dump(doc, sort_keys=False)


def _state(row: dict) -> str:
    return row["State"].split()[0]


def _ran(row: dict) -> bool:
    return row["NodeList"] not in ("None assigned", "")


def _finished(slurm, ids: list[str]) -> bool:
    rows = slurm.squeue(ids)
    return bool(rows) and not any(_state(r) in ACTIVE for r in rows)


def _running(slurm, job_id: str) -> bool:
    return any(_state(r) == "RUNNING" for r in slurm.squeue([job_id]))


@pytest.mark.parametrize("packing", ["plain", "auto_array"])
def test_semantics_table_native_and_reconciler(slurm, run_slurmdag, tmp_path, packing):
    wf = tmp_path / "semantics.yaml"
    wf.write_text(workflow("semantics-table", auto_array=packing == "auto_array"))
    dags = {}
    for mode in ("native", "reconciler"):
        sub = run_slurmdag("submit", str(wf), "--json", "--cascade", mode)
        assert sub.returncode == 0, sub.stderr
        dags[mode] = json.loads(sub.stdout)
        packed = [n for n, j in dags[mode]["jobs"].items() if "_" in j]  # a packed allocation's id is <array>_<i>
        assert bool(packed) == (packing == "auto_array"), packed
    # From here on the native DAG is left to Slurm: the test reads Slurm; slurmdag runs only as the user's
    # `cancel --allocation` and, for the reconciler DAG, as `reconcile --once` for that DAG.

    # The user cancels two running parents in each DAG: one through slurmdag, one with a plain scancel.
    for mode, sub in dags.items():
        jobs = sub["jobs"]
        slurm.wait_for(
            lambda jobs=jobs: _running(slurm, jobs["p-usercancel"]) and _running(slurm, jobs["p-scancel"]),
            180,
            f"the long parents of the {mode} DAG to run",
        )
        cancel = run_slurmdag("cancel", sub["dag_id"], "--allocation", "p-usercancel")
        assert cancel.returncode == 0, cancel.stderr
        slurm.run("scancel", jobs["p-scancel"])

    native_ids = list(dags["native"]["jobs"].values())
    recon = dags["reconciler"]
    recon_ids = list(recon["jobs"].values())
    stuck_seen = []

    def reconciled_done() -> bool:
        # Before acting, remember whether Slurm left some job waiting forever (the case the reconciler is for).
        stuck_seen.extend(r["JobID"] for r in slurm.squeue(recon_ids) if r["Reason"] == "DependencyNeverSatisfied")
        rec = run_slurmdag("reconcile", recon["dag_id"], "--once")
        assert rec.returncode == 0, rec.stdout + rec.stderr
        return _finished(slurm, recon_ids)

    deadline = time.monotonic() + 400
    while not (_finished(slurm, native_ids) and reconciled_done()):
        assert time.monotonic() < deadline, "the semantics DAGs did not finish"
        time.sleep(2)
    assert stuck_seen, "reconciler mode: Slurm should have left jobs on DependencyNeverSatisfied for reconcile"

    failures = []
    for mode, sub in dags.items():
        failures += check_dag(slurm, run_slurmdag, mode, sub)
    assert not failures, "\n".join(failures)


def check_dag(slurm, run_slurmdag, mode: str, sub: dict) -> list[str]:
    jobs = sub["jobs"]
    acct = slurm.wait_for(lambda: _all_accounted(slurm, jobs), 60, "sacct to record every job")
    st = run_slurmdag("status", sub["dag_id"], "--json")
    assert st.returncode == 0, st.stderr
    labels = {a["name"]: a for a in json.loads(st.stdout)["allocations"]}
    problems = []

    def expect(name: str, what: str, got, want) -> None:
        if got != want:
            problems.append(f"[{mode}] {name}: {what} is {got!r}, expected {want!r}")

    for name, _, ran, label in ROWS:
        rows = acct[name]
        if isinstance(ran, tuple):
            # a row "123_[0-1]" is tasks not split off yet (no outcome of their own): read those from squeue below
            by_task = {int(i): _ran(r) for r in rows if (i := r["JobID"].split("_")[1]).isdigit()}
            if len(by_task) < len(ran):
                # Slurm 24.11+ keeps no accounting record of an array task split off while pending and cancelled
                # before it could start (22.05 does); slurmctld still shows it (MinJobAge).
                for r in slurm.squeue([jobs[name]]):
                    if (i := r["JobID"].split("_")[1]).isdigit():
                        by_task.setdefault(int(i), _ran(r))
            expect(name, "ran (per task, sacct)", tuple(by_task.get(i) for i in range(len(ran))), ran)
        else:
            expect(name, "ran (sacct)", _ran(rows[0]), ran)
            if not ran:  # never started: Slurm cancelled it (nothing may be left waiting forever)
                expect(name, "Slurm state", _state(rows[0]), "CANCELLED")
        expect(name, "label (status --json)", labels[name]["state"], label)
    for name, label in PARENT_LABELS.items():
        expect(name, "label (status --json)", labels[name]["state"], label)
    for name, who in (
        ("s-fail", "upstream"),
        ("s-fail-grandchild", "upstream"),
        ("c-fail", "upstream"),
        ("mix-and-fails", "upstream"),
        ("f-usercancel", "upstream"),
        ("p-usercancel", "user"),
        ("p-scancel", "user"),
    ):
        expect(name, "cancelled_by (status --json)", labels[name].get("cancelled_by"), who)
    expect("p-timeout", "Slurm state", _state(acct["p-timeout"][0]), "TIMEOUT")
    expect("p-fail", "exit code (status --json)", labels["p-fail"]["exit_code"], 3)
    return problems


def _tasks(job_id: str) -> list[str]:
    """The task ids of a sacct JobID: "123_4" -> ["123_4"], "123_[0-2,5]" -> each of them, "123" -> []."""
    base, sep, rest = job_id.partition("_")
    if not sep:
        return []
    if not rest.startswith("["):
        return [job_id]
    out = []
    for part in rest.strip("[]").split("%")[0].split(","):
        first, _, last = part.partition("-")
        out += [f"{base}_{i}" for i in range(int(first), int(last or first) + 1)]
    return out


def _all_accounted(slurm, jobs: dict[str, str]):
    rows = slurm.sacct(list(jobs.values()))
    by_id = {}
    for r in rows:
        by_id.setdefault(r["JobID"].split("_")[0], []).append(r)
    # an allocation packed by auto_array is one task of an array job: its id is `<array>_<i>`, its row that task's
    # (a row "123_[0-1]" is tasks cancelled before they were split off: each of them)
    by_id.update({task: [r] for r in rows for task in _tasks(r["JobID"])})
    # Slurm 25.11 keeps no record at all of a packed task cancelled (the reconciler's `scancel <array>_<i>`) before
    # it was split off: no accounting row, and squeue drops it at once (docs/compatibility.md row 3). A task that ran
    # or still waits is in squeue (MinJobAge=300), so one missing from both never started: Slurm cancelled it.
    missing = [j for j in jobs.values() if j not in by_id and "_" in j]
    if missing:
        live = {r["JobID"]: r for r in slurm.squeue(missing)}
        for job_id in missing:
            by_id[job_id] = [live.get(job_id, {"JobID": job_id, "State": "CANCELLED", "NodeList": "None assigned"})]
    if any(_state(r) in ACTIVE for rs in by_id.values() for r in rs) or any(j not in by_id for j in jobs.values()):
        return None
    return {name: by_id[job_id] for name, job_id in jobs.items()}


# --- the same table with each case in one group (docs/semantics.md, "Groups") ---------------------------------------

# Rows a group cannot hold, by design (asserted below, never skipped silently):
#   corresponding rows: a task group is an array job of its own, never a job step -> compile refuses the group;
#   user-cancel rows: they cancel the parent allocation's own job, which a group member does not have, and
#   `cancel --allocation` of a member is refused (not supported yet).
NOT_GROUPABLE = {name for name, extra, _, _ in ROWS if "tasks" in extra} | {
    name for name, extra, _, _ in ROWS for p in extra.get("depends_on", []) if "cancel" in str(p)
}


def _parents_of(extra: dict) -> list[str]:
    deps = [*extra.get("depends_on", []), *extra.get("depends_on_any", [])]
    return [d if isinstance(d, str) else next(iter(d)) for d in deps]


def _keys_of(name: str) -> tuple[str, dict]:
    """(entrypoint, extra keys) of a parent or a row by its name in the table."""
    if name in PARENTS:
        return PARENTS[name]
    extra = next(e for n, e, _, _ in ROWS if n == name)
    return "true", extra


def _case(row: str) -> list[dict]:
    """The row's child and its own copies (`<row>.<name>`) of everything above it, all in group `<row>`."""
    order: list[str] = []

    def visit(name: str) -> None:
        for p in _parents_of(_keys_of(name)[1]):
            visit(p)
        if name not in order:
            order.append(name)

    visit(row)

    def renamed(name: str) -> str:
        return name if name == row else f"{row}.{name}"

    out = []
    for name in order:
        entry, extra = _keys_of(name)
        extra = dict(extra)
        for key in ("depends_on", "depends_on_any"):
            if key in extra:
                extra[key] = [
                    renamed(d) if isinstance(d, str) else {renamed(next(iter(d))): next(iter(d.values()))}
                    for d in extra[key]
                ]
        out.append({"name": renamed(name), "entrypoint": entry, "group": row, **extra})
    return out


def grouped_workflow(name: str, rows: list[str]) -> str:
    doc = {
        "name": name,
        "defaults": {"partition": "debug", "walltime": 5, "cpus_per_task": 1},
        "allocations": [a for row in rows for a in _case(row)],
    }
    return yaml.safe_dump(doc, sort_keys=False)


def _steps_by_job(slurm, ids: list[str]) -> dict[str, list[dict[str, str]]]:
    out = slurm.run("sacct", "-n", "-P", "-o", "JobID,JobName,State,ExitCode", "-j", ",".join(ids)).stdout
    steps: dict[str, list[dict[str, str]]] = {}
    for line in out.splitlines():
        job_id, name, state, code = line.split("|")
        owner, _, step = job_id.partition(".")
        if step.isdigit():
            steps.setdefault(owner, []).append({"JobName": name, "State": state, "ExitCode": code})
    return steps


def test_semantics_table_grouped(slurm, run_slurmdag, tmp_path):
    rows = [name for name, _, _, _ in ROWS if name not in NOT_GROUPABLE]
    # By design: a corresponding case cannot be grouped; the compiler says so where the member says `group:`
    refused = tmp_path / "refused.yaml"
    refused.write_text(grouped_workflow("semantics-grouped-refused", ["c-ok"]))
    val = run_slurmdag("validate", str(refused))
    assert val.returncode == 2 and f"{refused}:" in val.stderr and "a task group" in val.stderr, val.stderr

    wf = tmp_path / "grouped.yaml"
    wf.write_text(grouped_workflow("semantics-grouped", rows))
    sub = run_slurmdag("submit", str(wf), "--json")
    assert sub.returncode == 0, sub.stderr
    dag = json.loads(sub.stdout)
    jobs = dag["jobs"]
    hosts = {row: jobs[f"{row}+group"] for row in rows}
    assert len(set(hosts.values())) == len(rows)  # one Slurm job per case
    # By design: one member of a group cannot be cancelled on its own (refused before anything is done)
    cancel = run_slurmdag("cancel", dag["dag_id"], "--allocation", f"{rows[0]}.p-ok")
    assert cancel.returncode == 2 and "not supported yet" in cancel.stderr, cancel.stderr

    ids = list(hosts.values())
    slurm.wait_for(lambda: _finished(slurm, ids), 400, "the grouped semantics DAG to finish")
    steps = slurm.wait_for(
        lambda: (
            (s := _steps_by_job(slurm, ids))
            and all(r["State"].split()[0] not in ACTIVE for v in s.values() for r in v)
            and s
        ),
        60,
        "sacct to record the steps",
    )
    st = slurm.wait_for(
        lambda: (
            (s := json.loads(run_slurmdag("status", dag["dag_id"], "--json").stdout))["state"]
            not in ("Pending", "Running")
            and s
        ),
        60,
        "status to settle",
    )
    labels = {a["name"]: a for a in st["allocations"]}
    problems = []

    def expect(name: str, what: str, got, want) -> None:
        if got != want:
            problems.append(f"[grouped] {name}: {what} is {got!r}, expected {want!r}")

    for name, _, ran, label in ROWS:
        if name not in rows:
            continue
        in_job = {s["JobName"]: s for s in steps.get(hosts[name], [])}
        expect(name, "ran (a step of its name in sacct)", name in in_job, ran)
        expect(name, "label (status --json)", labels[name]["state"], label)
        for parent in _parents_of(_keys_of(name)[1]):
            if parent in PARENT_LABELS:
                expect(
                    f"{name}.{parent}",
                    "label (status --json)",
                    labels[f"{name}.{parent}"]["state"],
                    PARENT_LABELS[parent],
                )
    for name in ("s-fail", "s-fail-grandchild", "mix-and-fails"):
        expect(name, "cancelled_by (status --json)", labels[name].get("cancelled_by"), "upstream")
    timeout_step = {s["JobName"]: s for s in steps[hosts["s-timeout"]]}["s-timeout.p-timeout"]
    expect("s-timeout.p-timeout", "step state (sacct)", timeout_step["State"].split()[0], "TIMEOUT")
    expect("s-fail.p-fail", "exit code (status --json)", labels["s-fail.p-fail"]["exit_code"], 3)
    assert not problems, "\n".join(problems)
