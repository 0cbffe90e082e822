"""Admission: whether, and as what, a compiled plan may go to this cluster. Site policy, then pre-flight against the
live cluster, then `max_concurrent` lanes, in that order. Returns the plan to submit together with what the user
should read (warnings, notes, refusals); prints nothing, so the CLI and the Python API show it each their own way.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from slurmdag.backends.base import Backend
from slurmdag.backends.cluster_info import ClusterInfo
from slurmdag.compiler.lanes import apply_max_concurrent
from slurmdag.model.errors import (
    InputError,
    JobTableNoRoomError,
    PreflightError,
    Problem,
    SlurmCommandError,
    SlurmOutputError,
)
from slurmdag.model.plan import Plan
from slurmdag.policy import preflight
from slurmdag.policy.limits import Policy, check_plan, read_policy, read_site_auto_array, workflow_source
from slurmdag.policy.site_paths import site_policy_path, user_config_path

# Compile's own allocation cap is lifted where the policy check follows, so a site may raise it and a refusal
# names the limit and who set it.
NO_COMPILE_CAP = sys.maxsize


@dataclass
class AllocationCap:
    """The effective max_allocations and who set it, for compile to refuse a larger workflow while reading it
    (fast, and at the allocation over the limit) rather than after building every allocation. `warnings` says what
    of the user's config was ignored: shown with a refusal, since the policy check on the plan is never reached."""

    value: int
    note: str
    warnings: list[Problem]
    auto_array: bool = False  # the site's default for a workflow without `auto_array:` (not a limit)


def allocation_cap() -> AllocationCap:
    policy = effective_policy()
    limit = policy["max_allocations"]
    return AllocationCap(
        NO_COMPILE_CAP if limit.value is None else limit.value,
        limit.describe(),
        policy.warnings,
        read_site_auto_array(site_policy_path()),
    )


def effective_policy(plan: Plan | None = None) -> Policy:
    """The site file tightened by the user's config and (if given) the workflow's own limits; `.warnings` says
    what was ignored."""
    return read_policy(site_policy_path(), user_config_path(), workflow_source(plan) if plan else None)


@dataclass
class PolicyCheck:
    policy: Policy
    problems: list[Problem]  # every limit the plan exceeds, naming its value and who set it

    @property
    def warnings(self) -> list[Problem]:
        return self.policy.warnings

    def raise_if_refused(self) -> None:
        if self.problems:
            raise InputError(self.problems)


def check_policy(plan: Plan, default_partition: str | None = None) -> PolicyCheck:
    """The plan against the effective policy, without the cluster (`validate`; admission adds the cluster's
    default partition, which a partition allow-list needs for allocations that name none)."""
    policy = effective_policy(plan)
    return PolicyCheck(policy, check_plan(plan, policy, default_partition))


@dataclass
class Admission:
    plan: Plan  # what to submit: task groups split for MaxArraySize, max_concurrent lanes applied
    policy: PolicyCheck
    verdict: preflight.Verdict | None = None  # None: pre-flight not run (policy refused, or dry run without Slurm)
    notes: list[str] = field(default_factory=list)  # e.g. why pre-flight was not run
    cluster: ClusterInfo | None = None  # what pre-flight read (waiting for room re-reads the job table only)

    @property
    def warnings(self) -> list[Problem]:
        return self.policy.warnings

    @property
    def admitted(self) -> bool:
        return not self.policy.problems and self.verdict is not None and self.verdict.ok

    def raise_if_refused(self) -> None:
        """InputError naming every policy limit exceeded, else PreflightError with every pre-flight problem."""
        self.policy.raise_if_refused()
        if self.verdict is not None and not self.verdict.ok:
            raise PreflightError(self.verdict.problems)
        if self.verdict is not None and self.verdict.no_room:
            raise JobTableNoRoomError(f"{self.verdict.no_room}; nothing was submitted")


def admit(plan: Plan, backend: Backend, dry_run: bool = False) -> Admission:
    """Policy, then pre-flight against the live cluster, then lanes. Reading the cluster fails loudly, except in a
    dry run, which then still shows the plan (checked against the policy only)."""
    try:
        cluster = backend.read_cluster()
    except (SlurmCommandError, SlurmOutputError) as ex:
        if not dry_run:
            raise
        return Admission(plan, check_policy(plan), notes=[f"pre-flight: not done, Slurm could not be read: {ex}"])
    policy = check_policy(plan, cluster.default_partition())
    if policy.problems:
        return Admission(plan, policy)
    verdict = preflight.check(plan, cluster)
    k = policy.policy.value("max_concurrent")
    if k is not None and verdict.ok:
        verdict.plan = apply_max_concurrent(verdict.plan, k)
        verdict.notes.append(
            f"max_concurrent = {k} (set by {policy.policy['max_concurrent'].source}): at most {k} of the "
            f"DAG's jobs run at once (dependency lanes and %{k} array throttles)"
        )
    return Admission(verdict.plan, policy, verdict, cluster=cluster)


# Re-reading the job table while waiting for room: never more often than this (slurmctld purges in passes).
ROOM_POLL = 5.0


def wait_for_room(
    admission: Admission,
    backend: Backend,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] | None = None,
) -> float:
    """Wait until slurmctld's job table has room for the admitted plan, when pre-flight said it will soon
    (`verdict.wait_for_room`); re-reads the table alone (one squeue) at the predicted time and then every ROOM_POLL
    seconds. Gives up after preflight.JOB_TABLE_WAIT seconds with JobTableNoRoomError. Returns the seconds waited."""
    verdict, cluster = admission.verdict, admission.cluster
    if verdict is None or cluster is None or not verdict.wait_for_room:
        return 0.0
    sleep = sleep or time.sleep
    clock = clock or time.monotonic
    total, age = cluster.max_job_count(), cluster.min_job_age()
    assert total is not None and age is not None  # a wait is only ever planned from both
    needed = preflight.job_count(admission.plan)
    start = clock()
    pause = verdict.wait_for_room
    while True:
        left = start + preflight.JOB_TABLE_WAIT - clock()
        if left <= 0:
            raise JobTableNoRoomError(
                f"Slurm's job table still has no room for this DAG's {needed} jobs after waiting "
                f"{preflight.JOB_TABLE_WAIT:.0f} s (SLURMDAG_JOB_TABLE_WAIT); nothing was submitted: try again later"
            )
        sleep(min(max(pause, ROOM_POLL), left))
        table = backend.read_job_table()
        if table is None:
            return clock() - start  # cannot tell any more: sbatch's own answer decides
        room = preflight.job_table_room(needed, table, total, age)
        if room.fits:
            return clock() - start
        pause = room.wait if room.wait is not None else ROOM_POLL
