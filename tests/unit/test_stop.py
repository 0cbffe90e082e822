"""`on_failure: stop`: the key (workflow, defaults, allocation), its located errors, the exit trap the job runs
(against fake squeue/scancel on PATH: which ids it cancels, in which order), status and the reconciler's backstop."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from slurmdag.backends.base import JobInfo
from slurmdag.compiler.compile import compile_file, compile_text
from slurmdag.model.errors import InputError
from slurmdag.model.plan import Plan
from slurmdag.model.states import DagState
from slurmdag.runs.reconcile_plan import plan_actions
from slurmdag.runs.status import build_status
from slurmdag.state.store import DagRecord

from .conftest import problem_lines

WF = """\
name: t
on_failure: stop
allocations:
  - {name: a, entrypoint: "exit 3"}
  - {name: b, entrypoint: "sleep 60", on_failure: continue}
  - {name: c, entrypoint: "true", depends_on: [a]}
  - {name: h, entrypoint: "true", depends_on: [{a: failure}]}
"""


def test_workflow_default_and_allocation_override():
    plan = compile_text(WF)
    assert {j.name: j.on_failure for j in plan.jobs} == {"a": "stop", "b": "continue", "c": "stop", "h": "stop"}
    assert "trap _slurmdag_end EXIT" in plan.job("a").script
    assert "_slurmdag_end" not in plan.job("b").script


def test_defaults_can_set_it_and_plan_json_keeps_it():
    plan = compile_text("name: t\ndefaults: {on_failure: stop}\nallocations:\n  - {name: a, entrypoint: x}\n")
    assert plan.job("a").on_failure == "stop"
    again = Plan.from_json(plan.to_json())
    assert again.job("a").on_failure == "stop"
    plain = compile_text("name: t\nallocations:\n  - {name: a, entrypoint: x}\n")
    assert "on_failure" not in plain.to_json()  # plans without it are unchanged


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "name: t\non_failure: halt\nallocations:\n  - {name: a, entrypoint: x}\n",
            "wf.yaml:2:13: `on_failure` must be one of continue, stop, not 'halt'",
        ),
        (
            "name: t\nallocations:\n  - {name: a, entrypoint: x, on_failure: [stop]}\n",
            "wf.yaml:3:42: `on_failure` must be one of continue, stop, not a list",
        ),
    ],
)
def test_bad_values_are_located(text, expected):
    with pytest.raises(InputError) as err:
        compile_text(text, "wf.yaml")
    assert problem_lines(err.value) == [expected]


def test_a_non_shell_script_cannot_stop_the_dag(write):
    write("#!/usr/bin/env python3\nprint('hi')\n", "job.py")
    path = write("name: t\nallocations:\n  - {name: a, script: job.py, on_failure: stop}\n")
    with pytest.raises(InputError) as err:
        compile_file(path)
    (line,) = problem_lines(err.value)
    assert line.endswith(
        "wf.yaml:3:43: `on_failure: stop` cannot be used with script 'job.py' of allocation 'a': "
        "it runs under python3, not a shell"
    ), line


# --- the exit trap, run by bash with fake squeue/scancel ---

QUEUE = """\
10 RUNNING sd-abcd1234-a
11 RUNNING sd-abcd1234-b
12 PENDING sd-abcd1234-c
13_2 PENDING sd-abcd1234-h+any
20 RUNNING sd-ffff0000-x
21 PENDING other-job
"""


RUNNING = "JobId=10 JobName=x\n   JobState=RUNNING Reason=None Dependency=(null)"


def _run(tmp_path, script: str, env: dict[str, str], job: str = RUNNING) -> tuple[int, list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "scancel.log"
    (bin_dir / "squeue").write_text(f"#!/bin/sh\ncat <<'EOF'\n{QUEUE}EOF\n")
    (bin_dir / "scontrol").write_text(f"#!/bin/sh\ncat <<'EOF'\n{job}\nEOF\n")  # how the job is ending
    (bin_dir / "scancel").write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    for f in bin_dir.iterdir():
        f.chmod(f.stat().st_mode | stat.S_IEXEC)
    body = script.split("\n", 1)[1]  # no #! line: run by bash below
    full = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", **env}
    done = subprocess.run(["bash", "-c", body], env=full, capture_output=True, text=True, timeout=30)
    calls = log.read_text().splitlines() if log.exists() else []
    return done.returncode, calls


def test_a_failing_job_cancels_its_dag_waiting_jobs_first_then_running_ones(tmp_path):
    script = compile_text(WF).job("a").script
    rc, calls = _run(tmp_path, script, {"SLURM_JOB_NAME": "sd-abcd1234-a", "SLURM_JOB_ID": "10"})
    assert rc == 3  # the job still fails with its own exit code
    assert calls == ["12 13_2", "11"]  # never itself, never another DAG's job or someone else's


def test_a_task_of_a_group_spares_itself_only(tmp_path):
    script = compile_text(WF.replace('"exit 3"}', '"exit 3", tasks: 2}')).job("a").script
    env = {"SLURM_JOB_NAME": "sd-abcd1234-h+any", "SLURM_JOB_ID": "14", "SLURM_ARRAY_JOB_ID": "13"}
    rc, calls = _run(tmp_path, script, {**env, "SLURM_ARRAY_TASK_ID": "2"})
    assert rc == 3
    assert calls == ["12", "10 11"]


def test_success_or_a_job_outside_a_dag_cancels_nothing(tmp_path):
    ok = compile_text(WF.replace('"exit 3"', '"true"')).job("a").script
    assert _run(tmp_path, ok, {"SLURM_JOB_NAME": "sd-abcd1234-a", "SLURM_JOB_ID": "10"}) == (0, [])
    failing = compile_text(WF).job("a").script
    assert _run(tmp_path, failing, {"SLURM_JOB_NAME": "a", "SLURM_JOB_ID": "10"}) == (3, [])  # sbatch by hand


# --- status and the reconciler ---


def _status(plan, rows: dict[str, tuple[str, bool, str | None]]):
    infos = {
        name: JobInfo(name, name, None, f"sd-00000000-{name}", state, node_list="n1" if ran else None, end=end)
        for name, (state, ran, end) in rows.items()
    }
    record = DagRecord(
        dag_id="00000000",
        name="t",
        created="2026-01-01T00:00:00+00:00",
        submission="submitted",
        job_ids={j.name: j.name for j in plan.jobs},
    )
    return build_status(record, plan, infos)


def test_status_names_the_stopper_and_says_failed():
    plan = compile_text(WF)
    status = _status(
        plan,
        {
            "a": ("FAILED", True, "2026-01-01T00:00:05"),
            "b": ("CANCELLED", True, "2026-01-01T00:00:05"),
            "c": ("CANCELLED", False, None),
            "h": ("CANCELLED", False, None),  # a's failure handler: cancelled by a before it ended
        },
    )
    assert status.state is DagState.FAILED  # although `h` "catches" a's failure
    assert status.stopped_by == "a"
    assert {n.name: n.cancelled_by for n in status.nodes} == {"a": None, "b": "stop", "c": "upstream", "h": "stop"}
    assert any("stopped by a" in n for n in status.notes)


def test_no_stopper_without_a_failed_stop_allocation():
    plan = compile_text(WF)
    status = _status(
        plan,
        {
            "a": ("COMPLETED", True, None),
            "b": ("FAILED", True, None),  # on_failure: continue
            "c": ("COMPLETED", True, None),
            "h": ("CANCELLED", False, None),
        },
    )
    assert status.stopped_by is None and status.state is DagState.FAILED


def test_reconciler_cancels_what_the_stopper_could_not():
    plan = compile_text(WF)
    status = _status(
        plan,
        {
            "a": ("NODE_FAIL", True, None),  # killed with its node: its exit trap never ran
            "b": ("RUNNING", True, None),
            "c": ("PENDING", False, None),
            "h": ("PENDING", False, None),
        },
    )
    assert status.stopped_by == "a"
    assert sorted(c.job_id for c in plan_actions(plan, status, "native")) == ["b", "c", "h"]


def test_a_timeout_stops_the_dag_though_bash_sees_a_stale_exit_status(tmp_path):
    # Slurm's SIGTERM at the time limit runs the trap with $? of the last finished command (measured: 0)
    script = compile_text(WF.replace('"exit 3"', '"true"')).job("a").script
    ending = "JobId=10 JobName=x\n   JobState=COMPLETING Reason=TimeLimit Dependency=(null)"
    rc, calls = _run(tmp_path, script, {"SLURM_JOB_NAME": "sd-abcd1234-a", "SLURM_JOB_ID": "10"}, ending)
    assert calls == ["12 13_2", "11"]
    assert rc == 124


def test_a_cancelled_job_stops_nothing(tmp_path):
    # `slurmdag cancel --allocation a` (or another stop) cancels it: not a failure of its own
    script = compile_text(WF).job("a").script
    ending = "JobId=10 JobName=x\n   JobState=COMPLETING Reason=None Dependency=(null)"
    rc, calls = _run(tmp_path, script, {"SLURM_JOB_NAME": "sd-abcd1234-a", "SLURM_JOB_ID": "10"}, ending)
    assert calls == []


def test_a_group_member_cannot_stop_the_dag():
    text = (
        "name: t\nallocations:\n  - {name: a, entrypoint: x, group: g, on_failure: stop}\n"
        "  - {name: b, entrypoint: x, group: g, depends_on: [a], stop_if: 'outputs.b.x > 1'}\n"
    )
    with pytest.raises(InputError) as err:
        compile_text(text, "wf.yaml")
    lines = problem_lines(err.value)
    assert len(lines) == 2
    assert "`on_failure: stop` cancels the DAG from the allocation's own job" in lines[0]
    assert "`stop_if` stops the DAG from the allocation's own job" in lines[1]
