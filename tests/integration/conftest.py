"""Integration-test plumbing: the real local Slurm cluster from docker-slurm/.

Every test in tests/integration runs against it. A session fixture (autouse)
runs ``docker-slurm/up`` once (about a second when the cluster is already up;
it starts whatever is missing) and sets ``os.environ["SLURM_CONF"]`` for the
session. Set SLURMDAG_SKIP_INTEGRATION=1 to skip these tests instead (e.g. not root).

Slurm version: ``SLURMDAG_TEST_SLURM_VERSION`` (default 22.05, Debian's packages; 24.11, 25.11, 26.05 are
built from source by ``docker-slurm/up``, see docs/local-cluster.md). The session brings up that version's own
cluster (``SLURM_VERSION=<v> docker-slurm/up``), puts its client commands first on ``PATH`` (in
``os.environ`` for the session, so slurmdag and every subprocess use them) and checks that ``sbatch --version``
is that version; anything missing fails every test, naming it (never a skip).

Fixtures (use these; keep tests asserting on Slurm's own view):

``slurm`` (session) -> SlurmCluster
    .conf                  path of the cluster's slurm.conf (str)
    .version               (major, minor) of the cluster's Slurm, e.g. (24, 11), read from ``sbatch --version``
    .run_dir               the cluster's run dir (Path): etc/, log/, pid/, state/ ...
    .run(*argv, check=True, timeout=120) -> CompletedProcess (text); a Slurm command with the cluster env
    .submit(*sbatch_args) -> str         plain ``sbatch --parsable``; returns the job id ("123")
    .sacct(job_ids, since=None) -> list[dict]
        one batched ``sacct -X -n -P -o JobID,JobIDRaw,JobName,State,ExitCode,Start,End,NodeList
        -j ... -S <since>`` (default bound: 10 minutes before the session started); keys are those
        field names; array tasks appear as JobID "123_4" (JobIDRaw is the task's own id).
        NodeList == "None assigned" means the job never ran.
    .squeue(job_ids) -> list[dict]
        ``squeue -h -t all -r -j ...``; keys JobID, JobIDRaw, State, Reason, NodeList, Dependency,
        JobName (finished jobs stay visible for MinJobAge=300 s). Unknown ids are simply absent.
    .wait_until_done(job_ids, timeout=120) -> list[dict]
        polls until none of the jobs (or array tasks) is PENDING/RUNNING/... in squeue and sacct
        shows them all finished with the same JobName as squeue (slurmdbd may record the final
        state before the name: sacct shows JobName "allocation" for a few seconds); returns the
        final sacct rows. Raises TimeoutError with the last
        squeue/sacct view. NB: a job stuck PENDING on DependencyNeverSatisfied never finishes;
        use .wait_for for that.
    .wait_for(predicate, timeout=60, what="...") -> value
        polls predicate() every 0.2 s until it returns something truthy; returns it, or raises
        TimeoutError("timed out after Ns waiting for <what>").

``slurmdag_home`` (function) -> Path   fresh tmp dir, also set as env SLURMDAG_HOME for the test.
``run_slurmdag`` (function) -> callable(*args, input=None, cwd=None, env=None, timeout=300)
    runs ``[sys.executable, "-m", "slurmdag", "--backend", BACKEND, *args]`` with the cluster env,
    SLURMDAG_HOME and SLURMDAG_BACKEND; returns CompletedProcess (text); never raises on a non-zero exit.
``slurm_backend`` (function) -> Backend   the backend under test, for tests that call slurmdag in-process.

Backend: ``SLURMDAG_TEST_BACKEND=cli|pyslurm`` (default cli) is the backend slurmdag uses in every test. With
pyslurm, the session first runs slurmdag's own probe; if pyslurm cannot work against this cluster every test fails
with the probe's reason (never a skip).
``shared_tmp`` (function) -> Path      a world-readable tmp dir that jobs on every node can see
    (all nodes share this machine's filesystem).

When an integration test fails, its report gets a "slurm cluster" section with sinfo, squeue,
recent sacct and the tail of the slurmctld log.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKER_SLURM = REPO / "docker-slurm"
# Which Slurm the integration tests run against (docker-slurm/up builds the non-default ones from source).
SLURM_VERSION = os.environ.get("SLURMDAG_TEST_SLURM_VERSION", "22.05")
# The backend slurmdag talks to Slurm through in these tests (docs/backends.md).
BACKEND = os.environ.get("SLURMDAG_TEST_BACKEND", "cli")

SACCT_FIELDS = ["JobID", "JobIDRaw", "JobName", "State", "ExitCode", "Start", "End", "NodeList"]
SQUEUE_FIELDS = ["JobID", "JobIDRaw", "State", "Reason", "NodeList", "Dependency", "JobName"]
_SQUEUE_FORMAT = "%i|%A|%T|%r|%N|%E|%j"
# Slurm job states in which a job is not finished yet.
ACTIVE_STATES = {
    "PENDING",
    "RUNNING",
    "CONFIGURING",
    "COMPLETING",
    "SUSPENDED",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "RESIZING",
    "SIGNALING",
    "STAGE_OUT",
    "STOPPED",
    "RESV_DEL_HOLD",
}


def _ids(job_ids: Iterable[Any] | str | int) -> list[str]:
    if isinstance(job_ids, (str, int)):
        job_ids = [job_ids]
    return [str(j) for j in job_ids]


def _base_state(state: str) -> str:
    # sacct prints "CANCELLED by 0"; squeue never adds a suffix
    return state.split()[0] if state else state


class SlurmCluster:
    """Thin helper around the Slurm CLI of the local test cluster (see module docstring)."""

    def __init__(
        self, conf: str, started: datetime, version: tuple[int, int] = (22, 5), path: str | None = None
    ) -> None:
        self.conf = conf
        self.run_dir = Path(conf).resolve().parent.parent
        self.started = started
        self.version = version
        self.path = path  # PATH with this version's client commands first (None: inherit)

    # -- plumbing
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["SLURM_CONF"] = self.conf
        if self.path is not None:
            env["PATH"] = self.path
        return env

    def run(
        self, *argv: str, check: bool = True, timeout: float = 120, input: str | None = None
    ) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [str(a) for a in argv], env=self.env(), text=True, capture_output=True, timeout=timeout, input=input
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(map(str, argv))} exited {proc.returncode}\n"
                f"stdout: {proc.stdout.strip()}\nstderr: {proc.stderr.strip()}"
            )
        return proc

    # -- commands
    def submit(self, *sbatch_args: str) -> str:
        out = self.run("sbatch", "--parsable", *sbatch_args).stdout.strip()
        job_id = out.split(";")[0]
        if not job_id.isdigit():
            raise RuntimeError(f"sbatch --parsable printed {out!r}")
        return job_id

    def sacct(self, job_ids, since: datetime | str | None = None) -> list[dict[str, str]]:
        ids = _ids(job_ids)
        if not ids:
            return []
        if since is None:
            since = self.started - timedelta(minutes=10)
        if isinstance(since, datetime):
            since = since.strftime("%Y-%m-%dT%H:%M:%S")
        out = self.run(
            "sacct", "-X", "-n", "-P", "-o", ",".join(SACCT_FIELDS), "-S", since, "-E", "now", "-j", ",".join(ids)
        ).stdout
        rows = []
        for line in out.splitlines():
            if not line.strip():
                continue
            parts = line.split("|")
            # JobName may itself contain '|': take 2 fields from the left, 5 from the right
            head, tail = parts[:2], parts[-5:]
            name = "|".join(parts[2:-5])
            rows.append(dict(zip(SACCT_FIELDS, head + [name] + tail, strict=False)))
        return rows

    def squeue(self, job_ids) -> list[dict[str, str]]:
        ids = _ids(job_ids)
        if not ids:
            return []
        argv = ("squeue", "-h", "-t", "all", "-r", "-o", _SQUEUE_FORMAT, "-j", ",".join(ids))
        proc = self.run(*argv, check=False)
        # slurmctld stalled past MessageTimeout (seen on 24.11 here): an unanswered read says nothing; ask again
        for _ in range(3):
            if proc.returncode == 0 or "Socket timed out" not in proc.stderr:
                break
            proc = self.run(*argv, check=False)
        if proc.returncode != 0:
            if "Invalid job id" in proc.stderr:
                return []
            raise RuntimeError(f"squeue failed ({proc.returncode}): {proc.stderr.strip()}")
        rows = []
        for line in proc.stdout.splitlines():
            if line.strip():
                rows.append(dict(zip(SQUEUE_FIELDS, line.split("|", len(SQUEUE_FIELDS) - 1), strict=False)))
        return rows

    # -- waiting
    def wait_for(self, predicate: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.2)

    def wait_until_done(self, job_ids, timeout: float = 120) -> list[dict[str, str]]:
        ids = _ids(job_ids)
        deadline = time.monotonic() + timeout
        last_q: list[dict] = []
        last_a: list[dict] = []
        while True:
            last_q = self.squeue(ids)
            if not any(_base_state(r["State"]) in ACTIVE_STATES for r in last_q):
                last_a = self.sacct(ids)
                covered = all(
                    any(r["JobID"] == i or r["JobIDRaw"] == i or r["JobID"].startswith(i + "_") for r in last_a)
                    for i in ids
                ) and {r["JobIDRaw"] for r in last_q} <= {r["JobIDRaw"] for r in last_a}  # every task, not one
                # slurmdbd can record the final state a few seconds before the job's name (sacct
                # shows JobName "allocation" meanwhile): also wait until the names agree with squeue
                names = {r["JobIDRaw"]: r["JobName"] for r in last_q}
                settled = all(names.get(r["JobIDRaw"], r["JobName"]) == r["JobName"] for r in last_a)
                # an array's task rows reach accounting one by one: wait until every task squeue lists has its row
                recorded = {r["JobIDRaw"] for r in last_a}
                settled = settled and all(r["JobIDRaw"] in recorded for r in last_q)
                if covered and settled and not any(_base_state(r["State"]) in ACTIVE_STATES for r in last_a):
                    return last_a
            if time.monotonic() >= deadline:
                view = "\n".join(f"  squeue {r}" for r in last_q) + "\n" + "\n".join(f"  sacct  {r}" for r in last_a)
                raise TimeoutError(f"jobs {','.join(ids)} not done after {timeout}s:\n{view}")
            time.sleep(0.25)


# ---------------------------------------------------------------- fixtures

_SESSION: dict[str, SlurmCluster] = {}


@pytest.fixture(scope="session", autouse=True)
def _slurm_cluster_up() -> Iterable[SlurmCluster]:
    if os.environ.get("SLURMDAG_SKIP_INTEGRATION") == "1":
        pytest.skip("SLURMDAG_SKIP_INTEGRATION=1")
    started = datetime.now()
    version_env = {**os.environ, "SLURM_VERSION": SLURM_VERSION}
    # A first `up` of a source-built version compiles it (minutes); later ones take a second or two.
    proc = subprocess.run([str(DOCKER_SLURM / "up")], text=True, capture_output=True, timeout=3600, env=version_env)
    if proc.returncode != 0:
        pytest.fail(
            f"docker-slurm/up (SLURM_VERSION={SLURM_VERSION}) failed (exit {proc.returncode}):\n{proc.stdout}\n"
            f"{proc.stderr}",
            pytrace=False,
        )
    # What a user does: eval "$(docker-slurm/env)" (SLURM_CONF, and PATH for a source-built version).
    shown = subprocess.run(
        ["bash", "-c", 'eval "$("$0")" && printf "%s\\n%s\\n" "$SLURM_CONF" "$PATH"', str(DOCKER_SLURM / "env")],
        text=True,
        capture_output=True,
        check=True,
        env=version_env,
    ).stdout.splitlines()
    # SLURM_VERSION too: docker-slurm/{up,status,down} run by tests then act on this cluster.
    exports = {"SLURM_CONF": shown[0], "PATH": shown[1], "SLURM_VERSION": SLURM_VERSION}
    old = {name: os.environ.get(name) for name in exports}
    os.environ.update(exports)
    try:
        found = subprocess.run(["sbatch", "--version"], text=True, capture_output=True, timeout=60)
        match = re.match(r"slurm[\w-]* (\d+)\.(\d+)", found.stdout.strip())
        if found.returncode != 0 or not match or f"{match[1]}.{match[2]}" != SLURM_VERSION:
            pytest.fail(
                f"SLURMDAG_TEST_SLURM_VERSION={SLURM_VERSION}, but `sbatch --version` on PATH "
                f"({shutil.which('sbatch')}) printed {(found.stdout + found.stderr).strip()!r}",
                pytrace=False,
            )
        cluster = SlurmCluster(exports["SLURM_CONF"], started, (int(match[1]), int(match[2])), exports["PATH"])
        _SESSION["cluster"] = cluster
        yield cluster
    finally:
        _SESSION.pop("cluster", None)
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def slurm(_slurm_cluster_up: SlurmCluster, _backend_ready: str) -> SlurmCluster:
    return _slurm_cluster_up


@pytest.fixture(scope="session", autouse=True)
def _backend_ready(_slurm_cluster_up: SlurmCluster) -> Iterable[str]:
    """The backend under test works against this cluster, or every test fails saying what is missing."""
    from slurmdag.backends import choice

    if BACKEND not in ("cli", "pyslurm"):
        pytest.fail(f"SLURMDAG_TEST_BACKEND={BACKEND!r}: choose cli or pyslurm", pytrace=False)
    if BACKEND == "pyslurm":
        found = choice.probe()
        if not found.usable:
            pytest.fail(
                f"SLURMDAG_TEST_BACKEND=pyslurm, but {found.reason} (build it: docs/backends.md)", pytrace=False
            )
    # Tests that start slurmdag themselves (not through run_slurmdag) pass os.environ on: they use it too.
    old = os.environ.get("SLURMDAG_BACKEND")
    os.environ["SLURMDAG_BACKEND"] = BACKEND
    yield BACKEND
    if old is None:
        os.environ.pop("SLURMDAG_BACKEND", None)
    else:
        os.environ["SLURMDAG_BACKEND"] = old


@pytest.fixture
def slurm_backend(_backend_ready: str):
    from slurmdag.backends import choice

    return choice.choose(_backend_ready, "SLURMDAG_TEST_BACKEND").backend


@pytest.fixture
def slurmdag_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("slurmdag_home")
    monkeypatch.setenv("SLURMDAG_HOME", str(home))
    return home


@pytest.fixture
def run_slurmdag(slurm: SlurmCluster, slurmdag_home: Path, tmp_path_factory: pytest.TempPathFactory):
    # Jobs write slurm-<id>.out into the directory they were submitted from: never the repository.
    default_cwd = tmp_path_factory.mktemp("submit_dir")

    def _run(
        *args: str,
        input: str | None = None,
        cwd: str | os.PathLike | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess:
        full_env = slurm.env()
        full_env["SLURMDAG_HOME"] = str(slurmdag_home)
        # The code of this checkout, not whatever slurmdag is installed (an editable install of another worktree).
        full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        full_env["SLURMDAG_BACKEND"] = BACKEND  # also for slurmdag processes a test starts itself
        if env:
            full_env.update(env)
        return subprocess.run(
            [sys.executable, "-m", "slurmdag", "--backend", BACKEND, *[str(a) for a in args]],
            env=full_env,
            text=True,
            capture_output=True,
            input=input,
            cwd=cwd or default_cwd,
            timeout=timeout,
        )

    return _run


@pytest.fixture
def shared_tmp(tmp_path: Path) -> Path:
    # jobs run as root on "nodes" that share this filesystem; make the path readable anyway
    path = tmp_path
    for p in [path, *path.parents]:
        if p == Path(p.anchor) or p == Path("/tmp"):
            break
        try:
            p.chmod(p.stat().st_mode | 0o755)
        except OSError:
            break
    return path


# ---------------------------------------------------------------- failure report


def _cluster_snapshot(cluster: SlurmCluster) -> str:
    parts = []
    cmds = [
        ("sinfo", ["sinfo", "-N", "-l"]),
        ("squeue (first 40)", ["squeue", "-a", "-o", "%.12i %.9P %.30j %.8T %.10M %.20R %E"]),
        (
            "sacct, last 10 minutes (last 40)",
            [
                "sacct",
                "-a",
                "-X",
                "-S",
                "now-10minutes",
                "-o",
                "JobID%14,JobName%30,State%22,ExitCode,Start,End,NodeList",
            ],
        ),
    ]
    for title, argv in cmds:
        try:
            proc = cluster.run(*argv, check=False, timeout=15)
            lines = (proc.stdout + proc.stderr).splitlines()
            lines = lines[:41] if title.startswith("squeue") else lines[:2] + lines[2:][-40:]
            parts.append(f"--- {title}\n" + "\n".join(lines))
        except Exception as exc:  # the snapshot must never hide the real failure
            parts.append(f"--- {title}: {exc!r}")
    log = cluster.run_dir / "log" / "slurmctld.log"
    try:
        tail = log.read_text(errors="replace").splitlines()[-30:]
        parts.append(f"--- tail of {log}\n" + "\n".join(tail))
    except OSError as exc:
        parts.append(f"--- {log}: {exc}")
    return "\n".join(parts)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    cluster = _SESSION.get("cluster")
    if report.failed and cluster is not None and call.when in ("setup", "call"):
        report.sections.append(("slurm cluster", _cluster_snapshot(cluster)))
