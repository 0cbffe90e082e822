"""The pyslurm backend puts the very same jobs into Slurm as the CLI backend: one DAG submitted through each, then
Slurm's own records compared job by job — `scontrol show job` (dependencies, array, resources, name, comment, output
paths, command, ...), and the environment and script slurmctld stored for each job (its StateSaveLocation).

This test needs pyslurm whatever SLURMDAG_TEST_BACKEND says; without a working pyslurm it fails naming what is
missing (docs/backends.md says how to build it)."""

from __future__ import annotations

import dataclasses
import json
import re
import struct
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

# A DAG that exercises what slurmdag submits: resources, a task group, success/failure/any edges, an OR (join job),
# a relative output path, an extra flag, and a job pyslurm cannot express (--mail-type: submitted through sbatch).
WORKFLOW = """\
name: twins
defaults:
  partition: debug
  walltime: 10
allocations:
  - name: root
    entrypoint: "sleep 60"
    cpus_per_task: 2
    mem: 100M
  - name: shards
    tasks: 4
    entrypoint: "true"
    depends_on: [root]
    nodes: 1
    ntasks: 2
    mem_per_cpu: 50M
  - name: handler
    entrypoint: "echo failed"
    depends_on: [{root: failure}]
    output: "handler-%j.log"
    walltime: "1:30:00"
  - name: either
    entrypoint: "true"
    depends_on: [{root: any}]
    depends_on_any: [shards, handler]
    sbatch: ["--requeue", "--open-mode=append"]
  - name: cleanup
    entrypoint: "true"
    depends_on: [{either: any}]
    exclusive: true
  - name: mailer
    entrypoint: "true"
    depends_on: [cleanup]
    sbatch: ["--mail-type=FAIL"]
"""

# Fields that say when or where a job ran, or its place in the queue: they differ between any two submissions.
# Fields scontrol shows for a pyslurm job only, at the value that means "not asked for": on 24.11 and 25.11 pyslurm
# sends OOMKillStep=0 where sbatch sends "unset" (NO_VAL16); both leave the step alone when a task runs out of memory
# unless the cluster's own default says otherwise (docs/backends.md, "What differs").
DEFAULT_SHOWN = {"OOMKillStep": "0"}


def _compared(key: str, value: str) -> bool:
    # 25.11+ shows SubmitLine (sbatch's command line; none through pyslurm, docs/backends.md), whose words the
    # key=value reading also returns as "--option" keys
    return key not in VOLATILE and key != "SubmitLine" and not key.startswith("--") and DEFAULT_SHOWN.get(key) != value


VOLATILE = {
    "JobId",
    "ArrayJobId",
    "JobState",
    "Reason",
    "Priority",
    "SubmitTime",
    "EligibleTime",
    "AccrueTime",
    "StartTime",
    "EndTime",
    "Deadline",
    "SuspendTime",
    "SecsPreSuspend",
    "LastSchedEval",
    "RunTime",
    "NodeList",
    "BatchHost",
    "Scheduler",
    "PreemptEligibleTime",
    "PreemptTime",
    "RestartCnt",
    "AllocNode:Sid",  # the submitting process's session: differs between any two sbatch runs too
}


def _show_job(slurm, job_id: str) -> list[dict[str, str]]:
    """`scontrol show job -o ID`: one dict per record (a pending array is one record), Key=Value words."""
    out = slurm.run("scontrol", "show", "job", "-o", job_id).stdout
    records = []
    for line in out.splitlines():
        # Values hold no blanks here except after "Command=" and the like, which slurmdag's paths do not have.
        rec = dict(w.split("=", 1) for w in line.split() if "=" in w)
        if rec:
            records.append(rec)
    return records


# The fields of `scontrol show job`, and the variables of the stored environment, that name other jobs (or the job
# itself, `%j` in an output path). Job ids are replaced by allocation names there only: a fresh cluster hands out ids
# like 1, 2 and 50, which also occur as numbers elsewhere (cpu=2, 50M, the 25.11 in PATH); the scripts name no job.
ID_FIELDS = {"Dependency", "StdOut", "StdErr", "StdIn", "SLURM_JOB_DEPENDENCY"}


def _normalizer(dag: str, ids: dict[str, str]):
    by_len = sorted(ids.items(), key=lambda kv: -len(kv[1]))

    def norm(text: str, key: str = "") -> str:
        text = text.replace(dag, "<dag>")
        if key in ID_FIELDS:
            for name, job_id in by_len:
                text = re.sub(rf"(?<!\d){job_id}(?!\d)", f"<{name}>", text)
        return text

    return norm


def _state_dir(slurm) -> Path:
    conf = slurm.run("scontrol", "show", "config").stdout
    return Path(re.search(r"^StateSaveLocation\s*=\s*(\S+)", conf, re.M).group(1))


def _stored(state: Path, job_id: str, what: str) -> bytes:
    return (state / f"hash.{int(job_id) % 10}" / f"job.{job_id}" / what).read_bytes()


def _differences(cli: list[dict[str, str]], py: list[dict[str, str]]) -> str:
    if len(cli) != len(py):
        return f"{len(cli)} records through the CLI, {len(py)} through pyslurm"
    out = []
    for a, b in zip(cli, py, strict=True):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                out.append(f"{key}: cli {a.get(key)!r}, pyslurm {b.get(key)!r}")
    return "; ".join(out)


def _environment(raw: bytes) -> list[str]:
    (count,) = struct.unpack("<I", raw[:4])
    env = [v.decode() for v in raw[4:].split(b"\0") if v]
    assert len(env) == count, "the environment file is not what this test expects"
    return sorted(env)


def _submit(run_slurmdag, backend: str, wf: Path, cwd: Path) -> dict:
    sub = run_slurmdag("-v", "--backend", backend, "submit", str(wf), "--json", cwd=cwd)
    assert sub.returncode == 0, f"--backend {backend}: {sub.stderr}"
    assert f"backend {backend}" in sub.stderr, sub.stderr  # -v says which one was used
    return json.loads(sub.stdout)


def test_a_dag_through_pyslurm_is_the_same_in_slurm_as_through_the_cli(slurm, run_slurmdag, slurmdag_home, tmp_path):
    from slurmdag.backends import choice

    found = choice.probe()
    assert found.usable, f"this test needs pyslurm for the cluster's Slurm: {found.reason} (docs/backends.md)"

    wf = tmp_path / "twins.yaml"
    wf.write_text(WORKFLOW)
    cwd = tmp_path / "submit-here"
    cwd.mkdir()
    dags = {}
    try:
        for backend in ("cli", "pyslurm"):
            out = _submit(run_slurmdag, backend, wf, cwd)
            record = json.loads((slurmdag_home / "dags" / out["dag_id"] / "dag.json").read_text())
            dags[backend] = (out["dag_id"], {**record["job_ids"], "+gate": record["gate_job_id"]})

        cli_dag, cli_ids = dags["cli"]
        py_dag, py_ids = dags["pyslurm"]
        # Compare the two DAGs in the same phase: both gates done, both roots running (60 s), the rest waiting.
        phase = [cli_ids["+gate"], py_ids["+gate"], cli_ids["root"], py_ids["root"]]
        slurm.wait_for(
            lambda: (
                [r["State"] for r in sorted(slurm.squeue(phase), key=lambda r: phase.index(r["JobID"]))]
                == ["COMPLETED", "COMPLETED", "RUNNING", "RUNNING"]
            ),
            timeout=120,
            what="both gates to complete and both roots to run",
        )
        assert set(cli_ids) == set(py_ids) and len(cli_ids) == 8  # 6 allocations, a join job, the gate
        norm_cli, norm_py = _normalizer(cli_dag, cli_ids), _normalizer(py_dag, py_ids)
        state = _state_dir(slurm)
        compared = 0
        for name in sorted(cli_ids):
            shown = {}
            for backend, norm, ids in (("cli", norm_cli, cli_ids), ("pyslurm", norm_py, py_ids)):
                records = _show_job(slurm, ids[name])
                shown[backend] = [{k: norm(v, k) for k, v in r.items() if _compared(k, v)} for r in records]
            assert shown["cli"] == shown["pyslurm"], f"scontrol show job differs for {name!r}: " + _differences(
                shown["cli"], shown["pyslurm"]
            )
            compared += len(shown["cli"][0])
            cli_env = [norm_cli(v, v.split("=")[0]) for v in _environment(_stored(state, cli_ids[name], "environment"))]
            py_env = [norm_py(v, v.split("=")[0]) for v in _environment(_stored(state, py_ids[name], "environment"))]
            assert cli_env == py_env, f"the job environment differs for {name!r}"
            assert norm_cli(_stored(state, cli_ids[name], "script").decode()) == norm_py(
                _stored(state, py_ids[name], "script").decode()
            ), f"the stored script differs for {name!r}"
        assert compared > 8 * 40  # scontrol printed whole records, not a few fields

        # What was compared is not trivially equal: the DAG carries what it asked for.
        shards = _show_job(slurm, py_ids["shards"])[0]
        assert shards["ArrayTaskId"] == "0-3" and shards["NumTasks"] == "2"
        assert shards["Dependency"] == f"afterok:{py_ids['root']}(unfulfilled)"
        assert shards["Comment"] == f"slurmdag:{py_dag}:shards"
        handler = _show_job(slurm, py_ids["handler"])[0]
        assert handler["StdOut"] == f"{cwd}/handler-{py_ids['handler']}.log" and handler["TimeLimit"] == "01:30:00"
        root = _show_job(slurm, py_ids["root"])[0]
        assert root["JobName"] == f"sd-{py_dag}-root" and root["MinMemoryNode"] == "100M"
    finally:
        for _dag, ids in dags.values():
            slurm.run("scancel", *ids.values(), check=False)


READS = """\
name: reads
defaults:
  partition: debug
  walltime: 5
allocations:
  - name: ok
    entrypoint: "true"
  - name: bad
    entrypoint: "exit 3"
  - name: long
    entrypoint: "sleep 60"
  - name: tasks
    tasks: 6
    entrypoint: 'if [ "$SLURMDAG_TASK_INDEX" = 1 ]; then exit 1; fi; sleep 30'
  - name: waits
    entrypoint: "true"
    depends_on: [long]
  - name: never
    entrypoint: "true"
    depends_on: [bad]
"""


def test_both_backends_read_the_same_states(slurm, run_slurmdag, slurmdag_home, tmp_path):
    """One DAG in many states (finished ok/failed, running, pending on a dependency, a task group part running,
    part pending, one task failed); the CLI's squeue+sacct and pyslurm's Jobs.load()+sacct read the same."""
    from slurmdag.backends import choice
    from slurmdag.backends.cli import CliBackend

    py = choice.choose("pyslurm", "this test").backend
    cli = CliBackend()
    wf = tmp_path / "reads.yaml"
    wf.write_text(READS)
    sub = run_slurmdag("submit", str(wf), "--json", "--cascade", "reconciler")
    assert sub.returncode == 0, sub.stderr
    out = json.loads(sub.stdout)
    ids = list(out["jobs"].values())
    finished = [out["jobs"]["ok"], out["jobs"]["bad"]]
    try:
        slurm.wait_for(
            lambda: {r["State"] for r in slurm.sacct(finished)} >= {"COMPLETED", "FAILED"},
            timeout=60,
            what="ok and bad to finish",
        )
        for _ in range(3):  # states move while we read; three tries to catch both reads in the same moment
            a, b = _timeless(cli.query(ids)), _timeless(py.query(ids))
            if a == b:
                break
        assert a == b, "; ".join(
            f"{k}: cli {a.get(k)}, pyslurm {b.get(k)}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)
        )
        assert {a[out["jobs"]["ok"]].state, a[out["jobs"]["bad"]].state} == {"COMPLETED", "FAILED"}
        assert a[out["jobs"]["waits"]].reason == "Dependency"
        assert len([k for k in a if k.startswith(out["jobs"]["tasks"] + "_")]) == 6
        assert cli.query_live(ids).keys() == py.query_live(ids).keys()
        assert cli.find_jobs(f"sd-{out['dag_id']}-").keys() == py.find_jobs(f"sd-{out['dag_id']}-").keys()
        # pre-flight's view: slurmctld's job table (every row, finished ones with their end) and the user's queue
        for _ in range(3):
            seen = [_preflight_view(backend.read_cluster()) for backend in (cli, py)]
            if seen[0] == seen[1]:
                break
        assert seen[0] == seen[1]
        assert seen[0][0] >= len(ids) and len(seen[0][1]) >= 2  # this DAG's rows; ok and bad have ended
    finally:
        slurm.run("scancel", *ids, check=False)


def _preflight_view(info) -> tuple:
    assert info.job_table is not None, "pre-flight got no job table"
    table = info.job_table
    return table.held, table.finished_ends, sorted(q.job_id for q in info.queued)


def _timeless(infos: dict) -> dict:
    """Job states without the elapsed time (it ticks between the two reads)."""
    return {k: dataclasses.replace(v, elapsed=None) for k, v in infos.items()}
