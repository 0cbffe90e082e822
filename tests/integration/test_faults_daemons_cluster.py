"""Fault tests that stop a daemon of the test cluster for a while — slurmctld restarted in the middle of a DAG,
slurmdbd stopped during `status` and `reconcile` — through docker-slurm's own lib.sh functions and PID files
(never a broad kill), started again with docker-slurm/up.

They disturb every other test that uses the cluster at the same time: run this file alone, e.g. at the end of a
full run: `python3 -m pytest -m stops_daemons tests/integration/test_faults_daemons_cluster.py`. Slurm's own view
(squeue/sacct) decides.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.integration.conftest import DOCKER_SLURM, REPO

pytestmark = [pytest.mark.integration, pytest.mark.stops_daemons]

HELD = {"JobHeldUser", "JobHeldAdmin"}


def lib(slurm, script: str) -> None:
    """Run docker-slurm/lib.sh functions on this cluster's run dir (its PID files say which process is which)."""
    proc = subprocess.run(
        ["bash", "-c", f'source "$0"; {script}', str(DOCKER_SLURM / "lib.sh")],
        env={**os.environ, "SLURM_CLUSTER_DIR": str(slurm.run_dir)},
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def stop(slurm, daemon: str) -> None:
    pid_file = {"slurmctld": "slurmctld.pid", "slurmdbd": "slurmdbd.pid"}[daemon]
    lib(slurm, f'take_lock; stop_daemon {daemon} "$PID_DIR/{pid_file}" 20 >/dev/null')


def start_all(slurm) -> None:
    """docker-slurm/up starts whatever is missing (a second when nothing is)."""
    proc = subprocess.run(
        [str(DOCKER_SLURM / "up")], env=os.environ.copy(), text=True, capture_output=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture
def daemons_back(slurm):
    """Whatever a test stopped is started again, even when the test fails."""
    yield
    start_all(slurm)
    slurm.wait_for(lambda: slurm.run("scontrol", "ping", check=False).returncode == 0, 60, "slurmctld up")
    slurm.wait_for(lambda: sacct_answers(slurm), 60, "slurmdbd answering")


def sacct_answers(slurm) -> bool:
    return slurm.run("sacct", "-n", "-X", "-S", "now", "-o", "JobID", check=False).returncode == 0


def sd(slurm, home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [sys.executable, "-m", "slurmdag", *args],
        env={**slurm.env(), "SLURMDAG_HOME": str(home), "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=home.parent,
    )


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- slurmctld stopped and started while a 20-allocation DAG is part-way ---


def twenty(d: Path) -> tuple[str, dict[str, list[str]]]:
    """a -> b0..b3 -> c0..c7 -> d0..d6: 20 allocations, each noting every run of itself, 3 s each."""
    parents: dict[str, list[str]] = {"a": []}
    parents |= {f"b{i}": ["a"] for i in range(4)}
    parents |= {f"c{i}": [f"b{i // 2}"] for i in range(8)}
    parents |= {f"d{i}": [f"c{i}", f"c{i + 1}"] for i in range(7)}
    lines = ["name: restart", "defaults: {partition: debug, walltime: 5}", "allocations:"]
    for name, ps in parents.items():
        lines.append(f"  - name: {name}")
        lines.append(f'    entrypoint: "echo run >> {d}/{name}.runs; sleep 3"')
        if ps:
            lines.append(f"    depends_on: [{', '.join(ps)}]")
    return "\n".join(lines) + "\n", parents


def test_slurmctld_restarted_mid_dag_it_completes_with_no_allocation_run_twice_or_early(
    slurm, tmp_path, shared_tmp, daemons_back
):
    home = tmp_path / "home"
    text, parents = twenty(shared_tmp)
    wf = shared_tmp / "restart.yaml"
    wf.write_text(text)
    res = sd(slurm, home, "submit", str(wf), "--json")
    assert res.returncode == 0, res.stderr
    sub = json.loads(res.stdout)
    dag, ids = sub["dag_id"], sub["jobs"]
    # part-way: the root is done and its children run
    slurm.wait_for(
        lambda: any(r["State"] == "RUNNING" for r in slurm.squeue([ids[f"b{i}"] for i in range(4)])), 120, "b running"
    )

    stop(slurm, "slurmctld")
    down = sd(slurm, home, "status", dag)
    assert down.returncode == 1, down.stdout + down.stderr
    assert down.stderr.startswith("the Slurm controller (slurmctld) is not answering") and down.stderr.count("\n") == 1
    time.sleep(5)
    start_all(slurm)
    slurm.wait_for(lambda: slurm.run("scontrol", "ping", check=False).returncode == 0, 60, "slurmctld up")

    rows = {r["JobIDRaw"]: r for r in slurm.wait_until_done(list(ids.values()), timeout=400)}
    by_name = {name: rows[job_id] for name, job_id in ids.items()}
    assert {name: r["State"] for name, r in by_name.items()} == {name: "COMPLETED" for name in parents}
    runs = {name: (shared_tmp / f"{name}.runs").read_text().count("run") for name in parents}
    assert runs == {name: 1 for name in parents}  # none ran twice
    times = slurm.wait_for(
        lambda: (
            all("None" not in (r["Start"], r["End"]) for r in slurm.sacct(list(ids.values())))
            and {r["JobIDRaw"]: r for r in slurm.sacct(list(ids.values()))}
        ),
        60,
        "start/end times in accounting",
    )
    for child, ps in parents.items():
        for parent in ps:
            c, p = times[ids[child]], times[ids[parent]]
            assert when(c["Start"]) >= when(p["End"]), (child, c["Start"], parent, p["End"])
    status = json.loads(sd(slurm, home, "status", dag, "--json").stdout)
    assert status["state"] == "Completed", status


# --- slurmdbd stopped during status and reconcile ---

HANDLED = """\
name: dbd
defaults: {partition: debug, walltime: 2}
allocations:
  - {name: a, entrypoint: "true"}
  - {name: b, entrypoint: "true", depends_on: [{a: failure}]}
  - {name: c, entrypoint: "true", depends_on: [a]}
"""
LIVE = """\
name: live
defaults: {partition: debug, walltime: 5}
allocations:
  - {name: x, entrypoint: "sleep 90"}
"""


def test_slurmdbd_stopped_nothing_is_guessed_and_the_reconciler_does_nothing_until_it_is_back(
    slurm, tmp_path, daemons_back
):
    home = tmp_path / "home"
    age = int(re.search(r"^MinJobAge\s*=\s*(\d+)", slurm.run("scontrol", "show", "config").stdout, re.M).group(1))
    if age > 600:
        pytest.skip(f"MinJobAge is {age} s: waiting for a finished job to leave slurmctld would take too long")
    (tmp_path / "handled.yaml").write_text(HANDLED)
    (tmp_path / "live.yaml").write_text(LIVE)
    # --cascade reconciler: b (runs only if a fails) is left pending on DependencyNeverSatisfied for the reconciler
    res = sd(slurm, home, "submit", str(tmp_path / "handled.yaml"), "--cascade", "reconciler", "--json")
    assert res.returncode == 0, res.stderr
    dag, ids = json.loads(res.stdout)["dag_id"], json.loads(res.stdout)["jobs"]
    slurm.wait_for(
        lambda: [r["Reason"] for r in slurm.squeue([ids["b"]])] == ["DependencyNeverSatisfied"],
        120,
        "b never satisfied",
    )
    # a and c complete, then leave slurmctld's memory (MinJobAge); accounting keeps them
    slurm.wait_for(lambda: not slurm.squeue([ids["a"], ids["c"]]), age + 240, "a and c purged from slurmctld")
    assert {r["JobIDRaw"]: r["State"] for r in slurm.sacct([ids["a"], ids["c"]])} == {
        ids["a"]: "COMPLETED",
        ids["c"]: "COMPLETED",
    }
    res = sd(slurm, home, "submit", str(tmp_path / "live.yaml"), "--json")
    assert res.returncode == 0, res.stderr
    live_dag, live_ids = json.loads(res.stdout)["dag_id"], json.loads(res.stdout)["jobs"]
    slurm.wait_for(lambda: [r["State"] for r in slurm.squeue([live_ids["x"]])] == ["RUNNING"], 120, "x running")

    stop(slurm, "slurmdbd")
    assert not sacct_answers(slurm)
    status = sd(slurm, home, "status", dag, "--json")
    assert status.returncode == 0, status.stderr
    states = {a["name"]: a["state"] for a in json.loads(status.stdout)["allocations"]}
    assert states == {"a": "Unknown", "b": "Pending", "c": "Unknown"}, states  # never Completed from missing data
    assert "slurmdbd" in status.stderr
    live = json.loads(sd(slurm, home, "status", live_dag, "--json").stdout)
    assert [a["state"] for a in live["allocations"]] == ["Running"]  # what slurmctld holds is still read
    assert sd(slurm, home, "list", "--json").returncode == 0
    rec = sd(slurm, home, "reconcile", "--once")
    assert rec.returncode == 1 and "slurmdbd" in rec.stderr and dag in rec.stderr, rec.stdout + rec.stderr
    # Slurm's view: the reconciler acted on nothing
    (b,) = slurm.squeue([ids["b"]])
    assert b["State"] == "PENDING" and b["Reason"] == "DependencyNeverSatisfied", b
    assert json.loads((home / "dags" / dag / "dag.json").read_text())["final_state"] is None

    start_all(slurm)
    slurm.wait_for(lambda: sacct_answers(slurm), 60, "slurmdbd answering again")
    status = json.loads(sd(slurm, home, "status", dag, "--json").stdout)
    assert {a["name"]: a["state"] for a in status["allocations"]} == {
        "a": "Completed",
        "b": "Pending",
        "c": "Completed",
    }
    rec = sd(slurm, home, "reconcile", "--once")
    assert rec.returncode == 0, rec.stdout + rec.stderr
    slurm.wait_for(lambda: [r["State"] for r in slurm.squeue([ids["b"]])] == ["CANCELLED"], 60, "b cancelled")
    (b,) = slurm.wait_until_done([ids["b"]])
    assert b["NodeList"] == "None assigned"  # b never ran
    status = json.loads(sd(slurm, home, "status", dag, "--json").stdout)
    assert status["state"] == "Completed" and {a["name"]: a["state"] for a in status["allocations"]}["b"] == "Skipped"
    sd(slurm, home, "cancel", live_dag)
