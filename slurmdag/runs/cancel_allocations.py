"""Cancel single allocations of a running DAG the way a user means it: the allocation stops, what needs it to
succeed is cancelled by Slurm's cascade, and its `failure` handlers do NOT fire.

A plain `scancel` cannot give that: Slurm counts CANCELLED as "not ok", so an `afternotok` handler starts ~0.5 s
later. Here the handlers (every job with an `afternotok` term on a cancelled allocation) are held first, then the
allocations and those handlers are cancelled in one scancel, then state is read back. `any` children still run:
their parent did end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from slurmdag.backends.base import Backend
from slurmdag.model.errors import CancelError, Problem, UsageError
from slurmdag.model.plan import Plan
from slurmdag.model.states import ACTIVE
from slurmdag.runs.cancel import CONFIRM_TIMEOUT
from slurmdag.runs.confirm import wait_until_finished
from slurmdag.runs.status import collect_many, load_dag, remember
from slurmdag.state.store import Store


@dataclass
class AllocationCancelOutcome:
    dag_id: str
    cancelled: list[str] = field(default_factory=list)  # allocations asked to stop
    handlers: list[str] = field(default_factory=list)  # failure handlers cancelled with them
    notes: list[str] = field(default_factory=list)


def failure_handlers(plan: Plan, names: set[str]) -> list[str]:
    """Pure: planned jobs (allocations and join jobs) that an `afternotok` term ties to one of `names` (for an
    allocation packed into an array job, the array's dependency is its own)."""
    hosts = {j.name: j for j in plan.jobs if j.kind == "host"}
    out = []
    for j in plan.jobs:
        if j.kind == "host":
            continue
        dependency = hosts[j.host.job].dependency if j.host is not None else j.dependency
        if dependency is not None and any(t.kind == "afternotok" and t.parent in names for t in dependency.terms):
            out.append(j.name)
    return out


def cancel_allocations(
    store: Store, backend: Backend, dag_id: str, names: list[str], confirm_timeout: float = CONFIRM_TIMEOUT
) -> AllocationCancelOutcome:
    record, plan, notes = load_dag(store, backend, dag_id)
    known = {j.name for j in plan.jobs}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(
            Problem(
                f"DAG {dag_id} has no allocation {', '.join(map(repr, unknown))}",
                file="slurmdag",
                hint=f"its allocations: {', '.join(j.name for j in plan.allocations())}",
            )
        )
    stepped = [n for n in names if (h := plan.job(n).host) is not None and h.step is not None]
    if stepped:
        raise UsageError(
            Problem(
                f"{', '.join(map(repr, stepped))} run{'s' if len(stepped) == 1 else ''} as a job step of a group job "
                f"({plan.job(stepped[0]).host.job}); cancelling one member of a group is not supported yet",  # type: ignore[union-attr]
                file="slurmdag",
                hint=f"`slurmdag cancel {dag_id}` cancels the whole DAG",
            )
        )
    status = collect_many([(record, plan)], backend)[0]
    allocs = {a.name: a for a in status.nodes}
    outcome = AllocationCancelOutcome(dag_id, notes=notes + status.notes)
    targets = [n for n in names if allocs[n].job_id and allocs[n].state in ACTIVE]
    handlers = [h for h in failure_handlers(plan, set(names)) if allocs[h].job_id and allocs[h].state in ACTIVE]
    handler_ids = [job_id for h in handlers if (job_id := allocs[h].job_id)]
    ids = [job_id for n in targets if (job_id := allocs[n].job_id)] + handler_ids
    if not ids:
        outcome.notes.append("nothing to cancel: those allocations have already ended")
        return outcome
    backend.hold(handler_ids)  # a held handler cannot start in the moment its parent turns CANCELLED
    backend.cancel(ids)
    left = wait_until_finished(backend, ids, confirm_timeout)
    if store.exists(dag_id):
        remember(store, collect_many([(store.load(dag_id), plan)], backend)[0])
    if left:
        raise CancelError(f"asked Slurm to cancel, but these jobs are still not finished: {' '.join(left)}")
    outcome.cancelled, outcome.handlers = targets, handlers
    return outcome
