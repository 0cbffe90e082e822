"""The reconciler's I/O loop: one batched Slurm query per pass for every DAG it watches, then the few
cancellations `reconcile_plan` decides, under a lock so two reconcilers (cron, `watch`, a user) never act at once.

A pass reads Slurm once (one squeue — 1-2 RPCs to slurmctld — and one sacct, which goes to slurmdbd) whatever the
number of jobs and DAGs. A Slurm error during a pass is reported and the pass is retried later; it never becomes an
allocation state. Cancellations cost what `scancel` costs (one RPC per id in Slurm 22.05) and only happen when needed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from slurmdag.backends.base import Backend
from slurmdag.model.errors import SlurmCommandError, SlurmOutputError
from slurmdag.runs.reconcile_plan import Cancel, plan_actions
from slurmdag.runs.status import DagStatus, collect_many, remember
from slurmdag.runs.submit import recover_abandoned
from slurmdag.state.store import CANCELLED, SUBMITTED, SUBMITTING, DagRecord, Store, check_dag_id

FIRST_INTERVAL = 2.0  # seconds between passes while things change
MAX_INTERVAL = 60.0  # back-off ceiling while nothing changes
BACKOFF = 1.5


@dataclass
class PassReport:
    statuses: list[DagStatus] = field(default_factory=list)
    cancelled: dict[str, list[Cancel]] = field(default_factory=dict)  # dag id -> what this pass cancelled
    error: str | None = None  # a Slurm error: nothing was concluded, try again later
    acted: bool = True  # False when another reconciler holds the lock (this pass only looked)
    would_cancel: dict[str, list[Cancel]] = field(default_factory=dict)  # a dry run: what a real pass would cancel
    skipped: list[str] = field(default_factory=list)  # a dry run: DAGs still "submitting" (a real pass checks them)

    def observed(self) -> tuple:
        """What a change looks like: allocation states and the actions taken."""
        return (
            tuple((s.dag_id, s.state, tuple((a.name, a.state) for a in s.nodes)) for s in self.statuses),
            tuple((d, len(c)) for d, c in self.cancelled.items()),
        )


def active_records(store: Store, dag_ids: Iterable[str] = ()) -> list[DagRecord]:
    """The DAGs a pass looks at: the ones named, or every DAG of this store not known to be finished."""
    wanted = {check_dag_id(d) for d in dag_ids}
    records = []
    for record in store.list_records():
        if wanted and record.dag_id not in wanted:
            continue
        if not wanted and (record.final_state or record.submission not in (SUBMITTED, SUBMITTING, CANCELLED)):
            continue
        records.append(record)
    return records


def reconcile_pass(
    store: Store, backend: Backend, dag_ids: Iterable[str] = (), act: bool = True, dry_run: bool = False
) -> PassReport:
    """One pass: read every watched job in one batched query, then cancel what the plans say must go.

    With act=False (another reconciler holds the lock) it only reads. With dry_run it reads, changes nothing (no
    cancel, no withdrawal of an abandoned submission, no cached state) and lists what it would cancel.
    """
    report = PassReport(acted=act and not dry_run)
    records = []
    for record in active_records(store, dag_ids):
        if record.submission == SUBMITTING and dry_run:
            report.skipped.append(record.dag_id)
            continue
        if record.submission == SUBMITTING:
            recover_abandoned(store, backend, record.dag_id)  # a dead submitter's DAG: finish it off first
            record = store.load(record.dag_id)
        records.append(record)
    pairs = [(r, p) for r in records if (p := store.load_plan(r.dag_id)) is not None]
    if not pairs:
        return report
    try:
        report.statuses = collect_many(pairs, backend)
    except (SlurmCommandError, SlurmOutputError) as ex:
        report.error = f"reading Slurm failed, will try again: {ex}"
        return report
    to_cancel: list[tuple[str, Cancel]] = []
    held_back = []
    for (record, plan), status in zip(pairs, report.statuses, strict=False):
        if status.partial:
            # Accounting is away and slurmctld no longer holds some job: never act on an outcome that is unknown.
            held_back.append(record.dag_id)
        elif act and record.submission == SUBMITTED:  # a DAG the user cancelled, or one still submitting: left alone
            to_cancel += [(record.dag_id, c) for c in plan_actions(plan, status, record.cascade)]
        if store.exists(record.dag_id) and not dry_run:
            remember(store, status)
    if held_back:
        report.error = (
            f"accounting (slurmdbd) is not answering and some jobs are no longer held by slurmctld: no action on "
            f"DAG(s) {', '.join(held_back)} this pass, will try again"
        )
    if dry_run:
        for dag_id, c in to_cancel:
            report.would_cancel.setdefault(dag_id, []).append(c)
        return report
    if to_cancel:
        try:
            backend.cancel([c.job_id for _, c in to_cancel])
        except SlurmCommandError as ex:
            report.error = f"cancelling failed, will try again: {ex}"
            return report
        for dag_id, c in to_cancel:
            report.cancelled.setdefault(dag_id, []).append(c)
    return report


def step(store: Store, backend: Backend, dag_ids: Iterable[str] = ()) -> PassReport:
    """One pass that acts if it can take the reconciler lock, and only looks otherwise."""
    lock = store.lock_reconciler()
    if lock is None:
        return reconcile_pass(store, backend, dag_ids, act=False)
    with lock:
        return reconcile_pass(store, backend, dag_ids, act=True)


def run(
    store: Store,
    backend: Backend,
    dag_ids: Iterable[str] = (),
    on_pass: Callable[[PassReport], None] = lambda r: None,
    sleep: Callable[[float], None] = time.sleep,
    first_interval: float = FIRST_INTERVAL,
    max_interval: float = MAX_INTERVAL,
) -> None:
    """Passes until no watched DAG is active, backing off while nothing changes. Holds the lock throughout."""
    interval = first_interval
    last = None
    dag_ids = list(dag_ids)
    while True:
        report = reconcile_pass(store, backend, dag_ids)
        on_pass(report)
        if report.error is None and all(s.terminal for s in report.statuses):
            return
        changed = report.observed() != last
        last = report.observed()
        interval = first_interval if changed and report.error is None else min(interval * BACKOFF, max_interval)
        sleep(interval)
