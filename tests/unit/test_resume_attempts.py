"""attempt_history.py: the history of a resumed DAG, each node's (task's) current job, and old records still loading."""

from __future__ import annotations

import json

from slurmdag.state import attempt_history
from slurmdag.state.store import DagRecord


def record(**kw) -> DagRecord:
    return DagRecord(dag_id="0123abcd", name="w", created="2026-01-01T00:00:00+00:00", submission="submitted", **kw)


def test_a_record_without_history_loads_and_has_one_attempt():
    old = json.loads(record(job_ids={"a": "10"}).to_json())
    del old["attempts"]
    rec = DagRecord.from_json(json.dumps(old))
    assert rec.attempts == [] and attempt_history.count(rec) == 1
    assert attempt_history.current_job_ids(rec) == {"a": "10"}


def test_committed_resume_becomes_current_and_keeps_earlier_jobs():
    rec = record(job_ids={"a": "10", "b": "11", "g": "12"}, gate_job_id="9", final_state="Failed")
    att = attempt_history.begin(rec, "resume", {"g": "7"}, {})
    att["job_ids"].update({"b": "21", "g": "22"})
    rec.gate_job_id = "20"
    attempt_history.committed(rec, att)
    assert rec.attempt == 2 and attempt_history.count(rec) == 2 and rec.final_state is None
    assert rec.job_ids == {"a": "10", "b": "21", "g": "22"}
    assert attempt_history.all_job_ids(rec) == ["10", "11", "12", "21", "22"]
    assert attempt_history.task_sources(rec, "g", list(range(10))) == {**{i: "12" for i in range(10)}, 7: "22"}


def test_withdrawn_resume_does_not_count_and_restores_the_gate():
    rec = record(job_ids={"a": "10"}, gate_job_id="9")
    att = attempt_history.begin(rec, "resume", {}, {})
    att["job_ids"]["a"] = "31"
    rec.gate_job_id = "30"
    attempt_history.withdrawn(rec, att, "sbatch refused")
    assert attempt_history.count(rec) == 1 and rec.gate_job_id == "9"
    assert attempt_history.current_job_ids(rec) == {"a": "10"}
    assert rec.attempts[-1]["submission"] == "failed" and rec.attempts[-1]["error"] == "sbatch refused"


def test_decided_nodes_of_the_current_attempt_are_reported():
    rec = record(job_ids={"a": "10", "h": "11"})
    att = attempt_history.begin(rec, "resume", {}, {"h": "cannot hold: afternotok:a (Completed)"})
    attempt_history.committed(rec, att)
    assert attempt_history.decided_in_current(rec) == {"h": "cannot hold: afternotok:a (Completed)"}
    assert attempt_history.current_job_ids(rec)["h"] == "11"  # its earlier (never-run) job is what status labels
