"""The reconciler's pure decisions: which pending jobs can never run (fakes stand in for Slurm's rows)."""

from __future__ import annotations

import pytest

from slurmdag.backends.base import JobInfo
from slurmdag.compiler.compile import compile_text
from slurmdag.runs.reconcile_plan import Outcome, TermValue, plan_actions, term_value
from slurmdag.runs.status import build_status
from slurmdag.state.store import DagRecord

WF = """\
name: t
allocations:
  - {name: a, entrypoint: "true"}
  - {name: b, entrypoint: "true", depends_on: [a]}
  - {name: c, entrypoint: "true", depends_on: [b]}
  - {name: on-b-fail, entrypoint: "true", depends_on: [{b: failure}]}
  - {name: after-b, entrypoint: "true", depends_on: [{b: any}]}
  - {name: other, entrypoint: "true"}
  - {name: g, entrypoint: "true", tasks: 3}
  - {name: h, entrypoint: "true", tasks: 3, depends_on: [{g: corresponding}]}
  - {name: either, entrypoint: "true", depends_on_any: [a, other]}
"""


def _status(plan, states: dict[str, tuple[str, str | None]]):
    """states: job id key ("a", "g_1") -> (Slurm state, reason); ids are the job names."""
    ids = {j.name: j.name for j in plan.jobs}
    infos = {}
    for key, (state, reason) in states.items():
        base, _, task = key.partition("_")
        ran = state not in ("PENDING", "CANCELLED")
        infos[key] = JobInfo(
            job_id=key,
            array_job_id=base,
            array_task=int(task) if task else None,
            name=f"sd-00000000-{base}",
            state=state,
            reason=reason,
            node_list="node1" if ran else None,
        )
    record = DagRecord(
        dag_id="00000000", name="t", created="2026-01-01T00:00:00+00:00", submission="submitted", job_ids=ids
    )
    return build_status(record, plan, infos)


@pytest.fixture
def plan():
    return compile_text(WF)


def _all(plan, overrides=None, default=("PENDING", "Dependency")):
    states = {}
    for j in plan.jobs:
        if j.tasks:
            for i in range(j.tasks):
                states[f"{j.name}_{i}"] = default
        else:
            states[j.name] = default
    states.update(overrides or {})
    return states


def test_term_values_follow_slurm():
    ok, bad, open_ = Outcome.OK, Outcome.NOT_OK, Outcome.OPEN
    assert term_value("afterok", [ok, ok]) is TermValue.SATISFIED
    assert term_value("afterok", [ok, bad, open_]) is TermValue.NEVER  # known before the last task ends
    assert term_value("afternotok", [ok, open_]) is TermValue.WAITING
    assert term_value("afternotok", [ok, bad]) is TermValue.SATISFIED
    assert term_value("afternotok", [ok]) is TermValue.NEVER
    assert term_value("afterany", [bad]) is TermValue.SATISFIED
    assert term_value("afterany", [open_]) is TermValue.WAITING
    assert term_value("afterok", []) is TermValue.WAITING


def test_reconciler_mode_cancels_the_whole_doomed_cascade_in_one_pass(plan):
    st = _status(
        plan,
        _all(
            plan,
            {
                "a": ("COMPLETED", None),
                "b": ("FAILED", None),
                "c": ("PENDING", "DependencyNeverSatisfied"),
                "other": ("RUNNING", None),
            },
        ),
    )
    names = {c.allocation for c in plan_actions(plan, st, "reconciler")}
    # c can never run; the failure handler and the any-child of b run, so they stay; nothing else is touched
    assert names == {"c"}


def test_reconciler_mode_follows_a_chain_below_the_first_stuck_job(plan):
    st = _status(
        plan,
        _all(plan, {"a": ("FAILED", None), "b": ("PENDING", "DependencyNeverSatisfied"), "other": ("COMPLETED", None)}),
    )
    names = {c.allocation for c in plan_actions(plan, st, "reconciler")}
    # b is stuck, c waits on b (Slurm still says only "Dependency"), the handler of b carries b's own terms;
    # after-b (any) will run once b is cancelled; either's OR is satisfied by `other`.
    assert names == {"b", "c", "on-b-fail"}


def test_native_mode_only_backs_up_slurms_own_kill(plan):
    st = _status(plan, _all(plan, {"a": ("FAILED", None), "b": ("PENDING", "DependencyNeverSatisfied")}))
    assert [c.allocation for c in plan_actions(plan, st, "native")] == ["b"]


def test_nothing_to_do_while_parents_run(plan):
    st = _status(plan, _all(plan, {"a": ("RUNNING", None), "other": ("RUNNING", None), "g_0": ("RUNNING", None)}))
    assert plan_actions(plan, st, "reconciler") == []


def test_corresponding_cancels_only_the_matching_task(plan):
    st = _status(
        plan,
        _all(
            plan,
            {
                "g_0": ("COMPLETED", None),
                "g_1": ("FAILED", None),
                "g_2": ("RUNNING", None),
                "a": ("RUNNING", None),
                "other": ("RUNNING", None),
            },
        ),
    )
    assert [(c.allocation, c.job_id) for c in plan_actions(plan, st, "reconciler")] == [("h", "h_1")]


def test_a_whole_doomed_array_is_cancelled_by_its_array_id(plan):
    st = _status(
        plan,
        _all(
            plan, {f"g_{i}": ("FAILED", None) for i in range(3)} | {"a": ("RUNNING", None), "other": ("RUNNING", None)}
        ),
    )
    assert [(c.allocation, c.job_id) for c in plan_actions(plan, st, "reconciler")] == [("h", "h")]


def test_or_is_doomed_only_when_every_branch_is(plan):
    base = {"other": ("RUNNING", None), "b": ("PENDING", "DependencyNeverSatisfied"), "a": ("FAILED", None)}
    st = _status(plan, _all(plan, base))
    assert "either" not in {c.allocation for c in plan_actions(plan, st, "reconciler")}
    st = _status(plan, _all(plan, base | {"other": ("TIMEOUT", None)}))
    assert "either" in {c.allocation for c in plan_actions(plan, st, "reconciler")}


def test_unknown_parent_is_never_taken_for_a_success_or_a_failure(plan):
    states = _all(plan, {"other": ("RUNNING", None)})
    del states["a"]  # Slurm forgot it
    st = _status(plan, states)
    assert plan_actions(plan, st, "reconciler") == []
