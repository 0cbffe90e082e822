"""`resume` and `redo`: submit again, as a new attempt of the same DAG, what did not complete (or what was asked).

1. Read every allocation's outcome from Slurm (status.collect: one squeue + one sacct bounded by the DAG's creation
   time, rows matched by job name, so a reused or purged id can never pass for ours).
2. Compute the sub-plan (slurmdag/runs/resume_plan.py): no dependency on any job of an earlier attempt survives.
3. Submit it through the same gate as `submit` (submit.submit_gated): all or nothing; a failed submission is
   withdrawn and the DAG stays as it was before the resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slurmdag.backends.base import Backend
from slurmdag.compiler import render
from slurmdag.model.errors import ChangedCompletedAllocationsError, Problem, UnknownDagError, UsageError
from slurmdag.model.plan import Plan
from slurmdag.model.states import AllocationState
from slurmdag.runs.resume_plan import Outcome, ResumePlan, plan_redo, plan_resume
from slurmdag.runs.status import DagStatus, collect
from slurmdag.runs.submit import submit_gated
from slurmdag.state import attempt_history
from slurmdag.state.store import FAILED, SUBMITTING, DagRecord, Store


@dataclass
class RecoveryOutcome:
    dag_id: str
    attempt: int
    kind: str  # "resume" | "redo"
    sub_plan: ResumePlan
    job_ids: dict[str, str]  # the new attempt's jobs
    dry_run: bool = False


def outcomes_of(status: DagStatus) -> dict[str, Outcome]:
    return {
        n.name: Outcome(n.state, {t.index: t.state for t in n.tasks} if n.tasks is not None else None)
        for n in status.nodes
    }


def identity(plan: Plan, name: str) -> tuple:
    """What makes an allocation the same one: its script, sbatch options, tasks and incoming edges."""
    job = plan.job(name)
    return (job.script, render.sbatch_options(job), job.array, job.tasks, job.edges)


def check_unchanged(old: Plan, new: Plan, completed: list[str]) -> None:
    """Refuse a re-read workflow that changes or drops an allocation that completed; name every one."""
    new_names = {j.name for j in new.jobs}
    problems = []
    for name in completed:
        if name not in new_names:
            problems.append(
                Problem(
                    f"allocation {name!r} completed in an earlier attempt but is missing from the workflow",
                    file="slurmdag",
                    hint="keep it, or submit the workflow as a new DAG",
                )
            )
        elif identity(old, name) != identity(new, name):
            what = [
                k
                for k, a, b in zip(
                    ("script", "options", "array", "tasks", "depends_on"),
                    identity(old, name),
                    identity(new, name),
                    strict=False,
                )
                if a != b
            ]
            problems.append(
                Problem(
                    f"allocation {name!r} completed in an earlier attempt; the workflow changes its {', '.join(what)}",
                    file="slurmdag",
                    hint=f"`slurmdag redo DAG {name}` re-runs it, or submit the workflow as a new DAG",
                )
            )
    if problems:
        raise ChangedCompletedAllocationsError(problems)


def recover(
    store: Store,
    backend: Backend,
    dag_id: str,
    *,
    allocation: str | None = None,
    cascade: bool = False,
    from_file: Path | None = None,
    dry_run: bool = False,
) -> RecoveryOutcome:
    """`resume` (allocation=None) or `redo DAG ALLOCATION [--cascade]` of DAG `dag_id`."""
    if not store.exists(dag_id):
        raise UnknownDagError(dag_id)
    status = collect(store, backend, dag_id)  # also finishes off an abandoned submission
    record = store.load(dag_id)
    if record.submission == SUBMITTING or (record.submission == FAILED and record.cleanup_pending):
        raise UsageError(
            Problem(
                f"DAG {dag_id} is being submitted (or its failed submission is not cleaned up yet)",
                file="slurmdag",
                hint=f"try again shortly; `slurmdag status {dag_id}` shows it",
            )
        )
    plan = status.plan
    outcomes = outcomes_of(status)
    if from_file is not None:
        from slurmdag.compiler.compile import compile_file

        new_plan = compile_file(from_file)
        completed = [n.name for n in status.allocations() if n.state is AllocationState.COMPLETED]
        check_unchanged(plan, new_plan, completed)
        plan = new_plan
    kind = "resume" if allocation is None else "redo"
    sub = plan_resume(plan, outcomes) if allocation is None else plan_redo(plan, outcomes, allocation, cascade)
    if dry_run or not sub.jobs:
        return RecoveryOutcome(
            dag_id, record.attempt + (0 if dry_run and not sub.jobs else 1), kind, sub, {}, dry_run=True
        )
    lock = store.lock_dag(dag_id, blocking=False)
    if lock is None:
        raise UsageError(
            Problem(
                f"another slurmdag command is changing DAG {dag_id} right now",
                file="slurmdag",
                hint="try again when it is done",
            )
        )
    with lock:
        record = store.load(dag_id)
        if from_file is not None:
            store.replace_plan(dag_id, plan)
        previous = record.submission
        attempt = attempt_history.begin(record, kind, sub.subsets, sub.decided)
        record.submission = SUBMITTING
        record.stamp_submitter()
        store.save(record)

        def withdrawn(rec: DagRecord, error: str, _outcome: object) -> None:
            attempt_history.withdrawn(rec, attempt, error)
            rec.submission = previous
            rec.pid = None

        sub_plan = Plan(workflow=plan.workflow, jobs=sub.jobs, params=plan.params, source=plan.source)
        submit_gated(
            sub_plan,
            store,
            backend,
            record,
            attempt["job_ids"],
            on_released=lambda rec: attempt_history.committed(rec, attempt),
            on_withdrawn=withdrawn,
            write_scripts=True,
        )
        return RecoveryOutcome(dag_id, attempt["number"], kind, sub, dict(attempt["job_ids"]))
