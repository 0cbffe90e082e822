"""Outputs passed between allocations on the real cluster (issue 15, YAML side; docs/passing-data.md).

The workflows are the examples of docs/passing-data.md, run as written (plus a partition and walltime). Assertions
are on Slurm's view (sacct states) and on what the jobs wrote (their logs, the run folder), and a watcher scans
/proc from the end of `slurmdag submit` to the end of the DAG for any slurmdag process of this test's SLURMDAG_HOME:
the values travel with no driver alive."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path

import pytest

from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration

DOC = (REPO / "docs" / "passing-data.md").read_text(encoding="utf-8")
DEFAULTS = "defaults: {partition: debug, walltime: 2}\n"


def doc_workflow(name: str) -> str:
    """The YAML example of docs/passing-data.md whose workflow is `name`, with the test cluster's defaults."""
    for block in re.findall(r"```yaml\n(.*?)```", DOC, re.DOTALL):
        if block.startswith(f"name: {name}\n"):
            return block.replace("allocations:\n", DEFAULTS + "allocations:\n", 1)
    raise AssertionError(f"docs/passing-data.md has no example named {name}")


def _slurmdag_processes(home: str) -> list[str]:
    """Command lines of live slurmdag CLI processes (python -m slurmdag / the slurmdag script) that belong to this
    test: SLURMDAG_HOME=<home> in their environment. Jobs' own shells and the slurmdag-output helper inside a job
    are not slurmdag processes on the login node and do not count."""
    found = []
    marker = f"SLURMDAG_HOME={home}".encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue  # ended meanwhile, or not ours to read
        words = [a.decode(errors="replace") for a in argv if a]
        is_cli = any(w == "slurmdag" and i > 0 and words[i - 1] == "-m" for i, w in enumerate(words)) or any(
            os.path.basename(w) == "slurmdag" for w in words[:2]
        )
        if is_cli and marker in environ:
            found.append(" ".join(words))
    return found


class NoDriverWatch:
    """Scans for slurmdag processes of `home` every 0.1 s until stopped; remembers each sighting with the time its
    scan started, so a scan still running when `submit` returns is told apart from one that began after it."""

    def __init__(self, home: str):
        self.home = home
        self.seen: list[tuple[float, str]] = []
        self.scans: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.seen += [(started, p) for p in _slurmdag_processes(self.home)]
            self.scans.append(started)
            self._stop.wait(0.1)

    def after(self, moment: float) -> tuple[list[str], int]:
        """Processes seen by scans that started after `moment`, and how many such scans ran."""
        return [p for t, p in self.seen if t > moment], sum(1 for t in self.scans if t > moment)

    def __enter__(self) -> NoDriverWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def submit(run_slurmdag, wf: Path) -> dict:
    proc = run_slurmdag("submit", wf, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def job_ids(slurm, dag_id: str) -> dict[str, str]:
    """Allocation name -> Slurm job id, from squeue/sacct by the DAG's job names (not from slurmdag)."""
    out = slurm.run(
        *("sacct", "-X", "-n", "-P", "-o", "JobIDRaw,JobID,JobName", "-S", slurm.started.strftime("%Y-%m-%dT%H:%M:%S")),
        *("-E", "now", "-s", "BF,CA,CD,DL,F,NF,OOM,PD,PR,R,RQ,RS,RV,S,TO"),  # also jobs cancelled before they ran
    ).stdout
    ids: dict[str, str] = {}
    prefix = f"sd-{dag_id}-"
    for line in out.splitlines():
        raw, job_id, name = line.split("|", 2)
        if name.startswith(prefix) and "+" not in name[len(prefix) :]:
            ids.setdefault(name[len(prefix) :], job_id.split("_")[0])
    return ids


def wait_dag(slurm, dag_id: str, names: set[str], timeout: float = 240) -> dict[str, list[dict]]:
    """Wait until Slurm has every allocation of the DAG in accounting and none is unfinished; sacct rows by name."""
    ids = slurm.wait_for(
        lambda: (lambda found: found if set(found) >= names else None)(job_ids(slurm, dag_id)),
        timeout=60,
        what=f"the jobs of DAG {dag_id} in sacct",
    )
    rows = slurm.wait_until_done([ids[n] for n in names], timeout=timeout)
    by_name: dict[str, list[dict]] = {}
    for r in rows:
        by_name.setdefault(r["JobName"][len(f"sd-{dag_id}-") :], []).append(r)
    return by_name


def log_of(home: Path, dag_id: str, name: str, job_id: str) -> str:
    return (home / "dags" / dag_id / "logs" / f"{name}_{job_id}.out").read_text()


def test_search_publishes_best_lr_and_train_runs_with_it_with_no_driver(slurm, run_slurmdag, slurmdag_home, tmp_path):
    wf = tmp_path / "tune.yaml"
    wf.write_text(doc_workflow("tune-and-train"))
    with NoDriverWatch(str(slurmdag_home)) as watch:
        dag_id = submit(run_slurmdag, wf)["dag_id"]
        submitted = time.monotonic()  # the submit itself is allowed; from here on nothing may run
        rows = wait_dag(slurm, dag_id, {"search", "train"})
    assert any(t <= submitted for t, _ in watch.seen), "the watcher did not see `slurmdag submit` itself"
    alive, scans = watch.after(submitted)
    assert alive == [], f"slurmdag processes alive while the DAG ran: {alive}"
    assert scans > 5
    assert {n: [r["State"] for r in rs] for n, rs in rows.items()} == {"search": ["COMPLETED"], "train": ["COMPLETED"]}
    # train's own output proves the value it got; search's published file is the value
    assert "training with --lr=0.03\n" in log_of(slurmdag_home, dag_id, "train", rows["train"][0]["JobID"])
    run = slurmdag_home / "dags" / dag_id / "run"
    assert (run / "outputs" / "search" / "best_lr").read_text() == "0.03"
    # search started before train ended... and train only after search (the reference made the edge)
    assert rows["train"][0]["Start"] >= rows["search"][0]["End"]

    shown = run_slurmdag("outputs", dag_id, "--json")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["run_dir"] == str(run)
    assert [(a["name"], a.get("outputs")) for a in doc["allocations"]] == [
        ("search", {"best_lr": "0.03"}),
        ("train", {}),
    ]
    text = run_slurmdag("outputs", dag_id, "search")
    assert text.returncode == 0 and text.stdout.split() == ["search", "best_lr", "=", "0.03"], text.stdout
    status = run_slurmdag("status", dag_id, "--json")
    assert status.returncode == 0, status.stderr
    allocs = {a["name"]: a for a in json.loads(status.stdout)["allocations"]}
    assert allocs["search"]["outputs"] == {"best_lr": "0.03"}
    assert "outputs" not in allocs["train"]  # declares none, published none


def test_a_producer_that_forgets_its_output_fails_and_its_failure_handler_runs(
    slurm, run_slurmdag, slurmdag_home, tmp_path
):
    wf = tmp_path / "forgetful.yaml"
    wf.write_text(doc_workflow("forgetful"))
    dag_id = submit(run_slurmdag, wf)["dag_id"]
    rows = wait_dag(slurm, dag_id, {"search", "train", "alert"})
    states = {n: rs[0]["State"] for n, rs in rows.items()}
    assert states["search"] == "FAILED", rows
    assert rows["search"][0]["ExitCode"] == "1:0"
    assert states["alert"] == "COMPLETED", rows
    assert states["train"] == "CANCELLED" and rows["train"][0]["NodeList"] == "None assigned", rows
    log = log_of(slurmdag_home, dag_id, "search", rows["search"][0]["JobID"])
    assert "searched, but published nothing" in log
    assert "slurmdag: missing output best_lr" in log
    assert "search failed; see its log" in log_of(slurmdag_home, dag_id, "alert", rows["alert"][0]["JobID"])


def test_a_reduce_step_gets_every_tasks_value_in_order(slurm, run_slurmdag, slurmdag_home, tmp_path):
    wf = tmp_path / "sweep.yaml"
    wf.write_text(doc_workflow("sweep-and-pick"))
    dag_id = submit(run_slurmdag, wf)["dag_id"]
    rows = wait_dag(slurm, dag_id, {"score", "pick", "train"})
    assert sorted((r["JobID"], r["State"]) for r in rows["score"]) == [
        (f"{rows['score'][0]['JobID'].split('_')[0]}_{i}", "COMPLETED") for i in range(3)
    ]
    assert rows["pick"][0]["State"] == rows["train"][0]["State"] == "COMPLETED", rows
    assert "training with --lr=0.01\n" in log_of(slurmdag_home, dag_id, "train", rows["train"][0]["JobID"])
    doc = json.loads(run_slurmdag("outputs", dag_id, "--json").stdout)
    score = next(a for a in doc["allocations"] if a["name"] == "score")
    assert [(t["index"], t["outputs"]) for t in score["tasks"]] == [
        (0, {"loss": "0.09"}),
        (1, {"loss": "0"}),
        (2, {"loss": "0.009"}),
    ]
    status = json.loads(run_slurmdag("status", dag_id, "--json").stdout)
    tasks = next(a for a in status["allocations"] if a["name"] == "score")["tasks"]
    assert [t["outputs"] for t in tasks] == [{"loss": "0.09"}, {"loss": "0"}, {"loss": "0.009"}]


RESUME = """\
name: resume-outputs
defaults: {{partition: debug, walltime: 2}}
allocations:
  - name: produce
    outputs: [token]
    entrypoint: |
      echo run >> {d}/produce.runs
      slurmdag-output token "tok-$SLURM_JOB_ID"
  - name: consume
    entrypoint: |
      echo "got {{{{ outputs.produce.token }}}}" >> {d}/consume.got
      if [ ! -e {d}/consume.failed-once ]; then touch {d}/consume.failed-once; exit 3; fi
"""


def test_resume_keeps_the_outputs_of_completed_producers(slurm, run_slurmdag, slurmdag_home, shared_tmp):
    wf = shared_tmp / "resume.yaml"
    wf.write_text(RESUME.format(d=shared_tmp))
    dag_id = submit(run_slurmdag, wf)["dag_id"]
    first = wait_dag(slurm, dag_id, {"produce", "consume"})
    assert first["produce"][0]["State"] == "COMPLETED" and first["consume"][0]["State"] == "FAILED", first
    token = f"tok-{first['produce'][0]['JobID']}"

    proc = run_slurmdag("resume", dag_id, "--json")
    assert proc.returncode == 0, proc.stderr
    resumed = json.loads(proc.stdout)
    assert sorted(resumed["jobs"]) == ["consume"]
    again = slurm.wait_until_done([resumed["jobs"]["consume"]], timeout=240)
    assert [r["State"] for r in again] == ["COMPLETED"], again

    # produce ran once (its own marker and sacct), and consume read its kept value both times
    assert (shared_tmp / "produce.runs").read_text() == "run\n"
    assert (shared_tmp / "consume.got").read_text() == f"got {token}\n" * 2
    produce_runs = [r for r in wait_dag(slurm, dag_id, {"produce"})["produce"] if r["NodeList"] != "None assigned"]
    assert len(produce_runs) == 1
    doc = json.loads(run_slurmdag("outputs", dag_id, "produce", "--json").stdout)
    assert doc["allocations"] == [
        {"name": "produce", "declared": ["token"], "outputs": {"token": token}, "missing": []}
    ]


def test_python_results_are_shown_by_slurmdag_outputs(
    slurm, slurm_backend, run_slurmdag, slurmdag_home, tmp_path, monkeypatch
):
    """A DAG of Python steps (the Python API, submitted in-process): `slurmdag outputs` shows each step's return
    value (JSON, else repr) and the exception a step raised, read from the same run folder."""
    from slurmdag import DagFailedError, Workflow

    monkeypatch.chdir(tmp_path)  # the jobs' working directory: never the repository
    wf = Workflow("py-outputs", defaults={"partition": "debug", "walltime": "5m"})
    sq = wf.call("square", lambda x: x * x, 3)
    wf.call("add", lambda a, b: a + b, sq, 1)
    wf.call("pair", lambda: {1, 2})
    wf.call("bad", lambda: 1 / 0)
    handle = wf.submit(backend=slurm_backend)
    with pytest.raises(DagFailedError):
        handle.wait(timeout=300)
    # every step in sacct first: the DAG fails as soon as `bad` does, maybe before slurmdbd has the others
    by_name = wait_dag(slurm, handle.id, {"square", "add", "pair", "bad"})
    rows = {n: [r["State"] for r in rs] for n, rs in by_name.items()}
    assert rows["add"] == ["COMPLETED"] and rows["bad"] == ["FAILED"], rows
    assert handle.result("add") == 10

    shown = run_slurmdag("outputs", handle.id, "--json")
    assert shown.returncode == 0, shown.stderr
    doc = {a["name"]: a for a in json.loads(shown.stdout)["allocations"]}
    assert (doc["square"]["result"], doc["add"]["result"]) == (9, 10)
    assert doc["pair"]["repr"] == "{1, 2}" and "result" not in doc["pair"]
    assert doc["bad"]["error"] == "ZeroDivisionError: division by zero"
    text = run_slurmdag("outputs", handle.id, "add")
    assert text.returncode == 0 and text.stdout.split() == ["add", "result", "=", "10"], text.stdout


REDO = """\
name: redo-outputs
defaults: {{partition: debug, walltime: 2}}
allocations:
  - name: produce
    outputs: [token]
    entrypoint: slurmdag-output token "tok-$SLURM_JOB_ID"
  - name: consume
    entrypoint: echo "got {{{{ outputs.produce.token }}}}" >> {d}/consume.got
"""


def test_redo_of_a_producer_with_cascade_hands_its_new_value_on(slurm, run_slurmdag, shared_tmp):
    wf = shared_tmp / "redo.yaml"
    wf.write_text(REDO.format(d=shared_tmp))
    dag_id = submit(run_slurmdag, wf)["dag_id"]
    first = wait_dag(slurm, dag_id, {"produce", "consume"})
    assert first["produce"][0]["State"] == first["consume"][0]["State"] == "COMPLETED", first
    old = f"tok-{first['produce'][0]['JobID']}"

    proc = run_slurmdag("redo", dag_id, "produce", "--cascade", "--json")
    assert proc.returncode == 0, proc.stderr
    redone = json.loads(proc.stdout)
    assert sorted(redone["jobs"]) == ["consume", "produce"]
    rows = slurm.wait_until_done(list(redone["jobs"].values()), timeout=240)
    assert sorted(r["State"] for r in rows) == ["COMPLETED", "COMPLETED"], rows
    new = f"tok-{redone['jobs']['produce']}"
    assert new != old
    assert (shared_tmp / "consume.got").read_text() == f"got {old}\ngot {new}\n"
    doc = json.loads(run_slurmdag("outputs", dag_id, "produce", "--json").stdout)
    assert doc["allocations"][0]["outputs"] == {"token": new}


GROUPED = """\
name: grouped-outputs
defaults: {partition: debug, walltime: 2}
allocations:
  - name: search
    group: g
    outputs: [best_lr]
    entrypoint: slurmdag-output best_lr 0.05
  - name: train
    group: g
    entrypoint: echo "train --lr={{ outputs.search.best_lr }} dag=$SLURMDAG_DAG_ID"
  - name: after
    entrypoint: echo "after --lr={{ outputs.search.best_lr }}"
"""


def test_outputs_pass_between_members_of_a_group_job_and_out_of_it(slurm, run_slurmdag, slurmdag_home, tmp_path):
    wf = tmp_path / "grouped.yaml"
    wf.write_text(GROUPED)
    dag_id = submit(run_slurmdag, wf)["dag_id"]
    rows = wait_dag(slurm, dag_id, {"after"})  # `after` starts once the group job completed
    assert rows["after"][0]["State"] == "COMPLETED", rows
    logs = slurmdag_home / "dags" / dag_id / "logs"
    group_log = "".join(p.read_text() for p in logs.glob("g+group_*.out"))
    assert f"train --lr=0.05 dag={dag_id}\n" in group_log
    assert "after --lr=0.05\n" in log_of(slurmdag_home, dag_id, "after", rows["after"][0]["JobID"])
