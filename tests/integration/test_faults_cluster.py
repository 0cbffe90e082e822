"""Fault paths of issue 17 on the real cluster, the ones that leave the shared cluster's daemons alone: a hang-up in
the middle of a large submission, a submitter that dies after releasing the gate while every node is busy, and eight
concurrent submissions while status/list/reconcile run in a loop. Slurm's own view (squeue/sacct) decides.

(Stopping slurmctld or slurmdbd: tests/integration/test_faults_daemons_cluster.py, run alone.)
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration

ACTIVE = {"PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "REQUEUED"}
HELD = {"JobHeldUser", "JobHeldAdmin"}


def sd_env(slurm, home: Path) -> dict[str, str]:
    # The code of this checkout, whatever slurmdag is installed.
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**slurm.env(), "SLURMDAG_HOME": str(home), "PYTHONPATH": path}


def sd(slurm, home: Path, *args: str, timeout: float = 600, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "slurmdag", *args],
        env=sd_env(slurm, home),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or home.parent,
    )


def jobs_named(slurm, prefix: str) -> list[dict[str, str]]:
    """Every job slurmctld holds whose name starts with `prefix` (any user's view, finished ones included)."""
    out = slurm.run("squeue", "-h", "-r", "-t", "all", "-o", "%i|%A|%T|%r|%N|%j").stdout
    rows = [
        dict(zip(("JobID", "JobIDRaw", "State", "Reason", "NodeList", "JobName"), ln.split("|", 5), strict=True))
        for ln in out.splitlines()
        if ln.strip()
    ]
    return [r for r in rows if r["JobName"].startswith(prefix)]


def layered_workflow(name: str, layers: int, width: int, entrypoint: str = "true") -> str:
    """layers x width allocations; allocation (l, i) waits on (l-1, i): one submission wave per layer."""
    lines = [f"name: {name}", "defaults: {partition: debug, walltime: 2}", "allocations:"]
    for layer in range(layers):
        for i in range(width):
            lines.append(f"  - name: l{layer:02d}-{i:02d}")
            lines.append(f"    entrypoint: {json.dumps(entrypoint)}")
            if layer:
                lines.append(f"    depends_on: [l{layer - 1:02d}-{i:02d}]")
    return "\n".join(lines) + "\n"


def recorded(home: Path) -> list[dict]:
    out = []
    for folder in sorted((home / "dags").iterdir()) if (home / "dags").is_dir() else []:
        try:
            out.append(json.loads((folder / "dag.json").read_text()))
        except (FileNotFoundError, ValueError):
            continue
    return out


# --- defect 4: SIGHUP in the middle of a large submission ---


def test_a_hangup_mid_submit_of_a_large_dag_leaves_all_of_it_in_slurm(slurm, tmp_path):
    """ssh drops: the terminal's SIGHUP reaches the whole foreground process group and the terminal is gone. The
    submission is finished (docs/commands.md, "Hang-ups"): Slurm holds every job, the gate is released, all run."""
    home = tmp_path / "home"
    wf = tmp_path / "wide.yaml"
    wf.write_text(layered_workflow("hangup", layers=30, width=10))  # 300 allocations, 30 waves
    proc = subprocess.Popen(
        [sys.executable, "-m", "slurmdag", "submit", str(wf)],
        env=sd_env(slurm, home),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, like a job of the login shell
    )
    deadline = time.monotonic() + 120
    while not any(len(r.get("job_ids", {})) >= 60 for r in recorded(home)):
        assert proc.poll() is None, "the submission ended before the hang-up could be sent"
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGHUP)
    proc.stdout.close()  # the terminal is gone: nobody reads what it prints any more
    proc.stderr.close()
    rc = proc.wait(timeout=300)
    assert rc != -signal.SIGHUP, "killed by the hang-up"
    (record,) = recorded(home)
    dag = record["dag_id"]
    assert record["submission"] == "submitted" and len(record["job_ids"]) == 300, record.get("error")

    # Slurm's view: all 300 jobs and the gate, none cancelled, the gate released (not held)
    live = jobs_named(slurm, f"sd-{dag}-")
    names = sorted(r["JobName"][len(f"sd-{dag}-") :] for r in live)
    assert len(names) == 301 and len(set(names)) == 301 and "+gate" in names
    gate = next(r for r in live if r["JobName"].endswith("-+gate"))
    assert not (gate["State"] == "PENDING" and gate["Reason"] in HELD), gate
    assert not [r for r in live if r["State"] == "CANCELLED"]
    done = slurm.wait_until_done([r["JobIDRaw"] for r in live], timeout=400)
    assert {r["State"] for r in done} == {"COMPLETED"}, {r["State"] for r in done}


# --- defect 3: a released gate pending on a busy cluster is never withdrawn ---

THREE = """\
name: busy
defaults: {partition: debug, walltime: 2}
allocations:
  - {name: a, entrypoint: "true"}
  - {name: b, entrypoint: "true", depends_on: [a]}
  - {name: c, entrypoint: "true", depends_on: [a]}
"""

# `slurmdag submit` whose last save (the one that marks the DAG submitted, after the gate's release) fails: the
# record is left `submitting` exactly as when the process dies at that moment.
LAST_SAVE_FAILS = """
import sys
from slurmdag.model.errors import StoreError
from slurmdag.state.store import SUBMITTED, Store
real = Store.save
def save(self, record, durable=True):
    if record.submission == SUBMITTED:
        raise StoreError("cannot write the record: No space left on device (injected)")
    real(self, record, durable)
Store.save = save
sys.argv = ["slurmdag", "submit", sys.argv[1]]
from slurmdag.cli import main
main()
"""


@pytest.fixture
def every_node_busy(slurm):
    """Every CPU of every node taken (one exclusive job per node), so a released gate waits for Resources."""
    nodes = slurm.run("sinfo", "-h", "-N", "-o", "%N").stdout.split()
    ids = [
        slurm.submit("--exclusive", "-N1", f"-w{n}", "-t2", "-Jfaults-blocker", "-o/dev/null", "--wrap=sleep 110")
        for n in sorted(set(nodes))
    ]
    try:
        slurm.wait_for(lambda: all(r["State"] == "RUNNING" for r in slurm.squeue(ids)), 150, "blockers on every node")
        yield ids
    finally:
        slurm.run("scancel", *ids, check=False)


def test_a_submitter_that_dies_after_releasing_a_gate_that_waits_for_resources_is_not_withdrawn(
    slurm, tmp_path, every_node_busy
):
    home = tmp_path / "home"
    wf = tmp_path / "busy.yaml"
    wf.write_text(THREE)
    proc = subprocess.run(
        [sys.executable, "-c", LAST_SAVE_FAILS, str(wf)],
        env=sd_env(slurm, home),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1 and "injected" in proc.stderr, proc.stdout + proc.stderr
    (record,) = recorded(home)
    dag = record["dag_id"]
    assert record["submission"] == "submitting" and len(record["job_ids"]) == 3

    # Slurm's view: the gate was released and waits for a CPU; nothing of the DAG has run
    gate = slurm.squeue([record["gate_job_id"]])[0]
    assert gate["State"] == "PENDING" and gate["Reason"] not in HELD, gate

    listed = sd(slurm, home, "list")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "died after releasing the gate; marked as submitted" in listed.stdout, listed.stdout
    status = sd(slurm, home, "status", dag)
    assert status.returncode == 0, status.stdout + status.stderr
    after = recorded(home)[0]
    assert after["submission"] == "submitted", after

    # still in Slurm, untouched: nothing cancelled, the gate still waiting for resources
    live = jobs_named(slurm, f"sd-{dag}-")
    assert len(live) == 4 and not [r for r in live if r["State"] == "CANCELLED"], live
    gate = next(r for r in live if r["JobName"].endswith("-+gate"))
    assert gate["State"] == "PENDING" and gate["Reason"] not in HELD, gate

    slurm.run("scancel", *every_node_busy)  # the cluster frees up: the DAG runs to the end
    done = slurm.wait_until_done([r["JobIDRaw"] for r in live], timeout=300)
    assert {r["State"] for r in done} == {"COMPLETED"}, done
    status = json.loads(sd(slurm, home, "status", dag, "--json").stdout)
    assert status["state"] == "Completed", status


# --- eight concurrent submissions while status/list/reconcile loop ---


def test_eight_concurrent_submits_of_100_allocations_with_status_list_and_reconcile_looping(slurm, tmp_path):
    home = tmp_path / "home"
    since = datetime.now().strftime("%Y-%m-%dT%H:%M:%S")
    flows = []
    for k in range(8):
        wf = tmp_path / f"wf{k}.yaml"
        wf.write_text(layered_workflow(f"conc{k}", layers=10, width=10))
        flows.append(wf)
    submits = [
        subprocess.Popen(
            [sys.executable, "-m", "slurmdag", "submit", str(wf), "--json"],
            env=sd_env(slurm, home),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for wf in flows
    ]
    loop_results: list[tuple[list[str], int, str]] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            known = [r["dag_id"] for r in recorded(home)]
            for command in (["list", "--json"], ["reconcile", "--once"], *(["status", d, "--json"] for d in known[:2])):
                res = sd(slurm, home, *command)
                loop_results.append((command, res.returncode, res.stderr))

    looper = threading.Thread(target=loop)
    looper.start()
    try:
        outcomes = [(p.communicate(timeout=900), p.returncode) for p in submits]
        for (_out, err), rc in outcomes:
            assert rc == 0, err
        ids = [json.loads(out)["dag_id"] for (out, _), _ in outcomes]
        assert len(set(ids)) == 8

        records = {r["dag_id"]: r for r in recorded(home)}
        assert sorted(records) == sorted(ids)  # every record readable
        for r in records.values():
            assert r["submission"] == "submitted" and len(r["job_ids"]) == 100, r
        all_ids = [j for r in records.values() for j in [r["gate_job_id"], *r["job_ids"].values()]]
        assert len(set(all_ids)) == 808  # no job id recorded twice, across DAGs either
        done = slurm.wait_until_done(all_ids, timeout=900)
        assert {r["State"] for r in done} == {"COMPLETED"}, {r["State"] for r in done}
    finally:
        stop.set()
        looper.join(timeout=300)

    # Slurm's view: every job carrying one of these DAG ids is a recorded job of exactly that DAG, once
    out = slurm.run("sacct", "-X", "-n", "-P", "-o", "JobIDRaw,JobName,State", "-S", since, "-E", "now").stdout
    tagged = [ln.split("|") for ln in out.splitlines() if ln.startswith(tuple("0123456789"))]
    ours = {}
    for job_id, name, _state in tagged:
        for dag in ids:
            if name.startswith(f"sd-{dag}-"):
                ours[job_id] = (dag, name[len(f"sd-{dag}-") :])
    expected = {
        j: (dag, name) for dag, r in records.items() for name, j in [("+gate", r["gate_job_id"]), *r["job_ids"].items()]
    }
    assert ours == expected

    assert loop_results, "the status/list/reconcile loop never ran"
    bad = [(c, rc, err[-300:]) for c, rc, err in loop_results if rc != 0 or "Traceback" in err]
    assert not bad, bad[:3]
    final = json.loads(sd(slurm, home, "list", "--all", "--json").stdout)
    assert sorted((d["dag_id"], d["state"]) for d in final) == sorted((d, "Completed") for d in ids)


# --- defect 9, without restarting the shared cluster: pre-flight counts the job table as slurmctld does ---


def test_preflight_counts_slurmctlds_job_table(slurm, tmp_path):
    wf = tmp_path / "small.yaml"
    wf.write_text(THREE)
    held = lambda: len(slurm.run("squeue", "-h", "-r", "-t", "all", "-o", "%i").stdout.split())  # noqa: E731
    before = held()
    res = sd(slurm, tmp_path / "home", "submit", str(wf), "--dry-run", "--json")
    after = held()
    assert res.returncode == 0, res.stderr
    preflight = json.loads(res.stdout)["preflight"]
    note = next(n for n in preflight["notes"] if n.startswith("Slurm's job table holds"))
    counted, limit = (int(x) for x in re.match(r"Slurm's job table holds (\d+) of MaxJobCount (\d+)", note).groups())
    config = slurm.run("scontrol", "show", "config").stdout
    assert limit == int(re.search(r"^MaxJobCount\s*=\s*(\d+)", config, re.M).group(1))
    # other tests submit meanwhile: the count lies between two independent readings around it
    assert min(before, after) - 5 <= counted <= max(before, after) + 5, (before, counted, after)
    assert preflight["ok"] and preflight["no_room"] is None and preflight["wait_for_room"] == 0
