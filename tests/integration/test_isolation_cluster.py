"""Isolation: a second Unix user cannot see or cancel the first user's DAG through slurmdag, and Slurm refuses the
cancel anyway. The user `sdtest` is created if absent (all test nodes share this machine's /etc/passwd)."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

USER = "sdtest"
# This machine's Python lives under /root (mode 0700); the second user runs the system python3 with a
# world-readable copy of slurmdag and its dependencies on PYTHONPATH.
DEPENDENCIES = (
    "typer",
    "click",
    "jinja2",
    "markupsafe",
    "yaml",
    "_yaml",
    "tabulate",
    "typing_extensions",
    "shellingham",
    "annotated_doc",
    "wcwidth",
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "typing_inspection",
)


@pytest.fixture(scope="module")
def second_user(slurm):
    if os.getuid() != 0 or shutil.which("runuser") is None or not os.path.exists("/usr/bin/python3"):
        pytest.skip("needs root, runuser and /usr/bin/python3 to act as a second user")
    if subprocess.run(["id", USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "-m", USER], check=True)
    # Like any Slurm client, the second user needs to read slurm.conf and reach munge's socket in the run dir. A
    # checkout in a `mktemp -d` folder (mode 0700) hides both: grant search-only permission on the way there, for
    # this test's duration.
    opened = _let_others_traverse([Path(slurm.conf).parent, _munge_socket_dir(slurm.conf)])
    if subprocess.run(["runuser", "-u", USER, "--", "test", "-r", slurm.conf]).returncode != 0:
        _restore_modes(opened)
        pytest.fail(
            f"user {USER} cannot read {slurm.conf}: the test cluster's run dir must sit in folders other "
            "users can traverse (see docs/local-cluster.md, SLURM_CLUSTER_DIR)"
        )
    # Not under pytest's basetemp: a concurrent pytest session may prune old basetemps while this test runs.
    libs = Path(tempfile.mkdtemp(prefix="slurmdag-second-user-libs-"))
    for name in DEPENDENCIES:
        mod = __import__(name)
        src = os.path.dirname(mod.__file__) if mod.__file__.endswith("__init__.py") else mod.__file__
        dst = libs / os.path.basename(src)
        (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, dst)
    # slurmdag itself too: the checkout may sit in a folder only root can read (a CI clone in a mktemp dir)
    import slurmdag

    shutil.copytree(os.path.dirname(slurmdag.__file__), libs / "slurmdag", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["chmod", "-R", "a+rX", str(libs)], check=True)
    os.environ["SD6_LIBS"] = str(libs)
    try:
        yield USER
    finally:
        shutil.rmtree(libs, ignore_errors=True)
        _restore_modes(opened)


def _munge_socket_dir(conf: str) -> Path:
    m = re.search(r"^AuthInfo=.*socket=([^,\s]+)", Path(conf).read_text(), re.M)
    return Path(m.group(1)).parent if m else Path(conf).parent


def _let_others_traverse(folders: list[Path]) -> list[tuple[Path, int]]:
    """Add the others-search bit to each folder and its ancestors that lack it; return the old modes."""
    changed: dict[Path, int] = {}
    for folder in folders:
        for d in [folder, *folder.parents]:
            mode = stat.S_IMODE(d.stat().st_mode)
            if not mode & stat.S_IXOTH and d not in changed:
                os.chmod(d, mode | stat.S_IXOTH)
                changed[d] = mode
    return list(changed.items())


def _restore_modes(changed: list[tuple[Path, int]]) -> None:
    for d, mode in changed:
        os.chmod(d, mode)


def _as_user(slurm, user: str, *argv: str, home: str) -> subprocess.CompletedProcess:
    if argv[0] == sys.executable:
        argv = ("/usr/bin/python3", *argv[1:])
    env = [
        "env",
        f"SLURM_CONF={slurm.conf}",
        f"SLURMDAG_HOME={home}",
        f"HOME=/home/{user}",
        f"PYTHONPATH={os.environ.get('SD6_LIBS', '')}",
        "PATH=/usr/local/bin:/usr/bin:/bin",
        # runuser keeps our environment: not the backend under test, but what a user without a setting gets (their
        # system python has no pyslurm, so auto means the Slurm commands).
        "SLURMDAG_BACKEND=auto",
    ]
    return subprocess.run(
        ["runuser", "-u", user, "--", *env, *argv], capture_output=True, text=True, timeout=120, cwd="/tmp"
    )


def test_second_user_cannot_cancel_or_read(run_slurmdag, slurm, tmp_path, slurmdag_home, second_user):
    wf = tmp_path / "mine.yaml"
    wf.write_text(
        "name: sd6-mine\nallocations:\n  - {name: long, entrypoint: 'sleep 120', walltime: 5}\n"
        "  - {name: after, entrypoint: 'true', walltime: 1, depends_on: [long]}\n"
    )
    proc = run_slurmdag("submit", "--json", wf)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    dag, ids = out["dag_id"], list(out["jobs"].values())
    try:
        # through slurmdag, with the other user's own store: the DAG is unknown to them
        other = _as_user(
            slurm,
            second_user,
            sys.executable,
            "-m",
            "slurmdag",
            "cancel",
            dag,
            home=f"/home/{second_user}/.local/share/slurmdag",
        )
        assert other.returncode == 2, (other.stdout, other.stderr)
        assert f"unknown DAG {dag!r}" in other.stderr and "Traceback" not in other.stderr
        # pointing at the first user's store: not readable (the store is created 0700)
        assert (os.stat(slurmdag_home / "dags").st_mode & 0o077) == 0
        other = _as_user(slurm, second_user, sys.executable, "-m", "slurmdag", "status", dag, home=str(slurmdag_home))
        assert other.returncode != 0 and "Traceback" not in other.stderr, other.stderr
        assert "ermission denied" in other.stderr or "unknown DAG" in other.stderr
        # and Slurm itself refuses the cancel
        direct = _as_user(slurm, second_user, "scancel", *ids, home="/tmp")
        assert "ermission denied" in (direct.stderr + direct.stdout) or "Access/permission" in direct.stderr
        rows = slurm.squeue(ids)
        states = {r["JobName"].rsplit("-", 1)[-1]: r["State"] for r in rows}
        assert states["long"] in ("PENDING", "RUNNING") and states["after"] == "PENDING", states  # untouched
    finally:
        run_slurmdag("cancel", dag)
