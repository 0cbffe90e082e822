"""What a `resume` or `redo` submits: the sub-plan of jobs to run again, computed from the plan and the outcome of
every allocation so far. Pure: no Slurm, no disk.

The trap this module exists for (slurm-facts.md §2 #18/#20): Slurm 22.05 silently drops a dependency on a job id it
no longer remembers and starts the child at once, even if that parent failed. So the sub-plan NEVER depends on a job
of an earlier attempt. Every edge into a job that is not re-run is decided here, from that parent's known outcome:
  satisfied     -> the term is dropped (a child whose terms are all dropped waits on the new attempt's gate);
  unsatisfiable -> the child is not submitted at all; it is reported with the reason, and `status` labels it
                   Skipped or Cancelled from the plan's edges as usual.
Terms towards jobs that are re-run stay, and point at the new jobs.

A task group whose tasks partly completed re-runs only the other tasks (`--array=<those indexes>`, throttle kept).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from slurmdag.compiler import grouping, packing
from slurmdag.model import slurm_values as wt
from slurmdag.model.errors import DagStillActiveError, NothingToResumeError, Problem, UsageError
from slurmdag.model.plan import Dependency, DependencyTerm, Plan, PlannedJob
from slurmdag.model.states import ACTIVE, FAILURES, AllocationState


@dataclass(frozen=True)
class Outcome:
    """An allocation's combined state over all attempts so far; `tasks` (index -> state) for task groups."""

    state: AllocationState
    tasks: Mapping[int, AllocationState] | None = None


@dataclass
class ResumePlan:
    jobs: list[PlannedJob]  # to submit, in plan order, with rewritten dependencies and array subsets
    kept: list[str] = field(default_factory=list)  # not re-run (Completed, or outside a redo's reach)
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (child, parent): satisfied by an earlier attempt
    decided: dict[str, str] = field(default_factory=dict)  # job not submitted -> why its dependency cannot hold
    subsets: dict[str, str] = field(default_factory=dict)  # task group -> the --array indexes run again

    def names(self) -> list[str]:
        return [j.name for j in self.jobs]


def plan_resume(plan: Plan, outcomes: Mapping[str, Outcome]) -> ResumePlan:
    """Re-run every job that did not complete; completed task-group tasks are kept. Allocations that were packed
    into an array job (auto_array) are re-run as jobs of their own."""
    plan = packing.unpack(plan)
    _refuse_split(plan)
    _refuse_active(outcomes)
    rerun: dict[str, list[int] | None] = {}
    for job in plan.jobs:
        outcome = outcomes.get(job.name, Outcome(AllocationState.UNKNOWN))
        if outcome.state is AllocationState.COMPLETED or job.kind == "host":  # a group job: see its members
            continue
        if _is_group(job):
            tasks = _unfinished_tasks(job, outcome)
            if tasks:  # a group whose tasks all completed (its state is another attempt's) stays
                rerun[job.name] = tasks
        else:
            rerun[job.name] = None
    result = _sub_plan(plan, outcomes, rerun)
    if not any(plan.job(n).kind == "allocation" for n in result.names()):
        raise NothingToResumeError(
            Problem(
                _nothing_message(result),
                file="slurmdag",
                hint="`slurmdag redo DAG ALLOCATION` re-runs a completed allocation",
            )
        )
    return result


def plan_redo(plan: Plan, outcomes: Mapping[str, Outcome], allocation: str, cascade: bool = False) -> ResumePlan:
    """Re-run `allocation` whatever its outcome (whole task group); with `cascade`, also every job downstream of it."""
    plan = packing.unpack(plan)
    _refuse_split(plan)
    _refuse_active(outcomes)
    names = {j.name for j in plan.allocations()}
    if allocation not in names:
        from slurmdag.compiler.spec import did_you_mean

        raise UsageError(
            Problem(
                f"no allocation {allocation!r} in this DAG",
                file="slurmdag",
                hint=did_you_mean(allocation, names) or f"allocations: {', '.join(sorted(names))}",
            )
        )
    targets = {allocation} | (descendants(plan, allocation) if cascade else set())
    targets = {t for t in targets if plan.job(t).kind != "host"}  # a group job runs again for its members
    rerun: dict[str, list[int] | None] = {j.name: None for j in plan.jobs if j.name in targets}
    result = _sub_plan(plan, outcomes, rerun)
    if not result.jobs:
        raise NothingToResumeError(
            Problem(
                f"cannot redo {allocation!r}: " + _nothing_message(result),
                file="slurmdag",
                hint="redo (or resume) its upstream first",
            )
        )
    return result


def descendants(plan: Plan, name: str) -> set[str]:
    """Every job (allocations and join jobs) that depends, directly or not, on `name`; a group member's children
    inside its group by their edges, its group's children outside through the group job (counted as reached once a
    member is)."""
    out: set[str] = set()
    hosted = plan.job(name).host if name in {j.name for j in plan.jobs} else None
    if hosted is not None:
        out.add(hosted.job)  # the group job runs again: what waits on it outside is downstream
    for job in plan.jobs:  # topological order: a parent is seen before its children
        if job.host is not None:
            if any(e.parent == name or e.parent in out for e in job.edges):
                out.add(job.name)
                out.add(job.host.job)
        elif any(p == name or p in out for p in job.parents()):
            out.add(job.name)
    return out


# --- the work ---


def _refuse_split(plan: Plan) -> None:
    split = sorted(
        {j.part_of or j.name for j in plan.jobs if getattr(j, "part_of", None) or getattr(j, "task_offset", 0)}
    )
    if split:
        raise UsageError(
            Problem(
                f"task group(s) {', '.join(split)} were split into several arrays (MaxArraySize); "
                "resume/redo of split groups is not supported yet",
                file="slurmdag",
                hint="submit the workflow again as a new DAG",
            )
        )


def _refuse_active(outcomes: Mapping[str, Outcome]) -> None:
    active = sorted(n for n, o in outcomes.items() if o.state in ACTIVE)
    if active:
        raise DagStillActiveError(
            Problem(
                f"the DAG is still active ({', '.join(active)} pending or running): resuming now could run them twice",
                file="slurmdag",
                hint="wait for it to end, or `slurmdag cancel DAG` first",
            )
        )


def _is_group(job: PlannedJob) -> bool:
    return bool(job.array or job.tasks)


def group_indexes(job: PlannedJob) -> list[int]:
    if job.array:
        return wt.array_indexes(job.array)
    return list(range(job.tasks or 0))


def _unfinished_tasks(job: PlannedJob, outcome: Outcome) -> list[int]:
    tasks = outcome.tasks or {}
    return [i for i in group_indexes(job) if tasks.get(i, AllocationState.UNKNOWN) is not AllocationState.COMPLETED]


def _term_holds(term: DependencyTerm, parent: Outcome, child_indexes: list[int] | None) -> bool:
    """Whether a term towards a job that is NOT re-run is satisfied by that job's known final outcome."""
    state = parent.state
    if term.kind == "afterany":
        return True  # Slurm runs an afterany child whatever became of its parent, even a never-run one
    if term.kind == "afternotok":
        return state in FAILURES  # only a parent that ran and failed; one that never ran does not fire it
    if term.kind == "aftercorr" and parent.tasks is not None and child_indexes is not None:
        return all(parent.tasks.get(i) is AllocationState.COMPLETED for i in child_indexes)
    return state is AllocationState.COMPLETED  # afterok, and aftercorr as a whole


_PRESET = {AllocationState.COMPLETED: "ok"}


def _preset(state: AllocationState) -> str:
    return _PRESET.get(state, "failed" if state in FAILURES else "none")


def _sub_plan(plan: Plan, outcomes: Mapping[str, Outcome], rerun: dict[str, list[int] | None]) -> ResumePlan:
    result = ResumePlan(jobs=[])
    submitted: set[str] = set()
    for job in plan.jobs:
        if job.kind == "host":
            run = [m for m in job.members if m in rerun]
            if not run:
                result.kept.append(job.name)
                continue
            dependency, why = _rewrite(job, plan, outcomes, submitted, result, None)
            if why is not None:
                result.decided[job.name] = why
                result.decided.update((m, why) for m in run)
                continue
            preset = {
                m: _preset(outcomes.get(m, Outcome(AllocationState.UNKNOWN)).state)
                for m in job.members
                if m not in rerun
            }
            again = grouping.rehost(plan.workflow, plan.jobs, replace(job, dependency=dependency), run, preset)
            result.jobs.append(again)
            submitted.add(job.name)
            continue
        if job.host is not None:  # runs (or not) with its group job
            if job.name in rerun and job.host.job in submitted:
                result.jobs.append(job)
                submitted.add(job.name)
            elif job.name not in result.decided:
                result.kept.append(job.name)
            continue
        if job.name not in rerun:
            result.kept.append(job.name)
            continue
        indexes = rerun[job.name]
        if indexes is None and _is_group(job):
            indexes = group_indexes(job)
        dependency, why = _rewrite(job, plan, outcomes, submitted, result, indexes)
        if why is not None:
            result.decided[job.name] = why
            # A child that cannot run ends like a job that was never run: its own children judge it so.
            continue
        changes: dict = {"dependency": dependency}
        if _is_group(job) and indexes is not None and sorted(indexes) != sorted(group_indexes(job)):
            throttle = wt.parse_array(job.array).throttle if job.array else None
            changes["array"] = wt.format_array(indexes, throttle)
            result.subsets[job.name] = wt.format_array(indexes)
        result.jobs.append(replace(job, **changes))
        submitted.add(job.name)
    return result


def _rewrite(
    job: PlannedJob,
    plan: Plan,
    outcomes: Mapping[str, Outcome],
    submitted: set[str],
    result: ResumePlan,
    indexes: list[int] | None,
) -> tuple[Dependency | None, str | None]:
    """The job's dependency with every term towards a job of an earlier attempt decided; or why it cannot run."""
    dep = job.dependency
    if dep is None or not dep.terms:
        return None, None
    kept: list[DependencyTerm] = []
    held: list[DependencyTerm] = []
    failed: list[str] = []
    for term in dep.terms:
        if term.parent in submitted:
            kept.append(term)
            continue
        parent = _parent_outcome(term.parent, outcomes, result)
        if _term_holds(term, parent, indexes):
            held.append(term)
        else:
            failed.append(f"{term.kind}:{term.parent} ({parent.state})")
    if dep.join == "any":
        if held:  # one satisfied branch of an OR is enough
            result.dropped += [(job.name, t.parent) for t in dep.terms if t.parent not in submitted]
            return None, None
        if not kept:
            return None, "no branch can hold: " + " ? ".join(failed)
        return Dependency("any", tuple(kept)), None
    if failed:
        return None, "cannot hold: " + ", ".join(failed)
    result.dropped += [(job.name, t.parent) for t in held]
    return (Dependency("all", tuple(kept)) if kept else None), None


def _parent_outcome(name: str, outcomes: Mapping[str, Outcome], result: ResumePlan) -> Outcome:
    if name in result.decided:
        return Outcome(AllocationState.CANCELLED)  # will not run in this attempt
    return outcomes.get(name, Outcome(AllocationState.UNKNOWN))


def _nothing_message(result: ResumePlan) -> str:
    if result.decided:
        return "nothing can run again: " + "; ".join(f"{n}: {why}" for n, why in result.decided.items())
    return "nothing to resume: every allocation completed"
