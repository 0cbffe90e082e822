"""All-or-nothing submission on the real cluster: a refused job, SIGTERM and SIGKILL part-way, concurrent use.
Every assertion about jobs rests on Slurm's own view (squeue / sacct), not on slurmdag's bookkeeping."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import datetime

import pytest

pytestmark = pytest.mark.integration

ALL_STATES = "BF,CA,CD,DL,F,NF,OOM,PD,PR,R,RQ,RS,RV,S,TO"  # sacct -s: else never-eligible jobs are left out
ACTIVE = {"PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "REQUEUED"}


@pytest.fixture
def cluster(slurm):
    """The environment for Slurm commands on the local test cluster (conftest brings it up)."""
    return slurm.env()


def sd_argv(*args):
    return [sys.executable, "-m", "slurmdag", *args]


def sd(env, home, *args, timeout=600):
    return subprocess.run(
        sd_argv(*args), env={**env, "SLURMDAG_HOME": str(home)}, capture_output=True, text=True, timeout=timeout
    )


def sacct(env, prefix, since):
    out = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-o", "JobID,State,NodeList,JobName", "-S", since, "-E", "now", "-s", ALL_STATES],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [
        dict(job_id=i, state=s, nodes=n, name=name[len(prefix) :])
        for i, s, n, name in (ln.split("|", 3) for ln in out.splitlines())
        if name.startswith(prefix)
    ]


def squeue(env, prefix):
    out = subprocess.run(
        ["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T|%N|%j"], env=env, capture_output=True, text=True, check=True
    ).stdout
    return [
        dict(job_id=i, state=s, nodes=n, name=name[len(prefix) :])
        for i, s, n, name in (ln.split("|", 3) for ln in out.splitlines())
        if name.startswith(prefix)
    ]


def wait_for(condition, timeout, what, max_delay=1.0):
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, max_delay)


def slurm_now():
    return datetime.now().strftime("%Y-%m-%dT%H:%M:%S")


def tree_workflow(n, bad_index=None, sleep=0):
    """n allocations in a binary tree (allocation i waits on (i-1)//2), all tiny."""
    lines = ["name: big", "defaults:", "  partition: debug", "  walltime: 2", "allocations:"]
    for i in range(n):
        lines += [f"  - name: a{i:03d}", f'    entrypoint: "sleep {sleep}"']
        if i:
            lines.append(f"    depends_on: [a{(i - 1) // 2:03d}]")
        if i == bad_index:
            # refused by slurmctld, not caught by pre-flight (which would refuse a bad partition before sbatch)
            lines.append('    sbatch: ["--nodelist=no-such-node"]')
    return "\n".join(lines) + "\n"


def assert_nothing_ran_and_nothing_left(env, dag, since, expect_at_least):
    """Slurm's view of a withdrawn DAG: every job ended without ever being given a node; none is queued."""
    prefix = f"sd-{dag}-"
    live = squeue(env, prefix)
    assert not [j for j in live if j["state"] in ACTIVE], [j for j in live if j["state"] in ACTIVE][:5]
    assert all(j["nodes"] == "" for j in live)  # no node was ever assigned
    acct = wait_for(
        lambda: (r := sacct(env, prefix, since)) and len(r) >= expect_at_least and r,
        30,
        "sacct to list the withdrawn jobs",
    )
    ran = [j for j in acct if j["nodes"] != "None assigned" or not j["state"].startswith("CANCELLED")]
    assert not ran, ran[:5]
    assert "+gate" in {j["name"] for j in acct}
    return acct


def only_dag(home):
    dags = list((home / "dags").iterdir())
    assert len(dags) == 1
    return dags[0]


def recorded_ids(folder):
    try:
        return json.loads((folder / "dag.json").read_text())["job_ids"]
    except (FileNotFoundError, ValueError):
        return {}


def test_refused_allocation_withdraws_the_whole_dag(cluster, tmp_path):
    env, home = cluster, tmp_path / "home"
    wf = tmp_path / "big.yaml"
    wf.write_text(tree_workflow(300, bad_index=149))
    since = slurm_now()
    res = sd(env, home, "submit", str(wf))
    assert res.returncode == 1, res.stdout + res.stderr
    assert "a149" in res.stderr and "invalid node name" in res.stderr.lower(), res.stderr
    assert "Traceback" not in res.stderr
    record = json.loads((only_dag(home) / "dag.json").read_text())
    assert record["submission"] == "failed" and "a149" not in record["job_ids"]
    # Every job before a149 was accepted. Independent jobs are submitted concurrently, so a few later ones of the
    # same wave may have been accepted while a149's sbatch was being refused: what matters is that every job Slurm
    # accepted is recorded and withdrawn (the sacct check below: exactly the recorded jobs exist, none ran).
    assert {f"a{i:03d}" for i in range(149)} <= set(record["job_ids"])
    # sacct lags slurmctld by a fraction of a second: wait for every recorded job (and the gate), not just 150.
    acct = assert_nothing_ran_and_nothing_left(env, record["dag_id"], since, expect_at_least=len(record["job_ids"]) + 1)
    assert {j["job_id"] for j in acct if j["name"] != "+gate"} == set(record["job_ids"].values())
    st = sd(env, home, "status", record["dag_id"], "--json")
    assert st.returncode == 0 and json.loads(st.stdout)["state"] == "Failed"


def _start_submit(env, home, wf):
    return subprocess.Popen(
        sd_argv("submit", str(wf)),
        env={**env, "SLURMDAG_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_part_way(env, home, wf, sig, at=100):
    proc = _start_submit(env, home, wf)
    folder = wait_for(lambda: (home / "dags").is_dir() and next((home / "dags").iterdir(), None), 60, "the DAG folder")
    # polled often: the pyslurm backend puts ~100 jobs a second into Slurm, and the signal must land mid-submission
    wait_for(lambda: len(recorded_ids(folder)) >= at or proc.poll() is not None, 120, f"{at} submitted jobs", 0.05)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err, folder


def test_sigterm_part_way_withdraws_everything(cluster, tmp_path):
    env, home = cluster, tmp_path / "home"
    wf = tmp_path / "big.yaml"
    # 900 allocations (the default cap is 1000): through pyslurm all of 500 went in before the signal landed
    wf.write_text(tree_workflow(900))
    since = slurm_now()
    rc, out, err, folder = _kill_part_way(env, home, wf, signal.SIGTERM)
    assert rc == 1, out + err
    assert "SIGTERM" in err and "no job of this DAG ran" in err, err
    record = json.loads((folder / "dag.json").read_text())
    assert record["submission"] == "failed" and 100 <= len(record["job_ids"]) < 900
    assert_nothing_ran_and_nothing_left(env, record["dag_id"], since, expect_at_least=len(record["job_ids"]) + 1)


@pytest.mark.parametrize("cleaner", ["status", "cancel"])
def test_sigkill_part_way_leaves_only_gated_jobs_that_the_next_command_removes(cluster, tmp_path, cleaner):
    env, home = cluster, tmp_path / "home"
    wf = tmp_path / "big.yaml"
    # 900 allocations (the default cap is 1000): through pyslurm all of 500 went in before the kill landed
    wf.write_text(tree_workflow(900))
    since = slurm_now()
    rc, _, _, folder = _kill_part_way(env, home, wf, signal.SIGKILL)
    assert rc == -signal.SIGKILL
    record = json.loads((folder / "dag.json").read_text())
    dag = record["dag_id"]
    assert record["submission"] == "submitting"
    prefix = f"sd-{dag}-"
    # Behind the held gate nothing can start: every job Slurm has for this DAG is pending, none has a node.
    live = squeue(env, prefix)
    assert len(live) >= len(record["job_ids"]) + 1
    assert {j["state"] for j in live} == {"PENDING"} and all(j["nodes"] == "" for j in live)

    res = sd(env, home, cleaner, dag)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "left half-submitted" in res.stdout + res.stderr and "none had started" in res.stdout + res.stderr
    assert json.loads((folder / "dag.json").read_text())["submission"] == "failed"
    assert_nothing_ran_and_nothing_left(env, dag, since, expect_at_least=len(record["job_ids"]) + 1)
    again = sd(env, home, "list", "--json")
    assert [(d["dag_id"], d["state"]) for d in json.loads(again.stdout)] == [(dag, "Failed")]


def test_two_submits_and_a_status_at_once_keep_the_store_consistent(cluster, tmp_path):
    env, home = cluster, tmp_path / "home"
    wf = tmp_path / "mid.yaml"
    wf.write_text(tree_workflow(60, sleep=1))
    first = sd(env, home, "submit", str(wf), "--json")
    assert first.returncode == 0, first.stderr
    watched = json.loads(first.stdout)["dag_id"]
    env_home = {**env, "SLURMDAG_HOME": str(home)}
    submits = [
        subprocess.Popen(
            sd_argv("submit", str(wf), "--json"),
            env=env_home,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    status_runs = []
    while any(p.poll() is None for p in submits):
        status_runs.append(sd(env, home, "status", watched, "--json"))
        status_runs.append(sd(env, home, "list", "--json"))
    results = [p.communicate() + (p.returncode,) for p in submits]
    for _out, err, rc in results:
        assert rc == 0, err
    ids = [json.loads(out)["dag_id"] for out, _, _ in results]
    assert len(set(ids + [watched])) == 3
    assert status_runs and all(r.returncode == 0 for r in status_runs), [r.stderr for r in status_runs][:3]
    for r in status_runs[::2]:
        assert json.loads(r.stdout)["dag_id"] == watched
    try:
        for dag in ids:
            record = json.loads((home / "dags" / dag / "dag.json").read_text())
            assert record["submission"] == "submitted" and len(record["job_ids"]) == 60
            # Slurm agrees on every id the store recorded: the job with that id carries this DAG's tag.
            live = {j["job_id"].split("_")[0]: j["name"] for j in squeue(env, f"sd-{dag}-")}
            assert {name: live.get(job_id) for name, job_id in record["job_ids"].items()} == {
                name: name for name in record["job_ids"]
            }
    finally:
        for dag in ids + [watched]:
            sd(env, home, "cancel", dag)


def test_submission_costs_one_sbatch_per_job_plus_the_gate(cluster, tmp_path, monkeypatch):
    """The controller budget: N+1 sbatch and 1 scontrol release; no per-job hold/release, no queries."""
    from slurmdag.backends import runner
    from slurmdag.backends.cli import CliBackend
    from slurmdag.compiler.compile import compile_file
    from slurmdag.runs.submit import submit_plan
    from slurmdag.state.store import Store

    for key, value in cluster.items():
        monkeypatch.setenv(key, value)
    wf = tmp_path / "w.yaml"
    wf.write_text(tree_workflow(40))
    seen: list[list[str]] = []
    monkeypatch.setattr(runner, "command_observer", seen.append)
    record = submit_plan(compile_file(wf), Store(tmp_path / "home"), CliBackend())
    commands = [argv[0] if argv[0] != "scontrol" else f"scontrol {argv[1]}" for argv in seen]
    assert commands.count("sbatch") == 41 and commands[1:].count("scontrol release") == 1
    assert set(commands) == {"sbatch", "scontrol release"}
    monkeypatch.setattr(runner, "command_observer", None)
    live = squeue(cluster, f"sd-{record.dag_id}-")
    assert len(live) == 41
    subprocess.run(["scancel", *record.job_ids.values(), record.gate_job_id], env=cluster, check=True)
