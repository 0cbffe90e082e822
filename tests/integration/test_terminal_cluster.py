"""At the terminal, on the real cluster: a failed allocation's output is where `status` says (the path Slurm itself
reports), `logs` prints it, nothing lands in the submit directory; the live view redraws in place on a pseudo-
terminal and appends plain lines through a pipe; `logs --follow` streams a running job to its end."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time

ESC = "\x1b"


def _wf(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def _scontrol_stdout(slurm, job_id: str) -> str:
    out = slurm.run("scontrol", "show", "job", job_id).stdout
    m = re.search(r"StdOut=(\S+)", out)
    assert m, out
    return m.group(1)


def test_failed_output_is_shown_by_logs_and_its_path_by_status(slurm, run_slurmdag, tmp_path):
    submit_dir = tmp_path / "submit-here"
    submit_dir.mkdir()
    wf = _wf(
        tmp_path / "wf.yaml",
        "name: logs-on-cluster\ndefaults: {partition: debug, walltime: 5}\nallocations:\n"
        "  - {name: ok, entrypoint: 'echo fine'}\n"
        "  - name: bad\n    depends_on: [ok]\n"
        "    entrypoint: 'echo out-of-bad-$SLURM_JOB_ID; echo err-of-bad >&2; exit 3'\n"
        "  - name: shards\n    tasks: 3\n"
        "    entrypoint: 'echo shard-$SLURMDAG_TASK_INDEX; [ \"$SLURMDAG_TASK_INDEX\" != 1 ]'\n",
    )
    sub = run_slurmdag("submit", wf, "--json", cwd=submit_dir)
    assert sub.returncode == 0, sub.stderr
    doc = json.loads(sub.stdout)
    dag, jobs = doc["dag_id"], doc["jobs"]
    rows = slurm.wait_until_done([jobs["ok"], jobs["bad"], jobs["shards"]])
    states = {r["JobID"]: r["State"] for r in rows}
    assert states[jobs["bad"]] == "FAILED" and states[f"{jobs['shards']}_1"] == "FAILED", states

    # Slurm's own record of where the failed job wrote (scontrol keeps finished jobs for MinJobAge)
    slurm_path = _scontrol_stdout(slurm, jobs["bad"])
    st = run_slurmdag("status", dag, cwd=submit_dir)
    assert st.returncode == 0, st.stderr
    assert f"  bad: {slurm_path}" in st.stdout, st.stdout
    task_path = _scontrol_stdout(slurm, f"{jobs['shards']}_1")
    assert f"  shards task 1: {task_path}" in st.stdout, st.stdout
    doc = json.loads(run_slurmdag("status", "@", "--json").stdout)
    assert {a["name"]: a.get("log") for a in doc["allocations"]}["bad"] == slurm_path

    shown = run_slurmdag("logs", dag, "bad")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == f"out-of-bad-{jobs['bad']}\nerr-of-bad\n"
    task = run_slurmdag("logs", dag, "shards")  # no --task: the first failed task
    assert task.returncode == 0 and task.stdout == "shard-1\n", task.stdout + task.stderr
    assert run_slurmdag("logs", dag, "shards", "--task", "2").stdout == "shard-2\n"
    listing = run_slurmdag("logs", dag)
    assert slurm_path in listing.stdout

    # nothing written where the DAG was submitted from
    assert sorted(os.listdir(submit_dir)) == []


def _run_on_pty(argv, env, timeout=120):
    """Run argv with stdout/stderr on a pseudo-terminal (80x30); return (exit code, bytes written)."""
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env={**env, "TERM": "xterm"})
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            out += data
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=30), out


def test_watch_redraws_in_place_on_a_terminal_and_appends_lines_through_a_pipe(slurm, run_slurmdag, tmp_path):
    wf = _wf(
        tmp_path / "wf.yaml",
        "name: live-view\ndefaults: {partition: debug, walltime: 5}\nallocations:\n"
        "  - {name: first, entrypoint: 'sleep 4'}\n"
        "  - {name: second, entrypoint: 'sleep 4', depends_on: [first]}\n",
    )
    sub = run_slurmdag("submit", wf, "--json")
    assert sub.returncode == 0, sub.stderr
    doc = json.loads(sub.stdout)
    dag = doc["dag_id"]
    env = {**slurm.env(), "SLURMDAG_HOME": os.environ["SLURMDAG_HOME"]}
    argv = [sys.executable, "-m", "slurmdag", "status", dag, "--watch"]
    piped = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    code, raw = _run_on_pty(argv, env)
    out, err = piped.communicate(timeout=120)

    rows = slurm.wait_until_done([doc["jobs"]["first"], doc["jobs"]["second"]])
    assert {r["JobName"].rsplit("-", 1)[-1]: r["State"] for r in rows} == {"first": "COMPLETED", "second": "COMPLETED"}

    text = raw.decode()
    assert code == 0, text
    frames = text.count(f"DAG {ESC}[1m{dag}")  # one summary line per frame (the id is in bold)
    assert frames >= 3, text  # Pending/Running/... redrawn, not printed once
    assert f"{ESC}[1A" in text and f"{ESC}[2K" in text  # cursor up, erase line: redrawn in place
    assert f"{ESC}[32mCompleted" in text  # states in colour

    assert piped.returncode == 0, err
    assert ESC not in out  # no control sequences through a pipe
    lines = out.splitlines()
    stamp = r"\d\d:\d\d:\d\d"
    assert any(re.fullmatch(rf"{stamp}   first: Running  #\d+", line) for line in lines), out
    assert any(re.fullmatch(rf"{stamp}   second: Completed  #\d+", line) for line in lines), out
    progress = lines[: lines.index("")]
    assert all(re.match(rf"{stamp} ", line) for line in progress), out  # one timestamped line per change
    assert len(progress) == len(set(progress))  # appended, never repeated
    assert lines[lines.index("") + 1].startswith(f"DAG {dag} (live-view): Completed")


def test_logs_follow_streams_a_running_job_until_it_ends(slurm, run_slurmdag, tmp_path):
    wf = _wf(
        tmp_path / "wf.yaml",
        "name: follow-me\ndefaults: {partition: debug, walltime: 5}\nallocations:\n"
        "  - {name: ticker, entrypoint: 'for i in 1 2 3 4; do echo tick-$i; sleep 1; done'}\n",
    )
    sub = run_slurmdag("submit", wf, "--json")
    assert sub.returncode == 0, sub.stderr
    doc = json.loads(sub.stdout)
    started = time.monotonic()
    follow = run_slurmdag("logs", doc["dag_id"], "ticker", "--follow", timeout=120)
    assert follow.returncode == 0, follow.stderr
    assert follow.stdout == "tick-1\ntick-2\ntick-3\ntick-4\n"
    rows = slurm.sacct([doc["jobs"]["ticker"]])
    assert rows and rows[0]["State"] == "COMPLETED"  # it returned because the job ended
    assert time.monotonic() - started >= 4  # and not before the job could have printed everything


def test_reconcile_dry_run_lists_the_cancels_and_slurm_keeps_the_jobs(slurm, run_slurmdag, tmp_path):
    wf = _wf(
        tmp_path / "wf.yaml",
        "name: dry-reconcile\ndefaults: {partition: debug, walltime: 5}\nallocations:\n"
        "  - {name: a, entrypoint: 'exit 1'}\n"
        "  - {name: b, entrypoint: 'true', depends_on: [a]}\n",
    )
    sub = run_slurmdag("submit", wf, "--json", "--cascade", "reconciler")
    assert sub.returncode == 0, sub.stderr
    doc = json.loads(sub.stdout)
    dag, b = doc["dag_id"], doc["jobs"]["b"]
    slurm.wait_for(
        lambda: any(r["Reason"] == "DependencyNeverSatisfied" for r in slurm.squeue([b])), 60, "b never satisfied"
    )
    dry = run_slurmdag("reconcile", dag, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert [c["job_id"] for c in json.loads(dry.stdout)["would_cancel"][dag]] == [b]
    assert run_slurmdag("reconcile", dag, "--dry-run").stdout.startswith(f"DAG {dag}: would cancel 1 job(s)")
    assert [r["State"] for r in slurm.squeue([b])] == ["PENDING"]  # still there: nothing was cancelled
    real = run_slurmdag("reconcile", dag, "--once")
    assert real.returncode == 0, real.stderr
    slurm.wait_for(lambda: slurm.squeue([b])[0]["State"] == "CANCELLED", 30, "b cancelled by the real pass")


NEWER_SBATCH = "/opt/slurmdag-slurm/24.11/bin"  # docker-slurm's build of Slurm 24.11 (SLURM_VERSION=24.11)


def test_newer_slurm_options_are_judged_by_the_clusters_own_sbatch(slurm, run_slurmdag, tmp_path):
    import pytest

    (tmp_path / "job.sh").write_text("#!/bin/bash\n#SBATCH --tres-per-task=cpu:1\n#SBATCH --oom-kill-step=1\ntrue\n")
    wf = _wf(tmp_path / "wf.yaml", "name: newer\nallocations:\n  - {name: a, script: job.sh, partition: debug}\n")
    # this cluster's sbatch (22.05) does not know them: validate says so, and pre-flight refuses before submitting
    version = slurm.run("sbatch", "--version").stdout
    if "22.05" in version:
        refused = run_slurmdag("validate", wf)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "--oom-kill-step (allocation 'a') is not an option of this cluster's sbatch" in refused.stderr
        assert "sbatch 24.11 and later" in refused.stderr
        dry = run_slurmdag("submit", wf, "--dry-run")
        assert dry.returncode == 2 and "--tres-per-task" in dry.stdout + dry.stderr, dry.stdout + dry.stderr
    # a newer sbatch lists them: accepted
    if not os.path.exists(f"{NEWER_SBATCH}/sbatch"):
        pytest.skip("Slurm 24.11 not built here (docker-slurm SLURM_VERSION=24.11)")
    newer = run_slurmdag("validate", wf, env={"PATH": f"{NEWER_SBATCH}:{os.environ['PATH']}"})
    assert newer.returncode == 0, newer.stderr
    assert newer.stdout.endswith("valid (1 allocations)\n")
