"""Slurm job states -> allocation states -> the state of a whole DAG (design §4). Pure: no I/O.

Slurm cannot tell "cancelled because an upstream failure made a dependency impossible" from "cancelled because the
branch was not taken" (a failure handler whose parent succeeded): both are CANCELLED/DependencyNeverSatisfied.
The plan's edges can, so `label` turns the second kind into Skipped, and skipping propagates downstream.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from enum import StrEnum

from slurmdag.model.plan import Plan


class AllocationState(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    TIMEOUT = "Timeout"
    OUT_OF_MEMORY = "OutOfMemory"
    NODE_FAIL = "NodeFail"
    CANCELLED = "Cancelled"
    SKIPPED = "Skipped"
    # Slurm no longer lists the job (purged from slurmctld and absent from accounting): never assumed to have
    # succeeded.
    UNKNOWN = "Unknown"


class DagState(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    UNKNOWN = "Unknown"  # finished, but some job's outcome is lost


FAILURES = frozenset(
    {AllocationState.FAILED, AllocationState.TIMEOUT, AllocationState.OUT_OF_MEMORY, AllocationState.NODE_FAIL}
)
ACTIVE = frozenset({AllocationState.PENDING, AllocationState.RUNNING})
TERMINAL_DAG = frozenset({DagState.COMPLETED, DagState.FAILED, DagState.CANCELLED, DagState.UNKNOWN})

_SLURM_TO_NODE = {
    "PENDING": AllocationState.PENDING,
    "CONFIGURING": AllocationState.PENDING,
    "REQUEUED": AllocationState.PENDING,
    "REQUEUE_HOLD": AllocationState.PENDING,
    "REQUEUE_FED": AllocationState.PENDING,
    "RESV_DEL_HOLD": AllocationState.PENDING,
    "RUNNING": AllocationState.RUNNING,
    "COMPLETING": AllocationState.RUNNING,  # still releasing its nodes; its outcome is not final yet
    "SIGNALING": AllocationState.RUNNING,
    "STAGE_OUT": AllocationState.RUNNING,
    "SUSPENDED": AllocationState.RUNNING,
    "STOPPED": AllocationState.RUNNING,
    "RESIZING": AllocationState.RUNNING,
    "COMPLETED": AllocationState.COMPLETED,
    "FAILED": AllocationState.FAILED,
    "BOOT_FAIL": AllocationState.FAILED,
    "DEADLINE": AllocationState.FAILED,
    "PREEMPTED": AllocationState.FAILED,
    "SPECIAL_EXIT": AllocationState.FAILED,
    "TIMEOUT": AllocationState.TIMEOUT,
    "OUT_OF_MEMORY": AllocationState.OUT_OF_MEMORY,
    "NODE_FAIL": AllocationState.NODE_FAIL,
    "CANCELLED": AllocationState.CANCELLED,
    "REVOKED": AllocationState.CANCELLED,
}

# Slurm states after which a job changes no more (squeue and sacct spellings alike): every state that does not map
# to Pending or Running.
FINISHED_SLURM_STATES = frozenset(word for word, state in _SLURM_TO_NODE.items() if state not in ACTIVE)


# Slurm states of a job still in the queue (pending or running in any form): for `squeue -t` (it takes the names).
UNFINISHED_SLURM_STATES = frozenset(word for word, state in _SLURM_TO_NODE.items() if state in ACTIVE)
# Every state sacct can select, by the codes `sacct -s` takes (it refuses e.g. CONFIGURING): without -j, sacct
# leaves out jobs that never became eligible (cancelled while waiting on a dependency) unless states are named.
SACCT_ALL_STATES = "BF,CA,CD,DL,F,NF,OOM,PD,PR,R,RQ,RS,RV,S,TO"


def slurm_finished(slurm_state: str) -> bool:
    """Whether a job in this Slurm state ("COMPLETED", "CANCELLED by 0") will not change any more."""
    return slurm_state.strip().split(" ", 1)[0].upper().rstrip("+") in FINISHED_SLURM_STATES


# Which failure wins when a task group's tasks ended differently (first present wins).
_GROUP_PRECEDENCE = (
    AllocationState.FAILED,
    AllocationState.OUT_OF_MEMORY,
    AllocationState.TIMEOUT,
    AllocationState.NODE_FAIL,
    AllocationState.CANCELLED,
    AllocationState.UNKNOWN,
    AllocationState.SKIPPED,
)


def allocation_state(slurm_state: str | None) -> AllocationState:
    """One Slurm state word ("CANCELLED", "CANCELLED by 0", "OUT_OF_MEMORY") -> AllocationState; None -> Unknown."""
    if not slurm_state:
        return AllocationState.UNKNOWN
    word = slurm_state.strip().split(" ", 1)[0].upper().rstrip("+")
    return _SLURM_TO_NODE.get(word, AllocationState.UNKNOWN)


def group_state(task_states: Iterable[AllocationState]) -> AllocationState:
    """A task group's state: active while any task is; Completed only if every task is; else its worst outcome."""
    states = list(task_states)
    if not states:
        return AllocationState.UNKNOWN
    if any(s in ACTIVE for s in states):
        return (
            AllocationState.RUNNING
            if any(s is not AllocationState.PENDING for s in states)
            else AllocationState.PENDING
        )
    if all(s is AllocationState.COMPLETED for s in states):
        return AllocationState.COMPLETED
    for candidate in _GROUP_PRECEDENCE:
        if candidate in states:
            return candidate
    return AllocationState.UNKNOWN


def count_states(states: Iterable[AllocationState]) -> dict[str, int]:
    """{"Completed": 6, "Failed": 1, ...} in AllocationState order, zero counts left out."""
    counts = Counter(states)
    return {s.value: counts[s] for s in AllocationState if counts[s]}


class Labels(dict[str, AllocationState]):
    """Planned job name -> labelled state, plus which Cancelled jobs were cancelled by a cascade from upstream."""

    def __init__(self) -> None:
        super().__init__()
        self.cascaded: set[str] = set()


def label(plan: Plan, raw: Mapping[str, AllocationState], ran: Mapping[str, bool]) -> Labels:
    """Turn Slurm-derived states into user states along the plan's edges (plan order is topological).

    A job that Slurm cancelled without ever running it is
      Skipped   when every edge that blocked it was blocked by a skip: a `failure` edge whose parent Completed
                (or was Skipped), or a `success`/`corresponding` edge whose parent was Skipped;
      Cancelled otherwise; "cascaded" when some blocking edge points at a parent that failed or was cancelled,
                "direct" (a user or admin cancelled it) when nothing upstream explains it.
    `any` edges never block: Slurm runs such a child whatever its parent did.
    """
    labels = Labels()
    for job in plan.jobs:
        if job.kind == "host":
            continue  # a job that runs other allocations has no state of its own: they do
        state = raw.get(job.name, AllocationState.UNKNOWN)
        if state is AllocationState.CANCELLED and not ran.get(job.name, False) and job.edges:
            cause = blocking_cause(job.edges, labels)
            if cause == "skip":
                state = AllocationState.SKIPPED
            elif cause == "fail":
                labels.cascaded.add(job.name)
        labels[job.name] = state
    return labels


def blocking_cause(edges, labels: Mapping[str, AllocationState]) -> str | None:
    """'skip', 'fail' or None (nothing upstream explains why the allocation did not run)."""
    causes: list[str] = []
    any_group: list[str | None] = []
    for edge in edges:
        parent = labels.get(edge.parent, AllocationState.UNKNOWN)
        cause = _edge_cause(edge.condition, parent)
        if edge.group == "any":
            any_group.append(cause)
        elif cause is not None:
            causes.append(cause)
    if any_group and all(c is not None for c in any_group):  # an OR blocks only when every branch is blocked
        causes.append("skip" if all(c == "skip" for c in any_group) else "fail")
    if not causes:
        return None
    return "skip" if all(c == "skip" for c in causes) else "fail"


def _edge_cause(condition: str, parent: AllocationState) -> str | None:
    """Why this edge cannot be satisfied: 'skip', 'fail', or None if it is (or may still be) satisfied."""
    if condition == "any" or parent in ACTIVE:
        return None
    if condition == "failure":
        if parent in (AllocationState.COMPLETED, AllocationState.SKIPPED):
            return "skip"
        return None if parent in FAILURES else "fail"
    # success / corresponding
    if parent is AllocationState.COMPLETED:
        return None
    return "skip" if parent is AllocationState.SKIPPED else "fail"


def caught_failures(plan: Plan) -> set[str]:
    """Names of the jobs that some allocation handles with a `failure` edge."""
    return {e.parent for job in plan.jobs for e in job.edges if e.condition == "failure"}


def dag_state(plan: Plan, labels: Labels, *, cancelled_by_user: bool = False) -> DagState:
    """State of the whole DAG from its labelled jobs (allocations and join jobs alike).

    Active while any job is Pending/Running (Pending if none has started). Once nothing is active:
    Cancelled if the user cancelled the DAG or a job was cancelled from outside; Failed if a job failed and no
    `failure` handler catches it; Unknown if a job's outcome is lost; otherwise Completed (every job Completed
    or Skipped, or a failure that a handler caught together with what that failure cascaded into).
    """
    states = list(labels.values())
    if not states:
        return DagState.UNKNOWN
    if any(s in ACTIVE for s in states):
        return DagState.RUNNING if any(s is not AllocationState.PENDING for s in states) else DagState.PENDING
    if cancelled_by_user and AllocationState.CANCELLED in states:
        return DagState.CANCELLED
    caught = caught_failures(plan)
    if any(s in FAILURES and name not in caught for name, s in labels.items()):
        return DagState.FAILED
    if any(s is AllocationState.CANCELLED and name not in labels.cascaded for name, s in labels.items()):
        return DagState.CANCELLED
    if AllocationState.UNKNOWN in states:
        return DagState.UNKNOWN
    return DagState.COMPLETED
