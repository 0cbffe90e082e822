"""The live view (rich, redrawn in place), its plain-line form for pipes, list filters, and show / forget."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from rich.console import Console

from slurmdag.model.errors import UsageError
from slurmdag.model.plan import Plan, PlannedJob
from slurmdag.model.states import AllocationState, DagState
from slurmdag.runs.dag_filters import RecordFilter, parse_since, parse_states
from slurmdag.runs.status import AllocationStatus, DagStatus
from slurmdag.state.store import SUBMITTED, DagRecord, Store
from slurmdag.views.live_view import change_lines, live_renderable


def _status(states: dict[str, AllocationState], dag_state=DagState.RUNNING) -> DagStatus:
    plan = Plan(workflow="w", jobs=[PlannedJob(name=n, kind="allocation", options={}, script="") for n in states])
    nodes = [AllocationStatus(n, "allocation", str(i), s, None, None, None) for i, (n, s) in enumerate(states.items())]
    return DagStatus("0123abcd", "w", dag_state, SUBMITTED, "2026-01-01T00:00:00+00:00", nodes, plan)


def test_plain_lines_say_only_what_changed():
    first = _status({"a": AllocationState.RUNNING, "b": AllocationState.PENDING})
    lines = change_lines(None, first, "12:00:00")
    assert lines == [
        "12:00:00 DAG 0123abcd (w): Running  [1 Pending, 1 Running]",
        "12:00:00   a: Running  #0",
        "12:00:00   b: Pending  #1",
    ]
    second = _status({"a": AllocationState.COMPLETED, "b": AllocationState.PENDING})
    assert change_lines(first, second, "12:00:05") == [
        "12:00:05 DAG 0123abcd (w): Running  [1 Pending, 1 Completed]",
        "12:00:05   a: Completed  #0",
    ]
    assert change_lines(second, second, "12:00:09") == []


def test_live_view_colours_states_and_fits_the_terminal():
    many = {f"s{i:03d}": AllocationState.COMPLETED for i in range(200)}
    many["busy"] = AllocationState.FAILED
    console = Console(record=True, width=100, force_terminal=True, color_system="standard", file=io.StringIO())
    console.print(live_renderable(_status(many, DagState.FAILED), "12:00:00", height=30))
    text = console.export_text(clear=False)
    assert text.startswith("DAG 0123abcd (w): Failed  200 Completed · 1 Failed")
    assert "busy" in text and "... 200 more" in text  # the failed row stays, finished rows give way
    assert len(text.splitlines()) <= 30
    styled = console.export_text(styles=True)
    assert "\x1b[1;31mFailed" in styled  # red


def test_list_filters():
    assert parse_states(["failed,Running", "COMPLETED"]) == {"Failed", "Running", "Completed"}
    assert parse_states([]) is None
    with pytest.raises(UsageError, match="unknown state 'nope'"):
        parse_states(["nope"])
    now = datetime(2026, 5, 10, 12, tzinfo=UTC)
    assert parse_since("2h", now) == datetime(2026, 5, 10, 10, tzinfo=UTC)
    assert parse_since("3d", now) == datetime(2026, 5, 7, 12, tzinfo=UTC)
    assert parse_since("2026-05-01", now) == datetime(2026, 5, 1, tzinfo=UTC)
    with pytest.raises(UsageError, match="invalid --since"):
        parse_since("yesterday", now)
    rec = DagRecord(dag_id="0123abcd", name="train-big", created="2026-05-09T00:00:00+00:00")
    assert RecordFilter(name="big")(rec) and RecordFilter(name="train-*")(rec) and not RecordFilter(name="eval*")(rec)
    assert RecordFilter(since=datetime(2026, 5, 8, tzinfo=UTC))(rec)
    assert not RecordFilter(since=datetime(2026, 5, 9, 1, tzinfo=UTC))(rec)


# --- through the CLI, on finished DAGs (their state is cached in the store: no Slurm is asked) ---


def _cli(home, *args):
    env = {"PATH": "/usr/bin:/bin", "SLURMDAG_HOME": str(home), "HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "slurmdag", *map(str, args)], capture_output=True, text=True, timeout=60, env=env
    )


def _finished(store: Store, name: str, created: str, state: str, script_line: str = "echo hi") -> str:
    job = PlannedJob(
        name="a",
        kind="allocation",
        options={"time": "00:05:00", "output": "a.txt"},
        script=f"#!/bin/bash\n{script_line}\n",
        option_sources=["--time=00:05:00  (workflow)", "--output=a.txt  (script line 2)"],
    )
    plan = Plan(workflow=name, jobs=[job, PlannedJob(name="b", kind="allocation", options={}, script="#!/bin/sh\n")])
    record, lock = store.create(plan)
    lock.release()
    record.created, record.final_state, record.submission = created, state, SUBMITTED
    record.job_ids = {"a": "77"}
    record.submit_dir, record.log_dir = "/proj", str(store.dag_dir(record.dag_id) / "logs")
    store.save(record)
    return record.dag_id


@pytest.fixture
def home(tmp_path):
    store = Store(tmp_path)
    ids = {
        "old": _finished(store, "prep", "2026-01-01T00:00:00+00:00", "Completed"),
        "bad": _finished(store, "train", "2026-02-01T00:00:00+00:00", "Failed"),
        "new": _finished(store, "train-2", "2026-03-01T00:00:00+00:00", "Completed"),
    }
    return tmp_path, ids


def test_list_by_state_name_since_and_count(home):
    path, ids = home

    def listed(*args):
        done = _cli(path, "list", "--json", *args)
        assert done.returncode == 0, done.stderr
        return [d["dag_id"] for d in json.loads(done.stdout)]

    assert listed() == [ids["new"], ids["bad"], ids["old"]]
    assert listed("--state", "failed") == [ids["bad"]]
    assert listed("--name", "train*") == [ids["new"], ids["bad"]]
    assert listed("--since", "2026-01-15") == [ids["new"], ids["bad"]]
    assert listed("-n", "1") == [ids["new"]]
    assert _cli(path, "list", "--state", "Finished").returncode == 2


def test_show_prints_options_with_their_source_job_ids_logs_and_script(home):
    path, ids = home
    done = _cli(path, "show", ids["bad"], "a")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"allocation a of DAG {ids['bad']} (train): single job" in out
    assert "attempt 1: job 77" in out and "stdout: /proj/a.txt" in out
    assert "--output=a.txt" in out and "script line 2" in out
    assert f"--job-name=sd-{ids['bad']}-a" in out and "slurmdag" in out
    assert out.rstrip().endswith("echo hi")
    doc = json.loads(_cli(path, "show", "@~1", "a", "--json").stdout)
    assert doc["dag_id"] == ids["bad"] and doc["log"]["stdout"] == "/proj/a.txt"
    missing = _cli(path, "show", ids["bad"], "zz")
    assert missing.returncode == 2 and "no allocation 'zz'" in missing.stderr


def test_forget_removes_a_finished_dag_and_refuses_one_being_submitted(home):
    path, ids = home
    store = Store(path)
    done = _cli(path, "forget", ids["old"])
    assert done.returncode == 0, done.stderr
    assert "forgot DAG" in done.stdout and not store.exists(ids["old"])
    assert not os.path.exists(path / "dags" / ids["old"])
    record = store.load(ids["new"])
    record.submission, record.final_state = "submitting", None
    store.save(record)
    lock = store.lock_dag(ids["new"])  # a live submitter holds it
    try:
        busy = _cli(path, "forget", ids["new"])
    finally:
        lock.release()
    assert busy.returncode == 2 and "is being submitted" in busy.stderr and store.exists(ids["new"])


def test_validate_json_lists_every_problem_with_its_place(tmp_path):
    bad = tmp_path / "wf.yaml"
    bad.write_text(
        "name: x\nallocations:\n  - {name: a, entrypoint: x, walltime: soon}\n  - {name: b, entrypoint: y, gpu: 3}\n"
    )
    done = _cli(tmp_path, "validate", bad, "--json")
    assert done.returncode == 2 and done.stderr == ""
    doc = json.loads(done.stdout)
    assert doc["valid"] is False and doc["allocations"] is None
    assert [(p["line"], p["column"], p["message"]) for p in doc["problems"]] == [
        (3, 40, "invalid walltime 'soon': not one of the accepted forms"),
        (4, 30, "unknown key 'gpu' in allocation 'b'"),
    ]
    assert doc["problems"][1]["hint"] == "did you mean 'gpus'?" and doc["problems"][0]["file"] == str(bad)
    bad.write_text("name: x\nallocations:\n  - {name: a, entrypoint: x}\n")
    ok = _cli(tmp_path, "validate", bad, "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout) == {
        "file": str(bad),
        "valid": True,
        "allocations": 1,
        "problems": [],
        "warnings": [],
    }


def test_every_value_in_help_has_a_written_metavar():
    """--help names every value the same way (DAG, ALLOCATION, WORKFLOW.yaml, NAME=VALUE, DIR, N, a|b), never a
    type placeholder such as <path> or <list[str]>."""
    import typer.main

    from slurmdag.cli import app

    missing = []

    def walk(command, path):
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])
        for p in getattr(command, "params", []):
            if getattr(p, "is_flag", False) or getattr(p, "hidden", False) or p.name == "help":
                continue
            if p.metavar is None or not re.fullmatch(
                r"\[?[A-Z][A-Z.=_]*[a-z]*\]?(\.\.\.)?|[a-z]+(\|[a-z]+)+", p.metavar
            ):
                missing.append(f"{' '.join(path)} {p.name}: {p.metavar}")

    walk(typer.main.get_command(app), ["slurmdag"])
    assert missing == []
