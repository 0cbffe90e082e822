"""Parsers against output recorded from the real cluster (tests/fixtures/slurm-output/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from slurmdag.backends.base import JobInfo
from slurmdag.backends.cli import merge_views
from slurmdag.backends.parse import (
    parse_exit_code,
    parse_sacct,
    parse_sbatch_parsable,
    parse_squeue,
)
from slurmdag.model.errors import SlurmOutputError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "slurm-output"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_sbatch_parsable_plain_with_cluster_and_after_warnings():
    assert parse_sbatch_parsable(fixture("sbatch-parsable.txt")) == fixture("sbatch-parsable.txt").strip()
    assert parse_sbatch_parsable("1234;cluster-a\n") == "1234"
    assert parse_sbatch_parsable("sbatch: warning: something odd\n77\n") == "77"
    for bad in ("", "Submitted batch job 12\n"):
        with pytest.raises(SlurmOutputError):
            parse_sbatch_parsable(bad)


def test_squeue_pending_held_gate_and_expanded_arrays():
    jobs = parse_squeue(fixture("squeue-pending.txt"))
    assert jobs["2"].state == "PENDING" and jobs["2"].reason == "JobHeldUser" and jobs["2"].name == "rec-gate"
    assert jobs["6"].reason == "Dependency"
    tasks = sorted(k for k, v in jobs.items() if v.array_job_id == "7")
    assert tasks == ["7_0", "7_1", "7_2"]
    assert jobs["7_1"].array_task == 1
    assert not any(j.ran for j in jobs.values())  # nothing was given a node
    assert all(j.start is None for j in jobs.values())


def test_squeue_finished_uses_array_ids_never_raw_task_ids():
    jobs = parse_squeue(fixture("squeue-finished.txt"))
    assert "12" not in jobs  # raw id of task 5_2
    failed = jobs["5_2"]
    assert (failed.state, failed.array_job_id, failed.array_task, failed.reason) == (
        "FAILED",
        "5",
        2,
        "NonZeroExitCode",
    )
    child = jobs["6"]
    assert child.state == "CANCELLED" and child.reason == "DependencyNeverSatisfied" and not child.ran
    gate = jobs["2"]
    assert gate.state == "CANCELLED" and not gate.ran and gate.start is None  # %S is set, but it never ran
    assert jobs["3"].ran and jobs["3"].node_list == "node1" and jobs["3"].start == "2026-11-22T00:12:10"


def test_squeue_running_array_with_one_task_waiting():
    jobs = parse_squeue(fixture("squeue-running.txt"))
    arr = {k: v for k, v in jobs.items() if v.array_job_id == "128"}
    assert len(arr) == 12
    assert arr["128_11"].state == "PENDING" and arr["128_11"].reason == "Resources"
    assert sum(v.state == "RUNNING" for v in arr.values()) == 11


def test_sacct_exit_codes_cancelled_by_and_pending_array_row():
    jobs = parse_sacct(fixture("sacct-finished.txt"))
    assert jobs["2"].state == "CANCELLED" and not jobs["2"].ran  # "CANCELLED by 0", "None assigned"
    assert (jobs["4"].state, jobs["4"].exit_code, jobs["4"].signal) == ("FAILED", 3, 0)
    assert jobs["5_2"].exit_code == 1 and jobs["5_2"].array_job_id == "5"
    assert [k for k in jobs if k.startswith("7_")] == ["7_0", "7_1", "7_2"]
    assert all(jobs[k].state == "CANCELLED" and jobs[k].source == "sacct" for k in ("7_0", "7_1", "7_2"))


def test_sacct_array_tasks_and_lagging_rows():
    jobs = parse_sacct(fixture("sacct-completed-array.txt"))
    arr = {k: v for k, v in jobs.items() if v.array_job_id == "128"}
    assert sorted(v.array_task for v in arr.values()) == list(range(12))
    assert all(v.state == "COMPLETED" and v.exit_code == 0 and v.ran for v in arr.values())
    lag = parse_sacct(fixture("sacct-lagging.txt"))
    assert lag["127"].name == "allocation" and lag["127"].state == "PENDING"


def test_live_view_wins_and_sacct_adds_exit_codes_only_when_states_agree():
    live = parse_squeue(fixture("squeue-finished.txt"))
    acct = parse_sacct(fixture("sacct-finished.txt"))
    merged = merge_views(live, acct)
    assert merged["4"].exit_code == 3 and merged["4"].source == "squeue"
    lagging = {"127": JobInfo("127", "127", None, "rec-run", "COMPLETED", node_list="node1")}
    merged = merge_views(lagging, parse_sacct(fixture("sacct-lagging.txt")))
    assert merged["127"].state == "COMPLETED" and merged["127"].exit_code is None and merged["127"].name == "rec-run"
    # A job slurmctld already forgot: only accounting knows it.
    assert merge_views({}, acct)["5_2"].state == "FAILED"


def test_exit_code_parsing():
    assert parse_exit_code("0:9") == (0, 9)
    assert parse_exit_code("") == (None, None)


def test_garbage_rows_are_parse_errors():
    with pytest.raises(SlurmOutputError):
        parse_squeue("only|three|columns\n")
    with pytest.raises(SlurmOutputError):
        parse_sacct("x|y|z|w|v|u|t|s|r|q\n")
