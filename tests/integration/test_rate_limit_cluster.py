"""A rate-limited controller (SlurmctldParameters=rl_enable, Slurm 23.02 and later): a 500-allocation DAG submitted
into it backs off and completes, and status and reconcile work through it -- nothing is withdrawn or failed because
slurmctld said "slow down" (docs/compatibility.md, row "RPC rate limiting").

slurmctld exempts root and SlurmUser from the limit, so slurmdag runs here as a second Unix user (`sdtest`, created if
absent) with a small token bucket; slurmctld's log proves the limit was met. The test restarts its cluster's
slurmctld with rl_enable and back, so it runs alone, against a version cluster of its own (marker `rate_limited`;
`.ci/versions` runs it in the 25.11 lane after that version's other suites, `.ci/run` leaves it out of the 22.05
pass). Run it by hand:

    SLURMDAG_TEST_SLURM_VERSION=25.11 SLURMDAG_TEST_BACKEND=pyslurm python3 -m pytest -m rate_limited \\
        tests/integration/test_rate_limit_cluster.py
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.integration.conftest import BACKEND, DOCKER_SLURM
from tests.integration.test_isolation_cluster import (
    DEPENDENCIES,
    _let_others_traverse,
    _munge_socket_dir,
    _restore_modes,
)

pytestmark = [pytest.mark.integration, pytest.mark.rate_limited]

USER = "sdtest"
ALLOCATIONS = 500
# 20 RPCs at once, then 10 a second: a 500-job submission meets the limit within its first second, many times over.
RATE_LIMIT = "rl_enable,rl_bucket_size=20,rl_refill_rate=10,rl_refill_period=1,rl_log_freq=0"


def _up(slurm, **knobs: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SLURM_CTLD_PARAMETERS"}
    env.update(knobs)
    proc = subprocess.run([str(DOCKER_SLURM / "up")], env=env, text=True, capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def rate_limited_cluster(slurm):
    if slurm.version < (23, 2):
        pytest.fail(
            f"RPC rate limiting (rl_enable) needs Slurm 23.02 or later; this cluster runs {slurm.version}: run with "
            "SLURMDAG_TEST_SLURM_VERSION=25.11 (CI: .ci/versions)",
            pytrace=False,
        )
    log = slurm.run_dir / "log" / "slurmctld.log"
    offset = log.stat().st_size if log.exists() else 0
    _up(slurm, SLURM_CTLD_PARAMETERS=RATE_LIMIT)
    try:
        assert "RPC rate limiting enabled" in log.read_text(errors="replace")[offset:]
        yield log
    finally:
        _up(slurm)  # the defaults again: slurmctld restarts without the limit


@pytest.fixture(scope="module")
def second_user(slurm):
    """`sdtest` can run slurmdag: a world-readable copy of it and its dependencies (and, for the pyslurm backend, of
    the pyslurm this session uses), read access to the cluster's config and munge socket, a home for its store."""
    if os.getuid() != 0 or shutil.which("runuser") is None or not os.path.exists("/usr/bin/python3"):
        pytest.fail("needs root, runuser and /usr/bin/python3 to act as a user the rate limit applies to")
    if subprocess.run(["id", USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "-m", USER], check=True)
    opened = _let_others_traverse([Path(slurm.conf).parent, _munge_socket_dir(slurm.conf)])
    libs = Path(tempfile.mkdtemp(prefix="slurmdag-rate-limit-libs-"))
    home = Path(tempfile.mkdtemp(prefix="slurmdag-rate-limit-home-"))
    try:
        names = [*DEPENDENCIES, "slurmdag"] + (["pyslurm"] if BACKEND == "pyslurm" else [])
        for name in names:
            # pyslurm is found, not imported: its import needs a Slurm config (and is not needed here)
            spec = importlib.util.find_spec(name) if name == "pyslurm" else None
            origin = spec.origin if spec is not None else __import__(name).__file__
            assert origin, f"cannot find {name} to give to {USER}"
            src = Path(origin)
            src = src.parent if src.name == "__init__.py" else src
            copy = shutil.copytree if src.is_dir() else shutil.copy
            copy(src, libs / src.name, **({"ignore": shutil.ignore_patterns("__pycache__")} if src.is_dir() else {}))
        subprocess.run(["chmod", "-R", "a+rX", str(libs)], check=True)
        shutil.chown(home, USER, USER)
        yield libs, home
    finally:
        shutil.rmtree(libs, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
        _restore_modes(opened)


def _as_user(slurm, libs: Path, home: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = [
        "env",
        f"SLURM_CONF={slurm.conf}",
        f"SLURMDAG_HOME={home / 'store'}",
        f"HOME={home}",
        f"PYTHONPATH={libs}",
        f"PATH={slurm.path or os.environ['PATH']}",
        f"SLURMDAG_BACKEND={BACKEND}",
    ]
    argv = ["runuser", "-u", USER, "--", *env, "/usr/bin/python3", "-m", "slurmdag", "--backend", BACKEND, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=home)


def _workflow(path: Path) -> Path:
    # 100 chains of 5: every allocation but the first of its chain waits for the one before
    lines = ["name: rate-limited", "defaults: {walltime: 2}", "allocations:"]
    for i in range(ALLOCATIONS):
        layer, chain = divmod(i, 100)
        after = f", depends_on: [a{layer - 1}x{chain}]" if layer else ""
        lines.append(f"  - {{name: a{layer}x{chain}, entrypoint: 'true'{after}}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_500_allocation_dag_backs_off_and_completes_on_a_rate_limited_controller(
    slurm, rate_limited_cluster, second_user
):
    log = rate_limited_cluster
    libs, home = second_user
    offset = log.stat().st_size
    wf = _workflow(home / "wf.yaml")
    shutil.chown(wf, USER, USER)
    started = time.monotonic()
    sub = _as_user(slurm, libs, home, "submit", str(wf), "--json")
    took = time.monotonic() - started
    assert sub.returncode == 0, sub.stdout + sub.stderr  # never withdrawn
    out = json.loads(sub.stdout)
    dag, ids = out["dag_id"], out["jobs"]
    assert len(ids) == ALLOCATIONS
    uid = subprocess.run(["id", "-u", USER], capture_output=True, text=True, check=True).stdout.strip()
    limited = log.read_text(errors="replace")[offset:].count(f"RPC rate limit exceeded by uid {uid}")
    print(f"submitted {ALLOCATIONS} allocations in {took:.1f} s through {BACKEND}; told to back off {limited}x")
    assert limited > 0, "the submission never met the rate limit: the test proves nothing"

    # status and reconcile while the DAG runs, with the user's bucket emptied by a burst of squeue just before
    squeue = shutil.which("squeue", path=slurm.path) or "squeue"
    for command in (["status", dag, "--json"], ["reconcile", dag, "--once"]):
        offset = log.stat().st_size
        burst = [
            subprocess.Popen(
                ["runuser", "-u", USER, "--", "env", f"SLURM_CONF={slurm.conf}", squeue, "-h", "--me"],
                env=slurm.env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(40)
        ]
        proc = _as_user(slurm, libs, home, *command, timeout=600)
        for p in burst:
            p.wait(timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"RPC rate limit exceeded by uid {uid}" in log.read_text(errors="replace")[offset:]

    # Slurm's own view: every allocation ran and completed, none was cancelled
    rows = slurm.wait_until_done(list(ids.values()), timeout=900)
    states = {r["JobName"]: r["State"] for r in rows}
    assert len(states) == ALLOCATIONS
    assert {s.split()[0] for s in states.values()} == {"COMPLETED"}, states
    final = _as_user(slurm, libs, home, "status", dag, "--json")
    assert final.returncode == 0, final.stdout + final.stderr
    assert json.loads(final.stdout)["state"] == "Completed"
