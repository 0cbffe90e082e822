"""Smoke test of the compose cluster (docker-slurm/compose), from scratch, with Podman by default.

Not collected by ``pytest tests`` (the file name does not match ``test_*.py``); run it explicitly, as root:

    python3 -m pytest -q -p no:cacheprovider tests/compose/smoke_compose.py

It builds the cluster image from scratch (reusing the debootstrap base image when it exists), starts the cluster,
checks ``srun -N3 hostname`` from the host, submits a slurmdag workflow from the host and checks the outcome in
``sacct``, then tears everything down and checks that no container, network or image of the cluster is left.
Environment:
    SLURMDAG_COMPOSE_ENGINE      podman (default here) or docker
    SLURMDAG_COMPOSE_KEEP_BASE=1 keep the debootstrap base image (saves ~30 s on the next run on this machine)
    SLURMDAG_COMPOSE_TIMINGS     where to write the timings as JSON (default /tmp/slurmdag-compose-timings.json)
The tests depend on each other in file order (one cluster for the module); the last one tears it down.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-slurm" / "compose"
WORKFLOW = Path(__file__).resolve().parent / "workflow.yaml"
ENGINE = os.environ.setdefault("SLURMDAG_COMPOSE_ENGINE", "podman")
KEEP_BASE = os.environ.get("SLURMDAG_COMPOSE_KEEP_BASE") == "1"
TIMINGS_FILE = Path(os.environ.get("SLURMDAG_COMPOSE_TIMINGS", "/tmp/slurmdag-compose-timings.json"))
IMAGE = "localhost/slurmdag-slurm:latest"
BASE_IMAGE = "localhost/debian:bookworm"
NETWORK = "slurmdag-compose"
CONTAINERS = ["slurmdag-slurmdbd", "slurmdag-slurmctld", "slurmdag-c1", "slurmdag-c2", "slurmdag-c3"]
TERMINAL_TIMEOUT = 180  # generous: the workflow takes a few seconds; this only bounds a hang

timings: dict[str, float] = {}

if os.geteuid() != 0:
    pytest.skip("the compose smoke test needs root (Podman rootful, debootstrap)", allow_module_level=True)


def run(*argv: str, check: bool = True, env: dict | None = None, cwd: Path | None = None, timeout: float = 900):
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} -> exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def timed(name: str, *argv: str, **kw):
    t0 = time.monotonic()
    proc = run(*argv, **kw)
    timings[name] = round(time.monotonic() - t0, 1)
    return proc


def engine_env() -> dict:
    env = dict(os.environ)
    if ENGINE == "podman":
        env["CONTAINERS_CONF"] = str(COMPOSE / "containers.conf")
    return env


def engine(*argv: str, check: bool = False):
    return run(ENGINE, *argv, check=check, env=engine_env())


def exists(kind: str, name: str) -> bool:
    return engine(kind, "inspect", name).returncode == 0


@pytest.fixture(scope="module")
def cluster():
    """Build from scratch and start; yields the environment for host-side Slurm commands."""
    # From scratch: no cluster, no cluster image (the debootstrap base image is reused when present).
    timed("down_before", str(COMPOSE / "down"), "--images")
    assert not exists("image", IMAGE)
    timings["base_image_cached"] = float(exists("image", BASE_IMAGE))
    timed("base_image", str(COMPOSE / "base-image"))
    t0 = time.monotonic()
    up = run(str(COMPOSE / "up"), "--build")
    timings["up_build_and_start"] = round(time.monotonic() - t0, 1)
    timed("up_again_when_running", str(COMPOSE / "up"))
    env = dict(os.environ)
    for line in run(str(COMPOSE / "env")).stdout.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value.strip("'")
    env["SLURMDAG_HOME"] = str(Path(env["SLURMDAG_COMPOSE_SHARED"]) / "slurmdag-home")
    print(up.stdout)
    try:
        yield env
    finally:
        # Always stop it, even when a test failed; test_teardown does the full check.
        run(str(COMPOSE / "down"), check=False)


def slurm(env: dict, *argv: str, cwd: Path | None = None):
    return run(*argv, env=env, cwd=cwd, timeout=120)


def test_srun_three_container_hostnames(cluster):
    out = slurm(cluster, "srun", "-N3", "hostname").stdout.split()
    assert sorted(out) == ["c1", "c2", "c3"]
    sinfo = slurm(cluster, "sinfo", "-h", "-N", "-o", "%N %T").stdout.split("\n")
    assert sorted(line for line in sinfo if line) == ["c1 idle", "c2 idle", "c3 idle"]


def _sacct(env: dict, job_ids: list[str]) -> dict[str, dict]:
    out = slurm(
        env,
        "sacct",
        "-X",
        "-n",
        "-P",
        "-S",
        "now-1hour",
        "-j",
        ",".join(job_ids),
        "-o",
        "JobID,JobName,State,ExitCode,NodeList",
    ).stdout
    rows = {}
    for line in out.splitlines():
        job_id, name, state, exit_code, nodes = line.split("|")
        rows[job_id] = {"name": name, "state": state.split()[0], "exit": exit_code, "nodes": nodes}
    return rows


def test_slurmdag_workflow_from_host(cluster):
    shared = Path(cluster["SLURMDAG_COMPOSE_SHARED"])
    workdir = shared / "smoke-workflow"
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    t0 = time.monotonic()
    # Submitted from the host, working dir in the shared folder (same path on every node).
    proc = slurm(cluster, sys.executable, "-m", "slurmdag", "submit", "--json", str(WORKFLOW), cwd=workdir)
    timings["slurmdag_submit"] = round(time.monotonic() - t0, 1)
    jobs = json.loads(proc.stdout)["jobs"]
    assert set(jobs) == {"prep", "shards", "boom", "after-boom", "on-boom-failure", "on-prep-failure"}

    # Expected final view in sacct; array tasks of the task group are rows "<id>_<n>".
    expected = {
        "prep": ["COMPLETED"],
        "shards": ["COMPLETED"] * 3,
        "boom": ["FAILED"],
        "after-boom": ["CANCELLED"],  # success edge from a failed parent: cascade-cancelled
        "on-boom-failure": ["COMPLETED"],  # failure edge that fires
        "on-prep-failure": ["CANCELLED"],  # failure edge whose parent succeeded: never runs
    }
    ids = list(jobs.values())
    deadline = time.monotonic() + TERMINAL_TIMEOUT
    while True:
        rows = _sacct(cluster, ids)
        name_of = {job_id: name for name, job_id in jobs.items()}
        by_name: dict[str, list[dict]] = {}
        for job_id, row in sorted(rows.items()):
            name = name_of.get(job_id.split("_")[0])
            if name:
                by_name.setdefault(name, []).append(row | {"id": job_id})
        states = {name: [r["state"] for r in by_name.get(name, [])] for name in expected}
        if states == expected:
            break
        if time.monotonic() > deadline:
            pytest.fail(
                f"workflow did not reach the expected end state in {TERMINAL_TIMEOUT} s:\n"
                f"expected {expected}\nsacct    {states}\n{json.dumps(rows, indent=1)}"
            )
        time.sleep(0.5)
    timings["workflow_to_terminal"] = round(time.monotonic() - t0, 1)

    assert by_name["boom"][0]["exit"] == "3:0"
    assert by_name["after-boom"][0]["nodes"] == "None assigned"
    assert by_name["on-prep-failure"][0]["nodes"] == "None assigned"
    assert sorted(r["id"] for r in by_name["shards"]) == [f"{jobs['shards']}_{i}" for i in range(3)]
    # Job output written on the nodes is readable on the host, in the working dir.
    assert (workdir / "prep.out").read_text().strip() in {"c1", "c2", "c3"}
    assert (workdir / "handled.out").read_text().strip() in {"c1", "c2", "c3"}
    for i in range(3):
        index, host = (workdir / f"shard-{i}.out").read_text().split()
        assert index == str(i) and host in {"c1", "c2", "c3"}
    assert not (workdir / "after-boom.out").exists()
    assert not (workdir / "on-prep-failure.out").exists()

    # slurmdag's own view agrees.
    status = json.loads(
        slurm(cluster, sys.executable, "-m", "slurmdag", "status", "--json", proc_dag(proc), cwd=workdir).stdout
    )
    got = {a["name"]: a["state"] for a in status["allocations"]}
    assert got == {
        "prep": "Completed",
        "shards": "Completed",
        "boom": "Failed",
        "after-boom": "Cancelled",
        "on-boom-failure": "Completed",
        "on-prep-failure": "Skipped",
    }


def proc_dag(proc) -> str:
    return json.loads(proc.stdout)["dag_id"]


def test_teardown_removes_everything(cluster):
    args = ["--images"] if KEEP_BASE else ["--all"]
    timed("down", str(COMPOSE / "down"), *args)
    for name in CONTAINERS:
        assert not exists("container", name), name
    assert not exists("network", NETWORK)
    assert not exists("image", IMAGE)
    assert exists("image", BASE_IMAGE) == KEEP_BASE
    # Every image built from the Containerfile carries this label, intermediate layers included.
    left = engine("images", "-a", "-q", "--filter", "label=org.slurmdag.compose").stdout.split()
    assert left == [], f"images of the compose cluster left behind: {left}"
    TIMINGS_FILE.write_text(json.dumps(timings, indent=1) + "\n")
    print("compose smoke timings (s):", json.dumps(timings))
