"""From Slurm rows to a DAG status (pure `build_status`) and its views: table, tree, JSON of design §5."""

from __future__ import annotations

import json

from slurmdag.backends.base import JobInfo
from slurmdag.model.plan import Dependency, DependencyTerm, Edge, Plan, PlannedJob
from slurmdag.model.states import AllocationState, DagState
from slurmdag.runs.status import build_status
from slurmdag.state.store import DagRecord
from slurmdag.views.status_views import status_json, status_table, status_tree

DAG = "abcd1234"


def _job(name, *edges, array=None, tasks=None):
    es = tuple(Edge(p, c) for p, c in edges)
    kinds = {"success": "afterok", "failure": "afternotok", "any": "afterany"}
    dep = Dependency("all", tuple(DependencyTerm(kinds[e.condition], e.parent) for e in es)) if es else None
    return PlannedJob(name, "allocation", {}, "", array=array, tasks=tasks, dependency=dep, edges=es)


PLAN = Plan(
    "pipe",
    [
        _job("prep"),
        _job("shards", ("prep", "success"), array="0-2", tasks=3),
        _job("merge", ("prep", "success"), ("shards", "success")),
        _job("on-fail", ("prep", "failure")),
    ],
)
RECORD = DagRecord(
    DAG,
    "pipe",
    "2026-01-01T00:00:00+00:00",
    submission="submitted",
    job_ids={"prep": "10", "shards": "11", "merge": "12", "on-fail": "13"},
)


def row(job_id, state, name, exit_code=None, nodes="node1", array_id=None, task=None, reason=None):
    return JobInfo(
        job_id,
        array_id or job_id,
        task,
        f"sd-{DAG}-{name}",
        state,
        reason=reason,
        exit_code=exit_code,
        node_list=nodes,
        elapsed="00:00:01",
    )


def _rows(*rows):
    return {r.job_id: r for r in rows}


def test_running_dag_with_task_group_counts_and_skipped_handler():
    infos = _rows(
        row("10", "COMPLETED", "prep", 0),
        row("11_0", "COMPLETED", "shards", 0, array_id="11", task=0),
        row("11_1", "RUNNING", "shards", array_id="11", task=1),
        row("11_2", "PENDING", "shards", nodes=None, array_id="11", task=2, reason="Resources"),
        row("12", "PENDING", "merge", nodes=None, reason="Dependency"),
        row("13", "CANCELLED", "on-fail", 0, nodes=None, reason="DependencyNeverSatisfied"),
    )
    st = build_status(RECORD, PLAN, infos)
    states = {n.name: n.state for n in st.nodes}
    assert states == {
        "prep": AllocationState.COMPLETED,
        "shards": AllocationState.RUNNING,
        "merge": AllocationState.PENDING,
        "on-fail": AllocationState.SKIPPED,
    }
    assert st.state is DagState.RUNNING
    shards = st.nodes[1]
    assert shards.task_counts() == {"Pending": 1, "Running": 1, "Completed": 1}
    doc = status_json(st)
    assert json.loads(json.dumps(doc)) == doc
    assert set(doc) == {"dag_id", "name", "state", "allocations"}
    assert doc["allocations"][0] == {
        "name": "prep",
        "job_id": "10",
        "state": "Completed",
        "slurm_state": "COMPLETED",
        "exit_code": 0,
        "reason": None,
    }
    assert doc["allocations"][1]["tasks"] == [
        {"index": 0, "job_id": "11_0", "state": "Completed"},
        {"index": 1, "job_id": "11_1", "state": "Running"},
        {"index": 2, "job_id": "11_2", "state": "Pending"},
    ]
    table = status_table(st, tasks=True)
    assert "1 Pending, 1 Running, 1 Completed" in table
    assert "11_2" in table and "Skipped" in table
    assert "11_2" not in status_table(st, tasks=False)


def test_tree_puts_each_node_under_each_parent_and_marks_repeats():
    infos = _rows(row("10", "COMPLETED", "prep", 0))
    tree = status_tree(build_status(RECORD, PLAN, infos))
    lines = tree.splitlines()
    assert lines[1].startswith("prep  Completed  #10")
    merge_lines = [ln for ln in lines if "merge" in ln]
    assert len(merge_lines) == 2 and merge_lines[1].endswith("(see above)")
    assert any("on-fail [failure]" in ln for ln in lines)


def test_rows_of_another_job_with_a_reused_id_are_ignored_and_lost_jobs_are_unknown():
    infos = _rows(row("10", "COMPLETED", "someone-else", 0))
    st = build_status(RECORD, PLAN, infos)
    assert st.nodes[0].state is AllocationState.UNKNOWN
    assert any("outcome is unknown" in n for n in st.notes)


def test_failed_submission_makes_the_dag_failed_with_its_error():
    record = DagRecord(
        DAG,
        "pipe",
        RECORD.created,
        submission="failed",
        job_ids={"prep": "10"},
        error="Slurm refused allocation 'merge'",
    )
    st = build_status(record, PLAN, _rows(row("10", "CANCELLED", "prep", 0, nodes=None)))
    assert st.state is DagState.FAILED
    assert st.nodes[2].reason == "not submitted"
    assert "Slurm refused allocation 'merge'" in status_table(st)


def test_a_purged_task_without_accounting_record_is_cancelled_when_its_siblings_are_finished():
    # Slurm 24.11+: an array task split off while pending and cancelled before it started never reaches sacct, so
    # after slurmctld purges it only its siblings are left (slurm 22.05 keeps a row for it).
    infos = _rows(
        row("10", "COMPLETED", "prep", 0),
        row("11_0", "COMPLETED", "shards", 0, array_id="11", task=0),
        row("11_2", "CANCELLED", "shards", nodes=None, array_id="11", task=2),
    )
    shards = build_status(RECORD, PLAN, infos).nodes[1]
    assert [(t.index, t.state) for t in shards.tasks or []] == [
        (0, AllocationState.COMPLETED),
        (1, AllocationState.CANCELLED),
        (2, AllocationState.CANCELLED),
    ]
    assert shards.tasks and "before it started" in (shards.tasks[1].reason or "")
    # while a sibling is still live, a missing task is not explained away
    infos["11_2"] = row("11_2", "PENDING", "shards", nodes=None, array_id="11", task=2)
    shards = build_status(RECORD, PLAN, infos).nodes[1]
    assert shards.tasks and shards.tasks[1].state is AllocationState.UNKNOWN
