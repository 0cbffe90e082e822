"""What the reconciler should do to one DAG, decided from its plan and Slurm's current view. Pure: no I/O.

Slurm evaluates every dependency itself; the reconciler only does what Slurm will not do on its own:
  * `--cascade reconciler` (jobs submitted with --kill-on-invalid-dep=no): cancel every pending job (or array task)
    whose dependency can never be satisfied — the ones Slurm shows as DependencyNeverSatisfied AND everything below
    them that their cancellation dooms, so one pass clears the whole cascade instead of one level per pass;
  * `on_failure: stop`: once a stop allocation failed, cancel whatever of the DAG is still pending or running (the
    failed job normally did so itself before it ended);
  * `--cascade native`: a backstop only — cancel a job Slurm left pending on DependencyNeverSatisfied (its own kill
    was not in effect). Slurm normally does this within a second, so the backstop rarely acts.
Predictions follow Slurm's rules (slurm-facts.md §2): a cancelled job counts as "not ok", so `afternotok`/`afterany`
children of a cancelled job still run, exactly as they would under Slurm's own cascade. A job whose state is Unknown
is treated as still running: its outcome is never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from slurmdag.model.plan import Dependency, DependencyTerm, Plan
from slurmdag.model.states import ACTIVE, AllocationState
from slurmdag.runs.status import AllocationStatus, DagStatus

NEVER_SATISFIED = "DependencyNeverSatisfied"


class Outcome(Enum):
    OK = "ok"  # Completed
    NOT_OK = "not ok"  # ended any other way (failed, timed out, cancelled, skipped)
    OPEN = "open"  # pending, running, or unknown


class TermValue(Enum):
    SATISFIED = "satisfied"
    NEVER = "never"
    WAITING = "waiting"


@dataclass(frozen=True)
class Unit:
    """One schedulable thing: a plain job, or one task of an array ("123_4")."""

    allocation: str
    job_id: str
    index: int | None
    state: AllocationState
    reason: str | None


@dataclass(frozen=True)
class Cancel:
    allocation: str
    job_id: str  # "123" or "123_4"
    why: str


def units(alloc: AllocationStatus) -> list[Unit]:
    if alloc.tasks is not None:
        return [Unit(alloc.name, t.job_id, t.index, t.state, t.reason) for t in alloc.tasks]
    if alloc.job_id is None:
        return []
    return [Unit(alloc.name, alloc.job_id, None, alloc.state, alloc.reason)]


def outcome(state: AllocationState) -> Outcome:
    if state is AllocationState.COMPLETED:
        return Outcome.OK
    if state in ACTIVE or state is AllocationState.UNKNOWN:
        return Outcome.OPEN
    return Outcome.NOT_OK


def term_value(kind: str, parents: list[Outcome]) -> TermValue:
    """One dependency term against the outcomes of the parent's units (all tasks, or the one corresponding task)."""
    if not parents:
        return TermValue.WAITING
    if kind in ("afterok", "aftercorr"):
        if Outcome.NOT_OK in parents:
            return TermValue.NEVER  # Slurm waits for the last task of an array, but the answer is already known
        return TermValue.SATISFIED if all(p is Outcome.OK for p in parents) else TermValue.WAITING
    if Outcome.OPEN in parents:
        return TermValue.WAITING
    if kind == "afternotok":
        return TermValue.SATISFIED if Outcome.NOT_OK in parents else TermValue.NEVER
    return TermValue.SATISFIED  # afterany


def dependency_value(dep: Dependency, unit: Unit, outcomes: dict[str, dict[int | None, Outcome]]) -> TermValue:
    values = [term_value(t.kind, _parent_outcomes(t, unit, outcomes)) for t in dep.terms]
    if dep.join == "all":
        if TermValue.NEVER in values:
            return TermValue.NEVER
        return TermValue.SATISFIED if all(v is TermValue.SATISFIED for v in values) else TermValue.WAITING
    if TermValue.SATISFIED in values:
        return TermValue.SATISFIED
    return TermValue.NEVER if values and all(v is TermValue.NEVER for v in values) else TermValue.WAITING


def _parent_outcomes(term: DependencyTerm, unit: Unit, outcomes: dict[str, dict[int | None, Outcome]]) -> list[Outcome]:
    parent = outcomes.get(term.parent, {})
    if term.kind == "aftercorr" and unit.index is not None and unit.index in parent:
        return [parent[unit.index]]  # task N waits for task N only (slurm-facts §2 #9)
    return list(parent.values())  # else the whole parent, like afterok (#10, #11)


def plan_actions(plan: Plan, status: DagStatus, cascade: str) -> list[Cancel]:
    """The cancellations one pass should make (empty when Slurm needs no help)."""
    allocs = {n.name: n for n in status.nodes}
    if status.stopped_by is not None:
        # `on_failure: stop`: the failed job cancels the rest itself; this catches what it could not (a job killed
        # before its exit trap ran, e.g. a node failure or SIGKILL), pending and running jobs alike
        why = f"the DAG was stopped by {status.stopped_by} (on_failure: stop)"
        stop = [Cancel(n.name, u.job_id, why) for n in status.nodes for u in units(n) if u.state in ACTIVE]
        return _whole_arrays(stop, allocs)
    outcomes: dict[str, dict[int | None, Outcome]] = {}
    actions: list[Cancel] = []
    arrays = {j.name: j for j in plan.jobs if j.kind == "host" and j.array}
    for job in plan.jobs:  # topological: parents' (predicted) outcomes are known before their children
        if job.kind == "host" and job.array:
            continue  # a packed array (auto_array): each task is judged as the allocation it runs, below
        dependency = (
            arrays[job.host.job].dependency if job.host is not None and job.host.job in arrays else job.dependency
        )
        alloc = allocs.get(job.name)
        alloc_units = units(alloc) if alloc is not None else []
        outcomes[job.name] = {}
        for unit in alloc_units:
            result = outcome(unit.state)
            if unit.state is AllocationState.PENDING:
                stuck = unit.reason == NEVER_SATISFIED
                doomed = (
                    cascade == "reconciler"
                    and dependency is not None
                    and (dependency_value(dependency, unit, outcomes) is TermValue.NEVER)
                )
                if stuck or doomed:
                    why = (
                        "Slurm: DependencyNeverSatisfied"
                        if stuck
                        else "an upstream job it depends on can no longer end the way it needs"
                    )
                    actions.append(Cancel(job.name, unit.job_id, why))
                    result = Outcome.NOT_OK  # it will be cancelled: what its children will see
            outcomes[job.name][unit.index] = result
    return _whole_arrays(actions, allocs)


def _whole_arrays(actions: list[Cancel], allocs: dict[str, AllocationStatus]) -> list[Cancel]:
    """Every task of an array doomed -> one id for the whole array (fewer ids to pass to scancel)."""
    by_allocation: dict[str, list[Cancel]] = {}
    for a in actions:
        by_allocation.setdefault(a.allocation, []).append(a)
    out: list[Cancel] = []
    for name, group in by_allocation.items():
        alloc = allocs[name]
        pending = [t for t in alloc.tasks or [] if t.state is AllocationState.PENDING]
        if alloc.tasks is not None and alloc.job_id and len(group) == len(alloc.tasks) == len(pending):
            out.append(Cancel(name, alloc.job_id, group[0].why))
        else:
            out.extend(group)
    return out
