"""The state machine of design §4: Slurm states -> node states, skip propagation along edges, DAG state."""

from __future__ import annotations

import pytest

from slurmdag.model.plan import Dependency, DependencyTerm, Edge, Plan, PlannedJob
from slurmdag.model.states import (
    AllocationState,
    DagState,
    allocation_state,
    count_states,
    dag_state,
    group_state,
    label,
)

P, R, C, F, X, S, U = (
    AllocationState.PENDING,
    AllocationState.RUNNING,
    AllocationState.COMPLETED,
    AllocationState.FAILED,
    AllocationState.CANCELLED,
    AllocationState.SKIPPED,
    AllocationState.UNKNOWN,
)


def job(name: str, *edges: tuple[str, str] | tuple[str, str, str]) -> PlannedJob:
    es = tuple(Edge(e[0], e[1], e[2] if len(e) > 2 else "all") for e in edges)
    kinds = {"success": "afterok", "failure": "afternotok", "any": "afterany", "corresponding": "aftercorr"}
    dep = None
    if es:
        join = "any" if any(e.group == "any" for e in es) else "all"
        dep = Dependency(join, tuple(DependencyTerm(kinds[e.condition], e.parent) for e in es))
    return PlannedJob(name=name, kind="allocation", options={}, script="", dependency=dep, edges=es)


@pytest.mark.parametrize(
    "slurm, expected",
    [
        ("PENDING", P),
        ("RUNNING", R),
        ("COMPLETING", R),
        ("COMPLETED", C),
        ("FAILED", F),
        ("TIMEOUT", AllocationState.TIMEOUT),
        ("OUT_OF_MEMORY", AllocationState.OUT_OF_MEMORY),
        ("NODE_FAIL", AllocationState.NODE_FAIL),
        ("CANCELLED", X),
        ("CANCELLED by 0", X),
        ("BOOT_FAIL", F),
        ("REQUEUED", P),
        (None, U),
        ("", U),
        ("SOMETHING_NEW", U),
    ],
)
def test_node_state_maps_slurm_states(slurm, expected):
    assert allocation_state(slurm) is expected


def test_group_state_is_active_while_any_task_is_and_worst_outcome_after():
    assert group_state([P, P]) is P
    assert group_state([C, P]) is R  # some tasks done, others waiting: the group is under way
    assert group_state([C, C, C]) is C
    assert group_state([C, F, X]) is F
    assert group_state([C, X]) is X
    assert group_state([C, AllocationState.TIMEOUT]) is AllocationState.TIMEOUT
    assert group_state([]) is U


def test_count_states_keeps_enum_order_and_drops_zeroes():
    assert count_states([C, P, C, F]) == {"Pending": 1, "Completed": 2, "Failed": 1}


def _plan(*jobs: PlannedJob) -> Plan:
    return Plan(workflow="w", jobs=list(jobs))


def test_failure_handler_of_a_successful_parent_is_skipped_and_skip_propagates_but_not_through_any():
    plan = _plan(
        job("train"),
        job("notify", ("train", "failure")),
        job("after-notify", ("notify", "success")),
        job("always", ("notify", "any")),
    )
    raw = {"train": C, "notify": X, "after-notify": X, "always": C}
    labels = label(plan, raw, ran={"train": True, "always": True})
    assert labels == {"train": C, "notify": S, "after-notify": S, "always": C}
    assert dag_state(plan, labels) is DagState.COMPLETED


def test_cascade_from_an_uncaught_failure_is_cancelled_and_the_dag_failed():
    plan = _plan(job("a"), job("b", ("a", "success")), job("c", ("b", "success")))
    labels = label(plan, {"a": F, "b": X, "c": X}, ran={"a": True})
    assert labels == {"a": F, "b": X, "c": X}
    assert labels.cascaded == {"b", "c"}
    assert dag_state(plan, labels) is DagState.FAILED


def test_caught_failure_does_not_fail_the_dag():
    plan = _plan(job("train"), job("notify", ("train", "failure")), job("eval", ("train", "success")))
    labels = label(plan, {"train": F, "notify": C, "eval": X}, ran={"train": True, "notify": True})
    assert labels["eval"] is X and "eval" in labels.cascaded
    assert dag_state(plan, labels) is DagState.COMPLETED


def test_failure_handler_does_not_fire_when_its_parent_never_ran():
    # q fails -> p cancelled by cascade -> handler h (afternotok:p AND p's own terms) cancelled: not Skipped.
    plan = _plan(job("q"), job("p", ("q", "success")), job("h", ("p", "failure")))
    labels = label(plan, {"q": F, "p": X, "h": X}, ran={"q": True})
    assert labels == {"q": F, "p": X, "h": X}
    assert dag_state(plan, labels) is DagState.FAILED


def test_a_job_cancelled_from_outside_makes_the_dag_cancelled():
    plan = _plan(job("a"), job("b", ("a", "success")))
    labels = label(plan, {"a": X, "b": X}, ran={})
    assert labels.cascaded == {"b"}  # b because of a; a itself: nothing upstream explains it
    assert dag_state(plan, labels) is DagState.CANCELLED


def test_user_cancel_wins_once_everything_is_finished():
    plan = _plan(job("a"), job("b", ("a", "success")))
    labels = label(plan, {"a": F, "b": X}, ran={"a": True})
    assert dag_state(plan, labels) is DagState.FAILED
    assert dag_state(plan, labels, cancelled_by_user=True) is DagState.CANCELLED


def test_or_group_is_skipped_only_when_every_branch_was_skipped():
    plan = _plan(
        job("a"),
        job("ha", ("a", "failure")),
        job("hb", ("a", "failure")),
        job("merge", ("ha", "success", "any"), ("hb", "success", "any")),
    )
    labels = label(plan, {"a": C, "ha": X, "hb": X, "merge": X}, ran={"a": True})
    assert labels["merge"] is S
    # One branch failed instead of being skipped: the OR is blocked by a failure.
    labels = label(plan, {"a": F, "ha": F, "hb": X, "merge": X}, ran={"a": True, "ha": True})
    assert labels["merge"] is X


def test_a_job_slurm_lost_is_unknown_never_completed():
    plan = _plan(job("a"), job("b", ("a", "success")))
    labels = label(plan, {"b": C}, ran={"b": True})  # "a" absent from Slurm
    assert labels["a"] is U
    assert dag_state(plan, labels) is DagState.UNKNOWN


@pytest.mark.parametrize(
    "raw, expected",
    [
        ({"a": P, "b": P}, DagState.PENDING),
        ({"a": R, "b": P}, DagState.RUNNING),
        ({"a": C, "b": P}, DagState.RUNNING),
        ({"a": C, "b": C}, DagState.COMPLETED),
    ],
)
def test_dag_is_pending_until_something_starts_and_running_until_all_ends(raw, expected):
    plan = _plan(job("a"), job("b", ("a", "success")))
    assert dag_state(plan, label(plan, raw, ran={})) is expected


def test_a_job_that_ran_and_was_cancelled_is_never_skipped():
    plan = _plan(job("a"), job("h", ("a", "failure")))
    labels = label(plan, {"a": C, "h": X}, ran={"a": True, "h": True})
    assert labels["h"] is X


def test_finished_slurm_states_are_the_ones_that_leave_pending_and_running():
    from slurmdag.model.states import FINISHED_SLURM_STATES, slurm_finished

    assert {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED"} <= (
        FINISHED_SLURM_STATES
    )
    assert not FINISHED_SLURM_STATES & {"PENDING", "RUNNING", "COMPLETING", "REQUEUED", "SUSPENDED", "CONFIGURING"}
    assert slurm_finished("CANCELLED by 1000") and slurm_finished("completed")
    assert not slurm_finished("COMPLETING") and not slurm_finished("PENDING")
