"""plan.json format 3: one Slurm job hosting several allocations (docs/plan-json.md, "Hosting")."""

from __future__ import annotations

import json

import pytest

from slurmdag.model.plan import PLAN_FORMAT, Dependency, DependencyTerm, Edge, Hosting, Plan, PlannedJob
from slurmdag.runs.submit import hosted_job_ids, submission_waves


def _plan() -> Plan:
    host = PlannedJob("g+group", "host", {"ntasks": "1"}, "#!/bin/bash\n", members=("a", "b"), walltime=120)
    a = PlannedJob("a", "allocation", {"ntasks": "1"}, "true\n", host=Hosting("g+group", step="a"))
    b = PlannedJob(
        "b", "allocation", {"ntasks": "1"}, "true\n", host=Hosting("g+group", step="b"), edges=(Edge("a", "success"),)
    )
    c = PlannedJob(
        "c", "allocation", {}, "true\n", dependency=Dependency("all", (DependencyTerm("afterok", "g+group"),))
    )
    return Plan("w", [host, a, b, c])


def test_round_trip_keeps_hosting_and_omits_it_elsewhere():
    plan = _plan()
    data = json.loads(plan.to_json())
    assert data["format"] == PLAN_FORMAT == 3
    jobs = {j["name"]: j for j in data["jobs"]}
    assert jobs["g+group"]["members"] == ["a", "b"] and "host" not in jobs["g+group"]
    assert jobs["a"]["host"] == {"job": "g+group", "step": "a"} and "members" not in jobs["a"]
    assert "host" not in jobs["c"] and "members" not in jobs["c"]
    back = Plan.from_json(plan.to_json())
    assert back == plan
    assert [j.name for j in back.submissions()] == ["g+group", "c"]
    assert [j.name for j in back.allocations()] == ["a", "b", "c"]
    assert back.slurm_job_of("b") == "g+group" and back.slurm_job_of("c") == "c"
    assert [j.name for j in back.members_of("g+group")] == ["a", "b"]


def test_format_2_plans_read_unchanged():
    data = json.loads(Plan("w", [PlannedJob("x", "allocation", {}, "true\n")]).to_json())
    data["format"] = 2
    plan = Plan.from_dict(data)
    assert plan.job("x").host is None and plan.job("x").members == () and plan.format == PLAN_FORMAT


def test_a_hosted_allocation_is_found_by_step_or_task_never_both():
    with pytest.raises(ValueError):
        Hosting("h")
    with pytest.raises(ValueError):
        Hosting("h", step="a", task=0)


def test_submit_waves_and_ids_follow_the_host():
    plan = _plan()
    assert [[j.name for j in w] for w in submission_waves(plan)] == [["g+group"], ["c"]]
    assert hosted_job_ids(plan, {"g+group": "41"}) == {"a": "41", "b": "41"}
    packed = Plan(
        "w",
        [
            PlannedJob("p+array", "host", {}, "", array="0-1", tasks=2, members=("x", "y")),
            PlannedJob("x", "allocation", {}, "", host=Hosting("p+array", task=0)),
            PlannedJob("y", "allocation", {}, "", host=Hosting("p+array", task=1)),
            PlannedJob("z", "allocation", {}, "", dependency=Dependency("all", (DependencyTerm("afterok", "y"),))),
        ],
    )
    assert hosted_job_ids(packed, {"p+array": "7"}) == {"x": "7_0", "y": "7_1"}
    assert [[j.name for j in w] for w in submission_waves(packed)] == [["p+array"], ["z"]]
