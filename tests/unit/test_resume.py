"""resume_plan.py: which jobs a resume/redo submits, which edges it drops as satisfied and which it decides
unsatisfiable, from the plan and the outcome of every node (pure; no Slurm)."""

from __future__ import annotations

import pytest

from slurmdag.compiler.compile import compile_text
from slurmdag.model.errors import DagStillActiveError, NothingToResumeError
from slurmdag.model.states import AllocationState as S
from slurmdag.runs.resume_plan import (
    Outcome,
    descendants,
    plan_redo,
    plan_resume,
)

CHAIN = """
name: chain
allocations:
  - {name: a, entrypoint: "true"}
  - {name: b, entrypoint: "true", depends_on: [a]}
  - {name: f, entrypoint: "true", depends_on: [a]}
  - {name: c, entrypoint: "true", depends_on: [b]}
  - {name: d, entrypoint: "true", depends_on: [c]}
  - {name: e, entrypoint: "true", depends_on: [d, f]}
  - {name: on-fail, entrypoint: "true", depends_on: [{c: failure}]}
  - {name: always, entrypoint: "true", depends_on: [{c: any}]}
"""


def outcomes(**states):
    return {k.replace("_", "-"): Outcome(v) for k, v in states.items()}


def test_resume_reruns_the_failed_node_and_its_cancelled_downstream_only():
    plan = compile_text(CHAIN)
    res = plan_resume(
        plan,
        outcomes(
            a=S.COMPLETED,
            b=S.COMPLETED,
            f=S.COMPLETED,
            c=S.FAILED,
            d=S.CANCELLED,
            e=S.CANCELLED,
            on_fail=S.COMPLETED,
            always=S.COMPLETED,
        ),
    )
    assert res.names() == ["c", "d", "e"]
    deps = {j.name: j.dependency for j in res.jobs}
    assert deps["c"] is None  # its parent b completed earlier: the edge is dropped, c waits on the new gate
    assert [(t.kind, t.parent) for t in deps["d"].terms] == [("afterok", "c")]
    assert [(t.kind, t.parent) for t in deps["e"].terms] == [("afterok", "d")]  # f's edge dropped
    assert ("c", "b") in res.dropped and ("e", "f") in res.dropped
    assert set(res.kept) == {"a", "b", "f", "on-fail", "always"}
    assert res.decided == {}


def test_no_job_of_the_new_attempt_depends_on_a_job_it_does_not_submit():
    plan = compile_text(CHAIN)
    res = plan_resume(
        plan,
        outcomes(
            a=S.COMPLETED,
            b=S.FAILED,
            f=S.UNKNOWN,
            c=S.CANCELLED,
            d=S.CANCELLED,
            e=S.CANCELLED,
            on_fail=S.CANCELLED,
            always=S.CANCELLED,
        ),
    )
    names = set(res.names())
    for job in res.jobs:
        assert set(job.parents()) <= names, job.name


def test_failure_handler_whose_parent_completed_is_decided_not_submitted():
    plan = compile_text(CHAIN)
    res = plan_resume(
        plan,
        outcomes(
            a=S.COMPLETED,
            b=S.COMPLETED,
            f=S.FAILED,
            c=S.COMPLETED,
            d=S.COMPLETED,
            e=S.CANCELLED,
            on_fail=S.SKIPPED,
            always=S.COMPLETED,
        ),
    )
    assert res.names() == ["f", "e"]
    assert "on-fail" in res.decided and "afternotok:c (Completed)" in res.decided["on-fail"]


def test_a_completed_dag_has_nothing_to_resume():
    plan = compile_text(CHAIN)
    with pytest.raises(NothingToResumeError):
        plan_resume(
            plan,
            outcomes(
                a=S.COMPLETED,
                b=S.COMPLETED,
                f=S.COMPLETED,
                c=S.COMPLETED,
                d=S.COMPLETED,
                e=S.COMPLETED,
                on_fail=S.SKIPPED,
                always=S.COMPLETED,
            ),
        )


def test_an_active_dag_is_refused():
    plan = compile_text(CHAIN)
    with pytest.raises(DagStillActiveError, match="c"):
        plan_resume(plan, outcomes(a=S.COMPLETED, b=S.COMPLETED, c=S.RUNNING))


def test_unknown_outcome_is_never_taken_for_success():
    plan = compile_text(CHAIN)
    res = plan_resume(
        plan,
        outcomes(
            a=S.UNKNOWN,
            b=S.COMPLETED,
            f=S.COMPLETED,
            c=S.COMPLETED,
            d=S.COMPLETED,
            e=S.COMPLETED,
            on_fail=S.SKIPPED,
            always=S.COMPLETED,
        ),
    )
    assert res.names() == ["a"]


GROUP = """
name: group
allocations:
  - {name: shards, tasks: 10, entrypoint: "true"}
  - {name: post, tasks: 10, entrypoint: "true", depends_on: [{shards: corresponding}]}
  - {name: merge, entrypoint: "true", depends_on: [post]}
"""


def group_outcome(failed: set[int], state: S = S.FAILED) -> Outcome:
    return Outcome(state if failed else S.COMPLETED, {i: (state if i in failed else S.COMPLETED) for i in range(10)})


def test_task_group_reruns_only_the_tasks_that_did_not_complete():
    plan = compile_text(GROUP)
    res = plan_resume(
        plan, {"shards": group_outcome({7}), "post": group_outcome({7}, S.CANCELLED), "merge": Outcome(S.CANCELLED)}
    )
    arrays = {j.name: j.array for j in res.jobs}
    assert arrays == {"shards": "7", "post": "7", "merge": None}
    assert res.subsets == {"shards": "7", "post": "7"}
    post = next(j for j in res.jobs if j.name == "post")
    assert [(t.kind, t.parent) for t in post.dependency.terms] == [("aftercorr", "shards")]


def test_corresponding_edge_to_a_kept_group_is_judged_per_task():
    plan = compile_text(GROUP)
    # shards all completed, post task 3 failed on its own: its aftercorr parent task 3 completed -> dropped
    res = plan_resume(plan, {"shards": group_outcome(set()), "post": group_outcome({3}), "merge": Outcome(S.CANCELLED)})
    post = next(j for j in res.jobs if j.name == "post")
    assert post.array == "3" and post.dependency is None


def test_throttle_is_kept_on_the_subset():
    plan = compile_text("""
name: t
allocations:
  - {name: g, array: "0-9%2", entrypoint: "true"}
""")
    res = plan_resume(
        plan, {"g": Outcome(S.FAILED, {i: S.FAILED if i in (2, 3, 4, 8) else S.COMPLETED for i in range(10)})}
    )
    assert res.jobs[0].array == "2-4,8%2"


def test_or_dependency_with_one_satisfied_branch_is_dropped_entirely():
    plan = compile_text("""
name: or
allocations:
  - {name: x, entrypoint: "true"}
  - {name: y, entrypoint: "true"}
  - {name: m, entrypoint: "true", depends_on_any: [x, y]}
""")
    res = plan_resume(plan, outcomes(x=S.FAILED, y=S.COMPLETED, m=S.FAILED))
    m = next(j for j in res.jobs if j.name == "m")
    assert res.names() == ["x", "m"] and m.dependency is None
    res = plan_resume(plan, outcomes(x=S.FAILED, y=S.FAILED, m=S.CANCELLED))
    m = next(j for j in res.jobs if j.name == "m")
    assert m.dependency.join == "any" and {t.parent for t in m.dependency.terms} == {"x", "y"}


def test_redo_reruns_a_completed_node_and_with_cascade_its_downstream():
    plan = compile_text(CHAIN)
    done = outcomes(
        a=S.COMPLETED,
        b=S.COMPLETED,
        f=S.COMPLETED,
        c=S.COMPLETED,
        d=S.COMPLETED,
        e=S.COMPLETED,
        on_fail=S.SKIPPED,
        always=S.COMPLETED,
    )
    assert plan_redo(plan, done, "c").names() == ["c"]
    res = plan_redo(plan, done, "c", cascade=True)
    # on-fail runs again too: its afternotok points at the new c, which may fail this time
    assert res.names() == ["c", "d", "e", "on-fail", "always"]
    assert descendants(plan, "c") == {"d", "e", "on-fail", "always"}


def test_redo_includes_the_failure_handler_with_a_live_edge():
    plan = compile_text(CHAIN)
    done = outcomes(
        a=S.COMPLETED,
        b=S.COMPLETED,
        f=S.COMPLETED,
        c=S.COMPLETED,
        d=S.COMPLETED,
        e=S.COMPLETED,
        on_fail=S.SKIPPED,
        always=S.COMPLETED,
    )
    res = plan_redo(plan, done, "b", cascade=True)
    on_fail = next(j for j in res.jobs if j.name == "on-fail")
    assert {t.parent for t in on_fail.dependency.terms} <= set(res.names())


def test_redo_of_an_unknown_node_is_a_usage_error():
    plan = compile_text(CHAIN)
    with pytest.raises(Exception, match="no allocation 'cc'"):
        plan_redo(plan, {}, "cc")
