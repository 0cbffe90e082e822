"""Collect the state of DAGs from Slurm: one squeue and one sacct per pass, whatever the number of jobs or DAGs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from slurmdag.backends.base import Backend, JobInfo
from slurmdag.compiler import render
from slurmdag.model import run_layout
from slurmdag.model import slurm_values as wt
from slurmdag.model.errors import CorruptRecordError, UnknownDagError
from slurmdag.model.plan import Plan, PlannedJob
from slurmdag.model.states import (
    ACTIVE,
    FAILURES,
    AllocationState,
    DagState,
    allocation_state,
    blocking_cause,
    count_states,
    dag_state,
    group_state,
    label,
)
from slurmdag.runs import retry_progress
from slurmdag.runs.retry_progress import RetryAttempt
from slurmdag.runs.submit import (
    GATE_NAME,
    needs_recovery,
    recover_abandoned,
    recover_abandoned_many,
)
from slurmdag.state import attempt_history
from slurmdag.state.store import CANCELLED, FAILED, SUBMITTING, DagRecord, Store, check_dag_id

# sacct is bounded below by the DAG's creation time (job ids repeat after a cluster reset) minus this slack for
# clocks that disagree between the login node and the controller.
CLOCK_SLACK = timedelta(minutes=10)
# How far back `status` looks in accounting when it must rebuild a DAG whose local record is gone.
REBUILD_LOOKBACK = timedelta(days=30)


@dataclass
class TaskStatus:
    index: int
    job_id: str
    state: AllocationState
    slurm_state: str | None
    exit_code: int | None
    reason: str | None
    elapsed: str | None


@dataclass
class AllocationStatus:
    name: str
    kind: str  # "allocation" or "join"
    job_id: str | None
    state: AllocationState
    slurm_state: str | None
    exit_code: int | None
    reason: str | None
    elapsed: str | None = None
    start: str | None = None
    end: str | None = None
    ran: bool = False
    tasks: list[TaskStatus] | None = None  # task groups only
    # Cancelled allocations: "upstream" (a dependency failed: Slurm's or the reconciler's cascade) or "user"
    cancelled_by: str | None = None
    retry: RetryAttempt | None = (
        None  # allocations with `retries`: which run ended last (slurmdag/runs/retry_progress.py)
    )

    def task_counts(self) -> dict[str, int]:
        return count_states(t.state for t in self.tasks or [])


@dataclass
class DagStatus:
    dag_id: str
    name: str
    state: DagState
    submission: str
    created: str
    nodes: list[AllocationStatus]
    plan: Plan
    notes: list[str] = field(default_factory=list)  # things the user should know (lost jobs, rebuilt record)
    attempt: int = 1  # the current attempt (resume/redo start a new one; slurmdag/state/attempt_history.py)
    attempts: int = 1  # how many attempts were submitted
    # Accounting (slurmdbd) did not answer and some job is not held by slurmctld either: those jobs are Unknown for
    # now, so the DAG's state is provisional (never cached as final, never acted on by the reconciler).
    partial: bool = False
    # `on_failure: stop`: the allocation whose failure stopped the DAG (its other jobs were cancelled)
    stopped_by: str | None = None
    # `stop_if:`: the allocation whose condition held, so it cancelled the rest (the DAG still ends Completed)
    stopped_early: str | None = None

    def allocations(self) -> list[AllocationStatus]:
        return [n for n in self.nodes if n.kind == "allocation"]

    def counts(self) -> dict[str, int]:
        return count_states(n.state for n in self.allocations())

    @property
    def terminal(self) -> bool:
        return self.state not in (DagState.PENDING, DagState.RUNNING) and not self.partial


# --- from Slurm's rows to allocation states ---


def _ours(info: JobInfo | None, dag_id: str, name: str, host: str | None = None) -> JobInfo | None:
    """Drop a row that belongs to another job that happens to share the id (ids repeat after a reset). `host`: the
    packed array an allocation ran in (a resume re-runs it as a job of its own name)."""
    if info is None:
        return None
    if info.name != render.slurm_job_name(dag_id, name) and (
        host is None or info.name != render.slurm_job_name(dag_id, host)
    ):
        return None
    return info


def _single(
    job: PlannedJob, job_id: str, infos: dict[str, JobInfo], dag_id: str, host: str | None = None
) -> AllocationStatus:
    """`host`: the packed array job whose task runs it (auto_array); Slurm shows that job's name for it."""
    info = _ours(infos.get(job_id), dag_id, job.name, host)
    if info is None:
        return AllocationStatus(job.name, job.kind, job_id, AllocationState.UNKNOWN, None, None, "not known to Slurm")
    return AllocationStatus(
        job.name,
        job.kind,
        job_id,
        allocation_state(info.state),
        info.state,
        info.exit_code,
        info.reason,
        info.elapsed,
        info.start,
        info.end,
        info.ran,
    )


def _member(
    job: PlannedJob, step: str, host_name: str, host_id: str | None, infos: dict[str, JobInfo], record: DagRecord
) -> AllocationStatus:
    """A group member from the rows of the group job that ran it (an attempt may have re-run only some members)
    and that job's steps (same sacct call): its own step's state and exit code once it ran; else waiting while the
    group job is active, and not run once it has ended."""
    if host_id is None:
        if record.submission == SUBMITTING:
            return AllocationStatus(job.name, job.kind, None, AllocationState.PENDING, None, None, "not submitted yet")
        return AllocationStatus(job.name, job.kind, None, AllocationState.CANCELLED, None, None, "not submitted")
    host = _single(replace(job, name=host_name), host_id, infos, record.dag_id)
    rows = [] if host_id is None else [i for i in infos.values() if i.array_job_id == host_id and i.step is not None]
    own = [r for r in rows if r.step != "batch" and r.name == step]
    if own:
        info = min(own, key=lambda r: int(r.step or 0))  # the member's step (an srun inside it makes later ones)
        return AllocationStatus(
            job.name,
            job.kind,
            host_id,
            allocation_state(info.state),
            info.state,
            info.exit_code,
            None,
            info.elapsed,
            info.start,
            info.end,
            True,
        )
    if host.state in ACTIVE or host.state is AllocationState.UNKNOWN:
        why = "its group job is pending" if host.state is AllocationState.PENDING else "waiting in its group job"
        state = host.state if host.state is not AllocationState.RUNNING else AllocationState.PENDING
        return AllocationStatus(job.name, job.kind, host_id, state, None, None, host.reason or why)
    if host.ran and not any(r.step == "batch" for r in rows):
        # the group job ended, but accounting has not recorded its steps yet (sacct lags slurmctld)
        return AllocationStatus(job.name, job.kind, host_id, AllocationState.PENDING, None, None, "accounting lags")
    why = "did not run in its group job" if host.ran else "its group job never ran"
    return AllocationStatus(job.name, job.kind, host_id, AllocationState.CANCELLED, None, None, why)


def _expected_indexes(job: PlannedJob) -> list[int]:
    if job.array:
        return wt.array_indexes(job.array)
    return list(range(job.tasks or 0))


def _group(
    job: PlannedJob, job_id: str, infos: dict[str, JobInfo], dag_id: str, sources: dict[int, str] | None = None
) -> AllocationStatus:
    """`sources` (task index -> array job id) when attempts re-ran only some tasks; else every task is job_id's."""
    rows = {i.array_task: i for i in infos.values() if i.array_job_id == job_id and i.array_task is not None}
    if sources:
        rows = {
            i.array_task: i
            for i in infos.values()
            if i.array_task is not None and sources.get(i.array_task) == i.array_job_id
        }
    rows = {k: v for k, v in rows.items() if _ours(v, dag_id, job.name)}
    indexes = sorted(set(_expected_indexes(job)) | set(rows))
    # Slurm 24.11+ never writes an accounting record for an array task that was split off while pending and
    # cancelled before it started (22.05 does); once slurmctld purges it, only its finished siblings remain. A task
    # that had started would be in accounting, and a pending one in slurmctld: such a task was cancelled unrun.
    siblings_done = bool(rows) and all(allocation_state(r.state) not in ACTIVE for r in rows.values())
    tasks = []
    for index in indexes:
        info = rows.get(index)
        if info is None and siblings_done:
            tasks.append(
                TaskStatus(
                    index,
                    f"{job_id}_{index}",
                    AllocationState.CANCELLED,
                    None,
                    None,
                    "cancelled before it started (no record left in Slurm)",
                    None,
                )
            )
        elif info is None:
            tasks.append(
                TaskStatus(index, f"{job_id}_{index}", AllocationState.UNKNOWN, None, None, "not known to Slurm", None)
            )
        else:
            tasks.append(
                TaskStatus(
                    index,
                    info.job_id,
                    allocation_state(info.state),
                    info.state,
                    info.exit_code,
                    info.reason,
                    info.elapsed,
                )
            )
    state = group_state(t.state for t in tasks)
    slurm_states = sorted({t.slurm_state for t in tasks if t.slurm_state})
    exit_codes = [t.exit_code for t in tasks if t.exit_code is not None]
    return AllocationStatus(
        job.name,
        job.kind,
        job_id,
        state,
        slurm_states[0] if len(slurm_states) == 1 else (",".join(slurm_states) or None),
        max(exit_codes) if exit_codes else None,
        next((t.reason for t in tasks if t.reason and t.state in ACTIVE), None),
        ran=any(rows[i].ran for i in rows),
        tasks=tasks,
    )


def _fold_parts(plan: Plan, allocs: dict[str, AllocationStatus]) -> None:
    """A task group split into several arrays (MaxArraySize, see array_split) shows as one allocation with all its
    tasks at the group's own indexes; its `part` jobs stay (cancel needs their job ids) but views skip them."""
    split = {j.part_of or j.name for j in plan.jobs if j.task_offset or j.part_of}
    if not split:
        return
    for job in plan.jobs:
        alloc = allocs.get(job.name)
        if alloc is None or alloc.tasks is None or (job.name not in split and job.part_of is None):
            continue
        for t in alloc.tasks:
            t.index += job.task_offset
    for name in split:
        main = allocs.get(name)
        if main is None:
            continue
        parts = [allocs[j.name] for j in plan.jobs if j.part_of == name and allocs[j.name].tasks is not None]
        if not parts:
            continue
        tasks = sorted((main.tasks or []) + [t for p in parts for t in p.tasks or []], key=lambda t: t.index)
        main.tasks = tasks
        main.state = group_state(t.state for t in tasks)
        slurm_states = sorted({t.slurm_state for t in tasks if t.slurm_state})
        main.slurm_state = slurm_states[0] if len(slurm_states) == 1 else (",".join(slurm_states) or None)
        codes = [t.exit_code for t in tasks if t.exit_code is not None]
        main.exit_code = max(codes) if codes else None
        main.reason = next((t.reason for t in tasks if t.reason and t.state in ACTIVE), None)
        main.ran = main.ran or any(p.ran for p in parts)


def build_status(
    record: DagRecord,
    plan: Plan,
    infos: dict[str, JobInfo],
    no_accounting: str | None = None,
    stopped_early: str | None = None,
) -> DagStatus:
    """Pure: a DAG's record + plan + Slurm's rows -> labelled allocation states and the DAG state.

    `no_accounting`: why accounting could not be read, when `infos` holds only what slurmctld still holds.
    `stopped_early`: the allocation whose `stop_if` held, as its job wrote in the run folder."""
    allocs: dict[str, AllocationStatus] = {}
    current = attempt_history.current_job_ids(record) if record.attempts else record.job_ids
    for job in plan.jobs:
        job_id = current.get(job.name)
        if job_id is None:
            if record.submission == SUBMITTING:
                allocs[job.name] = AllocationStatus(
                    job.name, job.kind, None, AllocationState.PENDING, None, None, "not submitted yet"
                )
            else:
                allocs[job.name] = AllocationStatus(
                    job.name, job.kind, None, AllocationState.CANCELLED, None, None, "not submitted"
                )
        elif job.host is not None and job.host.step is not None:
            continue  # a group member: read from its host's rows below
        elif job.array or job.tasks:
            sources = (
                attempt_history.task_sources(record, job.name, _expected_indexes(job)) if record.attempts else None
            )
            allocs[job.name] = _group(job, job_id, infos, record.dag_id, sources)
        else:
            allocs[job.name] = _single(job, job_id, infos, record.dag_id, job.host.job if job.host else None)
    _fold_parts(plan, allocs)
    for job in plan.jobs:
        if job.host is not None and job.host.step is not None:
            host_id = current.get(job.name) or current.get(job.host.job)
            allocs[job.name] = _member(job, job.host.step, job.host.job, host_id, infos, record)
    labels = label(plan, {n: s.state for n, s in allocs.items()}, {n: s.ran for n, s in allocs.items()})
    for name, alloc_state in labels.items():
        allocs[name].state = alloc_state
        if alloc_state is AllocationState.CANCELLED:
            # a task group whose other tasks ran: some tasks were cancelled by a failed corresponding parent task
            partly = allocs[name].tasks is not None and blocking_cause(plan.job(name).edges, labels) == "fail"
            allocs[name].cancelled_by = "upstream" if name in labels.cascaded or partly else "user"
    state = dag_state(plan, labels, cancelled_by_user=record.submission == CANCELLED)
    notes = []
    stopped_by = _stopper(plan, allocs)
    if stopped_by is not None:
        notes.append(
            f"stopped by {stopped_by}: it failed with `on_failure: stop`, so the rest of the DAG was cancelled"
        )
        for alloc in allocs.values():
            if alloc.state is AllocationState.CANCELLED and alloc.cancelled_by == "user":
                alloc.cancelled_by = "stop"
        if state not in (DagState.PENDING, DagState.RUNNING):
            state = DagState.FAILED  # even where a failure handler would have caught it: the handler was cancelled
    elif (
        stopped_early is not None
        and stopped_early in allocs
        and allocs[stopped_early].state is AllocationState.COMPLETED
    ):
        condition = plan.job(stopped_early).stop_if or ""
        notes.append(f"stopped early by {stopped_early}: its stop_if held ({condition}), so the rest was cancelled")
        for alloc in allocs.values():
            if alloc.state is AllocationState.CANCELLED and alloc.cancelled_by == "user":
                alloc.cancelled_by = "stop"
        if state is DagState.CANCELLED:
            state = DagState.COMPLETED  # early stopping is not a failure (Polyaxon's semantics)
    else:
        stopped_early = None
    if record.submission == FAILED:
        state = DagState.FAILED
        notes.append(f"submission failed: {record.error}" if record.error else "submission failed")
    elif record.submission == SUBMITTING:
        state = DagState.PENDING
        notes.append("still being submitted (its gate is held until every job is in Slurm)")
    lost = [n.name for n in allocs.values() if n.state is AllocationState.UNKNOWN and n.job_id]
    partial = bool(lost) and no_accounting is not None
    if partial:
        notes.append(
            f"{no_accounting}: slurmctld no longer holds {', '.join(lost[:10])}{' ...' if len(lost) > 10 else ''}, "
            "so their state is Unknown until accounting answers again"
        )
    elif lost:
        notes.append(
            "not known to Slurm any more (purged, and not found in accounting): "
            + ", ".join(lost)
            + " — their outcome is unknown, not assumed successful"
        )
    for name, why in attempt_history.decided_in_current(record).items():
        notes.append(f"{name} was not re-submitted by attempt {record.attempt}: its dependency {why}")
    return DagStatus(
        record.dag_id,
        record.name,
        state,
        record.submission,
        record.created,
        [allocs[j.name] for j in plan.jobs],
        plan,
        notes,
        attempt=record.attempt,
        attempts=attempt_history.count(record),
        partial=partial,
        stopped_by=stopped_by,
        stopped_early=stopped_early,
    )


def _stopper(plan: Plan, allocs: dict[str, AllocationStatus]) -> str | None:
    """The `on_failure: stop` allocation that failed first (by end time), if any."""
    failed = [
        allocs[j.name]
        for j in plan.jobs
        if j.on_failure == "stop" and j.name in allocs and allocs[j.name].state in FAILURES
    ]
    if not failed:
        return None
    return min(failed, key=lambda a: (a.end or "9999", plan.jobs.index(plan.job(a.name)))).name


# --- I/O: asking Slurm ---


def _since(records: list[DagRecord]) -> datetime:
    return min(r.created_at() for r in records) - CLOCK_SLACK


def collect_many(pairs: list[tuple[DagRecord, Plan]], backend: Backend) -> list[DagStatus]:
    """Status of several DAGs from ONE batched query (one squeue + one sacct) over all their jobs."""
    ids = [j for record, _ in pairs for j in attempt_history.all_job_ids(record)]
    steps = any(j.host is not None and j.host.step is not None for _, plan in pairs for j in plan.jobs)
    infos, no_accounting = (
        backend.query_or_live(ids, since=_since([r for r, _ in pairs]), steps=steps) if ids else ({}, None)
    )
    why = str(no_accounting) if no_accounting is not None else None
    return [build_status(record, plan, infos, why, _stopped_early(record, plan)) for record, plan in pairs]


def _stopped_early(record: DagRecord, plan: Plan) -> str | None:
    """The allocation whose `stop_if` held, from the file its job wrote in the run folder (None: none did)."""
    if record.run_dir is None or not any(j.stop_if for j in plan.jobs):
        return None
    try:
        text = (Path(record.run_dir) / run_layout.STOPPED_EARLY).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    name = text.strip()
    return name if any(j.name == name and j.stop_if for j in plan.jobs) else None


def rebuild_from_slurm(dag_id: str, backend: Backend) -> tuple[DagRecord, Plan, list[str]]:
    """Reconstruct a DAG whose local record is gone from the names its jobs carry in Slurm (`sd-<id>-<name>`).

    The rebuilt plan knows the jobs but not the edges, so Skipped cannot be told from Cancelled.
    """
    found = backend.find_jobs(render.job_name_prefix(dag_id), since=datetime.now(UTC) - REBUILD_LOOKBACK)
    if not found:
        raise UnknownDagError(dag_id)
    prefix = render.job_name_prefix(dag_id)
    by_name: dict[str, list[JobInfo]] = {}
    for info in found.values():
        by_name.setdefault(info.name[len(prefix) :], []).append(info)
    gate = by_name.pop(GATE_NAME, [])
    jobs = []
    job_ids = {}
    for name in sorted(by_name, key=lambda n: min(int(i.array_job_id) for i in by_name[n])):
        rows = by_name[name]
        job_ids[name] = rows[0].array_job_id
        tasks = sorted(i.array_task for i in rows if i.array_task is not None)
        array = ",".join(str(t) for t in tasks) if tasks else None
        jobs.append(
            PlannedJob(
                name=name,
                kind="join" if "+" in name else "allocation",
                options={},
                script="",
                array=array,
                tasks=len(tasks) or None,
            )
        )
    plan = Plan(workflow=f"(rebuilt {dag_id})", jobs=jobs)
    record = DagRecord(
        dag_id=dag_id,
        name=plan.workflow,
        created=(datetime.now(UTC) - REBUILD_LOOKBACK).isoformat(timespec="seconds"),
        submission="submitted",
        job_ids=job_ids,
        gate_job_id=gate[0].array_job_id if gate else None,
    )
    notes = [
        f"no local record of DAG {dag_id}: rebuilt from the names of its {len(found)} job(s) in Slurm "
        "(edges unknown: Skipped shows as Cancelled)"
    ]
    return record, plan, notes


def load_dag(store: Store, backend: Backend, dag_id: str) -> tuple[DagRecord, Plan, list[str]]:
    """Record and plan of a DAG: from the store, after finishing off an abandoned submission; else from Slurm."""
    check_dag_id(dag_id)
    notes: list[str] = []
    if not store.exists(dag_id):
        return rebuild_from_slurm(dag_id, backend)
    message = recover_abandoned(store, backend, dag_id)
    if message:
        notes.append(message)
    record = store.load(dag_id)
    plan = store.load_plan(dag_id)
    if plan is None:
        _, plan, more = rebuild_from_slurm(dag_id, backend)
        notes += more
    return record, plan, notes


def collect(store: Store, backend: Backend, dag_id: str) -> DagStatus:
    record, plan, notes = load_dag(store, backend, dag_id)
    status = collect_many([(record, plan)], backend)[0]
    status.notes[:0] = notes
    retried = {j.name for j in plan.jobs if j.retries}
    if retried:
        seen = retry_progress.read(
            backend, [n.job_id for n in status.nodes if n.name in retried and n.job_id], since=_since([record])
        )
        for alloc in status.nodes:
            alloc.retry = seen.get(alloc.job_id) if alloc.name in retried and alloc.job_id else None
    if store.exists(dag_id):
        remember(store, status)
    return status


def remember(store: Store, status: DagStatus) -> None:
    """Cache counts, and the final state once terminal, so `list` need not ask Slurm about finished DAGs.

    Skipped when another process holds the DAG's lock (a submit or cancel in progress): the cache is optional.
    """
    counts = status.counts()
    final = status.state.value if status.terminal and status.submission != SUBMITTING else None

    def change(record: DagRecord) -> None:
        record.counts = counts
        if record.submission == status.submission:
            record.final_state = final

    store.update(status.dag_id, change, blocking=False)


# --- list ---

RECENT_FINISHED = 10  # `list` without --all: every active DAG plus this many of the newest finished ones


@dataclass
class ListedDag:
    record: DagRecord
    state: str
    counts: dict[str, int]
    notes: list[str] = field(default_factory=list)


@dataclass
class Listing:
    dags: list[ListedDag]
    unreadable: list[CorruptRecordError] = field(default_factory=list)  # records that could not be read, named


def list_dags(
    store: Store, backend: Backend, show_all: bool = False, keep: Callable[[DagRecord], bool] | None = None
) -> Listing:
    """Newest first. DAGs with a cached final state cost nothing; the others share one batched query. A record
    that cannot be read is named in `unreadable` and never hides the others.

    `keep` picks records before Slurm is asked (list's --name/--since): only those are queried."""
    records, unreadable = store.scan()
    notes: dict[str, list[str]] = {}
    abandoned = [r.dag_id for r in records if needs_recovery(r)]
    if abandoned:
        for dag_id, message in recover_abandoned_many(store, backend, abandoned).items():
            notes.setdefault(dag_id, []).append(message)
        records, unreadable = store.scan()
    if keep is not None:
        records = [r for r in records if keep(r)]
    if not show_all:
        finished = [r for r in records if r.final_state]
        shown = {r.dag_id for r in records if not r.final_state} | {r.dag_id for r in finished[:RECENT_FINISHED]}
        records = [r for r in records if r.dag_id in shown]
    to_query = []
    readable = []
    for record in records:
        if record.final_state:
            readable.append(record)
            continue
        try:
            plan = store.load_plan(record.dag_id)
        except CorruptRecordError as ex:
            unreadable.append(ex)
            continue
        readable.append(record)
        if plan is not None:
            to_query.append((record, plan))
    fresh = {s.dag_id: s for s in collect_many(to_query, backend)} if to_query else {}
    listed = []
    for record in readable:
        status = fresh.get(record.dag_id)
        if status is not None:
            remember(store, status)
            listed.append(ListedDag(record, status.state.value, status.counts(), notes.get(record.dag_id, [])))
        else:
            state = record.final_state or ("Submitting" if record.submission == SUBMITTING else "Unknown")
            listed.append(ListedDag(record, state, record.counts, notes.get(record.dag_id, [])))
    return Listing(listed, unreadable)
