"""Cancel a whole DAG so that no failure/any handler starts: hold every pending job (one scontrol call), then
cancel every unfinished job (one scancel call), then read the states back until Slurm confirms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from slurmdag.backends.base import Backend
from slurmdag.model.errors import CancelError
from slurmdag.model.states import ACTIVE, AllocationState
from slurmdag.runs.confirm import wait_until_finished
from slurmdag.runs.status import DagStatus, collect_many, load_dag, remember
from slurmdag.state.store import CANCELLED, SUBMITTING, Store, utc_now

# How long to keep reading state back after scancel: running jobs get SIGTERM, then SIGKILL after KillWait.
CONFIRM_TIMEOUT = 60.0


@dataclass(frozen=True)
class CancelTarget:
    name: str
    job_id: str
    state: AllocationState  # before cancelling


@dataclass
class CancelOutcome:
    dag_id: str
    targets: list[CancelTarget]
    dry_run: bool = False
    still_active: list[str] = field(default_factory=list)  # job ids Slurm has not finished yet
    hold_messages: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    status: DagStatus | None = None  # the state before cancelling

    @property
    def nothing_to_do(self) -> bool:
        return not self.targets


def cancel_targets(status: DagStatus) -> list[CancelTarget]:
    """Pure: every job of the DAG that has not finished (a task group counts while any task is unfinished). A
    packed array job (auto_array) is not a target of its own: its allocations are, by name."""
    arrays = {j.name for j in status.plan.jobs if j.kind == "host" and j.array}
    return [
        CancelTarget(a.name, a.job_id, a.state)
        for a in status.nodes
        if a.job_id and a.state in ACTIVE and a.name not in arrays
    ]


def slurm_ids(status: DagStatus, targets: list[CancelTarget]) -> list[str]:
    """The ids to hold or cancel for `targets`: an allocation packed into an array job is reached through the
    array's own id (one scontrol/scancel RPC for the whole array, not one per task) when the whole DAG goes."""
    by_name = {a.name: a.job_id for a in status.nodes}
    jobs = {j.name: j for j in status.plan.jobs}
    out: list[str] = []
    for t in targets:
        job = jobs.get(t.name)
        host = job.host.job if job is not None and job.host is not None and job.host.task is not None else None
        out.append((by_name.get(host) or t.job_id) if host else t.job_id)
    return list(dict.fromkeys(out))


def cancel_dag(
    store: Store, backend: Backend, dag_id: str, dry_run: bool = False, confirm_timeout: float = CONFIRM_TIMEOUT
) -> CancelOutcome:
    record, plan, notes = load_dag(store, backend, dag_id)
    if record.submission == SUBMITTING:
        raise CancelError(
            f"DAG {dag_id} is being submitted right now by process {record.pid} on {record.host}; "
            "interrupt that `slurmdag submit` (it withdraws everything) or cancel once it has finished"
        )
    status = collect_many([(record, plan)], backend)[0]
    status.notes[:0] = notes
    outcome = CancelOutcome(dag_id, cancel_targets(status), dry_run=dry_run, notes=list(status.notes), status=status)
    if dry_run or outcome.nothing_to_do:
        return outcome

    ids = slurm_ids(status, outcome.targets)
    if record.gate_job_id:
        ids.append(record.gate_job_id)  # a gate not yet run would start nothing now, but leave no stray job
    pending = slurm_ids(
        status,
        [t for t in outcome.targets if t.state is AllocationState.PENDING or _has_pending_tasks(status, t)],
    )
    lock = store.lock_dag(dag_id) if store.exists(dag_id) else None
    try:
        outcome.hold_messages = backend.hold(pending)
        backend.cancel(ids)
        outcome.still_active = wait_until_finished(backend, ids, confirm_timeout)
        if lock is not None:
            record = store.load(dag_id)
            record.submission = CANCELLED
            record.cancelled_at = utc_now()
            store.save(record)
    finally:
        if lock is not None:
            lock.release()
    if store.exists(dag_id):
        after = collect_many([(store.load(dag_id), plan)], backend)[0]
        remember(store, after)
    if outcome.still_active:
        raise CancelError(
            f"asked Slurm to cancel DAG {dag_id}, but these jobs are still not finished after "
            f"{confirm_timeout:g} s: {' '.join(outcome.still_active)}"
        )
    return outcome


def _has_pending_tasks(status: DagStatus, target: CancelTarget) -> bool:
    alloc = next(a for a in status.nodes if a.name == target.name)
    return any(t.state is AllocationState.PENDING for t in alloc.tasks or [])
